/**
 * Training-step speed of one worker on each engine: achieved GFLOP/s of its
 * forward + backward (analytic FLOPs: backward = 2 x forward) over the GEMM
 * peak of the same engine, calibrated in the same run, and the onnx step's
 * speed over the wasm step's, measured side by side (reps interleaved).
 * Run: npx tsx bench/train-step.ts [preset] [batch]
 */
import { makeSchedule } from "../src/diffusion/schedule.ts";
import { makeTrainBatch } from "../src/diffusion/train-batch.ts";
import { lossAndGrads } from "../src/diffusion/train-grads.ts";
import { OnnxTrainStep } from "../src/diffusion/train-onnx.ts";
import { initBackend } from "../src/engine/backend.ts";
import { calibrateGemm } from "../src/engine/calibrate.ts";
import { calibrateOnnxGemm } from "../src/engine/onnx.ts";
import { tf } from "../src/engine/tf.ts";
import { analyticFlopsPerCall } from "../src/meter/analytic.ts";
import { PRESETS } from "../src/model/config.ts";
import { positionTensor } from "../src/model/dit.ts";
import { initParams, paramCount } from "../src/model/params.ts";
import { Rng } from "../src/util/rng.ts";

const preset = process.argv[2] ?? "tiny";
const batch = Number(process.argv[3] ?? 32);
const reps = 5;
const cfg = PRESETS[preset];
const backend = await initBackend("wasm");
tf.env().set("CHECK_COMPUTATION_FOR_ERRORS", false);
// non-zero weights everywhere so no branch of the graph is trivially zero
const rng = new Rng(1);
const flat = initParams(cfg, 1).map((v) => v + 0.02 * rng.normal());
const pos = positionTensor(cfg);
const grads = new Float32Array(paramCount(cfg));
const data = makeTrainBatch(cfg, makeSchedule("cosine"), batch, 1, 1e9);
const flopsPerStep = 3 * analyticFlopsPerCall(cfg, "flops", batch);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// the native engine as a training worker runs it: one intra-op thread
const onnx = new OnnxTrainStep(cfg, 1);
const onnxGrads = new Float32Array(paramCount(cfg));
lossAndGrads(cfg, flat, data, pos, grads); // warm-up: compile, allocate
await onnx.run(flat, data, onnxGrads); // warm-up: build and load the graph
const stepMs: number[] = [];
const gemm: number[] = [];
const onnxMs: number[] = [];
const onnxGemm: number[] = [];
// interleave calibration and steps so all see the same machine load
for (let i = 0; i < reps; i++) {
  gemm.push((await calibrateGemm({ runs: 5 })).gflops);
  const t0 = performance.now();
  lossAndGrads(cfg, flat, data, pos, grads);
  stepMs.push(performance.now() - t0);
  onnxGemm.push((await calibrateOnnxGemm({ threads: 1, runs: 5 })).gflops);
  const t1 = performance.now();
  await onnx.run(flat, data, onnxGrads);
  onnxMs.push(performance.now() - t1);
}
await onnx.dispose();
const ms = median(stepMs);
const peak = median(gemm);
const achieved = flopsPerStep / (ms * 1e6);
const oMs = median(onnxMs);
const oPeak = median(onnxGemm);
const oAchieved = flopsPerStep / (oMs * 1e6);
console.log(
  `train-step bench: preset ${preset}, batch ${batch} per worker, ${reps} interleaved reps (medians)`,
);
console.log(
  `  analytic FLOPs per step   ${(flopsPerStep / 1e9).toFixed(2)} GFLOP (forward x 3; 1 multiply-add = 2 FLOPs)`,
);
const all = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");
console.log(`  ${backend.name} (tfjs)`);
console.log(`    step wall               ${ms.toFixed(0)} ms  (all: ${all(stepMs)})`);
console.log(`    achieved                ${achieved.toFixed(2)} GFLOP/s`);
console.log(`    calibrated GEMM peak    ${peak.toFixed(2)} GFLOP/s (512x512 matMul)`);
console.log(`    ratio                   ${(achieved / peak).toFixed(2)}x of peak (target >= 0.6)`);
console.log("  onnx (onnxruntime-node, 1 thread, the graph of src/diffusion/train-onnx.ts)");
console.log(`    step wall               ${oMs.toFixed(0)} ms  (all: ${all(onnxMs)})`);
console.log(`    achieved                ${oAchieved.toFixed(2)} GFLOP/s`);
console.log(`    calibrated GEMM peak    ${oPeak.toFixed(2)} GFLOP/s (512x512 MatMul, 1 thread)`);
console.log(`    ratio                   ${(oAchieved / oPeak).toFixed(2)}x of peak`);
console.log(`  onnx step over ${backend.name} step: ${(ms / oMs).toFixed(2)}x faster`);
