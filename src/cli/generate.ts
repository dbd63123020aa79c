/**
 * `framecost generate` (and `npm start`): generate a clip with the shipped
 * model, metered, and write every frame, a contact sheet, MP4, GIF and the
 * run record; end with what it cost.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { z } from "zod";
import type { Catalog } from "../cost/catalog.ts";
import { samplerNames } from "../diffusion/samplers/index.ts";
import { findFfmpeg } from "../media/ffmpeg.ts";
import { ensureWritableDir, lockDir, writeFileAtomic } from "../media/files.ts";
import { conventionUnit, toConvention } from "../meter/flops.ts";
import { type RunRecord, serializeRunRecord } from "../meter/record.ts";
import { presetNames } from "../model/config.ts";
import { readSamplingDefaults } from "../model/io.ts";
import { describeGuidance } from "../report/tables.ts";
import { checkGenerationOptions, DEFAULT_SAMPLING, runGeneration } from "../run/generation.ts";
import { catchStopSignals, type StopSignals } from "../util/signals.ts";
import {
  backendOpt,
  choiceOpt,
  intOpt,
  listOpt,
  numberOpt,
  parseOptions,
  pathOpt,
  stringOpt,
} from "./options.ts";

const Options = z.object({
  // default: the model folder's (model.json "sampling", a distilled student's own), else ddpm 20
  steps: intOpt({ min: 1, max: 1000 }).optional(),
  sampler: stringOpt().optional(),
  frames: intOpt({ min: 1, max: 10_000 }),
  fps: intOpt({ min: 1, max: 240 }),
  seed: intOpt({ min: 0 }),
  preset: stringOpt().optional(),
  model: pathOpt({ mustExist: "dir" }),
  backend: backendOpt().optional(),
  threads: intOpt({ min: 1, max: 256 }).optional(),
  device: choiceOpt(["cpu", "cuda"]),
  out: stringOpt(),
  json: z.boolean().default(false),
  convention: choiceOpt(["flops", "macs"]),
  eta: numberOpt({ min: 0, max: 1 }).optional(),
  guidance: numberOpt({ min: 0, max: 100 }).optional(),
  guide: pathOpt({ mustExist: "dir" }).optional(),
  guideFrom: intOpt({ min: 0, max: 1000 }).optional(),
  guideFrames: choiceOpt(["first", "all"]).optional(),
  localPrice: numberOpt({ min: 0, max: 10_000 }).optional(),
  watts: numberOpt({ min: 0.001, max: 100_000 }).optional(),
  kwhPrice: numberOpt({ min: 0, max: 100 }).optional(),
  gpus: listOpt(stringOpt()).optional(),
  catalog: pathOpt({ mustExist: "file" }).optional(),
  ffmpeg: pathOpt().optional(),
  ortProfile: z.boolean().default(false),
  scale: intOpt({ min: 1, max: 64 }),
  clips: intOpt({ min: 1, max: 1000 }),
  cacheInterval: intOpt({ min: 1, max: 1000 }),
  precision: choiceOpt(["fp32", "int8"]),
  batchCalls: choiceOpt(["on", "off"]),
});

type Opts = z.output<typeof Options>;

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}

/** The short summary `generate` ends with. */
export function formatSummary(r: RunRecord, costLines: string[]): string {
  const t = r.totals;
  const unit = conventionUnit(r.flopConvention);
  const conv = (v: number) => toConvention(v, r.flopConvention);
  const perFrame = t.frames > 0 ? t.wallMs / t.frames : Number.NaN;
  const minuteFrames = r.video.fps * 60;
  const g = r.sampler.guidance;
  const fc = r.sampler.featureCache;
  const levers = [
    ...(fc
      ? [
          `feature cache: full call every ${fc.interval}, blocks ${fc.fromBlock}..${fc.toBlock - 1} of ${fc.depth} reused between: ${t.cachedNfe ?? 0} of ${t.nfe} NFEs cached`,
        ]
      : []),
    ...(r.model.precision === "int8" ? ["int8 dense layers (integer ops counted in the FLOPs)"] : []),
    ...(r.batching
      ? [
          `batched: ${r.batching.clipsPerCall} clip(s) per call${r.batching.guideInSameCall ? ", model + guide in one call" : ""} (${t.calls} calls for ${t.nfe} NFEs)`,
        ]
      : []),
  ];
  const lines = [
    `${r.complete ? "done" : "INCOMPLETE"}: ${t.frames} frames ${r.video.width}x${r.video.height}, ${r.sampler.name} ${r.sampler.steps} steps = ${r.sampler.nfePerFrame} NFEs per frame (${t.nfe} NFEs, ${t.steps} steps in all) on ${r.backend.name}`,
    ...(g ? [`guidance  ${describeGuidance(g)}`] : []),
    ...(levers.length > 0 ? [`levers    ${levers.join("; ")}`] : []),
    `wall      ${fmtMs(perFrame)} per frame, ${r.nfeTiming.medianMs !== null ? fmtMs(r.nfeTiming.medianMs) : "n/a"} per NFE (median; first call ${r.nfeTiming.warmupMs !== null ? fmtMs(r.nfeTiming.warmupMs) : "n/a"}), ${fmtMs(t.wallMs)} in all`,
    `compute   ${(conv(r.model.flopsPerNfe) / 1e9).toFixed(3)} G${unit} per NFE (counted; analytic ${(conv(r.model.flopsPerNfeAnalytic ?? Number.NaN) / 1e9).toFixed(3)}), ${(conv(t.flops) / 1e9).toFixed(2)} G${unit} in all; ${r.throughput.gflops.toFixed(2)} GFLOP/s = ${(100 * r.throughput.utilization).toFixed(0)}% of the calibrated ${r.calibration.gemmGflops.toFixed(1)} GFLOP/s GEMM peak`,
    `memory    peak RSS ${(r.memory.peakRssBytes / 2 ** 20).toFixed(0)} MiB, peak tensors ${(r.memory.peakTensorBytes / 2 ** 20).toFixed(1)} MiB`,
    `local     ${((perFrame * minuteFrames) / 1000).toFixed(1)} s of this machine per minute of video (${minuteFrames} frames at ${r.video.fps} fps, measured)`,
    ...costLines,
  ];
  return lines.join("\n");
}

function progressReporter(json: boolean) {
  const tty = process.stderr.isTTY && !json;
  if (tty) {
    const bar = new SingleBar({
      format: "generate [{bar}] frame {frame}/{frames} step {step}/{steps} | {percentage}% | eta {eta}s",
      hideCursor: true,
      stream: process.stderr,
    });
    let started = false;
    return {
      update(p: { frame: number; frames: number; step: number; steps: number }) {
        const total = p.frames * p.steps;
        if (!started) {
          bar.start(total, 0, { frame: 1, frames: p.frames, step: 0, steps: p.steps });
          started = true;
        }
        bar.update(p.frame * p.steps + p.step, {
          frame: p.frame + 1,
          frames: p.frames,
          step: p.step,
          steps: p.steps,
        });
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  let lastFrame = -1;
  return {
    update(p: { frame: number; frames: number; step: number; steps: number }) {
      if (p.step === p.steps && p.frame !== lastFrame) {
        lastFrame = p.frame;
        process.stderr.write(`generate: frame ${p.frame + 1}/${p.frames} done (${p.steps} steps)\n`);
      }
    },
    stop() {},
  };
}

export async function generateCommand(opts: Opts): Promise<number> {
  const folder = readSamplingDefaults(opts.model);
  const o: Resolved = {
    ...opts,
    sampler: opts.sampler ?? folder?.sampler ?? DEFAULT_SAMPLING.sampler,
    steps: opts.steps ?? folder?.steps ?? DEFAULT_SAMPLING.steps,
  };
  checkGenerationOptions({
    sampler: o.sampler,
    steps: o.steps,
    frames: o.frames,
    preset: o.preset,
    cacheInterval: o.cacheInterval,
  });
  // a bad --catalog or a GPU it lacks fails now, not after the frames are made; only the catalog loads here,
  // the rest of the cost stage late (see generateInto)
  let catalog: Catalog | undefined;
  if (o.catalog !== undefined || o.gpus !== undefined) {
    const { getGpu, loadCatalog } = await import("../cost/catalog.ts");
    catalog = loadCatalog(o.catalog);
    for (const id of o.gpus ?? []) getGpu(catalog, id, "--gpus");
  }
  ensureWritableDir(o.out, "--out");
  // one run per folder: a second generate (or sweep) into it is refused while this one writes
  const lock = lockDir(o.out, "generate", "--out");
  const abort = new AbortController();
  const stop = catchStopSignals((signal) => {
    abort.abort();
    process.stderr.write(`\ninterrupted (${signal}): stopping within a step, writing what is done...\n`);
  });
  try {
    return await generateInto(o, catalog, stop, abort.signal);
  } finally {
    stop.dispose();
    lock.release();
  }
}

type Resolved = Opts & { sampler: string; steps: number };

async function generateInto(
  o: Resolved,
  catalog: Catalog | undefined,
  stop: StopSignals,
  abort: AbortSignal,
): Promise<number> {
  // The cost stage, sharp and fluent-ffmpeg load after the frames are made (dynamic imports below): kept out
  // of the generation phase they would add ~45 MB to its peak resident memory, which the record reports.
  const ffmpeg = await findFfmpeg({ explicitPath: o.ffmpeg });
  const progress = progressReporter(o.json);
  let result: Awaited<ReturnType<typeof runGeneration>>;
  try {
    result = await runGeneration({
      modelDir: o.model,
      preset: o.preset,
      sampler: o.sampler,
      steps: o.steps,
      frames: o.frames,
      clips: o.clips,
      fps: o.fps,
      seed: o.seed,
      backend: o.backend,
      cacheInterval: o.cacheInterval,
      precision: o.precision,
      batchCalls: o.batchCalls === "on",
      threads: o.threads,
      device: o.device,
      ortProfile: o.ortProfile,
      eta: o.eta,
      guidance: { weight: o.guidance, guideDir: o.guide, fromT: o.guideFrom, frames: o.guideFrames },
      convention: o.convention,
      onProgress: (p) => progress.update(p),
      shouldStop: () => stop.signal !== null,
    });
  } finally {
    progress.stop();
  }
  const { frames, config } = result;
  const record = result.record;
  if (stop.signal && frames.length === 0) {
    // nothing made: the folder keeps what it held before
    process.stderr.write(`framecost: interrupted before the first frame; nothing written to ${o.out}\n`);
    return stop.exitCode();
  }
  if (stop.signal) record.interrupted = { signal: stop.signal, during: "generating" };
  const { DEFAULT_SUMMARY_GPUS, formatRunCostSummary, summarizeRunCost } = await import("../cost/index.ts");
  const { contactSheet, frameToPng } = await import("../media/frames.ts");
  const { encodeVideo } = await import("../media/video.ts");
  const summary = summarizeRunCost(record, {
    localUsdPerHour: o.localPrice,
    watts: o.watts,
    kwhPriceUsd: o.kwhPrice,
    catalog,
    gpus: o.gpus ?? DEFAULT_SUMMARY_GPUS,
  });
  record.cost = summary.costSection;

  // files: an earlier run's record goes first (nothing may claim complete while frames change), then its
  // outputs (none of them may mix with this run's); frames next, run.json last, each written to a
  // temporary name and renamed
  const S = config.imageSize;
  const framesDir = join(o.out, "frames");
  const rawDir = join(o.out, "frames-raw");
  process.stderr.write(`generate: writing ${frames.length} frames to ${o.out}/\n`);
  rmSync(join(o.out, "run.json"), { force: true });
  for (const old of ["clip.mp4", "clip.gif", "contact-sheet.png", "frames", "frames-raw"])
    rmSync(join(o.out, old), { recursive: true, force: true });
  mkdirSync(framesDir, { recursive: true });
  mkdirSync(rawDir, { recursive: true });
  const pngs: string[] = [];
  for (let i = 0; i < frames.length; i++) {
    const name = `frame-${String(i).padStart(3, "0")}.png`;
    await frameToPng(frames[i], S, S, join(rawDir, name), { scale: 1 });
    await frameToPng(frames[i], S, S, join(framesDir, name), { scale: o.scale });
    pngs.push(join(framesDir, name));
  }
  await contactSheet(frames, S, S, join(o.out, "contact-sheet.png"), {
    scale: Math.min(o.scale, 4),
    labels: frames.map((_, i) => `${i}`),
  });
  const videos: string[] = [];
  try {
    for (const name of record.complete ? ["clip.mp4", "clip.gif"] : []) {
      if (stop.signal) break;
      process.stderr.write(`generate: encoding ${name}\n`);
      await encodeVideo(pngs, join(o.out, name), { fps: o.fps, ffmpegPath: ffmpeg.path, signal: abort });
      videos.push(name);
    }
  } catch (err) {
    if (!stop.signal) throw err; // ffmpeg killed by the stop (or by the terminal's Ctrl-C): an interruption
  }
  if (stop.signal && record.complete) {
    record.complete = false;
    record.interrupted = { signal: stop.signal, during: "writing" };
  }
  await writeFileAtomic(join(o.out, "run.json"), serializeRunRecord(record));

  if (o.json) process.stdout.write(serializeRunRecord(record));
  else {
    process.stdout.write(`${formatSummary(record, formatRunCostSummary(summary))}\n`);
    process.stdout.write(
      `wrote     ${o.out}/: frames/, frames-raw/, contact-sheet.png, ${videos.map((v) => `${v}, `).join("")}run.json\n`,
    );
  }
  if (!record.complete) {
    process.stderr.write(
      record.interrupted?.during === "writing"
        ? `framecost: interrupted while writing the video; ${o.out}/run.json is marked incomplete\n`
        : `framecost: generation interrupted after ${frames.length} of ${o.frames} frames; ${o.out}/run.json is marked incomplete\n`,
    );
    return stop.exitCode();
  }
  return 0;
}

export function register(program: Command): void {
  program
    .command("generate")
    .description(
      "generate a clip with the shipped model, metered; write frames, contact sheet, MP4, GIF, run.json",
    )
    .option(
      "--steps <n>",
      `sampler steps per frame (default: the model folder's, e.g. a distilled student's; else ${DEFAULT_SAMPLING.steps})`,
    )
    .option(
      "--sampler <name>",
      `sampler (${samplerNames().join(", ")}); ddpm, the stochastic one, gives the shipped model its cleanest shapes (default: the model folder's; else ${DEFAULT_SAMPLING.sampler})`,
    )
    .option("--frames <n>", "frames to generate, each conditioned on the ones before", "16")
    .option("--fps <n>", "frames per second of the video (a video minute = fps x 60 frames)", "24")
    .option("--seed <n>", "seed of the noise", "0")
    .option("--preset <name>", `model preset the weights must fit (${presetNames().join(", ")})`)
    .option("--model <dir>", "model folder (model.json + weights.bin)", "models/tiny")
    .option(
      "--backend <name>",
      "tensorflow | wasm | cpu | onnx (default: fastest available, by GEMM calibration)",
    )
    .option("--threads <n>", "onnx: intra-op threads (default: all cores)")
    .option("--device <name>", "onnx: cpu or cuda (needs onnxruntime-node's CUDA provider)", "cpu")
    .option("--out <dir>", "output folder", "out/generate")
    .option("--json", "print the run record as JSON on stdout and nothing else there")
    .option("--convention <name>", "flops (1 multiply-add = 2 FLOPs) or macs", "flops")
    .option("--eta <x>", "ddim: 0 deterministic, 1 DDPM-like")
    .option(
      "--guidance <w>",
      "autoguidance weight: D + w (D - guide); 0 = off (default: the model folder's, from its model.json)",
    )
    .option(
      "--guide <dir>",
      "guide model: an early snapshot of the same training run (default: the model folder's)",
    )
    .option("--guide-from <t>", "guide only calls at timesteps t >= this (default: the model folder's)")
    .option("--guide-frames <which>", "first (frames with no history) or all (default: the model folder's)")
    .option("--local-price <usd>", "price of an hour of this machine, USD")
    .option("--watts <w>", "power draw of this machine while generating")
    .option("--kwh-price <usd>", "electricity price, USD per kWh")
    .option("--gpus <ids>", "catalog GPUs to extrapolate to (default h100-sxm,a100-sxm,l40s,rtx-4090)")
    .option("--catalog <file>", "your own GPU catalog JSON, merged over the shipped one")
    .option("--ffmpeg <path>", "ffmpeg binary for MP4/GIF")
    .option("--ort-profile", "onnx: fold onnxruntime's per-node profile into the kernel table")
    .option("--scale <n>", "upscale of the viewing PNGs (nearest neighbour)", "8")
    .option("--clips <n>", "clips to generate (clip c from seed + c); files are written for the first", "1")
    .option(
      "--cache-interval <k>",
      "feature caching: every k-th call of a frame runs the whole network, the others reuse the middle blocks' residual (1 = off)",
      "1",
    )
    .option("--precision <p>", "fp32, or int8 (dynamically quantized dense layers; onnx only)", "fp32")
    .option(
      "--batch-calls <on|off>",
      "one batched call where two share a step: the clips as one batch, model + guide in one onnx run",
      "on",
    )
    .action(async (raw: Record<string, unknown>) => {
      const code = await generateCommand(parseOptions(Options, raw));
      if (code !== 0) process.exitCode = code;
    });
}
