/**
 * Samplers against exact answers. Two ideal denoisers:
 * - a finite set of reference frames (the exact posterior mean): samples must
 *   land on a reference, and stochastic sampling must hit each reference as
 *   often as its weight;
 * - Gaussian data N(0, 0.5^2), whose probability-flow ODE has a closed-form
 *   endpoint: the distance to it is each sampler's discretisation error.
 * All numbers are pinned for fixed seeds.
 */
import { describe, expect, it } from "vitest";
import { gaussianFlowEndpoint, makeGaussianDenoiser, makeIdealDenoiser } from "../src/diffusion/ideal.ts";
import { makeRng } from "../src/diffusion/rng.ts";
import { sampleFrame } from "../src/diffusion/sample.ts";
import { makeSampler, type SamplerName, type SamplerOptions } from "../src/diffusion/samplers/index.ts";
import { makeSchedule, type ScheduleKind } from "../src/diffusion/schedule.ts";

const DETERMINISTIC: SamplerName[] = ["ddim", "euler", "heun", "dpmpp-2m"];

function rmsd(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / a.length);
}

/** relative closeness for pinned floats: same to 4 significant digits */
function expectPinned(x: number, pinned: number): void {
  expect(Math.abs(x / pinned - 1)).toBeLessThan(5e-4);
}

describe("finite reference set (3 frames of 2x2 RGB, cosine, v, trailing)", () => {
  const sch = makeSchedule("cosine");
  const r = makeRng(1);
  const refs = Array.from({ length: 3 }, () => {
    const a = new Float32Array(12);
    for (let j = 0; j < 12; j++) a[j] = r.uniform(-1, 1);
    return a;
  });
  const ideal = makeIdealDenoiser(refs, sch, "v");
  const nearest = (x: Float32Array) => Math.min(...refs.map((q) => rmsd(x, q)));

  /** mean and max over 8 seeds of the RMS distance to the nearest reference */
  async function landing(name: SamplerName, steps: number): Promise<{ mean: number; max: number }> {
    let mean = 0;
    let max = 0;
    for (let k = 0; k < 8; k++) {
      const sampler = makeSampler(name, sch, { predictionType: "v" });
      const out = await sampleFrame({
        model: ideal.model,
        context: null,
        sampler,
        steps,
        shape: 12,
        rng: makeRng(100 + k),
      });
      const d = nearest(out.sample);
      mean += d / 8;
      max = Math.max(max, d);
    }
    return { mean, max };
  }

  it("the posterior mean is the weighted reference mean at t = T-1 and the nearest reference at t = 0", () => {
    const m = ideal.posteriorMean(refs[1], 0);
    expect(rmsd(m, refs[1])).toBeLessThan(1e-12);
    const noise = makeRng(9).normals(12);
    const avg = refs[0].map((_, j) => (refs[0][j] + refs[1][j] + refs[2][j]) / 3);
    expect(rmsd(ideal.posteriorMean(noise, 999), avg)).toBeLessThan(1e-4);
  });

  it("every sampler at 100 steps lands on a reference frame (8 seeds, RMS distance < 1e-6)", async () => {
    for (const name of [...DETERMINISTIC, "ddpm" as const]) {
      const { max } = await landing(name, 100);
      expect(max).toBeLessThan(1e-6);
    }
  });

  it("fewer steps land farther: 1 step gives the reference mean, pinned", async () => {
    const one = await landing("ddim", 1);
    expectPinned(one.mean, 0.4925);
    for (const name of ["ddim", "euler", "dpmpp-2m", "ddpm"] as const) {
      const l1 = (await landing(name, 1)).mean;
      const l2 = (await landing(name, 2)).mean;
      const l5 = (await landing(name, 5)).mean;
      const l100 = (await landing(name, 100)).mean;
      expect(l1).toBeGreaterThan(l2);
      expect(l2).toBeGreaterThan(l5);
      expect(l5).toBeGreaterThan(l100);
    }
    expectPinned((await landing("ddim", 2)).mean, 0.2094);
    expectPinned((await landing("ddpm", 2)).mean, 0.1082);
    expectPinned((await landing("ddim", 5)).mean, 3.557e-4);
  });
});

describe("distribution over references (2-D points, weights 0.2 / 0.3 / 0.5, 600 seeds, 50 steps)", () => {
  const sch = makeSchedule("cosine");
  const refs = [
    [-0.8, -0.8],
    [0.8, -0.6],
    [0, 0.8],
  ].map((a) => Float32Array.from(a));
  const weights = [0.2, 0.3, 0.5];
  const ideal = makeIdealDenoiser(refs, sch, "v", weights);

  async function counts(
    name: SamplerName,
    opts: SamplerOptions,
  ): Promise<{ counts: number[]; worst: number }> {
    const c = [0, 0, 0];
    let worst = 0;
    for (let seed = 0; seed < 600; seed++) {
      const sampler = makeSampler(name, sch, { predictionType: "v", ...opts });
      const { sample } = await sampleFrame({
        model: ideal.model,
        context: null,
        sampler,
        steps: 50,
        shape: 2,
        rng: makeRng(1000 + seed),
      });
      const d = refs.map((q) => rmsd(sample, q));
      const k = d.indexOf(Math.min(...d));
      c[k]++;
      worst = Math.max(worst, d[k]);
    }
    return { counts: c, worst };
  }

  // binomial standard deviation at n = 600 is at most 0.02: allow 2.5 of them
  for (const [name, opts, pinned] of [
    ["ddpm", {}, [125, 189, 286]],
    ["ddim", { eta: 1 }, [125, 189, 286]], // eta = 1 is DDPM's posterior: same draws, same landings
    ["ddim", {}, [124, 169, 307]], // the probability-flow ODE carries the same marginals
  ] as const) {
    it(`${name} ${JSON.stringify(opts)} lands on each point as often as its weight`, async () => {
      const r = await counts(name, opts);
      expect(r.worst).toBeLessThan(1e-6);
      expect(r.counts).toEqual(pinned);
      for (let k = 0; k < 3; k++) expect(Math.abs(r.counts[k] / 600 - weights[k])).toBeLessThan(0.05);
    });
  }
});

describe("discretisation error against the exact ODE endpoint (Gaussian data, v, trailing, 16 elements, seed 7)", () => {
  const NFES = [5, 9, 19, 49, 99];
  // each sampler against the exact endpoint from its own first timestep (Heun's capped one: sigma <= 80)
  async function errors(kind: ScheduleKind, name: SamplerName, opts: SamplerOptions = {}): Promise<number[]> {
    const sch = makeSchedule(kind);
    const model = makeGaussianDenoiser(0, 0.5, sch, "v");
    const out: number[] = [];
    for (const nfe of NFES) {
      const sampler = makeSampler(name, sch, { predictionType: "v", ...opts });
      const steps = name === "heun" ? (nfe + 1) / 2 : nfe;
      expect(sampler.nfeFor(steps)).toBe(nfe);
      const r = await sampleFrame({ model, context: null, sampler, steps, shape: 16, rng: makeRng(7) });
      const exact = gaussianFlowEndpoint(makeRng(7).normals(16), sampler.timesteps[0], 0, 0.5, sch);
      out.push(rmsd(r.sample, exact));
    }
    return out;
  }

  // RMS error at NFE 5, 9, 19, 49, 99 (Heun: 3, 5, 10, 25, 50 steps)
  const PINNED: Record<ScheduleKind, Record<SamplerName, number[]>> = {
    cosine: {
      ddpm: [],
      ddim: [0.1523, 0.08897, 0.04391, 0.01748, 0.008768],
      euler: [0.1523, 0.08897, 0.04391, 0.01748, 0.008767],
      heun: [0.39, 0.062, 0.003035, 0.00295, 0.001233],
      "dpmpp-2m": [0.1173, 0.03548, 0.002534, 0.0009157, 0.0002504],
    },
    linear: {
      ddpm: [],
      ddim: [0.2618, 0.1575, 0.07949, 0.03214, 0.01622],
      euler: [0.2618, 0.1575, 0.07949, 0.03214, 0.01622],
      heun: [0.3356, 0.1988, 0.0714, 0.01294, 0.004435],
      "dpmpp-2m": [0.2521, 0.1235, 0.02818, 0.0009517, 0.0009358],
    },
  };

  for (const kind of ["cosine", "linear"] as const) {
    it(`${kind}: pinned errors, each falling as NFEs grow`, async () => {
      for (const name of DETERMINISTIC) {
        const e = await errors(kind, name);
        e.forEach((x, i) => {
          expectPinned(x, PINNED[kind][name][i]);
          if (i > 0) expect(x).toBeLessThan(e[i - 1]);
        });
      }
    });
  }

  it("DDIM is Euler in sigma space: same errors, first order (doubling NFEs halves the error)", async () => {
    for (const kind of ["cosine", "linear"] as const) {
      const d = await errors(kind, "ddim");
      const e = await errors(kind, "euler");
      for (let i = 0; i < d.length; i++) expect(Math.abs(d[i] - e[i])).toBeLessThan(1e-5);
      expect(d[3] / d[4]).toBeGreaterThan(1.8);
      expect(d[3] / d[4]).toBeLessThan(2.2);
    }
  });

  it("at equal NFEs DPM-Solver++(2M) beats both first-order samplers on both schedules", async () => {
    for (const kind of ["cosine", "linear"] as const) {
      const dpm = await errors(kind, "dpmpp-2m");
      const ddim = await errors(kind, "ddim");
      const euler = await errors(kind, "euler");
      dpm.forEach((x, i) => {
        expect(x).toBeLessThan(ddim[i]);
        expect(x).toBeLessThan(euler[i]);
      });
      // by 2.5x or more at NFE 19 and 9x or more from NFE 49 on
      expect(ddim[2] / dpm[2]).toBeGreaterThan(2.5);
      for (const i of [3, 4]) expect(ddim[i] / dpm[i]).toBeGreaterThan(9);
    }
  });

  it("at equal NFEs Heun beats the first-order samplers on the linear schedule from 19 NFEs on", async () => {
    const heun = await errors("linear", "heun");
    const euler = await errors("linear", "euler");
    for (const i of [2, 3, 4]) expect(heun[i]).toBeLessThan(euler[i]);
    expect(euler[4] / heun[4]).toBeGreaterThan(3);
  });

  it("Heun with sigma capped at 80 (the default) beats the first-order samplers on the cosine schedule from 9 NFEs on", async () => {
    const heun = await errors("cosine", "heun");
    const ddim = await errors("cosine", "ddim");
    const euler = await errors("cosine", "euler");
    for (const i of [1, 2, 3, 4]) {
      expect(heun[i]).toBeLessThan(ddim[i]);
      expect(heun[i]).toBeLessThan(euler[i]);
    }
    // by 5x or more from 19 NFEs on; 3 steps (5 NFEs) are still too few for it
    for (const i of [2, 3, 4]) expect(euler[i] / heun[i]).toBeGreaterThan(5);
    expect(heun[0]).toBeGreaterThan(euler[0]);
  });

  it("at equal NFEs DPM-Solver++(2M) beats Heun on both schedules (1 NFE per step against 2)", async () => {
    for (const kind of ["cosine", "linear"] as const) {
      const dpm = await errors(kind, "dpmpp-2m");
      const heun = await errors(kind, "heun");
      dpm.forEach((x, i) => {
        expect(x).toBeLessThan(heun[i]);
      });
    }
  });

  it("sigmaMax: Infinity (diffusers' Heun) reproduces the old failure: the first step spans sigma 20290 -> 6.4", async () => {
    // the trapezoid rule over a step ~20000 long; diffusers' HeunDiscreteScheduler does the same with
    // squaredcos_cap_v2 and trailing spacing
    const heun = await errors("cosine", "heun", { sigmaMax: Number.POSITIVE_INFINITY });
    const euler = await errors("cosine", "euler");
    heun.forEach((x, i) => {
      expectPinned(x, [166.5, 39.82, 5.152, 0.3275, 0.03944][i]);
      expect(x).toBeGreaterThan(euler[i]);
    });
    // on the linear schedule (sigma 157 at t = 999) the cap changes little
    const lin = await errors("linear", "heun", { sigmaMax: Number.POSITIVE_INFINITY });
    lin.forEach((x, i) => {
      expectPinned(x, [0.3332, 0.1986, 0.07139, 0.01485, 0.004744][i]);
    });
  });

  it("Euler needs no cap (off by default, as in diffusers): sigmaMax 80 moves its errors little", async () => {
    const pinned = {
      cosine: [0.1519, 0.0887, 0.04378, 0.01744, 0.008752],
      linear: [0.2618, 0.1575, 0.07425, 0.03001, 0.01511], // from 19 NFEs the steps are respaced below sigma 80
    };
    for (const kind of ["cosine", "linear"] as const) {
      const capped = await errors(kind, "euler", { sigmaMax: 80 });
      const plain = await errors(kind, "euler");
      capped.forEach((x, i) => {
        expectPinned(x, pinned[kind][i]);
        expect(Math.abs(x / plain[i] - 1)).toBeLessThan(kind === "cosine" ? 0.005 : 0.08);
      });
    }
  });
});
