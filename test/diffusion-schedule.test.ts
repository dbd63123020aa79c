import { describe, expect, it } from "vitest";
import { makeSchedule } from "../src/diffusion/schedule.ts";
import { UserError } from "../src/util/errors.ts";

describe("makeSchedule", () => {
  it("linear matches DDPM's betas linspace(1e-4, 0.02, 1000)", () => {
    const s = makeSchedule("linear");
    expect(s.T).toBe(1000);
    expect(s.betas[0]).toBeCloseTo(1e-4, 12);
    expect(s.betas[999]).toBeCloseTo(0.02, 12);
    expect(s.alphasCumprod[0]).toBeCloseTo(0.9999, 12);
    // diffusers DDPMScheduler(beta_schedule="linear").alphas_cumprod[-1] = 4.0358e-05
    expect(s.alphasCumprod[999]).toBeCloseTo(4.0358e-5, 8);
    expect(s.alphasCumprod[499]).toBeCloseTo(0.0785872, 6);
  });

  it("cosine matches squaredcos_cap_v2 (betas capped at 0.999)", () => {
    const s = makeSchedule("cosine");
    expect(s.alphasCumprod[0]).toBeCloseTo(0.99995872, 7);
    expect(s.alphasCumprod[499]).toBeCloseTo(0.49384359, 7);
    expect(s.betas[999]).toBe(0.999);
    expect(Math.max(...s.betas)).toBe(0.999);
  });

  it("alphas = 1 - betas and alphasCumprod is their running product, decreasing", () => {
    for (const kind of ["linear", "cosine"] as const) {
      const s = makeSchedule(kind, 50);
      let p = 1;
      for (let t = 0; t < 50; t++) {
        expect(s.alphas[t]).toBeCloseTo(1 - s.betas[t], 15);
        p *= s.alphas[t];
        expect(s.alphasCumprod[t]).toBeCloseTo(p, 15);
        if (t > 0) expect(s.alphasCumprod[t]).toBeLessThan(s.alphasCumprod[t - 1]);
      }
    }
  });

  it("rejects a bad T or kind with the fix", () => {
    expect(() => makeSchedule("linear", 1)).toThrow(UserError);
    expect(() => makeSchedule("linear", 1)).toThrow("schedule length T must be an integer >= 2, got 1");
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
    expect(() => makeSchedule("quadratic" as any)).toThrow(
      'unknown schedule "quadratic"; use one of: linear, cosine',
    );
  });
});
