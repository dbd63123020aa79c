import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  addNoise,
  parsePredictionType,
  predEps,
  predictionTarget,
  predX0,
} from "../src/diffusion/prediction.ts";
import { makeRng } from "../src/diffusion/rng.ts";
import { UserError } from "../src/util/errors.ts";

describe("prediction types", () => {
  it("the exact target of either type converts back to x0 and eps", () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-4, max: 0.9999, noNaN: true }), fc.integer(), (abar, seed) => {
        const rng = makeRng(seed);
        const x0 = rng.normals(8);
        const eps = rng.normals(8);
        const xt = addNoise(x0, eps, abar);
        for (const type of ["eps", "v"] as const) {
          const out = predictionTarget(x0, eps, abar, type);
          const bx0 = predX0(out, xt, abar, type);
          const beps = predEps(out, xt, abar, type);
          // float32 storage; x0 from eps divides by sqrt(abar)
          const tolX0 = type === "eps" ? 1e-5 / Math.sqrt(abar) : 1e-5;
          for (let i = 0; i < 8; i++) {
            expect(Math.abs(bx0[i] - x0[i])).toBeLessThan(tolX0 * 4);
            expect(Math.abs(beps[i] - eps[i])).toBeLessThan(
              (type === "v" ? 1e-5 / Math.sqrt(1 - abar) : 1e-6) * 4,
            );
          }
        }
      }),
    );
  });

  it("v = sqrt(abar) eps - sqrt(1 - abar) x0", () => {
    const v = predictionTarget(Float32Array.of(1), Float32Array.of(2), 0.64, "v");
    expect(v[0]).toBeCloseTo(0.8 * 2 - 0.6 * 1, 6);
  });

  it("names its types in the error for an unknown one", () => {
    expect(parsePredictionType("v")).toBe("v");
    expect(() => parsePredictionType("x0")).toThrow(UserError);
    expect(() => parsePredictionType("x0")).toThrow('unknown prediction type "x0"; use one of: eps, v');
  });
});
