import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  fitSerialFraction,
  impliedMfu,
  measurementFlops,
  parallelModel,
  speedup,
} from "../src/cost/calibration.ts";
import { getGpu, shippedCatalog } from "../src/cost/catalog.ts";
import { minuteCost, solveInverse, startKnobs } from "../src/cost/inverse.ts";
import { modelShape } from "../src/cost/models.ts";
import { MEASUREMENTS } from "../src/cost/published.ts";
import { evaluateScenario, type ScenarioOptions } from "../src/cost/scenarios.ts";
import { ditShape, nfeFlopsAtTokens, ownShape, vaeDecoderFlops } from "../src/cost/shapes.ts";
import { analyticFlopsPerCall } from "../src/meter/analytic.ts";
import { PRESETS } from "../src/model/config.ts";

const cat = shippedCatalog();

function wan14(over: Partial<ScenarioOptions> = {}): ScenarioOptions {
  return {
    shape: modelShape("wan2.1-14b"),
    clip: { width: 1280, height: 720, frames: 81 },
    fps: 16,
    steps: 50,
    cfg: true,
    gpu: getGpu(cat, "h100-sxm"),
    catalog: cat,
    ...over,
  };
}

describe("DiT presets against the DiT paper (Peebles & Xie 2023, Table 4, Gflops = GMACs)", () => {
  // the paper counts multiply-accumulates (fvcore); framecost's FLOPs are MACs x 2
  const paper: Record<string, number> = {
    "s/8": 0.36,
    "s/4": 1.41,
    "s/2": 6.06,
    "b/8": 1.42,
    "b/4": 5.56,
    "b/2": 23.01,
    "l/8": 5.01,
    "l/4": 19.7,
    "l/2": 80.71,
    "xl/8": 7.39,
    "xl/4": 29.05,
    "xl/2": 118.64,
  };
  for (const [name, gmacs] of Object.entries(paper)) {
    it(`DiT-${name.toUpperCase()}: ${gmacs} Gflops`, () => {
      const s = evaluateScenario({
        shape: modelShape(`dit-${name}`),
        clip: { width: 256, height: 256, frames: 1 },
        fps: 24,
        steps: 1,
        cfg: false,
        gpu: getGpu(cat, "h100-sxm"),
        catalog: cat,
        convention: "macs",
      });
      // the paper prints two decimals: within 0.6% (DiT-S/8 0.358 rounds to 0.36)
      expect(Math.abs(s.flopsPerNfe / 1e9 / gmacs - 1)).toBeLessThan(0.006);
    });
  }
  it("DiT-XL/2 at 256 px: 118.62 GMACs per call, pinned", () => {
    const f = nfeFlopsAtTokens(ditShape("xl", 2), 256);
    // 28 x (12 N D^2 + 2 N^2 D) + adaLN 28 x 6 D^2 + patch, final layer, timestep MLP
    expect(f.total / 2).toBe(118621421568);
  });
});

describe("FLOP model properties", () => {
  const shapes = [ditShape("b", 2), ditShape("xl", 4), ownShape(PRESETS.tiny), ownShape(PRESETS.small)];

  it("MACs x 2 = FLOPs for every count a scenario reports", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...["dit-s/2", "dit-xl/2", "tiny", "wan2.1-1.3b", "cogvideox-5b", "hunyuanvideo"]),
        fc.integer({ min: 1, max: 60 }),
        fc.boolean(),
        (name, steps, cfg) => {
          const shape = modelShape(name);
          const base = {
            shape,
            clip: { ...shape.defaults },
            fps: shape.defaults.fps,
            steps,
            cfg,
            gpu: getGpu(cat, "a100-sxm"),
            catalog: cat,
          };
          const f = evaluateScenario({ ...base, convention: "flops" });
          const m = evaluateScenario({ ...base, convention: "macs" });
          expect(m.flopsPerNfe * 2).toBe(f.flopsPerNfe);
          expect(m.totalFlops * 2).toBe(f.totalFlops);
          expect(m.networkFlops * 2).toBe(f.networkFlops);
          expect(m.breakdownPerNfe.attention * 2).toBe(f.breakdownPerNfe.attention);
          // time and money do not depend on how FLOPs are printed
          expect(m.usdPerVideoMinute).toBe(f.usdPerVideoMinute);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("self-attention's term is quadratic in tokens; linear layers are linear", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...shapes),
        fc.integer({ min: 1, max: 4096 }),
        fc.integer({ min: 2, max: 9 }),
        (shape, n, k) => {
          const a = nfeFlopsAtTokens(shape, n);
          const b = nfeFlopsAtTokens(shape, k * n);
          expect(b.attention / a.attention).toBeCloseTo(k * k, 9);
          expect(b.linear / a.linear).toBeCloseTo(k, 9);
        },
      ),
    );
  });

  it("joint text tokens enter attention's square: (N + Nt)^2", () => {
    const h = modelShape("hunyuanvideo");
    const f = nfeFlopsAtTokens(h, 1000);
    expect(f.attention).toBe(2 * 2 * h.depth * (1000 + 256) ** 2 * h.width);
  });

  it("Wan's cross-attention: projections and products against 512 text tokens", () => {
    const w = modelShape("wan2.1-14b");
    const n = 75600;
    const f = nfeFlopsAtTokens(w, n);
    expect(f.crossAttention).toBe(2 * 40 * (2 * n * 5120 ** 2 + 2 * 512 * 5120 ** 2 + 2 * n * 512 * 5120));
  });
});

describe("Wan2.1 T2V-14B, 1280x720, 81 frames, 50 steps + CFG on H100 SXM", () => {
  const s = evaluateScenario(wan14());

  it("counts 75,600 tokens and 100 network calls", () => {
    expect(s.clip.tokensPerNfe).toBe(75600);
    expect(s.clip.latentFrames).toBe(21);
    expect(s.nfe).toBe(100);
  });

  it("pins FLOPs per call and per clip", () => {
    expect(s.flopsPerNfe).toBe(6523436696862720);
    expect(s.breakdownPerNfe.attention / s.flopsPerNfe).toBeCloseTo(0.7177, 4);
    expect(s.oncePerClip.textEncoderFlops).toBe(9689446219776);
    expect(s.totalFlops).toBe(
      s.networkFlops + s.oncePerClip.textEncoderFlops + s.oncePerClip.vaeDecoderFlops,
    );
  });

  it("a video minute is fps x 60 frames", () => {
    expect(s.clipsPerVideoMinute).toBeCloseTo((16 * 60) / 81, 12);
    expect(s.usdPerVideoMinute).toBeCloseTo(s.usdPerClip * s.clipsPerVideoMinute, 12);
  });

  it("GPU-seconds = FLOPs / (peak x MFU); USD = GPU-hours x price; Wh = board power x hours", () => {
    expect(s.gpuSeconds).toBeCloseTo(s.totalFlops / (989e12 * s.mfu.value), 6);
    expect(s.usdPerClip).toBeCloseTo((s.gpuSeconds / 3600) * 2.69, 12);
    expect(s.energy.whPerClip).toBeCloseTo((700 * s.gpuSeconds) / 3600, 9);
    expect(s.energy.usdPerClip).toBeNull();
    const priced = evaluateScenario(wan14({ kwhPriceUsd: 0.2 }));
    expect(priced.energy.usdPerVideoMinute).toBeCloseTo((priced.energy.whPerVideoMinute / 1000) * 0.2, 12);
  });

  it("states its assumptions with sources", () => {
    const names = s.assumptions.map((a) => a.name);
    expect(names).toEqual(
      expect.arrayContaining(["mfu", "price", "peak", "video minute", "once per clip", "energy"]),
    );
    for (const a of s.assumptions) expect(a.source.length).toBeGreaterThan(0);
  });
});

describe("cost is linear in steps and in price", () => {
  it("network FLOPs scale exactly with steps; USD/min is affine in steps with the once-per-clip part as intercept", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 100 }), (a, b) => {
        const sa = evaluateScenario(wan14({ steps: a }));
        const sb = evaluateScenario(wan14({ steps: b }));
        expect(sb.networkFlops / sa.networkFlops).toBeCloseTo(b / a, 12);
        const onceUsdMin = sa.oncePerClip.usd * sa.clipsPerVideoMinute;
        expect((sb.usdPerVideoMinute - onceUsdMin) / (sa.usdPerVideoMinute - onceUsdMin)).toBeCloseTo(
          b / a,
          9,
        );
      }),
      { numRuns: 30 },
    );
  });

  it("USD is proportional to the price per GPU-hour", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.01, max: 50, noNaN: true }),
        fc.double({ min: 0.01, max: 50, noNaN: true }),
        (p, q) => {
          const sp = evaluateScenario(wan14({ priceUsdPerHour: p }));
          const sq = evaluateScenario(wan14({ priceUsdPerHour: q }));
          expect(sq.usdPerVideoMinute / sp.usdPerVideoMinute).toBeCloseTo(q / p, 9);
          expect(sq.gpuSeconds).toBe(sp.gpuSeconds);
        },
      ),
      { numRuns: 30 },
    );
  });

  it("CFG doubles the network calls", () => {
    const on = evaluateScenario(wan14({ cfg: true }));
    const off = evaluateScenario(wan14({ cfg: false }));
    expect(on.nfe).toBe(2 * off.nfe);
    expect(on.networkFlops).toBe(2 * off.networkFlops);
  });
});

describe("calibration from published run times", () => {
  it("reproduces each published single-GPU time at that GPU's own implied MFU", () => {
    for (const m of MEASUREMENTS) {
      const gpu = getGpu(cat, m.gpu);
      const mfu = impliedMfu(m, gpu).mfu;
      const shape = modelShape(m.model);
      const s = evaluateScenario({
        shape,
        clip: { width: m.width, height: m.height, frames: m.frames },
        fps: shape.defaults.fps,
        steps: m.steps,
        cfg: m.cfg,
        gpu,
        catalog: cat,
        mfu,
        priceUsdPerHour: 1,
      });
      expect(s.gpuSeconds).toBeCloseTo(m.seconds, 6);
      expect(measurementFlops(m).totalFlops).toBe(s.totalFlops);
    }
  });

  it("fits Amdahl's serial fraction exactly on a series that follows it", () => {
    const t1 = 1000;
    const series = {
      id: "t",
      gpu: null,
      interconnect: "pcie" as const,
      workload: "synthetic",
      points: [1, 2, 4, 8].map((n) => ({ gpus: n, seconds: t1 * (0.1 + 0.9 / n) })),
      source: "formula",
      asOf: "n/a",
    };
    expect(fitSerialFraction(series)).toBeCloseTo(0.1, 12);
  });

  it("more GPUs per clip: faster, and each video minute costs more when scaling is imperfect", () => {
    const one = evaluateScenario(wan14());
    const eight = evaluateScenario(wan14({ gpus: 8 }));
    const par = parallelModel(getGpu(cat, "h100-sxm"));
    expect(eight.parallel.speedup).toBeCloseTo(speedup(par, 8), 12);
    expect(eight.wallSeconds).toBeCloseTo(one.wallSeconds / eight.parallel.speedup, 9);
    expect(eight.usdPerVideoMinute / one.usdPerVideoMinute).toBeCloseTo(8 / eight.parallel.speedup, 9);
    expect(eight.usdPerVideoMinute).toBeGreaterThan(one.usdPerVideoMinute);
    expect(par.serialFraction).toBeGreaterThan(0);
  });
});

describe("once-per-clip work", () => {
  it("Wan-VAE decodes 1 + 4(T-1) frames: the first latent frame costs a quarter of the others", () => {
    const vae = modelShape("wan2.1-14b").vae!;
    const one = vaeDecoderFlops(vae, 1, 90, 160);
    const two = vaeDecoderFlops(vae, 2, 90, 160);
    const three = vaeDecoderFlops(vae, 3, 90, 160);
    expect(three - two).toBeCloseTo(two - one, 0);
    expect(two - one).toBeGreaterThan(2 * one);
  });
});

describe("model presets", () => {
  it("framecost's own presets take FLOPs per call from the meter's analytic formula", () => {
    for (const name of ["micro", "tiny", "small"]) {
      const shape = modelShape(name);
      const s = evaluateScenario({
        shape,
        clip: { ...shape.defaults },
        fps: 24,
        steps: 50,
        cfg: false,
        gpu: getGpu(cat, "rtx-4090"),
        catalog: cat,
      });
      expect(s.flopsPerNfe).toBeCloseTo(analyticFlopsPerCall(PRESETS[name]), 3);
      // one frame per call: a clip of F frames is F x steps calls
      expect(s.nfe).toBe(shape.defaults.frames * 50);
    }
  });
  it("unknown model lists the known ones", () => {
    expect(() => modelShape("sora")).toThrow(
      /^unknown model "sora"; known models: wan2\.1-14b, wan2\.1-1\.3b, hunyuanvideo, cogvideox-5b, cogvideox-2b, mochi-1, ltx-video, open-sora-2\.0, dit-s\/2,.* or pass --config FILE \(a diffusers transformer config\.json\)$/,
    );
  });
  it("a size that does not fit VAE stride x patch says what would", () => {
    expect(() => evaluateScenario(wan14({ clip: { width: 1000, height: 720, frames: 81 } }))).toThrow(
      "--width 1000 is not a multiple of 16 (VAE stride 8 x patch 2) for wan2.1-14b; try 992 or 1008",
    );
  });
});

describe("inverse: what would have to change", () => {
  const o = wan14();
  const s = evaluateScenario(o);
  const inv = solveInverse(o, s, 0.01);

  it("its cost function agrees with the scenario at the start", () => {
    expect(minuteCost(o, s, startKnobs(s))).toBeCloseTo(s.usdPerVideoMinute, 9);
  });

  it("each feasible answer, applied alone, costs the target", () => {
    const k0 = startKnobs(s);
    const byLever = Object.fromEntries(inv.alone.map((a) => [a.lever, a]));
    expect(minuteCost(o, s, { ...k0, usdPerHour: byLever.price.required! })).toBeCloseTo(0.01, 9);
    expect(minuteCost(o, s, { ...k0, mfu: byLever.mfu.required! })).toBeCloseTo(0.01, 9);
    expect(minuteCost(o, s, { ...k0, resolutionScale: byLever.resolution.required! })).toBeCloseTo(0.01, 6);
    expect(byLever.mfu.feasible).toBe(false);
    // the text encoder and VAE decoder alone cost more than $0.01 per minute here
    expect(byLever.steps.feasible).toBe(false);
  });

  it("pairs split the gap evenly: each alone is solved for sqrt(target / current)", () => {
    expect(inv.pairs).toHaveLength(10);
    for (const p of inv.pairs) expect(p.ratioEach).toBeCloseTo(Math.sqrt(0.01 / s.usdPerVideoMinute), 12);
    const pricePair = inv.pairs.find((p) => p.levers.join() === "steps,price")!;
    expect(pricePair.combinedUsdPerVideoMinute).toBeCloseTo(0.01, 9);
    expect(pricePair.reaches).toBe(true);
  });
});
