import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  BACKGROUND_COLORS,
  clipFrames,
  makeClip,
  makeScene,
  SHAPE_COLORS,
  stepScene,
} from "../src/data/clips.ts";

const sha = (frames: Float32Array[]) => {
  const h = createHash("sha256");
  for (const f of frames) h.update(new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
  return h.digest("hex").slice(0, 16);
};

describe("synthetic clips", () => {
  it("same seed, same bytes (pinned)", () => {
    const a = makeClip(42, { frames: 8 });
    const b = makeClip(42, { frames: 8 });
    expect(sha(a)).toBe(sha(b));
    expect(sha(a)).toMatchInlineSnapshot(`"96c0e7f685d77148"`);
    expect(sha(makeClip(43, { frames: 8 }))).not.toBe(sha(a));
  });

  it("frames are [H, W, 3] in [-1, 1] and the size is configurable", () => {
    for (const size of [16, 32, 48]) {
      const [f] = makeClip(7, { size, frames: 1 });
      expect(f.length).toBe(size * size * 3);
      for (const v of f) {
        expect(v).toBeGreaterThanOrEqual(-1);
        expect(v).toBeLessThanOrEqual(1);
      }
    }
  });

  it("clipFrames returns the same frames as makeClip", () => {
    const all = makeClip(5, { frames: 12 });
    const part = clipFrames(5, 6, 9);
    expect(sha(part)).toBe(sha(all.slice(6, 10)));
  });

  it("shapes move and stay inside the frame (they bounce)", () => {
    const frames = makeClip(11, { frames: 64 });
    expect(sha([frames[0]])).not.toBe(sha([frames[5]]));
    const scene = makeScene(11);
    for (let i = 0; i < 500; i++) {
      stepScene(scene);
      for (const sh of scene.shapes) {
        expect(sh.x - sh.r).toBeGreaterThanOrEqual(-1e-9);
        expect(sh.x + sh.r).toBeLessThanOrEqual(32 + 1e-9);
        expect(sh.y - sh.r).toBeGreaterThanOrEqual(-1e-9);
        expect(sh.y + sh.r).toBeLessThanOrEqual(32 + 1e-9);
      }
    }
    // bounces reflect velocity: speed along each axis is preserved
    const start = makeScene(11);
    scene.shapes.forEach((sh, i) => {
      expect(Math.abs(sh.vx)).toBeCloseTo(Math.abs(start.shapes[i].vx), 9);
    });
  });

  it("uses circles and squares in several colours on the listed backgrounds", () => {
    const kinds = new Set<string>();
    const colors = new Set<string>();
    for (let seed = 0; seed < 50; seed++) {
      const s = makeScene(seed);
      expect(BACKGROUND_COLORS).toContain(s.top);
      for (const sh of s.shapes) {
        kinds.add(sh.kind);
        colors.add(sh.color.join(","));
      }
    }
    expect([...kinds].sort()).toEqual(["circle", "square"]);
    expect(colors.size).toBe(SHAPE_COLORS.length);
  });
});
