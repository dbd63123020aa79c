import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { calibrateGemm, median } from "../src/engine/calibrate.ts";
import { tf } from "../src/engine/tf.ts";
import { UserError } from "../src/util/errors.ts";

describe("median", () => {
  it("pins odd and even cases", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
  });

  it("lies between min and max and ignores order", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1 }), (xs) => {
        const m = median(xs);
        expect(m).toBeGreaterThanOrEqual(Math.min(...xs));
        expect(m).toBeLessThanOrEqual(Math.max(...xs));
        // equal as numbers: with both 0 and -0 in the middle, which one the sort leaves there depends on order
        expect(median([...xs].reverse()) === m).toBe(true);
      }),
    );
  });
});

describe("calibrateGemm", () => {
  for (const backend of ["wasm", "cpu"]) {
    it(`returns a positive finite GFLOP/s on ${backend} and leaks no tensors`, async () => {
      await tf.setBackend(backend);
      const before = tf.memory().numTensors;
      const c = await calibrateGemm({ backend, size: 96, runs: 3 });
      expect(c.backend).toBe(backend);
      expect(tf.getBackend()).toBe(backend);
      expect(c.size).toBe(96);
      expect(c.runs).toBe(3);
      expect(c.flopsPerRun).toBe(2 * 96 ** 3);
      expect(Number.isFinite(c.gflops)).toBe(true);
      expect(c.gflops).toBeGreaterThan(0);
      // gflops is derived from the median, not typed in
      expect(c.gflops).toBeCloseTo(c.flopsPerRun / (c.medianMs * 1e6), 9);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it("uses the active backend and its default size when none is given", async () => {
    await tf.setBackend("wasm");
    const c = await calibrateGemm({ runs: 1 });
    expect(c.backend).toBe("wasm");
    expect(c.size).toBe(512);
  });

  it("rejects a bad size or run count", async () => {
    await expect(calibrateGemm({ size: 0 })).rejects.toThrow(
      new UserError("GEMM size must be an integer >= 1, got 0"),
    );
    await expect(calibrateGemm({ size: 8, runs: 1.5 })).rejects.toThrow(
      new UserError("GEMM runs must be an integer >= 1, got 1.5"),
    );
  });
});
