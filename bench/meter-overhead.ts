/**
 * What metering costs: the same generation (random-weight DiT, DDIM, frames
 * conditioned on the previous ones) run metered and unmetered, interleaved,
 * in one process. By default the arms interleave frame by frame: every frame
 * is computed twice from the same history, once through the meter and once
 * bare (the order flips every frame), so a change in the machine's load
 * falls on both arms within a fraction of a second; the two arms' frames are
 * checked to be identical. `--interleave generation` alternates whole
 * generations ABBA instead. Each pair gets a fresh Meter, so the metered arm
 * pays the one-time kernel counting as a real run does. Prints the wall-time
 * ratio metered / unmetered (must be at most 1.01), the CPU-time ratio, and
 * an estimate from the per-call costs measured directly.
 *
 * Run: npx tsx bench/meter-overhead.ts [--preset micro|tiny|small] [--steps 20] [--frames 8] [--pairs 8]
 *        [--counter tap|profile|none] [--interleave frame|generation] [--control]
 * --control runs both arms unmetered (A/A): the spread it shows is this
 * machine's noise floor; --counter none meters without counting kernels.
 */
import os from "node:os";
import { parseArgs } from "node:util";
import { sampleFrame } from "../src/diffusion/sample.ts";
import { makeSampler } from "../src/diffusion/samplers/index.ts";
import { makeSchedule } from "../src/diffusion/schedule.ts";
import { tf } from "../src/engine/tf.ts";
import { analyticFlopsPerCall } from "../src/meter/analytic.ts";
import {
  type KernelCounter,
  Meter,
  quantile,
  tfjsKernelCounter,
  tfjsProfileCounter,
} from "../src/meter/meter.ts";
import { PRESETS } from "../src/model/config.ts";
import { VideoDiT } from "../src/model/dit.ts";
import { initParams } from "../src/model/params.ts";
import { Rng } from "../src/util/rng.ts";

const { values } = parseArgs({
  options: {
    preset: { type: "string", default: "micro" },
    steps: { type: "string", default: "20" },
    frames: { type: "string", default: "8" },
    pairs: { type: "string", default: "8" },
    // "none" runs the counted call without counting: isolates what counting itself costs
    counter: { type: "string", default: "tap" },
    // both arms unmetered (an A/A run): the noise floor of this machine's timings
    control: { type: "boolean", default: false },
    interleave: { type: "string", default: "frame" },
  },
});
if (values.interleave !== "frame" && values.interleave !== "generation")
  throw new Error(`unknown --interleave ${values.interleave}; use frame or generation`);
const cfg = PRESETS[values.preset];
if (!cfg) throw new Error(`unknown preset ${values.preset}; use one of ${Object.keys(PRESETS).join(", ")}`);
const steps = Number(values.steps);
const frames = Number(values.frames);
const pairs = Number(values.pairs);
const counters: Record<string, KernelCounter> = {
  tap: tfjsKernelCounter,
  profile: tfjsProfileCounter,
  none: async (call) => ({ result: await call(), kernels: [] }),
};
const countKernels = counters[values.counter];
if (!countKernels) throw new Error(`unknown --counter ${values.counter}; use tap, profile or none`);

await tf.setBackend("wasm");
await tf.ready();

const model = new VideoDiT(cfg, initParams(cfg, 1));
const K = cfg.contextFrames;
const frameSize = cfg.imageSize * cfg.imageSize * cfg.channels;
interface Ctx {
  frames: Float32Array;
  mask: Float32Array;
}
const net = (x: Float32Array, t: number, ctx: Ctx) =>
  model.predict(x, [t], K > 0 ? ctx.frames : null, ctx.mask);
const sampler = makeSampler("ddim", makeSchedule("cosine"), { predictionType: cfg.prediction });

interface Timing {
  wallMs: number;
  /** CPU time of this process (user + system): less disturbed than wall time by other processes' load */
  cpuMs: number;
}

/** The context of frame f: the last K frames of the history (slot K-1 = the most recent), missing slots masked. */
function contextOf(history: Float32Array[]): Ctx {
  const ctx: Ctx = { frames: new Float32Array(K * frameSize), mask: new Float32Array(K) };
  for (let k = 0; k < K; k++) {
    const src = history[history.length - K + k];
    if (src) {
      ctx.frames.set(src, k * frameSize);
      ctx.mask[k] = 1;
    }
  }
  return ctx;
}

/** Frame f from its context, through `model`; with a meter, as a metered frame. */
async function drawFrame(model: typeof net, meter: Meter | null, f: number, ctx: Ctx) {
  meter?.beginFrame(f);
  const r = await sampleFrame({
    model,
    context: ctx,
    sampler,
    steps,
    shape: frameSize,
    rng: new Rng(1000 + f),
    onStep: meter?.stepHook(),
  });
  meter?.addSamplerFlops(r.samplerFlops);
  meter?.endFrame();
  return r;
}

/** One video: `frames` frames, each conditioned on the last K. */
async function generate(meter: Meter | null): Promise<void> {
  const model = meter ? meter.wrap(net) : net;
  const history: Float32Array[] = [];
  for (let f = 0; f < frames; f++)
    history.push((await drawFrame(model, meter, f, contextOf(history))).sample);
}

/** a full collection before each timed piece, when node exposes one: the arms then start from the same heap */
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

/** Time and CPU of one call of f. */
async function timed<T>(f: () => Promise<T>): Promise<{ value: T; timing: Timing }> {
  gc();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const value = await f();
  const c = process.cpuUsage(c0);
  return { value, timing: { wallMs: performance.now() - t0, cpuMs: (c.user + c.system) / 1000 } };
}

/**
 * One video computed by both arms frame by frame: each frame once metered and once bare from the same history
 * (metered first on even frames). Returns each arm's summed timings and whether the two arms' frames matched.
 */
async function generateInterleaved(
  meter: Meter | null,
): Promise<{ plain: Timing; metered: Timing; same: boolean }> {
  const meteredNet = meter ? meter.wrap(net) : net;
  const history: Float32Array[] = [];
  const plainT: Timing = { wallMs: 0, cpuMs: 0 };
  const meteredT: Timing = { wallMs: 0, cpuMs: 0 };
  let same = true;
  for (let f = 0; f < frames; f++) {
    const ctx = contextOf(history);
    const bare = () => drawFrame(net, null, f, ctx);
    const withMeter = () => drawFrame(meteredNet, meter, f, ctx);
    const order = f % 2 === 0 ? [withMeter, bare] : [bare, withMeter];
    const a = await timed(order[0]);
    const b = await timed(order[1]);
    const [m, p] = f % 2 === 0 ? [a, b] : [b, a];
    meteredT.wallMs += m.timing.wallMs;
    meteredT.cpuMs += m.timing.cpuMs;
    plainT.wallMs += p.timing.wallMs;
    plainT.cpuMs += p.timing.cpuMs;
    same &&= m.value.sample.every((v, i) => v === p.value.sample[i]);
    history.push(m.value.sample);
  }
  return { plain: plainT, metered: meteredT, same };
}

const tensorsBefore = tf.memory().numTensors;
await generate(null); // warm-up: JIT, allocation
const plain: Timing[] = [];
const metered: Timing[] = [];
let lastMeter: Meter | null = null;
let allSame = true;
for (let i = 0; i < pairs; i++) {
  const m = new Meter({ countKernels });
  const arm = values.control ? null : m;
  if (values.interleave === "frame") {
    const r = await generateInterleaved(arm);
    plain.push(r.plain);
    metered.push(r.metered);
    allSame &&= r.same;
  } else if (i % 2 === 0) {
    // ABBA: the order flips every pair
    plain.push((await timed(() => generate(null))).timing);
    metered.push((await timed(() => generate(arm))).timing);
  } else {
    metered.push((await timed(() => generate(arm))).timing);
    plain.push((await timed(() => generate(null))).timing);
  }
  lastMeter = m;
}

// Components, steadier under other processes' load than whole generations: CPU time of the same call plain and
// through a warm meter, interleaved (per-call overhead), and the extra CPU of the one counted call per input shape.
const cpuOf = async (f: () => Promise<unknown>) => {
  const c0 = process.cpuUsage();
  await f();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
};
const probeX = new Float32Array(frameSize).fill(0.1);
const probeCtx: Ctx = { frames: new Float32Array(K * frameSize), mask: new Float32Array(K).fill(1) };
const warmNet = new Meter({ countKernels }).wrap(net);
await warmNet(probeX, 500, probeCtx); // its counted call
const perCallDiff: number[] = [];
for (let i = 0; i < 100; i++) {
  const a = await cpuOf(() => net(probeX, 500, probeCtx));
  const b = await cpuOf(() => warmNet(probeX, 500, probeCtx));
  perCallDiff.push(b - a);
}
const countedExtra: number[] = [];
for (let i = 0; i < 20; i++) {
  const fresh = new Meter({ countKernels }).wrap(net);
  const b = await cpuOf(() => fresh(probeX, 500, probeCtx));
  const a = await cpuOf(() => net(probeX, 500, probeCtx));
  countedExtra.push(b - a);
}

const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
const median = (v: number[]) =>
  quantile(
    [...v].sort((a, b) => a - b),
    0.5,
  );
function ratios(pick: (t: Timing) => number) {
  const perPair = metered.map((m, i) => pick(m) / pick(plain[i])).sort((a, b) => a - b);
  return { perPair, median: quantile(perPair, 0.5), ofSums: sum(metered.map(pick)) / sum(plain.map(pick)) };
}
const wall = ratios((t) => t.wallMs);
const cpu = ratios((t) => t.cpuMs);
const s = lastMeter!.summary();
console.log(
  `meter overhead: preset ${cfg.name}, ddim ${steps} steps x ${frames} frames (${steps * frames} NFE per generation), ` +
    `${pairs} metered/unmetered pairs interleaved ${values.interleave === "frame" ? "frame by frame" : "ABBA by generation"}, ` +
    `gc between pieces ${(globalThis as { gc?: unknown }).gc ? "on" : "off (run node with --expose-gc)"}, ${values.control ? "CONTROL (both arms unmetered)" : `counter ${values.counter}`}, backend ${tf.getBackend()}, ` +
    `load average ${os.loadavg()[0].toFixed(1)} on ${os.availableParallelism()} cores`,
);
console.log(
  `  generation wall: unmetered median ${median(plain.map((t) => t.wallMs)).toFixed(1)} ms, ` +
    `metered median ${median(metered.map((t) => t.wallMs)).toFixed(1)} ms; CPU: unmetered median ` +
    `${median(plain.map((t) => t.cpuMs)).toFixed(1)} ms, metered median ${median(metered.map((t) => t.cpuMs)).toFixed(1)} ms`,
);
if (values.interleave === "frame")
  console.log(
    `  metered and unmetered frames identical: ${allSame ? "yes" : "NO (metering changed the result)"}`,
  );
console.log(`  per-pair wall ratios metered/unmetered: ${wall.perPair.map((r) => r.toFixed(4)).join(" ")}`);
console.log(`  per-pair CPU ratios metered/unmetered:  ${cpu.perPair.map((r) => r.toFixed(4)).join(" ")}`);
console.log(
  `  wall-time ratio metered/unmetered: median of pairs ${wall.median.toFixed(4)}, ratio of sums ${wall.ofSums.toFixed(4)} ` +
    `(limit 1.01: ${wall.median <= 1.01 ? "within" : "OVER"})`,
);
console.log(
  `  CPU-time ratio metered/unmetered:  median of pairs ${cpu.median.toFixed(4)}, ratio of sums ${cpu.ofSums.toFixed(4)}`,
);
const perCallMs = median(perCallDiff);
const countedMs = median(countedExtra);
const nfe = steps * frames;
const estimate = 1 + (nfe * perCallMs + countedMs) / median(plain.map((t) => t.cpuMs));
console.log(
  `  components (CPU, medians): per metered call ${(1000 * perCallMs).toFixed(1)} us over a plain call (100 pairs), ` +
    `counted call ${countedMs.toFixed(2)} ms over a plain call (20 fresh meters, once per input shape)`,
);
console.log(
  `  estimate from components: ratio ${estimate.toFixed(4)} = 1 + (${nfe} NFE x per-call + counted call) / ` +
    "unmetered generation CPU",
);
if (!values.control) {
  console.log(
    `  what the meter saw (last metered run): ${s.totals.nfe} NFE, ${s.flopsPerNfe} FLOPs/NFE counted vs ` +
      `${analyticFlopsPerCall(cfg)} analytic, warm-up call ${s.nfeTiming.warmupMs?.toFixed(1)} ms, ` +
      `steady median ${s.nfeTiming.medianMs?.toFixed(2)} ms/NFE, uncounted kernels: ${s.uncounted.length}`,
  );
}
model.dispose();
console.log(`  tensors: ${tensorsBefore} before, ${tf.memory().numTensors} after (weights disposed)`);
