import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  colourHistogramDistance,
  extractPalette,
  frameStats,
  paletteError,
  qualityFigures,
  swdPatches,
  swdPixels,
  wasserstein2Sq1d,
} from "../src/quality/metrics.ts";
import { UserError } from "../src/util/errors.ts";
import { Rng } from "../src/util/rng.ts";

const SHAPE = { height: 32, width: 32 };
const COLOURS = [
  [0.9, -0.8, -0.8],
  [-0.8, 0.7, -0.6],
  [-0.7, -0.6, 0.9],
  [0.9, 0.9, -0.9],
];
const BACKGROUND = [-0.9, -0.9, -0.9];

/** A hard-edged square and circle on a flat background, seeded: [32, 32, 3] in [-1, 1]. */
function sceneFrame(seed: number): Float32Array {
  const r = new Rng(seed);
  const f = new Float32Array(32 * 32 * 3);
  const bg = BACKGROUND;
  const sq = { x: r.int(2, 20), y: r.int(2, 20), s: r.int(5, 9), c: COLOURS[r.int(0, 3)] };
  const ci = { x: r.int(6, 26), y: r.int(6, 26), r: r.int(3, 6), c: COLOURS[r.int(0, 3)] };
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      let c = bg;
      if (x >= sq.x && x < sq.x + sq.s && y >= sq.y && y < sq.y + sq.s) c = sq.c;
      if ((x - ci.x) ** 2 + (y - ci.y) ** 2 <= ci.r ** 2) c = ci.c;
      f.set(c, (y * 32 + x) * 3);
    }
  }
  return f;
}

const frames = (from: number, n: number) => Array.from({ length: n }, (_, i) => sceneFrame(from + i));
const noiseFrames = (seed: number, n: number) => {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => r.normals(32 * 32 * 3).map((v) => Math.max(-1, Math.min(1, v))));
};
const shiftColour = (fs: Float32Array[], d: number) => fs.map((f) => f.map((v) => v + d));
/** move the picture one pixel right (wrapping round) */
const shiftRight = (fs: Float32Array[]) =>
  fs.map((f) => {
    const g = new Float32Array(f.length);
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++)
        g.set(f.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3), (y * 32 + ((x + 1) % 32)) * 3);
    return g;
  });

describe("1-D Wasserstein-2", () => {
  it("equals the equal-size formula after repeating each sample to a common count", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 1, maxLength: 9 }),
        fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 1, maxLength: 9 }),
        (xs, ys) => {
          const x = Float64Array.from(xs).sort();
          const y = Float64Array.from(ys).sort();
          const xr = Float64Array.from(Array.from(x).flatMap((v) => Array(y.length).fill(v)));
          const yr = Float64Array.from(Array.from(y).flatMap((v) => Array(x.length).fill(v)));
          expect(wasserstein2Sq1d(x, y)).toBeCloseTo(wasserstein2Sq1d(xr, yr), 10);
          expect(wasserstein2Sq1d(x, y)).toBeCloseTo(wasserstein2Sq1d(y, x), 12);
        },
      ),
    );
  });
});

describe("sliced Wasserstein distance", () => {
  const real = frames(1, 40);
  const other = frames(1000, 40);
  const noise = noiseFrames(5, 40);

  it("is 0 for identical sets and symmetric", () => {
    expect(swdPixels(real, real, SHAPE)).toBe(0);
    expect(swdPatches(real, real, SHAPE)).toBe(0);
    expect(swdPixels(real, other, SHAPE)).toBe(swdPixels(other, real, SHAPE));
    expect(swdPatches(real, noise, SHAPE)).toBe(swdPatches(noise, real, SHAPE));
  });

  it("pins real vs held-out, real vs noise, and shifted copies (seed 0)", () => {
    const f = {
      heldOutPx: swdPixels(other, real, SHAPE),
      heldOutPatch: swdPatches(other, real, SHAPE),
      noisePx: swdPixels(noise, real, SHAPE),
      noisePatch: swdPatches(noise, real, SHAPE),
      colourPx: swdPixels(shiftColour(real, 0.05), real, SHAPE),
      movedPatch: swdPatches(shiftRight(real), real, SHAPE),
    };
    expect(f).toEqual({
      heldOutPx: expect.closeTo(0.11350028535415443, 6),
      heldOutPatch: expect.closeTo(0.0559342106753022, 6),
      noisePx: expect.closeTo(1.1029823688182752, 6),
      noisePatch: expect.closeTo(0.965895532056113, 6),
      colourPx: expect.closeTo(0.05539360726022024, 6),
      movedPatch: expect.closeTo(0.023541998716739915, 6),
    });
  });

  it("orders the sets as it should: same generator << noise; a colour shift by d gives ~d", () => {
    const heldOut = swdPatches(other, real, SHAPE);
    expect(swdPatches(noise, real, SHAPE)).toBeGreaterThan(10 * heldOut);
    expect(swdPixels(noise, real, SHAPE)).toBeGreaterThan(5 * swdPixels(other, real, SHAPE));
    // a uniform shift by (d, d, d) moves every projection by theta.(d,d,d): SW2 = d sqrt(3 E[theta_1^2 ...]) ~ d
    const s = swdPixels(shiftColour(real, 0.05), real, SHAPE);
    expect(s).toBeGreaterThan(0.035);
    expect(s).toBeLessThan(0.065);
    // same pixels, moved: 0 once every pixel is used (no subsampling)
    expect(swdPixels(shiftRight(real), real, SHAPE, { maxPoints: 1e6 })).toBe(0);
  });

  it("compares sets of different sizes, and a different seed changes only the directions", () => {
    const a = swdPixels(frames(1, 37), real, SHAPE);
    expect(a).toBeGreaterThan(0);
    expect(a).toBeLessThan(swdPixels(noise, real, SHAPE));
    expect(swdPixels(other, real, SHAPE, { seed: 1 })).not.toBe(swdPixels(other, real, SHAPE));
  });

  it("handles a few hundred 32x32 frames (subsampled to a fixed number of points)", () => {
    const q = qualityFigures(frames(1, 300), frames(5000, 300), SHAPE);
    expect(q).toEqual({
      swdPixels: expect.closeTo(0.03666109799171534, 6),
      swdPatches: expect.closeTo(0.01839003196373968, 6),
      paletteError: 0,
      histogramDistance: expect.closeTo(0.003001302083333362, 12),
    });
  });
});

describe("colour metrics", () => {
  const real = frames(1, 60);
  const palette = extractPalette(real);

  it("the palette is the scene's colours", () => {
    const got = Array.from({ length: palette.length / 3 }, (_, k) =>
      Array.from(palette.subarray(3 * k, 3 * k + 3)).map((v) => Math.round(v * 10) / 10),
    );
    const want = [...COLOURS, BACKGROUND];
    expect(got.length).toBe(want.length);
    for (const c of want) expect(got).toContainEqual(c);
  });

  it("palette error: 0 on the reference, the shift's length for shifted colours, large for noise (pinned)", () => {
    expect(paletteError(real, palette)).toBeCloseTo(0, 6);
    expect(paletteError(shiftColour(real, 0.05), palette)).toBeCloseTo(0.05 * Math.sqrt(3), 5);
    expect(paletteError(noiseFrames(5, 20), palette)).toBeCloseTo(0.889771931607223, 9);
  });

  it("histogram distance: 0 for the same colours, 1 for disjoint, symmetric (pinned)", () => {
    expect(colourHistogramDistance(real, real)).toBe(0);
    expect(colourHistogramDistance(real, shiftColour(real, 0.3))).toBeCloseTo(1, 12);
    const d = colourHistogramDistance(frames(1000, 60), real);
    expect(d).toBe(colourHistogramDistance(real, frames(1000, 60)));
    expect(d).toBeCloseTo(0.014127604166666715, 12);
    expect(colourHistogramDistance(noiseFrames(5, 20), real)).toBeCloseTo(0.96396484375, 12);
  });
});

describe("frameStats", () => {
  it("gives per-channel mean and std, range and the share outside [-1, 1]", () => {
    const f = Float32Array.from([1, 0, -1, -1, 0, 1, 0.5, 0.5, 0.5, 2, -2, 0]);
    const s = frameStats(f);
    expect(s.mean).toEqual([0.625, -0.375, 0.125]);
    expect(s.std[1]).toBeCloseTo(Math.sqrt((0 + 0 + 0.25 + 4) / 4 - 0.375 ** 2), 12);
    expect([s.min, s.max, s.outOfRange]).toEqual([-2, 2, 2 / 12]);
  });
});

describe("bad input", () => {
  it("names the frame of the wrong size and the expected size", () => {
    const bad = [sceneFrame(1), new Float32Array(16 * 16 * 3)];
    expect(() => swdPixels(bad, [sceneFrame(2)], SHAPE)).toThrow(UserError);
    expect(() => swdPixels(bad, [sceneFrame(2)], SHAPE)).toThrow(
      "generated frames: frame 1 has 768 values, expected 32x32x3 = 3072; use frames of one size",
    );
    expect(() => swdPatches([sceneFrame(1)], [], SHAPE)).toThrow(
      "reference frames: no frames to compare; give at least one frame",
    );
    expect(() => swdPatches([sceneFrame(1)], [sceneFrame(2)], SHAPE, { patch: 40 })).toThrow(
      "patch size must be a whole number from 1 to 32, got 40",
    );
  });
});
