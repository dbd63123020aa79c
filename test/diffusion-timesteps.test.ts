import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { makeTimesteps, roundHalfEven, TIMESTEP_SPACINGS } from "../src/diffusion/timesteps.ts";
import { UserError } from "../src/util/errors.ts";

describe("makeTimesteps", () => {
  // diffusers DDIMScheduler.set_timesteps(10) with num_train_timesteps=1000, steps_offset=0;
  // the same three lists as Lin et al. 2024, table 2 (they count from 1).
  it("pins T=1000, n=10 for each spacing", () => {
    expect(makeTimesteps("leading", 1000, 10)).toEqual([900, 800, 700, 600, 500, 400, 300, 200, 100, 0]);
    expect(makeTimesteps("linspace", 1000, 10)).toEqual([999, 888, 777, 666, 555, 444, 333, 222, 111, 0]);
    expect(makeTimesteps("trailing", 1000, 10)).toEqual([999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
  });

  it("rounds halves to even like numpy", () => {
    expect([0.5, 1.5, 2.5, 498.5, 499.5, -0.5].map(roundHalfEven)).toEqual([0, 2, 2, 498, 500, 0]);
    // linspace(0, 999, 3) = [0, 499.5, 999] -> numpy rounds 499.5 to 500
    expect(makeTimesteps("linspace", 1000, 3)).toEqual([999, 500, 0]);
    // trailing 1000/3: round(1000, 666.67, 333.33) - 1
    expect(makeTimesteps("trailing", 1000, 3)).toEqual([999, 666, 332]);
    expect(makeTimesteps("leading", 1000, 3)).toEqual([666, 333, 0]);
  });

  it("one step: trailing starts at T-1, leading and linspace at 0 (as diffusers)", () => {
    expect(makeTimesteps("trailing", 1000, 1)).toEqual([999]);
    expect(makeTimesteps("leading", 1000, 1)).toEqual([0]);
    expect(makeTimesteps("linspace", 1000, 1)).toEqual([0]);
  });

  it("always gives n distinct descending integers in [0, T-1]", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 2000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom(...TIMESTEP_SPACINGS),
        (T, f, spacing) => {
          const n = Math.max(1, Math.round(f * T));
          const ts = makeTimesteps(spacing, T, n);
          expect(ts.length).toBe(n);
          for (let i = 0; i < n; i++) {
            expect(Number.isInteger(ts[i])).toBe(true);
            expect(ts[i]).toBeGreaterThanOrEqual(0);
            expect(ts[i]).toBeLessThanOrEqual(T - 1);
            if (i > 0) expect(ts[i]).toBeLessThan(ts[i - 1]);
          }
        },
      ),
    );
  });

  it("refuses steps outside [1, T] with the fix", () => {
    const msg = "steps must be a whole number from 1 to 1000 (the noise schedule's length), got";
    expect(() => makeTimesteps("trailing", 1000, 0)).toThrow(UserError);
    expect(() => makeTimesteps("trailing", 1000, 0)).toThrow(`${msg} 0; pass e.g. --steps 50`);
    expect(() => makeTimesteps("trailing", 1000, 1001)).toThrow(`${msg} 1001`);
    expect(() => makeTimesteps("trailing", 1000, 2.5)).toThrow(`${msg} 2.5`);
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
    expect(() => makeTimesteps("uniform" as any, 1000, 10)).toThrow(
      'unknown timestep spacing "uniform"; use one of: leading, linspace, trailing',
    );
  });
});
