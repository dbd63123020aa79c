/**
 * Shape figures: does a frame show clean circles and squares, or ragged
 * blobs and specks? The distribution metrics (SWD, palette) cannot tell: a
 * ragged blob of the right colour and size scores like a disc. Here each
 * pixel takes the label of the nearest training shape colour when it lies
 * within `tolerance` of it (otherwise it is background), and the 4-connected
 * regions of one label are the shapes. Per region: area A and perimeter P,
 * the pixel edges it shares with another label or the frame's border;
 * compactness 4 pi A / P^2 is 0.785 for a digital square, about 0.62 for a
 * digital disc (its staircase outline counts every step), lower for ragged
 * outlines and merged or torn shapes. Regions under `minArea` pixels are
 * specks. Real frames of the generator are the yardstick (occlusion and the
 * frame's border cut some real shapes too).
 */
import { SHAPE_COLORS } from "../data/clips.ts";
import { checkFrames, type FrameShape } from "./metrics.ts";

export interface ShapeFigures {
  frames: number;
  /** regions of at least minArea pixels, per frame */
  shapesPerFrame: number;
  /** regions under minArea pixels, per frame */
  specksPerFrame: number;
  /** mean compactness 4 pi A / P^2 of the shapes, weighted by area */
  compactness: number;
  /** share of frames with no shape at all */
  emptyShare: number;
}

export interface ShapeOptions {
  /** RGB distance (values in [-1, 1]) within which a pixel takes a shape colour's label; default 0.35 */
  tolerance?: number;
  /** regions smaller than this many pixels are specks; default 6 */
  minArea?: number;
}

const LABELS = SHAPE_COLORS.map((c) => c.map((v) => (v / 255) * 2 - 1));

/** Per pixel: the index of the shape colour within tolerance, or -1 (background). */
export function labelPixels(frame: Float32Array, tolerance: number): Int8Array {
  const n = frame.length / 3;
  const out = new Int8Array(n).fill(-1);
  const tol2 = tolerance * tolerance;
  for (let i = 0; i < n; i++) {
    let best = -1;
    let bestD = tol2;
    for (let k = 0; k < LABELS.length; k++) {
      const dr = frame[3 * i] - LABELS[k][0];
      const dg = frame[3 * i + 1] - LABELS[k][1];
      const db = frame[3 * i + 2] - LABELS[k][2];
      const d = dr * dr + dg * dg + db * db;
      if (d <= bestD) {
        bestD = d;
        best = k;
      }
    }
    out[i] = best;
  }
  return out;
}

// the 4 neighbours of a pixel: up, down, left, right (constant offsets: no array per pixel in the flood fill)
const STEP_Y = [-1, 1, 0, 0];
const STEP_X = [0, 0, -1, 1];

/** The labelled regions of one frame: area and perimeter of each 4-connected region of one shape colour. */
export function regions(
  labels: Int8Array,
  height: number,
  width: number,
): Array<{ area: number; perimeter: number }> {
  const seen = new Uint8Array(labels.length);
  const stack = new Int32Array(labels.length);
  const out: Array<{ area: number; perimeter: number }> = [];
  for (let start = 0; start < labels.length; start++) {
    const label = labels[start];
    if (label < 0 || seen[start]) continue;
    let area = 0;
    let perimeter = 0;
    let top = 0;
    stack[top++] = start;
    seen[start] = 1;
    while (top > 0) {
      const p = stack[--top];
      area++;
      const y = Math.floor(p / width);
      const x = p - y * width;
      for (let d = 0; d < 4; d++) {
        const ny = y + STEP_Y[d];
        const nx = x + STEP_X[d];
        if (ny < 0 || ny >= height || nx < 0 || nx >= width) {
          perimeter++;
          continue;
        }
        const q = ny * width + nx;
        if (labels[q] !== label) perimeter++;
        else if (!seen[q]) {
          seen[q] = 1;
          stack[top++] = q;
        }
      }
    }
    out.push({ area, perimeter });
  }
  return out;
}

export function shapeFigures(
  frames: readonly Float32Array[],
  shape: FrameShape,
  opts: ShapeOptions = {},
): ShapeFigures {
  checkFrames(frames, shape, "frames");
  const tolerance = opts.tolerance ?? 0.35;
  const minArea = opts.minArea ?? 6;
  let shapes = 0;
  let specks = 0;
  let empty = 0;
  let weighted = 0;
  let area = 0;
  for (const f of frames) {
    const rs = regions(labelPixels(f, tolerance), shape.height, shape.width);
    const big = rs.filter((r) => r.area >= minArea);
    shapes += big.length;
    specks += rs.length - big.length;
    if (big.length === 0) empty++;
    for (const r of big) {
      weighted += r.area * ((4 * Math.PI * r.area) / (r.perimeter * r.perimeter));
      area += r.area;
    }
  }
  const n = frames.length;
  return {
    frames: n,
    shapesPerFrame: shapes / n,
    specksPerFrame: specks / n,
    compactness: area > 0 ? weighted / area : 0,
    emptyShare: empty / n,
  };
}
