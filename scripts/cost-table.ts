/**
 * Prints docs/cost.md's tables of the config-built presets (`npx tsx
 * scripts/cost-table.ts`): each preset's predicted time on an H100 at its
 * native setting, and every published run time on record (REPORTED_RUNS)
 * next to framecost's prediction for the same setting, GPU and GPU count.
 * Utilization is the catalog's default per GPU (one per GPU, calibrated from
 * published runs: framecost gpus), never fitted per model.
 */
import { defaultMfu } from "../src/cost/calibration.ts";
import { getGpu, shippedCatalog } from "../src/cost/catalog.ts";
import { CONFIG_PRESETS, modelShape } from "../src/cost/models.ts";
import { MEASUREMENTS, REPORTED_RUNS } from "../src/cost/published.ts";
import { evaluateScenario } from "../src/cost/scenarios.ts";

const cat = shippedCatalog();

function seconds(x: number): string {
  if (x >= 100) return Math.round(x).toLocaleString("en-US");
  return String(Number(x.toPrecision(3)));
}

function sci(x: number): string {
  return x.toExponential(2).replace("e+", "e");
}

function predict(o: {
  model: string;
  width: number;
  height: number;
  frames: number;
  steps: number;
  cfg: boolean;
  gpu: string;
  gpus: number;
}) {
  const shape = modelShape(o.model);
  return evaluateScenario({
    shape,
    clip: { width: o.width, height: o.height, frames: o.frames },
    fps: shape.defaults.fps,
    steps: o.steps,
    cfg: o.cfg,
    gpu: getGpu(cat, o.gpu),
    catalog: cat,
    gpus: o.gpus,
    // time only: the price does not enter it (and some GPUs have none on record)
    priceUsdPerHour: 0,
  });
}

const h100 = getGpu(cat, "h100-sxm");
const lines: string[] = [];
lines.push(
  `Predicted at each preset's native setting on one H100 SXM at the catalog's default MFU ${defaultMfu(cat, h100).value.toFixed(3)} (${defaultMfu(cat, h100).summary}):`,
  "",
  "| preset | shape (from its config) | native setting | tokens per call | FLOPs per call | NFEs | predicted H100 time |",
  "| --- | --- | --- | ---: | ---: | ---: | ---: |",
);
for (const p of CONFIG_PRESETS) {
  const s = modelShape(p.id);
  const d = s.defaults;
  const sc = predict({ model: p.id, ...d, gpu: "h100-sxm", gpus: 1 });
  lines.push(
    `| ${p.id} | ${s.depth} blocks x ${s.width}, FFN ${s.ffn}${s.gatedFfn ? " gated" : ""}, patch ${s.patch.join("x")}, VAE ${s.vaeStride.join("x")} | ${d.width}x${d.height}, ${d.frames} frames at ${d.fps} fps, ${d.steps} steps${d.cfg ? ` + guidance (${sc.nfePerStep} calls)` : ""} | ${sc.clip.tokensPerNfe.toLocaleString("en-US")} + ${sc.clip.textTokens} text | ${sci(sc.flopsPerNfe)} | ${sc.nfe} | ${seconds(sc.wallSeconds)} s |`,
  );
}

const mfuOf = new Map<string, number>();
lines.push(
  "",
  "Every published run time found, next to the prediction for the same setting, GPU and GPU count (ratio = predicted / published; below 1: framecost predicts faster than measured):",
  "",
  "| preset | setting | GPU (as published) | GPUs | published | predicted | ratio | MFU input? | source |",
  "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
);
const ratios: number[] = [];
for (const r of REPORTED_RUNS) {
  const sc = predict(r);
  mfuOf.set(r.gpu, sc.mfu.value);
  const ratio = sc.wallSeconds / r.seconds;
  const calibration = MEASUREMENTS.some(
    (m) => m.model === r.model && m.gpu === r.gpu && m.seconds === r.seconds && r.gpus === 1,
  );
  if (!calibration && !r.upperBound) ratios.push(ratio);
  lines.push(
    `| ${r.model} | ${r.width}x${r.height}, ${r.frames} frames, ${r.steps} steps${r.cfg ? " + guidance" : ""} | ${r.gpuAsPublished} -> ${r.gpu} | ${r.gpus} | ${r.upperBound ? "<= " : ""}${seconds(r.seconds)} s | ${seconds(sc.wallSeconds)} s | ${r.upperBound ? ">= " : ""}${ratio.toFixed(2)} | ${calibration ? "yes" : "no"} | ${r.source}${r.note ? `; ${r.note}` : ""} |`,
  );
}
const logs = ratios.map(Math.log);
const geo = Math.exp(logs.reduce((a, b) => a + b, 0) / logs.length);
lines.push(
  "",
  `MFU per GPU (catalog defaults, the same for every model): ${[...mfuOf].map(([g, v]) => `${g} ${v.toFixed(3)}`).join(", ")}.`,
  `Over the ${ratios.length} rows that are neither MFU inputs nor upper bounds: ratio from ${Math.min(...ratios).toFixed(2)} to ${Math.max(...ratios).toFixed(2)}, geometric mean ${geo.toFixed(2)}.`,
);
process.stdout.write(`${lines.join("\n")}\n`);
