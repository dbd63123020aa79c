/**
 * The same generation on every engine, measured side by side in one run:
 * tfjs `wasm`, `onnx` with 1 thread and `onnx` with 2 threads. Frames are
 * interleaved (frame i on every engine, in rotating order, before frame i+1),
 * so a change in machine load hits all engines alike.
 *
 * Prints frames/s, GFLOP/s (analytic FLOPs per network call, 1 FLOP = 1 add
 * or 1 multiply) and utilization against each engine's own calibrated GEMM,
 * and the onnx / wasm speed ratios (issue 9's target: onnx at 2 threads >= 3x
 * wasm). One warm-up call per engine is timed apart and left out.
 *
 * Run: npx tsx bench/engines.ts [--preset tiny] [--steps 20] [--frames 4] [--sampler ddim] [--model models/tiny]
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { frameRng } from "../src/diffusion/rng.ts";
import { sampleFrame } from "../src/diffusion/sample.ts";
import { makeSampler } from "../src/diffusion/samplers/index.ts";
import { makeSchedule } from "../src/diffusion/schedule.ts";
import { calibrateGemm } from "../src/engine/calibrate.ts";
import { calibrateOnnxGemm } from "../src/engine/onnx.ts";
import { analyticFlopsPerCall } from "../src/meter/analytic.ts";
import { type ModelConfig, PRESETS } from "../src/model/config.ts";
import { VideoDiT } from "../src/model/dit.ts";
import { loadWeights } from "../src/model/io.ts";
import { OnnxDiT } from "../src/model/onnx-export.ts";
import { initParams } from "../src/model/params.ts";
import { Rng } from "../src/util/rng.ts";

const { values: args } = parseArgs({
  options: {
    preset: { type: "string", default: "tiny" },
    steps: { type: "string", default: "20" },
    frames: { type: "string", default: "4" },
    sampler: { type: "string", default: "ddim" },
    model: { type: "string", default: "models/tiny" },
    seed: { type: "string", default: "1" },
  },
});
const steps = Number(args.steps);
const frameCount = Number(args.frames);
const seed = Number(args.seed);

/** The shipped weights when they fit the preset; otherwise random ones (speed does not depend on the values). */
function weights(): { cfg: ModelConfig; flat: Float32Array; source: string } {
  const preset = PRESETS[args.preset];
  if (!preset) throw new Error(`--preset must be one of ${Object.keys(PRESETS).join(", ")}`);
  if (existsSync(`${args.model}/model.json`)) {
    const w = loadWeights(args.model, preset);
    return { cfg: w.config, flat: w.flat, source: `${args.model} (shipped weights)` };
  }
  const flat = initParams(preset, seed);
  const rng = new Rng(seed + 1);
  for (let i = 0; i < flat.length; i++) flat[i] += 0.02 * rng.normal(); // adaLN-Zero starts at 0
  return {
    cfg: preset,
    flat,
    source: `random weights (no ${args.model}/model.json); speed does not depend on them`,
  };
}

interface Engine {
  name: string;
  predict(x: Float32Array, t: number[], ctx: Float32Array, mask: number[]): Promise<Float32Array>;
  gemmGflops: number;
  gemmNote: string;
  warmupMs: number;
  frameMs: number[];
  nfe: number;
  frames: Float32Array[];
}

const { cfg, flat, source } = weights();
const K = cfg.contextFrames;
const n = cfg.imageSize * cfg.imageSize * cfg.channels;
const flopsPerNfe = analyticFlopsPerCall(cfg, "flops", 1);

console.log(
  `workload: preset ${cfg.name}, batch 1, ${args.sampler} ${steps} steps x ${frameCount} frames, ${source}`,
);
console.log(
  `analytic ${(flopsPerNfe / 1e6).toFixed(1)} MFLOP per network call (1 FLOP = 1 add or 1 multiply)`,
);

type Predict = (x: Float32Array, t: number[], ctx: Float32Array, mask: number[]) => Promise<Float32Array>;
const engine = (name: string, predict: Predict, gemmGflops: number, gemmNote: string): Engine => ({
  name,
  predict,
  gemmGflops,
  gemmNote,
  warmupMs: 0,
  frameMs: [],
  nfe: 0,
  frames: [],
});

const wasmCal = await calibrateGemm({ backend: "wasm" }); // also makes wasm the tfjs backend
const tfModel = new VideoDiT(cfg, flat);
const engines: Engine[] = [
  engine("wasm", (x, t, c, m) => tfModel.predict(x, t, c, m), wasmCal.gflops, `${wasmCal.size}^3 matMul`),
];
for (const threads of [1, 2]) {
  const cal = await calibrateOnnxGemm({ threads });
  const model = await OnnxDiT.create(cfg, flat, { threads });
  const note = `${cal.size}^3 MatMul, ${threads} thread${threads > 1 ? "s" : ""}`;
  engines.push(engine(`onnx ${threads}t`, (x, t, c, m) => model.predict(x, t, c, m), cal.gflops, note));
}

// warm-up: the first call allocates, compiles and packs weights
const rng0 = new Rng(seed);
const x0 = rng0.normals(n);
for (const e of engines) {
  const t0 = performance.now();
  await e.predict(x0, [500], new Float32Array(K * n), new Array(K).fill(0));
  e.warmupMs = performance.now() - t0;
}

const schedule = makeSchedule("cosine", cfg.trainTimesteps);
for (let i = 0; i < frameCount; i++) {
  for (let j = 0; j < engines.length; j++) {
    const e = engines[(i + j) % engines.length]; // rotate who goes first
    const ctx = new Float32Array(K * n);
    const mask: number[] = new Array(K).fill(0);
    for (let k = 0; k < K; k++) {
      const src = e.frames[e.frames.length - K + k];
      if (src) {
        ctx.set(src, k * n);
        mask[k] = 1;
      }
    }
    const sampler = makeSampler(args.sampler, schedule, { predictionType: cfg.prediction });
    const t0 = performance.now();
    const res = await sampleFrame({
      model: (x, t) => e.predict(x, [t], ctx, mask),
      context: null,
      sampler,
      steps,
      shape: n,
      rng: frameRng(seed, i),
    });
    e.frameMs.push(performance.now() - t0);
    e.nfe += res.nfe;
    e.frames.push(res.sample.map((v) => Math.max(-1, Math.min(1, v))));
  }
}

const rows = engines.map((e) => {
  const seconds = e.frameMs.reduce((a, b) => a + b, 0) / 1000;
  const gflops = (e.nfe * flopsPerNfe) / seconds / 1e9;
  return { e, seconds, fps: e.frames.length / seconds, gflops, util: gflops / e.gemmGflops };
});
const pad = (s: string, w: number) => s.padStart(w);
console.log(
  `\n${"engine".padEnd(8)} ${pad("frames", 6)} ${pad("NFEs", 5)} ${pad("wall s", 8)} ${pad("frames/s", 9)} ` +
    `${pad("GFLOP/s", 8)} ${pad("GEMM GFLOP/s", 13)} ${pad("util", 6)}  warm-up ms`,
);
for (const r of rows) {
  console.log(
    `${r.e.name.padEnd(8)} ${pad(String(r.e.frames.length), 6)} ${pad(String(r.e.nfe), 5)} ` +
      `${pad(r.seconds.toFixed(2), 8)} ${pad(r.fps.toFixed(3), 9)} ${pad(r.gflops.toFixed(2), 8)} ` +
      `${pad(r.e.gemmGflops.toFixed(1), 13)} ${pad(`${(100 * r.util).toFixed(0)}%`, 6)}  ` +
      `${r.e.warmupMs.toFixed(0)} (GEMM: ${r.e.gemmNote})`,
  );
}
const wasm = rows[0];
for (const r of rows.slice(1)) {
  console.log(`${r.e.name} / wasm frames/s: ${(r.fps / wasm.fps).toFixed(2)}x`);
}
const two = rows.find((r) => r.e.name === "onnx 2t");
if (two) {
  const ratio = two.fps / wasm.fps;
  console.log(`target onnx 2t >= 3x wasm: ${ratio >= 3 ? "met" : "NOT met"} (${ratio.toFixed(2)}x)`);
}
// same weights, same seeds: the engines should draw the same frames
for (const r of rows.slice(1)) {
  let d = 0;
  for (let i = 0; i < r.e.frames.length; i++) {
    const a = wasm.e.frames[i];
    const b = r.e.frames[i];
    for (let j = 0; j < a.length; j++) d = Math.max(d, Math.abs(a[j] - b[j]));
  }
  console.log(
    `max |frame difference| ${r.e.name} vs wasm over ${r.e.frames.length} frames: ${d.toExponential(2)}`,
  );
}
