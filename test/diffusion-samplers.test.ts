import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { makeGaussianDenoiser, makeIdealDenoiser } from "../src/diffusion/ideal.ts";
import { makeRng } from "../src/diffusion/rng.ts";
import { sampleFrame } from "../src/diffusion/sample.ts";
import {
  makeSampler,
  SAMPLERS,
  type SamplerName,
  type SamplerOptions,
  samplerNames,
} from "../src/diffusion/samplers/index.ts";
import { makeSchedule } from "../src/diffusion/schedule.ts";
import { UserError } from "../src/util/errors.ts";

const cosine = makeSchedule("cosine");
const ALL = samplerNames();
const DETERMINISTIC: SamplerName[] = ["ddim", "euler", "heun", "dpmpp-2m"];

describe("sampler registry", () => {
  it("lists the five samplers", () => {
    expect(ALL).toEqual(["ddpm", "ddim", "euler", "heun", "dpmpp-2m"]);
    for (const n of ALL) expect(SAMPLERS[n].description.length).toBeGreaterThan(10);
  });

  it("refuses an unknown sampler, listing the known ones", () => {
    expect(() => makeSampler("lms", cosine)).toThrow(UserError);
    expect(() => makeSampler("lms", cosine)).toThrow(
      'unknown sampler "lms"; use one of: ddpm, ddim, euler, heun, dpmpp-2m',
    );
  });

  it("refuses bad steps with the fix, before running", () => {
    for (const n of ALL) {
      const s = makeSampler(n, cosine);
      expect(() => s.setTimesteps(0)).toThrow(
        "steps must be a whole number from 1 to 1000 (the noise schedule's length), got 0; pass e.g. --steps 50",
      );
      expect(() => s.nfeFor(1001)).toThrow(UserError);
    }
  });

  it("refuses eta outside ddim and a negative eta", () => {
    expect(() => makeSampler("euler", cosine, { eta: 0.5 })).toThrow(
      "eta applies only to the ddim sampler, got eta 0.5 with euler; drop --eta or use ddim",
    );
    expect(() => makeSampler("ddim", cosine, { eta: -1 })).toThrow(
      "eta must be a number >= 0 (0 = deterministic DDIM, 1 = DDPM-like), got -1",
    );
    expect(makeSampler("ddim", cosine, { eta: 0 }).deterministic).toBe(true);
    expect(makeSampler("ddim", cosine, { eta: 1 }).deterministic).toBe(false);
    expect(makeSampler("ddpm", cosine).deterministic).toBe(false);
  });
});

describe("timesteps and NFEs", () => {
  it("states its NFEs before running, equal to its timesteps (Heun: 2n-1)", () => {
    for (const name of ALL) {
      for (const n of [1, 2, 10, 50, 1000]) {
        const s = makeSampler(name, cosine);
        const stated = s.nfeFor(n);
        s.setTimesteps(n);
        expect(s.timesteps.length).toBe(stated);
        expect(stated).toBe(name === "heun" ? 2 * n - 1 : n);
      }
    }
  });

  it("Heun repeats every spaced timestep but the first, like diffusers, starting at sigma <= 80", () => {
    const s = makeSampler("heun", cosine);
    s.setTimesteps(4);
    expect(s.timesteps).toEqual([990, 749, 749, 499, 499, 249, 249]);
    const plain = makeSampler("heun", cosine, { sigmaMax: Number.POSITIVE_INFINITY });
    plain.setTimesteps(4);
    expect(plain.timesteps).toEqual([999, 749, 749, 499, 499, 249, 249]);
    expect(s.timesteps.map((_, i) => s.completesStep(i))).toEqual([
      false,
      true,
      false,
      true,
      false,
      true,
      true,
    ]);
  });

  it("sigma-space samplers start at sqrt(sigma_max^2 + 1), the others at 1", () => {
    const lin = makeSchedule("linear");
    for (const name of ALL) {
      const s = makeSampler(name, lin);
      s.setTimesteps(10);
      // Heun's first timestep is capped to sigma <= 80: t = 929 on the linear schedule
      const abar = lin.alphasCumprod[name === "heun" ? 929 : 999];
      const expected = name === "euler" || name === "heun" ? Math.sqrt((1 - abar) / abar + 1) : 1;
      expect(s.timesteps[0]).toBe(name === "heun" ? 929 : 999);
      expect(s.initNoiseSigma).toBeCloseTo(expected, 9);
    }
  });
});

describe("sigmaMax (EDM's cap on the starting noise level; heun 80 by default, euler off)", () => {
  const sigma = (abar: number) => Math.sqrt((1 - abar) / abar);
  const spaced = (name: SamplerName, kind: "cosine" | "linear", n: number, opts: SamplerOptions = {}) => {
    const s = makeSampler(name, makeSchedule(kind), opts);
    s.setTimesteps(n);
    return s.timesteps.filter((t, i) => i === 0 || t !== s.timesteps[i - 1]);
  };

  it("moves timesteps above the cap to the largest one at or below it", () => {
    for (const [kind, tMax] of [
      ["cosine", 990],
      ["linear", 929],
    ] as const) {
      const ac = makeSchedule(kind).alphasCumprod;
      expect(sigma(ac[tMax])).toBeLessThanOrEqual(80);
      expect(sigma(ac[tMax + 1])).toBeGreaterThan(80);
      expect(spaced("heun", kind, 10)).toEqual([tMax, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
      expect(spaced("euler", kind, 10, { sigmaMax: 80 })).toEqual(spaced("heun", kind, 10));
      expect(spaced("euler", kind, 10)[0]).toBe(999);
      // leading spacing starts at 900, below both caps: unchanged
      expect(spaced("heun", kind, 10, { spacing: "leading" })[0]).toBe(900);
      expect(spaced("heun", kind, 10, { spacing: "linspace" })).toEqual([
        tMax,
        888,
        777,
        666,
        555,
        444,
        333,
        222,
        111,
        0,
      ]);
    }
    // a lower cap: the first call at the last timestep with sigma <= 10, the noise scaled to it
    const s = makeSampler("heun", cosine, { sigmaMax: 10 });
    s.setTimesteps(2);
    const t0 = s.timesteps[0];
    expect(sigma(cosine.alphasCumprod[t0])).toBeLessThanOrEqual(10);
    expect(sigma(cosine.alphasCumprod[t0 + 1])).toBeGreaterThan(10);
    expect(s.initNoiseSigma).toBeCloseTo(Math.sqrt(sigma(cosine.alphasCumprod[t0]) ** 2 + 1), 9);
  });

  it("respaces the steps below the cap where moving them would repeat a timestep, keeping 2n-1 NFEs", () => {
    // linear, 15 trailing steps: 999, 932, 866 all exceed sigma 80; capping would give 929 three times
    const lin15 = spaced("heun", "linear", 15);
    expect(lin15).toEqual([929, 867, 805, 743, 681, 619, 557, 495, 433, 371, 309, 247, 185, 123, 61]);
    const s = makeSampler("heun", makeSchedule("linear"));
    expect(s.nfeFor(15)).toBe(29);
    s.setTimesteps(15);
    expect(s.timesteps.length).toBe(29);
    // more steps than timesteps at or below the cap: repeats are unavoidable, NFEs as stated
    const c = makeSampler("heun", cosine);
    c.setTimesteps(1000);
    expect(c.timesteps.length).toBe(1999);
    expect(c.timesteps.slice(0, 3)).toEqual([990, 990, 990]);
    expect(spaced("heun", "cosine", 991).length).toBe(991);
  });

  it("refuses a cap that is not a positive number, below every sigma, or on a sampler without one", () => {
    for (const bad of [0, -1, Number.NaN]) {
      expect(() => makeSampler("heun", cosine, { sigmaMax: bad })).toThrow(UserError);
      expect(() => makeSampler("heun", cosine, { sigmaMax: bad })).toThrow(
        `sigmaMax must be a number > 0 (80 as in Karras et al. 2022, Infinity for no cap), got ${bad}`,
      );
    }
    expect(() => makeSampler("euler", cosine, { sigmaMax: 1e-6 })).toThrow(
      "sigmaMax 0.000001 is below every noise level of the cosine schedule (smallest sigma 0.006425); use e.g. sigmaMax 80",
    );
    for (const name of ["ddpm", "ddim", "dpmpp-2m"] as const) {
      expect(() => makeSampler(name, cosine, { sigmaMax: 80 })).toThrow(
        "sigmaMax applies only to the euler and heun samplers, got sigmaMax 80; drop sigmaMax or use euler or heun",
      );
    }
  });
});

describe("sampler arithmetic", () => {
  it("the FLOPs each sampler states per call equal what its elementwise ops performed", async () => {
    const model = makeGaussianDenoiser(0, 0.5, cosine, "v");
    const cases: Array<[SamplerName, object]> = [
      ["ddpm", {}],
      ["ddpm", { predictionType: "eps", clipSample: 1 }],
      ["ddim", {}],
      ["ddim", { predictionType: "eps" }],
      ["ddim", { eta: 0.5, predictionType: "eps" }],
      ["ddim", { clipSample: 1 }],
      ["euler", {}],
      ["heun", {}],
      ["heun", { sigmaMax: Number.POSITIVE_INFINITY }],
      ["euler", { sigmaMax: 80 }],
      ["dpmpp-2m", {}],
    ];
    for (const [name, opts] of cases) {
      for (const steps of [1, 2, 7]) {
        const s = makeSampler(name, cosine, { predictionType: "v", ...opts });
        const before = s.flopsCounted;
        s.setTimesteps(steps);
        const stated = s.totalFlops(12);
        const r = await sampleFrame({ model, context: null, sampler: s, steps, shape: 12, rng: makeRng(3) });
        expect(s.flopsCounted - before).toBe(stated);
        const init = s.initNoiseSigma !== 1 ? 12 : 0;
        expect(r.samplerFlops).toBe(stated + init);
      }
    }
  });

  it("pins FLOPs per element per call", () => {
    const per = (name: SamplerName, opts = {}) => {
      const s = makeSampler(name, cosine, opts);
      s.setTimesteps(4);
      return s.timesteps.map((_, i) => s.flopsForCall(i, 1));
    };
    expect(per("ddpm")).toEqual([8, 8, 8, 6]);
    expect(per("ddim", { predictionType: "eps" })).toEqual([6, 6, 6, 6]);
    expect(per("ddim", { predictionType: "v" })).toEqual([9, 9, 9, 9]);
    expect(per("euler")).toEqual([7, 7, 7, 7]);
    expect(per("heun")).toEqual([10, 12, 10, 12, 10, 12, 10]);
    expect(per("dpmpp-2m")).toEqual([6, 8, 8, 3]);
  });
});

describe("exactness on a single data point", () => {
  // With one reference frame the posterior mean is that frame at every noise
  // level, the ODE path x0 + sigma eps is a straight line, and every
  // deterministic sampler (first or second order) must land on it in any
  // number of steps.
  it("deterministic samplers land on the only reference in any number of steps", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...DETERMINISTIC),
        fc.constantFrom("linear" as const, "cosine" as const),
        fc.constantFrom("eps" as const, "v" as const),
        fc.constantFrom("leading" as const, "linspace" as const, "trailing" as const),
        fc.integer({ min: 1, max: 40 }),
        fc.integer(),
        async (name, kind, pred, spacing, steps, seed) => {
          const sch = makeSchedule(kind);
          const ref = makeRng(seed)
            .normals(6)
            .map((v) => Math.tanh(v));
          const ideal = makeIdealDenoiser([ref], sch, pred);
          const s = makeSampler(name, sch, { predictionType: pred, spacing });
          const r = await sampleFrame({
            model: ideal.model,
            context: null,
            sampler: s,
            steps,
            shape: 6,
            rng: makeRng(seed + 1),
          });
          // float32 noise divided by sqrt(abar) at the first step, up to 1/sqrt(2.4e-9) for cosine
          for (let i = 0; i < 6; i++) expect(Math.abs(r.sample[i] - ref[i])).toBeLessThan(2e-3);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("pinned outputs (Gaussian data N(0, 0.5^2), cosine, v, trailing, seed 0, 16 elements, 10 steps)", () => {
  const pinned: Record<SamplerName, number> = {
    ddpm: -0.5671456772834063,
    ddim: 1.2728107469156384,
    euler: 1.2728107925504446,
    // capped at sigma 80 (t = 990); without the cap 15.657, far off (see diffusion-ideal tests)
    heun: 1.4829215537756681,
    "dpmpp-2m": 1.4178473949432373,
  };
  for (const name of ALL) {
    it(`${name}: sum of the sample`, async () => {
      const model = makeGaussianDenoiser(0, 0.5, cosine, "v");
      const s = makeSampler(name, cosine, { predictionType: "v" });
      const r = await sampleFrame({
        model,
        context: null,
        sampler: s,
        steps: 10,
        shape: 16,
        rng: makeRng(0),
      });
      let sum = 0;
      for (const v of r.sample) sum += v;
      expect(sum).toBeCloseTo(pinned[name], 4);
    });
  }
});
