/**
 * Deterministic synthetic clips: a few coloured circles and squares moving
 * with their own velocities and bouncing off the walls, on a plain or a
 * vertical-gradient background. This is the training set and the reference
 * for quality metrics. Same seed, same bytes.
 *
 * A frame is a Float32Array [H, W, 3], row-major, values in [-1, 1].
 */
import { Rng } from "../util/rng.ts";

export type ShapeKind = "circle" | "square";

export interface ClipOptions {
  /** frame side in pixels (default 32) */
  size?: number;
  /** number of frames (default 16) */
  frames?: number;
  /** shapes per clip, inclusive range (default 1..3) */
  minShapes?: number;
  maxShapes?: number;
}

/** Shape colours, RGB 0-255. Saturated so a palette error is meaningful. */
export const SHAPE_COLORS: ReadonlyArray<readonly [number, number, number]> = [
  [235, 64, 52], // red
  [60, 200, 90], // green
  [60, 120, 240], // blue
  [245, 210, 60], // yellow
  [235, 235, 235], // white
];

/** Background colours, RGB 0-255: dark, so shapes stand out. */
export const BACKGROUND_COLORS: ReadonlyArray<readonly [number, number, number]> = [
  [20, 20, 28],
  [40, 32, 64],
  [16, 48, 56],
];

export interface ShapeState {
  kind: ShapeKind;
  color: readonly [number, number, number];
  /** centre, pixels */
  x: number;
  y: number;
  /** velocity, pixels per frame */
  vx: number;
  vy: number;
  /** circle radius or square half-side, pixels */
  r: number;
}

export interface SceneState {
  size: number;
  top: readonly [number, number, number];
  bottom: readonly [number, number, number];
  shapes: ShapeState[];
}

/** A random scene at frame 0. */
export function makeScene(seed: number, opts: ClipOptions = {}): SceneState {
  const size = opts.size ?? 32;
  const rng = new Rng(seed);
  const s = size / 32;
  const top = BACKGROUND_COLORS[rng.int(0, BACKGROUND_COLORS.length - 1)];
  // half the clips get a vertical gradient between two background colours
  const bottom = rng.next() < 0.5 ? top : BACKGROUND_COLORS[rng.int(0, BACKGROUND_COLORS.length - 1)];
  const n = rng.int(opts.minShapes ?? 1, opts.maxShapes ?? 3);
  const shapes: ShapeState[] = [];
  for (let i = 0; i < n; i++) {
    const r = rng.uniform(4, 7.5) * s;
    const speed = rng.uniform(0.6, 1.6) * s;
    const angle = rng.uniform(0, 2 * Math.PI);
    shapes.push({
      kind: rng.next() < 0.5 ? "circle" : "square",
      color: SHAPE_COLORS[rng.int(0, SHAPE_COLORS.length - 1)],
      x: rng.uniform(r, size - r),
      y: rng.uniform(r, size - r),
      vx: speed * Math.cos(angle),
      vy: speed * Math.sin(angle),
      r,
    });
  }
  return { size, top, bottom, shapes };
}

/** Advance every shape by one frame, reflecting off the walls. Mutates. */
export function stepScene(scene: SceneState): void {
  const { size } = scene;
  for (const sh of scene.shapes) {
    sh.x += sh.vx;
    sh.y += sh.vy;
    if (sh.x - sh.r < 0) {
      sh.x = 2 * sh.r - sh.x;
      sh.vx = -sh.vx;
    } else if (sh.x + sh.r > size) {
      sh.x = 2 * (size - sh.r) - sh.x;
      sh.vx = -sh.vx;
    }
    if (sh.y - sh.r < 0) {
      sh.y = 2 * sh.r - sh.y;
      sh.vy = -sh.vy;
    } else if (sh.y + sh.r > size) {
      sh.y = 2 * (size - sh.r) - sh.y;
      sh.vy = -sh.vy;
    }
  }
}

/** Rasterise a scene: hard edges, tested at pixel centres. */
export function renderScene(scene: SceneState, out?: Float32Array): Float32Array {
  const { size } = scene;
  const frame = out ?? new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const a = size > 1 ? y / (size - 1) : 0;
    const bg = [0, 1, 2].map((c) => (scene.top[c] * (1 - a) + scene.bottom[c] * a) / 127.5 - 1);
    for (let x = 0; x < size; x++) {
      const o = (y * size + x) * 3;
      frame[o] = bg[0];
      frame[o + 1] = bg[1];
      frame[o + 2] = bg[2];
    }
  }
  for (const sh of scene.shapes) {
    const x0 = Math.max(0, Math.floor(sh.x - sh.r));
    const x1 = Math.min(size - 1, Math.ceil(sh.x + sh.r));
    const y0 = Math.max(0, Math.floor(sh.y - sh.r));
    const y1 = Math.min(size - 1, Math.ceil(sh.y + sh.r));
    const r2 = sh.r * sh.r;
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const dx = x + 0.5 - sh.x;
        const dy = y + 0.5 - sh.y;
        const inside =
          sh.kind === "circle" ? dx * dx + dy * dy <= r2 : Math.abs(dx) <= sh.r && Math.abs(dy) <= sh.r;
        if (!inside) continue;
        const o = (y * size + x) * 3;
        frame[o] = sh.color[0] / 127.5 - 1;
        frame[o + 1] = sh.color[1] / 127.5 - 1;
        frame[o + 2] = sh.color[2] / 127.5 - 1;
      }
    }
  }
  return frame;
}

/** A whole clip: `frames` frames of one scene. */
export function makeClip(seed: number, opts: ClipOptions = {}): Float32Array[] {
  const scene = makeScene(seed, opts);
  const n = opts.frames ?? 16;
  const out: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    out.push(renderScene(scene));
    stepScene(scene);
  }
  return out;
}

/** Frames `from..to` (inclusive) of the clip with this seed, without rendering the ones before. */
export function clipFrames(seed: number, from: number, to: number, opts: ClipOptions = {}): Float32Array[] {
  const scene = makeScene(seed, opts);
  for (let i = 0; i < from; i++) stepScene(scene);
  const out: Float32Array[] = [];
  for (let i = from; i <= to; i++) {
    out.push(renderScene(scene));
    stepScene(scene);
  }
  return out;
}

/** Seeds at or above this are held out: training never draws them, quality metrics use them. */
export const HELD_OUT_SEED_BASE = 1_000_000_000;
