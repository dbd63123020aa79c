import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { makeClip, SHAPE_COLORS } from "../src/data/clips.ts";
import { labelPixels, regions, shapeFigures } from "../src/quality/shapes.ts";

const S = 32;
const shape = { height: S, width: S };
const toUnit = (c: readonly number[]) => c.map((v) => (v / 255) * 2 - 1);

/** A dark frame with the given pixels painted in shape colour k. */
function frameWith(paint: (y: number, x: number) => number): Float32Array {
  const f = new Float32Array(S * S * 3).fill(-0.85);
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++) {
      const k = paint(y, x);
      if (k >= 0) f.set(toUnit(SHAPE_COLORS[k]), 3 * (y * S + x));
    }
  return f;
}

describe("shape figures", () => {
  it("scores a square pi/4, a disc lower, and counts shapes, specks and empty frames", () => {
    const square = frameWith((y, x) => (y >= 8 && y < 18 && x >= 8 && x < 18 ? 0 : -1));
    const sq = shapeFigures([square], shape);
    expect(sq.shapesPerFrame).toBe(1);
    expect(sq.specksPerFrame).toBe(0);
    expect(sq.compactness).toBeCloseTo(Math.PI / 4, 10); // A 100, P 40
    const disc = frameWith((y, x) => ((y - 15.5) ** 2 + (x - 15.5) ** 2 <= 36 ? 2 : -1));
    const d = shapeFigures([disc], shape).compactness;
    expect(d).toBeGreaterThan(0.55);
    expect(d).toBeLessThan(Math.PI / 4);
    // a ragged blob: the same disc with every other outline pixel knocked out
    const ragged = frameWith((y, x) => {
      const r2 = (y - 15.5) ** 2 + (x - 15.5) ** 2;
      return r2 <= 20 || (r2 <= 36 && (x + y) % 2 === 0) ? 2 : -1;
    });
    expect(shapeFigures([ragged], shape).compactness).toBeLessThan(d / 2);
    const specks = frameWith((y, x) => (y % 8 === 0 && x % 8 === 0 ? 3 : -1));
    const sp = shapeFigures([specks, frameWith(() => -1)], shape);
    expect(sp.shapesPerFrame).toBe(0);
    expect(sp.specksPerFrame).toBe(8); // 16 single pixels over 2 frames
    expect(sp.emptyShare).toBe(1);
  });

  it("splits regions by colour and counts the frame's border as outline", () => {
    const two = frameWith((y, x) => (y < 4 ? (x < 16 ? 0 : 1) : -1));
    const rs = regions(labelPixels(two, 0.35), S, S);
    expect(rs).toEqual([
      { area: 64, perimeter: 40 },
      { area: 64, perimeter: 40 },
    ]);
  });

  it("finds the generator's frames clean: every frame a shape, specks only where occlusion leaves a sliver", () => {
    const frames = Array.from({ length: 16 }, (_, c) => makeClip(77 + c, { frames: 1, size: S })[0]);
    const f = shapeFigures(frames, shape);
    expect(f.emptyShare).toBe(0);
    expect(f.specksPerFrame).toBe(1 / 16); // one sliver in these 16 frames (pinned for these seeds)
    expect(f.compactness).toBeGreaterThan(0.55);
  });

  it("never scores a region above a square's pi/4 (property, random frames)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -1, max: 4 }), { minLength: S * S, maxLength: S * S }),
        (cells) => {
          const f = frameWith((y, x) => cells[y * S + x]);
          const rs = regions(labelPixels(f, 0.35), S, S);
          expect(rs.reduce((a, r) => a + r.area, 0)).toBe(cells.filter((c) => c >= 0).length);
          for (const r of rs)
            expect((4 * Math.PI * r.area) / r.perimeter ** 2).toBeLessThanOrEqual(Math.PI / 4 + 1e-12);
        },
      ),
      { numRuns: 50 },
    );
  });

  it("refuses frames of the wrong size with the expected size", () => {
    expect(() => shapeFigures([new Float32Array(10)], shape)).toThrow("expected 32x32x3 = 3072");
  });
});
