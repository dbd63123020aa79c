/**
 * Regenerates models/<name>/MODEL_CARD.md and its pictures from real runs:
 * evaluates the shipped weights (and the training snapshots, when the
 * checkpoint folder is still there) on held-out clips, draws the loss curve
 * and a real-vs-generated contact sheet. Run: npx tsx scripts/model-card.ts [modelDir] [checkpointDir]
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HELD_OUT_SEED_BASE, makeClip } from "../src/data/clips.ts";
import { makeIdealDenoiser } from "../src/diffusion/ideal.ts";
import { addNoise, predX0 } from "../src/diffusion/prediction.ts";
import { frameRng } from "../src/diffusion/rng.ts";
import { sampleFrame } from "../src/diffusion/sample.ts";
import { makeSampler, samplerNames } from "../src/diffusion/samplers/index.ts";
import { makeSchedule } from "../src/diffusion/schedule.ts";
import type { BatchOptions } from "../src/diffusion/train-batch.ts";
import { DEFAULT_TRAIN, type TrainSession } from "../src/diffusion/trainer.ts";
import { initBackend } from "../src/engine/backend.ts";
import { writeFileAtomic } from "../src/media/files.ts";
import { contactSheet } from "../src/media/frames.ts";
import { analyticFlopsPerCall } from "../src/meter/analytic.ts";
import { VideoDiT } from "../src/model/dit.ts";
import { loadWeights } from "../src/model/io.ts";
import { paramCount } from "../src/model/params.ts";
import type { QualityFigures } from "../src/quality/metrics.ts";
import { type ShapeFigures, shapeFigures } from "../src/quality/shapes.ts";
import { renderSvg, svgToPng } from "../src/report/plots.ts";
import { DEFAULT_EVALUATION, type Evaluation, evaluateModel } from "../src/run/evaluate.ts";
import { Rng } from "../src/util/rng.ts";

const args = process.argv.slice(2).filter((a) => a !== "--quick");
// --quick: a smoke run of the script itself (tiny sample sizes), not figures to publish
const quick = process.argv.includes("--quick");
const modelDir = args[0] ?? "models/tiny";
const ckptDir = args[1] ?? "checkpoints/tiny";
const protocol = quick
  ? {
      ...DEFAULT_EVALUATION,
      clips: 4,
      steps: 5,
      longClips: 2,
      longFrames: 3,
      longSteps: 2,
      referenceClips: 8,
    }
  : DEFAULT_EVALUATION;
const { manifest, config } = loadWeights(modelDir);
const training = manifest.training ?? {};
const log = JSON.parse(readFileSync(join(modelDir, "training-log.json"), "utf8")) as {
  steps: number;
  elapsedMs: number;
  history: Array<{ step: number; elapsedMs: number; loss: number }>;
};

const f3 = (x: number) => x.toFixed(3);
const row = (name: string, q: QualityFigures) =>
  `| ${name} | ${f3(q.swdPixels)} | ${f3(q.swdPatches)} | ${f3(q.paletteError)} |`;

console.error("evaluating the shipped weights...");
const ev: Evaluation = await evaluateModel(modelDir, protocol);
writeFileSync(
  join(modelDir, "evaluation.json"),
  `${JSON.stringify({ ...ev, samples: undefined }, null, 2)}\n`,
);

// autoguidance (run/generation.ts): the folder's default guide, and what the weight and the noise levels it acts on change
const guidance = manifest.guidance;
if (guidance) console.error("evaluating without guidance...");
const unguided: Evaluation | null = guidance
  ? await evaluateModel(modelDir, { ...protocol, guidance: { weight: 0 } })
  : null;
type GuidanceRow = { weight: number; fromT: number; q: QualityFigures; shapes: ShapeFigures; nfe: number };
const guidanceRows: GuidanceRow[] = [];
if (guidance) {
  const grid = [
    ...[0, 1, 2, 3, 4].map((weight) => ({ weight, fromT: guidance.fromT })),
    ...[0, 500, 700].filter((t) => t !== guidance.fromT).map((fromT) => ({ weight: guidance.weight, fromT })),
  ];
  for (const g of grid) {
    console.error(`evaluating first frames with guidance weight ${g.weight} at t >= ${g.fromT}...`);
    const e = await evaluateModel(modelDir, { ...protocol, longClips: 1, longFrames: 1, guidance: g });
    const sampler = makeSampler(e.options.sampler, makeSchedule("cosine", config.trainTimesteps), {
      predictionType: config.prediction,
    });
    sampler.setTimesteps(e.options.steps);
    const guided = g.weight > 0 ? sampler.timesteps.filter((t) => t >= g.fromT).length : 0;
    guidanceRows.push({
      ...g,
      q: e.firstFrame.generated,
      shapes: e.firstFrame.shapes.generated,
      nfe: sampler.timesteps.length + guided,
    });
  }
}
// the other scope, measured on long clips: why the default guides what it guides
const otherScope = guidance?.frames === "first" ? "all" : "first";
if (guidance) console.error(`evaluating long clips with guidance of ${otherScope} frames...`);
const scoped: Evaluation | null = guidance
  ? await evaluateModel(modelDir, { ...protocol, guidance: { frames: otherScope } })
  : null;
const guideManifest = guidance ? loadWeights(join(modelDir, guidance.guide)).manifest : null;

// quality against training time: the EMA snapshots the trainer saved on the way. The checkpoint may have been
// trained on past the shipped weights (with another recipe): those are reported apart, the last of them with the
// full protocol (its first-frame figures are the same as the short protocol's: same clips, same seed)
const shippedStep = Number(training.steps ?? 0);
type Snapshot = { minutes: number; step: number; q: QualityFigures; shapes: ShapeFigures };
/** Evaluates a checkpoint folder's snapshots in time order; the last one past step `fullBeyond` gets the full protocol. */
async function evaluateSnapshots(dir: string, fullBeyond = Number.POSITIVE_INFINITY) {
  const out: Snapshot[] = [];
  let full: Evaluation | null = null;
  let shape: typeof config | null = null;
  if (!existsSync(dir)) return { snapshots: out, full, shape };
  const found = readdirSync(dir)
    .filter((d) => /^snapshot-\d+min$/.test(d))
    .map((d) => {
      const w = loadWeights(join(dir, d));
      shape = w.config;
      const t = w.manifest.training;
      return { dir: join(dir, d), minutes: Number(t?.snapshotMinutes), step: Number(t?.step) };
    })
    .sort((a, b) => a.minutes - b.minutes);
  const fullOne = found.filter((x) => x.step > fullBeyond).at(-1);
  for (const x of found) {
    const isFull = x === fullOne;
    console.error(`evaluating ${x.dir}${isFull ? " with the full protocol" : ""}...`);
    // a snapshot folder has no guide: these are the network's own figures
    const e = await evaluateModel(x.dir, isFull ? protocol : { ...protocol, longClips: 2, longFrames: 2 });
    if (isFull) full = e;
    out.push({
      minutes: x.minutes,
      step: x.step,
      q: e.firstFrame.generated,
      shapes: e.firstFrame.shapes.generated,
    });
  }
  return { snapshots: out, full, shape };
}
// first frames by sampler, same steps, clips and seed (long clips left out): what the sampler alone changes
const samplerRows: Array<{ name: string; q: QualityFigures; shapes: ShapeFigures }> = [];
for (const name of samplerNames()) {
  if (name === ev.options.sampler) continue;
  console.error(`evaluating first frames with ${name}...`);
  const e = await evaluateModel(modelDir, { ...protocol, sampler: name, longClips: 1, longFrames: 1 });
  samplerRows.push({ name, q: e.firstFrame.generated, shapes: e.firstFrame.shapes.generated });
}
const readSessions = (dir: string): TrainSession[] =>
  existsSync(join(dir, "checkpoint.json"))
    ? (JSON.parse(readFileSync(join(dir, "checkpoint.json"), "utf8")).sessions ?? [])
    : [];
const { snapshots, full: beyondLast } = await evaluateSnapshots(ckptDir, shippedStep);
const beyond = snapshots.filter((x) => x.step > shippedStep);
const ckptSessions = readSessions(ckptDir);
const continuationSection = () => {
  if (!beyondLast || beyond.length === 0) return "";
  const last = beyond[beyond.length - 1];
  const later = ckptSessions.filter((x) => x.toStep > shippedStep);
  const b = beyondLast;
  const cmp = (a: number, ref: number, lowerIsBetter = true) =>
    `${f3(a)} (${(a < ref) === lowerIsBetter ? "better" : "worse"} than the shipped ${f3(ref)})`;
  return `
## Trained on past the shipped weights (not shipped)
The checkpoint was trained on from step ${shippedStep.toLocaleString("en-US")} to ${last.step.toLocaleString("en-US")} (${last.minutes} minutes in all, inside the 3-hour limit):
${commandList(later)}.
Min-SNR-5 on v-prediction weights a timestep by min(SNR, 5) / (SNR + 1), close to SNR itself at high noise,
where the layout of a frame is decided; uniform weighting gives those steps full weight.

${SNAPSHOT_HEAD}${beyond.map((x) => snapshotRow(x, ckptSessions)).join("")}
The last snapshot with the full protocol: first-frame SWD pixels ${cmp(b.firstFrame.generated.swdPixels, ev.firstFrame.generated.swdPixels)},
palette error ${cmp(b.firstFrame.generated.paletteError, ev.firstFrame.generated.paletteError)}; long clips frame ${b.options.longFrames} / frame 1
${b.longClip.lastOverFirst.toFixed(2)}x; motion ${cmp(b.longClip.motionGenerated, ev.longClip.motionGenerated, false)} (real ${b.longClip.motionReal.toFixed(4)});
empty first frames ${pct(b.firstFrame.shapes.generated.emptyShare)} (shipped ${pct(ev.firstFrame.shapes.generated.emptyShare)}).
The shipped weights stay the ${minutes}-minute ones above.
`;
};

// the runs of the train command that made these weights (a resumed run may change the recipe)
const sessions: TrainSession[] = (training.sessions as TrainSession[] | undefined) ?? [
  {
    command: training.command as string | undefined,
    fromStep: 0,
    toStep: log.steps,
    fromMinutes: 0,
    toMinutes: log.elapsedMs / 60000,
    lossWeighting: String(training.lossWeighting),
  },
];
const weightingAt = (step: number) =>
  (sessions.find((x) => step > x.fromStep && step <= x.toStep) ?? sessions[sessions.length - 1])
    .lossWeighting;

// loss curve, one line per loss weighting (their scales differ)
const lossSpec = {
  $schema: "https://vega.github.io/schema/vega-lite/v6.json",
  width: 520,
  height: 260,
  background: "white",
  title: `training loss (${config.prediction}-prediction MSE; mean of 25 steps)`,
  data: {
    values: log.history.map((h) => ({
      minutes: h.elapsedMs / 60000,
      loss: h.loss,
      step: h.step,
      weighting: weightingAt(h.step),
    })),
  },
  mark: { type: "line" as const },
  encoding: {
    color: {
      field: "weighting",
      type: "nominal" as const,
      title: "loss weighting",
      legend: { orient: "bottom" as const, labelLimit: 0 },
    },
    x: { field: "minutes", type: "quantitative" as const, title: "wall-clock minutes of training" },
    y: {
      field: "loss",
      type: "quantitative" as const,
      scale: { type: "log" as const },
      title: "loss (log scale)",
    },
  },
};
// biome-ignore lint/suspicious/noExplicitAny: a plain vega-lite spec literal
const svg = await renderSvg(lossSpec as any);
await writeFileAtomic(join(modelDir, "loss.png"), await svgToPng(svg));

// contact sheet: real first frames / generated first frames / a real clip / a generated clip
const S = config.imageSize;
const realFirst = Array.from(
  { length: 8 },
  (_, c) => makeClip(HELD_OUT_SEED_BASE + c, { frames: 1, size: S })[0],
);
const realClip = makeClip(HELD_OUT_SEED_BASE + 7, { frames: 16, size: S }).filter((_, i) => i % 2 === 0);
const genClip = ev.samples.longClip.filter((_, i) => i % 2 === 0);
const unguidedFirst = unguided ? unguided.samples.firstFrames.slice(0, 8) : [];
const sheet = [
  ...realFirst,
  ...ev.samples.firstFrames.slice(0, 8),
  ...unguidedFirst,
  ...realClip,
  ...genClip,
];
const labels = [
  ...realFirst.map((_, i) => `real ${i}`),
  ...ev.samples.firstFrames.slice(0, 8).map((_, i) => `gen ${i}`),
  ...unguidedFirst.map((_, i) => `unguided ${i}`),
  ...realClip.map((_, i) => `real t${2 * i}`),
  ...genClip.map((_, i) => `gen t${2 * i}`),
];
await contactSheet(sheet, S, S, join(modelDir, "samples.png"), { cols: 8, scale: 4, labels });

// what the network sees at each noise level: held-out first frames noised to level t, and its one-call estimate
// of the clean frame from there (x0 from its v-prediction); the structure of a sample is decided at high t
const LADDER_T = [100, 300, 500, 700, 850, 950];
const abars = makeSchedule("cosine", config.trainTimesteps).alphasCumprod;
{
  await initBackend("wasm");
  const net = new VideoDiT(config, loadWeights(modelDir).flat);
  const rng = new Rng(5);
  const tiles: Float32Array[] = [];
  const tileLabels: string[] = [];
  for (const [c, x0] of realFirst.slice(0, 6).entries()) {
    tiles.push(x0);
    tileLabels.push(`real ${c}`);
    for (const t of LADDER_T) {
      const xt = addNoise(
        x0,
        Float32Array.from(x0, () => rng.normal()),
        abars[t],
      );
      const y = await net.predict(xt, [t], null, null);
      tiles.push(predX0(y, xt, abars[t], config.prediction).map((v) => Math.max(-1, Math.min(1, v))));
      tileLabels.push(`from t=${t}`);
    }
  }
  net.dispose();
  await contactSheet(tiles, S, S, join(modelDir, "denoise.png"), {
    cols: LADDER_T.length + 1,
    scale: 4,
    labels: tileLabels,
  });
}

// where the shapes go wrong: the same first-frame noises sampled with the exact denoiser of a set of training
// first frames (diffusion/ideal.ts: the posterior mean, which any sampler turns into one of those frames) for
// t >= tau and the network below tau. tau = T is the network alone, tau = 0 the exact denoiser alone.
const ORACLE_TAUS = [config.trainTimesteps, 800, 700, 500, 0];
const ORACLE_REFS = quick ? 50 : 2000;
const oracleRows: Array<{ tau: number; shapes: ShapeFigures }> = [];
{
  console.error(
    `sampling first frames with the exact denoiser of ${ORACLE_REFS} training frames above tau...`,
  );
  const schedule = makeSchedule("cosine", config.trainTimesteps);
  const refs = Array.from({ length: ORACLE_REFS }, (_, i) => makeClip(i, { frames: 1, size: S })[0]);
  const ideal = makeIdealDenoiser(refs, schedule, config.prediction);
  const net = new VideoDiT(config, loadWeights(modelDir).flat);
  const tiles: Float32Array[] = [];
  const tileLabels: string[] = [];
  for (const tau of ORACLE_TAUS) {
    const frames: Float32Array[] = [];
    for (let c = 0; c < ev.options.clips; c++) {
      // a self-conditioned network sees the previous call's estimate, whoever made it (as in generation)
      let estimate: Float32Array | null = null;
      const r = await sampleFrame({
        model: (x, t) => (t >= tau ? ideal.model(x, t, null) : net.predict(x, [t], null, null, estimate)),
        onStep: (info) => {
          if (config.selfCond) estimate = info.predX0.map((v) => Math.max(-1, Math.min(1, v)));
        },
        context: null,
        sampler: makeSampler(ev.options.sampler, schedule, { predictionType: config.prediction }),
        steps: ev.options.steps,
        shape: S * S * config.channels,
        rng: frameRng(ev.options.seed + c, 0), // the evaluation's first-frame noises
      });
      frames.push(r.sample);
    }
    oracleRows.push({ tau, shapes: shapeFigures(frames, { height: S, width: S }) });
    tiles.push(...frames.slice(0, 8));
    tileLabels.push(...frames.slice(0, 8).map(() => `exact t>=${tau}`));
  }
  net.dispose();
  await contactSheet(tiles, S, S, join(modelDir, "oracle.png"), { cols: 8, scale: 4, labels: tileLabels });
}

const minutes = (log.elapsedMs / 60000).toFixed(1);
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const shapeCells = (x: ShapeFigures) =>
  `${f3(x.compactness)} | ${x.specksPerFrame.toFixed(2)} | ${pct(x.emptyShare)}`;
const shapeRow = (name: string, x: ShapeFigures) =>
  `| ${name} | ${x.shapesPerFrame.toFixed(2)} | ${f3(x.compactness)} | ${x.specksPerFrame.toFixed(2)} | ${pct(x.emptyShare)} |`;
const weightsUpTo = (step: number, of: TrainSession[] = sessions) =>
  [...new Set(of.filter((x) => x.fromStep < step).map((x) => x.lossWeighting))].join(", then ");
const snapshotRow = (s: Snapshot, of: TrainSession[] = sessions, label = String(s.minutes)) =>
  `| ${label} | ${s.step} | ${f3(s.q.swdPixels)} | ${f3(s.q.swdPatches)} | ${f3(s.q.paletteError)} | ${shapeCells(s.shapes)} | ${weightsUpTo(s.step, of)} |\n`;
const SNAPSHOT_HEAD = `| minutes | step | SWD pixels | SWD patches | palette error | compactness | specks / frame | empty frames | loss weighting so far |
|---|---|---|---|---|---|---|---|---|
`;
// the workers' engine; runs from before the onnx engine recorded none and ran on tfjs-wasm
const engineOf = (backend: unknown) =>
  backend === "onnx"
    ? "one single-threaded onnxruntime session"
    : `one tfjs-${String(backend ?? "wasm")} backend`;
const commandList = (of: TrainSession[]) =>
  of
    .map(
      (x) =>
        `\`${x.command ?? "(not recorded)"}\` (steps ${x.fromStep.toLocaleString("en-US")}-${x.toStep.toLocaleString("en-US")}, minutes ${x.fromMinutes.toFixed(0)}-${x.toMinutes.toFixed(0)}, ${x.lossWeighting}, on ${x.backend ?? "wasm"})`,
    )
    .join("; then ");
// other runs (extra checkpoint folders on the command line, maybe of another model shape): their snapshots, same protocol
const others: Array<{
  dir: string;
  sessions: TrainSession[];
  snapshots: Snapshot[];
  shape: typeof config | null;
}> = [];
for (const dir of args.slice(2)) {
  if (!existsSync(dir)) throw new Error(`no checkpoint folder ${dir}`);
  if (existsSync(join(dir, "model.json"))) {
    // a model folder (weights shipped before, say): its final weights, one row
    console.error(`evaluating the model folder ${dir}...`);
    const w = loadWeights(dir);
    const t = w.manifest.training ?? {};
    const e = await evaluateModel(dir, { ...protocol, longClips: 1, longFrames: 1, guidance: { weight: 0 } });
    const sessions = (t.sessions as TrainSession[] | undefined) ?? [];
    others.push({
      dir,
      sessions,
      shape: w.config,
      snapshots: [
        {
          minutes: Number(Number(t.wallMinutes).toFixed(1)),
          step: Number(t.steps),
          q: e.firstFrame.generated,
          shapes: e.firstFrame.shapes.generated,
        },
      ],
    });
    continue;
  }
  const { snapshots, shape } = await evaluateSnapshots(dir);
  others.push({ dir, sessions: readSessions(dir), snapshots, shape });
}
/** "depth 4, width 128, heads 4 (1,279,152 parameters)": the model a run trained, read from its snapshots */
const shapeOf = (c: typeof config | null) =>
  c === null
    ? "shape not recorded"
    : `depth ${c.depth}, width ${c.width}, heads ${c.heads} (${paramCount(c).toLocaleString("en-US")} parameters)`;
const othersSection = () =>
  others.length === 0
    ? ""
    : `
## Other runs (not shipped)
Runs with another recipe or another shape of the model (the shipped one: ${shapeOf(config)}), measured from
their EMA snapshots (or, for a model folder, its final weights) with the same first-frame protocol and no guidance,
to compare with the shipped network's own figures above.
${others
  .map(
    (o) => `
\`${o.dir}\` (${shapeOf(o.shape)}): ${commandList(o.sessions)}.

${SNAPSHOT_HEAD}${o.snapshots.map((x) => snapshotRow(x, o.sessions)).join("")}`,
  )
  .join("")}`;
const guideTraining = (guideManifest?.training ?? {}) as Record<string, unknown>;
const guideTableRow = () =>
  guidance && guideManifest
    ? `| guide | \`${guidance.guide}/\`: this run's own EMA snapshot at ${String(guideTraining.snapshotMinutes)} minutes (step ${Number(guideTraining.step).toLocaleString("en-US")}), ${guideManifest.dtype}, ${(guideManifest.byteLength / 2 ** 20).toFixed(2)} MiB; generation guides with it by default (below) |\n`
    : "";
const longFigures = (x: Evaluation) =>
  `frame ${x.options.longFrames} over frame 1 ${x.longClip.lastOverFirst.toFixed(2)}x, frame-${x.options.longFrames} compactness ${f3(x.longClip.shapes.last.compactness)}, motion ${x.longClip.motionGenerated.toFixed(4)}`;
const scopeSentence = () =>
  scoped && guidance
    ? `Long clips (${ev.options.longClips} x ${ev.options.longFrames} frames) as shipped: ${longFigures(ev)}; guiding ${otherScope === "all" ? "every frame" : "first frames only"} instead: ${longFigures(scoped)} (real motion ${ev.longClip.motionReal.toFixed(4)}).`
    : "";
const guidanceSection = () => {
  if (!guidance || !unguided) return "";
  const u = unguided.firstFrame.shapes.generated;
  const g = e.shapes.generated;
  return `## Guidance: what it buys and what it costs
Autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad version of itself"): where t >= ${guidance.fromT}, each call's
prediction D becomes D + w (D - G), G the guide's prediction for the same input: the network less trained, which errs the same
way but more. The difference points away from those errors, so a sample commits to a shape instead of drifting between them.
This model guides ${guidance.frames === "first" ? "the first frame of a clip only (made from nothing)" : "every frame, the first (made from nothing) and those that follow their context"}
with weight ${guidance.weight}. ${scopeSentence()}
\`framecost generate --guidance 0\` turns it off, \`--guidance W --guide-from T --guide-frames first|all\` changes it.
Every guide call is a network evaluation, metered and priced like the model's.

Guided, ${ev.options.steps}-step first frames: compactness ${f3(g.compactness)} (unguided ${f3(u.compactness)}; real ${f3(e.shapes.real.compactness)}),
specks ${g.specksPerFrame.toFixed(2)} per frame (unguided ${u.specksPerFrame.toFixed(2)}). By weight and by the noise levels it acts on
(first frames, ${ev.options.sampler}, ${ev.options.steps} steps, the same ${ev.options.clips} noises; NFE = network calls for one first frame):

| weight | guided at t >= | NFE | SWD pixels | SWD patches | palette error | compactness | specks / frame | empty frames |
|---|---|---|---|---|---|---|---|---|
${guidanceRows.map((r) => `| ${r.weight} | ${r.weight === 0 ? "-" : r.fromT} | ${r.nfe} | ${f3(r.q.swdPixels)} | ${f3(r.q.swdPatches)} | ${f3(r.q.paletteError)} | ${shapeCells(r.shapes)} |`).join("\n")}

`;
};
const flops = analyticFlopsPerCall(config, "flops", 1);
// the recipe of the last session (a resumed run may change it; the commands above say how)
const batchOpts = training.batchOptions as BatchOptions;
const e = ev.firstFrame;
const l = ev.longClip;
const card = `# framecost video DiT "${config.name}": model card

Generated by \`npx tsx scripts/model-card.ts\` from the weights in this folder; every figure below
was measured by that script (evaluation.json holds them all).

## Architecture
A diffusion transformer over one ${config.imageSize}x${config.imageSize} RGB frame (DiT-style: patchify, 2-D sin-cos position
embedding, timestep embedder, adaLN-Zero blocks with attention and MLP, final layer back to pixels),
conditioned on the noise level and on the ${config.contextFrames} previous clean frames, whose patches are concatenated
to the noisy frame's along channels (the sequence stays ${(config.imageSize / config.patch) ** 2} tokens; attention does not grow with context).
A frame with no history uses a learned empty context (trained with context dropout), so a clip starts from nothing.${
  config.selfCond
    ? "\nSelf-conditioned (Chen et al. 2022): the network also sees its own previous estimate of the clean frame (half the training samples get it from a first forward pass; generation feeds each call the estimate of the call before)."
    : ""
}

| | |
|---|---|
| preset | \`${config.name}\`: depth ${config.depth}, width ${config.width}, heads ${config.heads}, patch ${config.patch}, MLP ratio ${config.mlpRatio}, context frames ${config.contextFrames} |
| parameters | ${paramCount(config).toLocaleString("en-US")} (${(manifest.byteLength / 2 ** 20).toFixed(2)} MiB of float32) |
| FLOPs per network call | ${(flops / 1e6).toFixed(1)} MFLOP at batch 1 (1 multiply-add = 2 FLOPs; ${(flops / 2e6).toFixed(1)} M MACs), analytic, equal to the metered count |
| prediction | ${config.prediction} (v-prediction), cosine noise schedule, ${config.trainTimesteps} training timesteps |
| weights | \`model.json\` (config, layout, sha256) + \`weights.bin\` (little-endian float32, EMA weights) |
${guideTableRow()}
## Training
| | |
|---|---|
| commands | ${commandList(sessions)} |
| data | synthetic clips from \`src/data/clips.ts\`: 1-3 circles and squares in 5 colours, moving and bouncing, plain or gradient background; seeds below ${HELD_OUT_SEED_BASE.toLocaleString("en-US")} (held-out seeds above are never trained on) |
| steps | ${log.steps.toLocaleString("en-US")} of batch ${String(training.batch)} (${String(training.workers)} worker threads, ${engineOf(training.backend)} each, data parallel) |
| wall time | ${minutes} minutes |
| hardware | ${String(training.cpu)}, ${String(training.cores)} cores (the machine was shared with other work during training) |
| optimiser | AdamW, lr ${String(training.lr)} with ${String(training.warmupSteps)} warm-up steps then cosine decay to ${pct(DEFAULT_TRAIN.minLrFraction)} of it over the time budget (a run resumed with a larger budget rejoins the curve where the new budget puts it), grad-norm clip 1, EMA ${String(training.emaDecay)} |
| loss | MSE on v, weighted ${weightsUpTo(Number.POSITIVE_INFINITY)}; context dropout ${pct(batchOpts.pUncond)} (how first frames are learned), partial context ${pct(batchOpts.pPartial)}, N(0, sigma^2) noise on context frames with sigma up to ${batchOpts.contextNoise} |

![loss](loss.png)

## Samples
Rows: 8 real first frames (held out); 8 generated first frames (${ev.options.sampler}, ${ev.options.steps} steps${guidance ? ", guided as below" : ""});${
  unguided ? " the same 8 from the same noises without guidance;" : ""
} a real clip; a generated clip
(${ev.options.sampler}, ${ev.options.longSteps} steps per frame, each frame conditioned on the ones before), every second frame.

![real and generated frames](samples.png)

What the network makes of a real frame in one call: each row is a held-out first frame, then the network's
estimate of it from that frame noised to timestep t (of ${config.trainTimesteps}; signal share sqrt(abar_t) ${LADDER_T.map((t) => `${t}: ${Math.sqrt(abars[t]).toFixed(2)}`).join(", ")}).
Sampling starts from pure noise, so the outlines of a generated frame are decided where these estimates are weakest.

![one-call denoising from each noise level](denoise.png)

## Quality (measured on held-out clips)
Sliced Wasserstein distance between sets of frames, on pixels (each pixel's RGB as a point) and on
4x4 patches; palette error is the mean distance from each generated pixel to the nearest colour of the
real frames' palette. Lower is better. ${ev.options.clips} generated first frames against ${ev.options.referenceClips} held-out first frames.

| first frame | SWD pixels | SWD patches | palette error |
|---|---|---|---|
${row(`generated, ${ev.options.steps} steps${guidance ? " (guided)" : ""}`, e.generated)}
${unguided ? `${row(`generated, ${ev.options.steps} steps, without guidance`, unguided.firstFrame.generated)}\n` : ""}${row("generated, 1 step", e.oneStep)}
${row("pure noise", e.noise)}
${row(`${ev.options.clips} other real frames (the floor at this sample size)`, e.heldOut)}

Long clips: ${ev.options.longClips} clips of ${ev.options.longFrames} frames, generated frame after frame, against all frames of the held-out clips.

| | SWD pixels | SWD patches | palette error |
|---|---|---|---|
${row("frame 1", l.first)}
${row(`frame ${ev.options.longFrames}`, l.last)}

Frame ${ev.options.longFrames} over frame 1 (SWD pixels): ${l.lastOverFirst.toFixed(2)}x. Motion (mean absolute change between consecutive
frames): generated ${l.motionGenerated.toFixed(4)}, real ${l.motionReal.toFixed(4)}.

## Clean shapes or ragged blobs
The distribution metrics above cannot tell a clean disc from a ragged blob of the same colour and size.
\`src/quality/shapes.ts\` labels each pixel with the nearest training shape colour (within 0.35, else background),
takes the 4-connected regions of one colour as shapes and scores each by compactness 4 pi A / P^2 (P counted
in pixel edges: a square 0.785, a digital disc about 0.62, ragged outlines lower); regions under 6 pixels are specks.

| frames | shapes / frame | compactness (area-weighted) | specks / frame | empty frames |
|---|---|---|---|---|
${shapeRow(`real first frames (${ev.options.referenceClips} held out)`, e.shapes.real)}
${shapeRow(`generated first frames (${ev.options.steps} steps${guidance ? ", guided" : ""})`, e.shapes.generated)}
${unguided ? `${shapeRow(`generated first frames (${ev.options.steps} steps), without guidance`, unguided.firstFrame.shapes.generated)}\n` : ""}${shapeRow(`real clips, all ${ev.options.longFrames} frames`, l.shapes.real)}
${shapeRow(`generated clips, frame ${ev.options.longFrames}`, l.shapes.last)}

First frames by sampler (${ev.options.steps} steps each, the same ${ev.options.clips} starting noises${guidance ? ", the same guidance" : ""}; ${ev.options.sampler} is the one above).
ddpm is the one stochastic sampler here (ddim with eta 1 takes the same update): it adds fresh noise at every step,
which can wash out some of the network's earlier errors; the rows show what that changes for this model.

| sampler | SWD pixels | SWD patches | palette error | compactness | specks / frame | empty frames |
|---|---|---|---|---|---|---|
| ${ev.options.sampler} | ${f3(e.generated.swdPixels)} | ${f3(e.generated.swdPatches)} | ${f3(e.generated.paletteError)} | ${shapeCells(e.shapes.generated)} |
${samplerRows.map((x) => `| ${x.name} | ${f3(x.q.swdPixels)} | ${f3(x.q.swdPatches)} | ${f3(x.q.paletteError)} | ${shapeCells(x.shapes)} |`).join("\n")}

${guidanceSection()}## Where the shapes go wrong
The same ${ev.options.clips} starting noises, sampled (${ev.options.sampler}, ${ev.options.steps} steps, no guidance) with the exact denoiser of ${ORACLE_REFS} training first frames
(\`src/diffusion/ideal.ts\`: the true posterior mean for that set) wherever t >= tau, and with the network below tau.
tau ${config.trainTimesteps} is the network alone; tau 0 the exact denoiser alone (it can only give back training frames).
The tau at which the shapes become clean tells which noise levels the network gets wrong.

| network below tau | compactness | specks / frame | shapes / frame | empty frames |
|---|---|---|---|---|
${oracleRows.map((r) => `| ${r.tau === config.trainTimesteps ? `${r.tau} (network alone)` : r.tau === 0 ? "0 (exact denoiser alone)" : r.tau} | ${f3(r.shapes.compactness)} | ${r.shapes.specksPerFrame.toFixed(2)} | ${r.shapes.shapesPerFrame.toFixed(2)} | ${pct(r.shapes.emptyShare)} |`).join("\n")}

![first frames by tau](oracle.png)

## Quality against training time
EMA snapshots saved during training (first frames, ${ev.options.steps} steps, same protocol${guidance ? "; without guidance (a snapshot has no guide), so the final row is the unguided one" : ""}). A shorter run with its own
learning-rate decay may do a little better at the same time. The loss weighting of each snapshot's run is in the last column.

${SNAPSHOT_HEAD}${snapshots
  .filter((x) => x.step <= shippedStep)
  .map((x) => snapshotRow(x))
  .join("")}${snapshotRow(
  {
    minutes: Number(minutes),
    step: log.steps,
    q: (unguided ?? ev).firstFrame.generated,
    shapes: (unguided ?? ev).firstFrame.shapes.generated,
  },
  sessions,
  `${minutes} (final)`,
)}
${continuationSection()}${othersSection()}
## Limits
A toy: ${config.imageSize}x${config.imageSize} frames of a synthetic world. It exists so that framecost meters a real denoiser with the
shape of the models that make video (a DiT over spacetime patches, conditioned on noise level and past
frames), small enough to train on two CPU cores and run in milliseconds per step.
`;
await writeFileAtomic(join(modelDir, "MODEL_CARD.md"), card);
console.error(
  `wrote ${modelDir}/MODEL_CARD.md, loss.png, samples.png, denoise.png, oracle.png, evaluation.json`,
);
