/**
 * The speed levers of `generate` on the shipped model, side by side in one run: int8 against fp32
 * (`--precision`), feature caching (`--cache-interval 2, 3`) and batched calls (`--batch-calls`: the
 * model and its guide in one onnx session run; several clips as one batch), each against the fp32
 * baseline (every call in full, one call per network and clip).
 *
 * 1. Network calls: one guided first-frame call of every kind, alternating call by call in rotating
 *    order, `--calls` rounds: median ms per call and ratios.
 * 2. Generations: the whole metered loop (`runGeneration`, ddpm 20 steps, guided), arms interleaved
 *    repetition by repetition so a change in machine load hits every arm alike: median wall per frame,
 *    ratios, FLOPs and NFEs per frame as metered.
 * 2b. int8 against fp32 by configuration: intra-op threads 1 and 2, one call at batch 1 and 4 (64 and 256
 *    token rows per GEMM), whole generations of one clip and of `--clips` clips batched; each pair
 *    alternating (calls) or interleaved (generations) in its own sessions, so every ratio is side by side.
 * 3. Quality on the model-card protocol (src/run/evaluate.ts DEFAULT_EVALUATION, on onnx) for the
 *    baseline, int8, cache 2 and cache 3; batched calls are checked to draw the same frames bit for bit.
 *
 * Run: npx tsx bench/speed-levers.ts [--model models/tiny] [--calls 300] [--reps 5] [--frames 4]
 *      [--clips 4] [--threads 2] [--quality on|off] [--json FILE]
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { tokensOf } from "../src/model/config.ts";
import { loadWeights } from "../src/model/io.ts";
import { type OnnxCall, OnnxDiT } from "../src/model/onnx-export.ts";
import { DEFAULT_EVALUATION, type Evaluation, evaluateModel } from "../src/run/evaluate.ts";
import {
  type GenerationOptions,
  type LoadedNetwork,
  loadNetwork,
  runGeneration,
} from "../src/run/generation.ts";
import { Rng } from "../src/util/rng.ts";

const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: "models/tiny" },
    calls: { type: "string", default: "300" },
    reps: { type: "string", default: "5" },
    frames: { type: "string", default: "4" },
    clips: { type: "string", default: "4" },
    threads: { type: "string", default: "2" },
    quality: { type: "string", default: "on" },
    json: { type: "string" },
  },
});
const threads = Number(args.threads);
const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const out: Record<string, unknown> = { threads, cpu: (await import("node:os")).cpus()[0]?.model };

// ---- 1. network calls ---------------------------------------------------------------------------
{
  const w = loadWeights(args.model);
  const g = loadWeights(`${args.model}/guide`);
  const cfg = w.config;
  const n = cfg.imageSize * cfg.imageSize * cfg.channels;
  const fp32 = await OnnxDiT.create(cfg, w.flat, { threads, guide: g.flat });
  const int8 = await OnnxDiT.create(cfg, w.flat, { threads, precision: "int8", guide: g.flat });
  // the int8 graph before the timestep and adaLN layers were quantized too
  const int8Blocks = await OnnxDiT.create(cfg, w.flat, { threads, precision: "int8", int8Layers: ["token"] });
  const guide = await OnnxDiT.create(cfg, g.flat, { threads });
  const x = new Rng(7).normals(n);
  const ctx = new Float32Array(cfg.contextFrames * n);
  const mask = new Array(cfg.contextFrames).fill(0);
  const one = (m: OnnxDiT, call: OnnxCall) => () => m.predictWith(x, [700], ctx, mask, null, call);
  const { deltas } = await fp32.predictWith(x, [700], ctx, mask, null, { cache: "full" });
  const { deltas: pairDeltas } = await fp32.predictWith(x, [700], ctx, mask, null, {
    cache: "full",
    pair: true,
  });
  const arms: Array<{ name: string; nfe: number; run: () => Promise<unknown> }> = [
    { name: "fp32", nfe: 1, run: one(fp32, {}) },
    { name: "int8", nfe: 1, run: one(int8, {}) },
    { name: "int8 blocks only", nfe: 1, run: one(int8Blocks, {}) },
    { name: "fp32 cached", nfe: 1, run: one(fp32, { cache: "cached", deltas }) },
    { name: "int8 cached", nfe: 1, run: one(int8, { cache: "cached", deltas }) },
    {
      name: "model, guide: 2 runs",
      nfe: 2,
      run: async () => {
        await one(fp32, {})();
        await one(guide, {})();
      },
    },
    { name: "model + guide: 1 run", nfe: 2, run: one(fp32, { pair: true }) },
    {
      name: "model + guide cached",
      nfe: 2,
      run: one(fp32, { pair: true, cache: "cached", deltas: pairDeltas }),
    },
  ];
  const ms = arms.map(() => [] as number[]);
  for (const a of arms) for (let i = 0; i < 20; i++) await a.run(); // warm-up
  const rounds = Number(args.calls);
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < arms.length; j++) {
      const k = (r + j) % arms.length;
      const t0 = performance.now();
      await arms[k].run();
      ms[k].push(performance.now() - t0);
    }
  }
  // same inputs: int8 against fp32
  const [a] = (await one(fp32, {})()).predictions;
  const [b] = (await one(int8, {})()).predictions;
  let maxDiff = 0;
  let meanAbs = 0;
  for (let i = 0; i < a.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    meanAbs += Math.abs(a[i]) / a.length;
  }
  console.log(
    `1. network calls (${cfg.name}, batch 1, ${threads} threads, ${rounds} rounds interleaved; median ms)`,
  );
  const base = median(ms[0]);
  const rows = arms.map((arm, k) => ({ arm: arm.name, nfe: arm.nfe, msPerCall: median(ms[k]) }));
  for (const r of rows) {
    console.log(
      `  ${r.arm.padEnd(22)} ${r.msPerCall.toFixed(3).padStart(8)} ms  ${(r.msPerCall / r.nfe).toFixed(3).padStart(8)} ms/NFE  speed x${((base * r.nfe) / r.msPerCall).toFixed(2)} per NFE vs fp32`,
    );
  }
  const row = (name: string) => rows.find((r) => r.arm === name) as (typeof rows)[number];
  const pairRatio = row("model, guide: 2 runs").msPerCall / row("model + guide: 1 run").msPerCall;
  console.log(
    `  int8 / fp32 speed: ${(base / row("int8").msPerCall).toFixed(2)}x (blocks only: ${(base / row("int8 blocks only").msPerCall).toFixed(2)}x); model + guide in one run: ${pairRatio.toFixed(2)}x two runs`,
  );
  console.log(
    `  int8 vs fp32 prediction, same inputs: max |diff| ${maxDiff.toFixed(4)} (mean |y| ${meanAbs.toFixed(4)})`,
  );
  out.calls = { rounds, rows, int8MaxDiff: maxDiff, meanAbsPrediction: meanAbs };
  await Promise.all([fp32.dispose(), int8.dispose(), int8Blocks.dispose(), guide.dispose()]);
}

// ---- 2. generations -----------------------------------------------------------------------------
const base: GenerationOptions = {
  modelDir: args.model,
  sampler: "ddpm",
  steps: 20,
  frames: Number(args.frames),
  fps: 24,
  seed: 3,
  backend: "onnx",
  threads,
  convention: "flops",
};
const loadedFp32 = await loadNetwork({ ...base, batchCalls: true });
const loadedInt8 = await loadNetwork({
  ...base,
  precision: "int8",
  batchCalls: true,
  calibration: loadedFp32.backend.calibration,
});
const clips = Number(args.clips);
const arms: Array<{ name: string; o: Partial<GenerationOptions>; l: LoadedNetwork }> = [
  { name: "fp32 (baseline)", o: {}, l: loadedFp32 },
  { name: "int8", o: { precision: "int8" }, l: loadedInt8 },
  { name: "cache 2", o: { cacheInterval: 2 }, l: loadedFp32 },
  { name: "cache 3", o: { cacheInterval: 3 }, l: loadedFp32 },
  { name: "batched (guide)", o: { batchCalls: true }, l: loadedFp32 },
  {
    name: "int8 + cache 2 + batched",
    o: { precision: "int8", cacheInterval: 2, batchCalls: true },
    l: loadedInt8,
  },
  { name: `${clips} clips`, o: { clips }, l: loadedFp32 },
  { name: `${clips} clips batched`, o: { clips, batchCalls: true }, l: loadedFp32 },
];
const frameMs = arms.map(() => [] as number[]);
const records: Array<Awaited<ReturnType<typeof runGeneration>>> = [];
const reps = Number(args.reps);
for (let r = 0; r < reps + 1; r++) {
  for (let j = 0; j < arms.length; j++) {
    const k = (r + j) % arms.length;
    const res = await runGeneration(
      { ...base, ...arms[k].o, calibration: loadedFp32.backend.calibration },
      arms[k].l,
    );
    if (r === 0)
      records[k] = res; // the first repetition warms up and is left out of the timing
    else frameMs[k].push(res.record.totals.wallMs / res.record.totals.frames);
  }
}
const sameFrames = (a: Float32Array[][], b: Float32Array[][]) =>
  a.length === b.length &&
  a.every((c, i) =>
    c.every((f, j) =>
      Buffer.from(f.buffer, f.byteOffset, f.byteLength).equals(
        Buffer.from(b[i][j].buffer, b[i][j].byteOffset, b[i][j].byteLength),
      ),
    ),
  );
console.log(
  `\n2. generations (ddpm 20 steps, guided, ${args.frames} frames per clip; ${reps} repetitions interleaved; median wall per frame)`,
);
const baseMs = median(frameMs[0]);
const genRows = arms.map((a, k) => {
  const rec = records[k].record;
  const t = rec.totals;
  return {
    arm: a.name,
    msPerFrame: median(frameMs[k]),
    speed: baseMs / median(frameMs[k]),
    nfePerFrame: t.nfe / t.frames,
    callsPerFrame: t.calls / t.frames,
    cachedNfePerFrame: (t.cachedNfe ?? 0) / t.frames,
    gflopsPerFrame: t.flops / t.frames / 1e9,
  };
});
for (const r of genRows) {
  console.log(
    `  ${r.arm.padEnd(26)} ${r.msPerFrame.toFixed(1).padStart(7)} ms/frame  x${r.speed.toFixed(2)}  ` +
      `${r.nfePerFrame.toFixed(1)} NFEs (${r.cachedNfePerFrame.toFixed(1)} cached), ${r.callsPerFrame.toFixed(1)} calls, ${r.gflopsPerFrame.toFixed(3)} GFLOP per frame`,
  );
}
const batchedSame = sameFrames(records[0].clips, records[4].clips);
const clipsSame = sameFrames(records[6].clips, records[7].clips);
console.log(
  `  batched frames equal unbatched bit for bit: guide ${batchedSame}, ${clips} clips ${clipsSame}`,
);
out.generations = { reps, rows: genRows, batchedSame, clipsSame };

// ---- 2b. int8 against fp32 by configuration ----------------------------------------------------------
{
  const w = loadWeights(args.model);
  const cfg = w.config;
  const n = cfg.imageSize * cfg.imageSize * cfg.channels;
  const rng = new Rng(9);
  console.log(
    `\n2b. int8 against fp32 by configuration (calls: alternating, host work included; generations: ddpm 20 guided, model + guide in one run, ${args.frames} frames per clip, median of ${reps} interleaved)`,
  );
  const configs: Array<Record<string, unknown>> = [];
  for (const t of [1, 2]) {
    for (const batch of [1, clips]) {
      const arms = await Promise.all(
        (["fp32", "int8"] as const).map((precision) =>
          OnnxDiT.create(cfg, w.flat, { threads: t, precision, batches: [batch] }),
        ),
      );
      const x = rng.normals(batch * n);
      const ctx = new Float32Array(batch * cfg.contextFrames * n);
      const mask = new Array(batch * cfg.contextFrames).fill(0);
      const ts = new Array(batch).fill(700);
      const ms = arms.map(() => [] as number[]);
      const rounds = Math.max(20, Math.round(Number(args.calls) / batch));
      for (let r = 0; r < rounds + 20; r++) {
        for (let j = 0; j < 2; j++) {
          const k = (r + j) % 2;
          const t0 = performance.now();
          await arms[k].predict(x, ts, ctx, mask);
          if (r >= 20) ms[k].push(performance.now() - t0);
        }
      }
      const [a, b] = ms.map(median);
      configs.push({ threads: t, kind: "call", batch, fp32Ms: a, int8Ms: b, speed: a / b });
      console.log(
        `  ${t} thread${t > 1 ? "s" : " "}, one call, batch ${batch} (${batch * tokensOf(cfg)} rows)`.padEnd(
          44,
        ) +
          `fp32 ${a.toFixed(3).padStart(7)} ms  int8 ${b.toFixed(3).padStart(7)} ms  int8 x${(a / b).toFixed(2)}`,
      );
      await Promise.all(arms.map((m) => m.dispose()));
    }
    const opts = { ...base, threads: t, batchCalls: true };
    const l32 = await loadNetwork(opts);
    const l8 = await loadNetwork({ ...opts, precision: "int8", calibration: l32.backend.calibration });
    for (const c of [1, clips]) {
      const pair = [
        { o: { ...opts, clips: c, calibration: l32.backend.calibration }, l: l32 },
        { o: { ...opts, clips: c, precision: "int8" as const, calibration: l32.backend.calibration }, l: l8 },
      ];
      const ms = [[], []] as number[][];
      for (let r = 0; r < reps + 1; r++) {
        for (let j = 0; j < 2; j++) {
          const k = (r + j) % 2;
          const res = await runGeneration(pair[k].o, pair[k].l);
          if (r > 0) ms[k].push(res.record.totals.wallMs / res.record.totals.frames);
        }
      }
      const [a, b] = ms.map(median);
      configs.push({
        threads: t,
        kind: "generation",
        clips: c,
        batchCalls: true,
        fp32MsPerFrame: a,
        int8MsPerFrame: b,
        speed: a / b,
      });
      console.log(
        `  ${t} thread${t > 1 ? "s" : " "}, generation, ${c > 1 ? `${c} clips batched` : "1 clip"}`.padEnd(
          44,
        ) +
          `fp32 ${a.toFixed(1).padStart(7)} ms/frame  int8 ${b.toFixed(1).padStart(7)} ms/frame  int8 x${(a / b).toFixed(2)}`,
      );
    }
    for (const l of [l32, l8]) {
      l.net.dispose();
      l.guide?.net.dispose();
    }
  }
  out.int8ByConfiguration = configs;
}

// ---- 3. quality ---------------------------------------------------------------------------------
if (args.quality === "on") {
  const q = (e: Evaluation) => ({
    compactness: e.firstFrame.shapes.generated.compactness,
    specksPerFrame: e.firstFrame.shapes.generated.specksPerFrame,
    emptyShare: e.firstFrame.shapes.generated.emptyShare,
    swdPixels: e.firstFrame.generated.swdPixels,
    paletteError: e.firstFrame.generated.paletteError,
    lastOverFirst: e.longClip.lastOverFirst,
    motion: e.longClip.motionGenerated,
  });
  const levels: Array<[string, NonNullable<Parameters<typeof evaluateModel>[1]>["levers"]]> = [
    ["fp32 (baseline)", {}],
    ["int8", { precision: "int8" }],
    ["cache 2", { cacheInterval: 2 }],
    ["cache 3", { cacheInterval: 3 }],
  ];
  const rows: Array<{ arm: string } & ReturnType<typeof q>> = [];
  console.log(
    `\n3. quality, model-card protocol (${DEFAULT_EVALUATION.clips} clips, ${DEFAULT_EVALUATION.sampler} ${DEFAULT_EVALUATION.steps} steps, guided; on onnx)`,
  );
  console.log(
    "  arm               compactness  specks/frame  empty  SWD pixels  palette  frame16/frame1  motion",
  );
  for (const [name, levers] of levels) {
    const e = await evaluateModel(args.model, {
      ...DEFAULT_EVALUATION,
      backend: "onnx",
      levers: { ...levers, batchCalls: true },
    });
    const r = { arm: name, ...q(e) };
    rows.push(r);
    const rel = (k: "compactness" | "swdPixels") =>
      rows[0] === r ? "" : ` (${(100 * (r[k] / rows[0][k] - 1)).toFixed(1)}%)`;
    console.log(
      `  ${name.padEnd(17)} ${r.compactness.toFixed(3)}${rel("compactness").padEnd(9)} ${r.specksPerFrame.toFixed(2).padStart(6)}  ${(100 * r.emptyShare).toFixed(0).padStart(5)}%  ` +
        `${r.swdPixels.toFixed(3)}${rel("swdPixels").padEnd(9)} ${r.paletteError.toFixed(3)}  ${r.lastOverFirst.toFixed(2).padStart(6)}x  ${r.motion.toFixed(4)}`,
    );
  }
  out.quality = { protocol: { ...DEFAULT_EVALUATION, backend: "onnx" }, rows };
}
if (args.json) writeFileSync(args.json, `${JSON.stringify(out, null, 2)}\n`);
for (const l of [loadedFp32, loadedInt8]) {
  l.net.dispose();
  l.guide?.net.dispose();
}
