/**
 * The speed levers of generation: feature caching (--cache-interval), int8 (--precision) and batched
 * calls (--batch-calls), on a 4-block micro model with random weights.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tf } from "../src/engine/tf.ts";
import { analyticFlopsPerCall } from "../src/meter/analytic.ts";
import { countOnnxGraph } from "../src/meter/onnx-flops.ts";
import { parseRunRecord, serializeRunRecord } from "../src/meter/record.ts";
import { type ModelConfig, PRESETS, tokensOf } from "../src/model/config.ts";
import { cacheBlocks, VideoDiT } from "../src/model/dit.ts";
import { saveWeights } from "../src/model/io.ts";
import { exportDiTOnnx, OnnxDiT, quantizeColumns } from "../src/model/onnx-export.ts";
import { initParams, paramCount } from "../src/model/params.ts";
import { type GenerationOptions, runGeneration } from "../src/run/generation.ts";
import { Rng } from "../src/util/rng.ts";

const cfg: ModelConfig = { ...PRESETS.micro, name: "micro4", depth: 4 };
const root = mkdtempSync(join(tmpdir(), "framecost-levers-"));
const model = join(root, "model");
const guide = join(root, "guide");
afterAll(() => rmSync(root, { recursive: true, force: true }));
// random weights everywhere: fresh adaLN-Zero weights would make every block the identity
const noisy = (seed: number) => {
  const rng = new Rng(seed);
  return initParams(cfg, 3).map((v) => v + 0.05 * rng.normal());
};
beforeAll(async () => {
  await tf.setBackend("wasm");
  saveWeights(model, cfg, noisy(11));
  saveWeights(guide, cfg, noisy(12));
});

const base: GenerationOptions = {
  modelDir: model,
  sampler: "ddpm",
  steps: 4,
  frames: 2,
  fps: 24,
  seed: 5,
  backend: "wasm",
  convention: "flops",
  calibration: { gemmGflops: 20, backend: "wasm" },
};
const bytes = (f: Float32Array) => Buffer.from(f.buffer, f.byteOffset, f.byteLength);
const sameClips = (a: Float32Array[][], b: Float32Array[][]) => {
  expect(a.length).toBe(b.length);
  a.forEach((c, i) => {
    expect(c.length).toBe(b[i].length);
    c.forEach((f, j) => {
      expect(bytes(f).equals(bytes(b[i][j]))).toBe(true);
    });
  });
};
const maxDiff = (a: Float32Array, b: Float32Array) =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe("feature caching", () => {
  it("skips the middle blocks: [1, depth-1) for 4 blocks, the last of 2, all of 1", () => {
    expect(cacheBlocks(cfg)).toEqual([1, 3]);
    expect(cacheBlocks(PRESETS.micro)).toEqual([1, 2]);
    expect(cacheBlocks({ ...cfg, depth: 1 })).toEqual([0, 1]);
  });

  it("--cache-interval 1 is no caching, bit for bit, and the record says nothing of a cache", async () => {
    for (const backend of ["wasm", "onnx"]) {
      const off = await runGeneration({ ...base, backend });
      const one = await runGeneration({ ...base, backend, cacheInterval: 1 });
      sameClips(off.clips, one.clips);
      expect(one.record.totals.cachedNfe).toBeUndefined();
      expect(one.record.sampler.featureCache).toBeUndefined();
    }
  });

  it("a cached call on the full call's inputs gives the full call's output, on tfjs and onnx", async () => {
    const flat = noisy(11);
    const n = cfg.imageSize * cfg.imageSize * cfg.channels;
    const x = new Rng(2).normals(2 * n);
    const ctx = new Float32Array(2 * cfg.contextFrames * n).fill(0.3);
    const mask = [1, 0, 1, 1];
    const tfm = new VideoDiT(cfg, flat);
    const onnx = await OnnxDiT.create(cfg, flat, { threads: 1 });
    try {
      for (const m of [tfm, onnx]) {
        const full = await m.predictWith(x, [600, 600], ctx, mask, null, { cache: "full" });
        expect(full.deltas[0].length).toBe(2 * tokensOf(cfg) * cfg.width);
        const plain = await m.predict(x, [600, 600], ctx, mask);
        expect(bytes(full.predictions[0]).equals(bytes(plain))).toBe(true);
        const cached = await m.predictWith(x, [600, 600], ctx, mask, null, {
          cache: "cached",
          deltas: full.deltas,
        });
        expect(maxDiff(cached.predictions[0], plain)).toBeLessThan(1e-5);
        // at another noise level the reused residual is stale: the output moves
        const later = await m.predictWith(x, [500, 500], ctx, mask, null, {
          cache: "cached",
          deltas: full.deltas,
        });
        expect(maxDiff(later.predictions[0], await m.predict(x, [500, 500], ctx, mask))).toBeGreaterThan(
          1e-4,
        );
      }
    } finally {
      tfm.dispose();
      await onnx.dispose();
    }
  });

  it("counts the FLOPs that ran: tfjs counted = analytic exactly; cachedNfe per frame as scheduled", async () => {
    const r = await runGeneration({ ...base, cacheInterval: 2 });
    const full = analyticFlopsPerCall(cfg, "flops", 1, "full");
    const cached = analyticFlopsPerCall(cfg, "flops", 1, "cached");
    // 4 calls per frame: full at 0 and 2, cached at 1 and 3
    expect(r.record.frames.map((f) => f.cachedNfe)).toEqual([2, 2]);
    expect(r.record.totals).toMatchObject({ nfe: 8, calls: 8, cachedNfe: 4 });
    expect(r.record.model.flopsPerNfeAnalytic).toBe((full + cached) / 2);
    expect(r.record.model.flopsPerNfe).toBe(r.record.model.flopsPerNfeAnalytic);
    expect(r.record.sampler.featureCache).toEqual({
      kind: "deepcache",
      interval: 2,
      fromBlock: 1,
      toBlock: 3,
      depth: 4,
    });
    expect(cached / analyticFlopsPerCall(cfg)).toBeCloseTo(0.5524, 4); // 2 of 4 blocks skipped
    const rt = parseRunRecord(serializeRunRecord(r.record), "run.json");
    expect(rt.totals.cachedNfe).toBe(4);
    // an interval of 3: full at 0 and 3, cached at 1 and 2
    const r3 = await runGeneration({ ...base, cacheInterval: 3, frames: 1 });
    expect(r3.record.totals.cachedNfe).toBe(2);
  });

  it("the ONNX graphs count what the formula says (the LayerNorm gap of the blocks that run aside)", () => {
    const gap = (blocks: number) => (2 * blocks + 1) * tokensOf(cfg) * cfg.width; // see onnx-flops.test.ts
    const flat = new Float32Array(paramCount(cfg));
    const count = (cache?: "full" | "cached") =>
      countOnnxGraph(exportDiTOnnx(cfg, flat, 1, { cache }).nodes).flops;
    expect(count("full")).toBe(analyticFlopsPerCall(cfg, "flops", 1, "full") - gap(4));
    expect(count("cached")).toBe(analyticFlopsPerCall(cfg, "flops", 1, "cached") - gap(2));
    expect(analyticFlopsPerCall(PRESETS.tiny, "flops", 1, "cached")).toBe(59_163_392);
  });

  it("refuses an interval below 1 with the fix", async () => {
    await expect(runGeneration({ ...base, cacheInterval: 0 })).rejects.toThrow(
      "--cache-interval must be an integer >= 1 (1 = no feature caching), got 0",
    );
  });
});

describe("int8", () => {
  it("quantizes each column to int8 within half its step", () => {
    const w = new Rng(4).normals(48 * 16);
    const { q, scale } = quantizeColumns(w, 48, 16);
    for (let i = 0; i < w.length; i++) {
      expect(Math.abs(q[i])).toBeLessThanOrEqual(127);
      expect(Math.abs(q[i] * scale[i % 16] - w[i])).toBeLessThanOrEqual(scale[i % 16] / 2 + 1e-7);
    }
  });

  it("predicts what fp32 predicts within 2% of the output's scale (pinned), counts integer MACs, says int8", async () => {
    const r32 = await runGeneration({ ...base, backend: "onnx", frames: 1 });
    const r8 = await runGeneration({ ...base, backend: "onnx", frames: 1, precision: "int8" });
    const a = r32.frames[0];
    const b = r8.frames[0];
    const scale = a.reduce((s, v) => s + Math.abs(v), 0) / a.length;
    expect(maxDiff(a, b) / scale).toBeLessThan(0.02);
    expect(maxDiff(a, b)).toBeGreaterThan(0); // it did run in int8
    expect(r8.record.model.precision).toBe("int8");
    expect(r32.record.model.precision).toBe("fp32");
    const mmi = r8.record.kernels.find((k) => k.name === "MatMulInteger");
    const dql = r8.record.kernels.find((k) => k.name === "DynamicQuantizeLinear");
    // per block, 6 dense layers over T rows: 2*T*(4 D^2 + 8 D^2) MACs as FLOPs, + T*(4D + 4D + ... ) zero
    // points, and adaLN on 1 row: 2*6 D^2 + D; once, the final adaLN (2*2 D^2 + D) and the timestep
    // embedding (2*F*D + F, 2*D^2 + D)
    const T = tokensOf(cfg);
    const D = cfg.width;
    const F = cfg.freqDim;
    expect(mmi?.countPerNfe).toBe(7 * cfg.depth + 3);
    expect(mmi?.flopsPerNfe).toBe(
      cfg.depth * (2 * T * 12 * D * D + T * (5 * D + 4 * D) + 2 * 6 * D * D + D) +
        (2 * 2 * D * D + D) +
        (2 * F * D + F) +
        (2 * D * D + D),
    );
    // one quantization per activation: 4 per block (q, k and v share one), t_feat, silu(a1), silu(c)
    expect(dql?.countPerNfe).toBe(4 * cfg.depth + 3);
    expect(dql?.flopsPerNfe).toBe(4 * (cfg.depth * T * (3 * D + 4 * D) + F + 2 * D));
    expect(r8.record.uncounted).toEqual([]);
  });

  it("is refused on tfjs with the fix", async () => {
    await expect(runGeneration({ ...base, precision: "int8" })).rejects.toThrow(
      "--precision int8 runs on onnxruntime only, and this run is on wasm; pass --backend onnx, or --precision fp32",
    );
  });
});

describe("batched calls", () => {
  const guided = { ...base, backend: "onnx", clips: 3, guidance: { guideDir: guide, weight: 2, fromT: 400 } };

  it("the model and its guide in one run, and 3 clips as one batch: the same frames bit for bit", async () => {
    const off = await runGeneration(guided);
    const on = await runGeneration({ ...guided, batchCalls: true });
    sameClips(off.clips, on.clips);
    // ddpm 4 trailing steps call at t = 999, 749, 499, 249: 3 guided calls per frame
    expect(on.record.totals.nfe).toBe(off.record.totals.nfe);
    expect(off.record.totals).toMatchObject({ nfe: 3 * 2 * 7, calls: 3 * 2 * 7, frames: 6 });
    expect(on.record.totals).toMatchObject({
      nfe: 42,
      calls: 2 * 4,
      frames: 6,
      steps: off.record.totals.steps,
    });
    expect(on.record.batching).toEqual({ clipsPerCall: 3, guideInSameCall: true });
    expect(off.record.batching).toBeUndefined();
    expect(on.record.frames.map((f) => [f.index, f.nfe, f.calls, f.batch])).toEqual([
      [0, 7, 4, 3],
      [1, 7, 4, 3],
      [2, 7, 4, 3],
      [3, 7, 4, 3],
      [4, 7, 4, 3],
      [5, 7, 4, 3],
    ]);
    expect(on.record.model.flopsPerNfe).toBeCloseTo(off.record.model.flopsPerNfe, 6);
    // with feature caching too: still the frames of the unbatched cached run
    const offC = await runGeneration({ ...guided, cacheInterval: 2 });
    const onC = await runGeneration({ ...guided, cacheInterval: 2, batchCalls: true });
    sameClips(offC.clips, onC.clips);
    expect(onC.record.totals.cachedNfe).toBe(offC.record.totals.cachedNfe);
  });

  it("clips batch on tfjs too (the guide stays a call of its own there)", async () => {
    const on = await runGeneration({ ...base, clips: 2, frames: 1, batchCalls: true });
    const off = await runGeneration({ ...base, clips: 2, frames: 1 });
    on.clips.forEach((c, i) => {
      expect(maxDiff(c[0], off.clips[i][0])).toBeLessThan(1e-5);
    });
    expect(on.record.batching).toEqual({ clipsPerCall: 2, guideInSameCall: false });
    expect(on.record.totals).toMatchObject({ nfe: 8, calls: 4 });
  });
});
