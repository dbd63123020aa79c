/**
 * One metered generation: load the model on a backend, then frame after
 * frame run the sampler from noise, each frame conditioned on the last K
 * generated ones, with every network call going through the meter. Returns
 * the frames and the RunRecord; writing files is the caller's job. Used by
 * `generate` and by each `sweep` cell.
 */

import { join } from "node:path";
import { frameRng } from "../diffusion/rng.ts";
import { sampleFrame } from "../diffusion/sample.ts";
import { makeSampler, samplerNames } from "../diffusion/samplers/index.ts";
import { makeSchedule } from "../diffusion/schedule.ts";
import { checkSteps } from "../diffusion/timesteps.ts";
import { initBackend } from "../engine/backend.ts";
import { calibrateGemm } from "../engine/calibrate.ts";
import { calibrateOnnxGemm, probeOnnx, requireOnnx } from "../engine/onnx.ts";
import { analyticFlopsPerCall } from "../meter/analytic.ts";
import type { FlopConvention } from "../meter/flops.ts";
import { describeDevice, Meter } from "../meter/meter.ts";
import { onnxKernelCounter } from "../meter/onnx-flops.ts";
import type { RunRecord } from "../meter/record.ts";
import { type ModelConfig, PRESETS, presetNames } from "../model/config.ts";
import { VideoDiT } from "../model/dit.ts";
import { type GuidanceDefaults, type GuideFrames, loadWeights } from "../model/io.ts";
import { OnnxDiT } from "../model/onnx-export.ts";
import { paramCount } from "../model/params.ts";
import { UserError } from "../util/errors.ts";

export interface GenerationOptions {
  /** model folder (model.json + weights.bin) */
  modelDir: string;
  /** preset the weights must fit (refused by shape otherwise) */
  preset?: string;
  sampler: string;
  steps: number;
  /** frames per clip */
  frames: number;
  /** clips, one after another, each from noise (clip c uses seed + c); default 1 */
  clips?: number;
  fps: number;
  seed: number;
  /** tensorflow | wasm | cpu | onnx; undefined = fastest available by GEMM calibration */
  backend?: string;
  /** onnx intra-op threads */
  threads?: number;
  /** onnx device */
  device?: "cpu" | "cuda";
  /** onnx: fold ORT's per-node profile into the kernel table */
  ortProfile?: boolean;
  /** DDIM's eta */
  eta?: number;
  /**
   * autoguidance: undefined = the model folder's own default (model.json "guidance", none if absent);
   * a weight of 0 turns it off; fields given here replace the folder's
   */
  guidance?: Partial<Guidance>;
  convention: FlopConvention;
  /** reuse a calibration (sweeps calibrate once) */
  calibration?: { gemmGflops: number; backend: string };
  onProgress?: (p: { frame: number; frames: number; step: number; steps: number; nfe: number }) => void;
  shouldStop?: () => boolean;
}

export interface GenerationResult {
  config: ModelConfig;
  /** completed frames of the first clip, [H, W, 3] in [-1, 1] */
  frames: Float32Array[];
  /** completed frames of every clip */
  clips: Float32Array[][];
  record: RunRecord;
  stopped: boolean;
}

/**
 * Autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad version of itself"): at a call
 * with t >= fromT the prediction is D + weight * (D - G), where G is the same network less trained (the
 * training run's early EMA snapshot). It pushes a sample away from where the weaker model errs, so shapes
 * commit to clean outlines; each guided call costs a second network evaluation, metered as one.
 */
export interface Guidance {
  /** the guide's model folder */
  guideDir: string;
  weight: number;
  fromT: number;
  /** "first": only frames with no history (made from nothing; later frames follow their context); "all" */
  frames: GuideFrames;
}

/** The guidance a run uses: the model folder's default with `o` over it; null when off. */
export function resolveGuidance(
  modelDir: string,
  defaults: GuidanceDefaults | undefined,
  o: Partial<Guidance> | undefined,
): Guidance | null {
  const guideDir = o?.guideDir ?? (defaults ? join(modelDir, defaults.guide) : undefined);
  const weight = o?.weight ?? defaults?.weight ?? (o?.guideDir ? DEFAULT_GUIDANCE_WEIGHT : 0);
  const fromT = o?.fromT ?? defaults?.fromT ?? 0;
  const frames = o?.frames ?? defaults?.frames ?? "all";
  if (!(Number.isFinite(weight) && weight >= 0))
    throw new UserError(`--guidance must be a number >= 0 (0 = off), got ${weight}`);
  if (!(Number.isInteger(fromT) && fromT >= 0))
    throw new UserError(`--guide-from must be an integer timestep >= 0, got ${fromT}`);
  if (weight === 0) return null;
  if (guideDir === undefined) {
    throw new UserError(
      `--guidance ${weight} needs a guide model, and ${join(modelDir, "model.json")} names none; pass --guide DIR (an early snapshot of the same training run)`,
    );
  }
  return { guideDir, weight, fromT, frames };
}

/** Guidance a user asks for with --guide DIR and no --guidance. */
export const DEFAULT_GUIDANCE_WEIGHT = 2;

/** The guide must be the same network (an earlier state of it): every NFE then costs the same. */
export function checkGuide(main: ModelConfig, guide: ModelConfig, guideDir: string): void {
  const keys = [...new Set([...Object.keys(main), ...Object.keys(guide)])] as Array<keyof ModelConfig>;
  const differ = keys.filter((k) => JSON.stringify(main[k]) !== JSON.stringify(guide[k]));
  if (differ.length > 0) {
    throw new UserError(
      `guide ${guideDir} is not the same network as the model (${differ.map((k) => `${k} ${JSON.stringify(guide[k])} vs ${JSON.stringify(main[k])}`).join(", ")}); pass a snapshot of the same preset (checkpoints/<run>/snapshot-10min)`,
    );
  }
}

interface Network {
  predict(
    x: Float32Array,
    t: number[],
    ctx: Float32Array | null,
    mask: number[] | null,
    selfCond: Float32Array | null,
  ): Promise<Float32Array>;
  dispose(): void;
}

interface Context {
  frames: Float32Array;
  mask: number[];
  /** a self-conditioned model's previous estimate of this frame (null before the first call) */
  selfCond: Float32Array | null;
}

/** Validates what can be checked before loading anything; throws UserErrors with the fix. */
export function checkGenerationOptions(
  o: Pick<GenerationOptions, "sampler" | "steps" | "frames" | "preset">,
): void {
  if (!samplerNames().includes(o.sampler as never)) {
    throw new UserError(`--sampler must be one of ${samplerNames().join(", ")}, got "${o.sampler}"`);
  }
  if (o.preset !== undefined && !PRESETS[o.preset]) {
    throw new UserError(`--preset must be one of ${presetNames().join(", ")}, got "${o.preset}"`);
  }
  if (!Number.isInteger(o.frames) || o.frames < 1)
    throw new UserError(`--frames must be an integer >= 1, got ${o.frames}`);
  checkSteps(o.steps, 1000);
}

/** The backend to run on and why: forced, or the fastest by calibrated GEMM GFLOP/s. */
async function chooseBackend(o: GenerationOptions): Promise<{
  name: string;
  reason: string;
  calibration: { gemmGflops: number; backend: string };
}> {
  const threads = o.threads;
  if (o.backend === "onnx") {
    const probe = await requireOnnx();
    const cal = o.calibration ?? {
      gemmGflops: (await calibrateOnnxGemm({ threads })).gflops,
      backend: "onnx",
    };
    return {
      name: "onnx",
      reason: `forced by --backend onnx (onnxruntime-node ${probe.version})`,
      calibration: cal,
    };
  }
  if (o.backend !== undefined) {
    const choice = await initBackend(o.backend);
    const cal = o.calibration ?? { gemmGflops: (await calibrateGemm()).gflops, backend: choice.name };
    return { ...choice, calibration: cal };
  }
  const tfChoice = await initBackend();
  const tfGflops = (await calibrateGemm()).gflops;
  const probe = await probeOnnx();
  if (probe.available) {
    const onnxGflops = (await calibrateOnnxGemm({ threads })).gflops;
    if (onnxGflops > tfGflops) {
      return {
        name: "onnx",
        reason: `auto: fastest by GEMM calibration (onnx ${onnxGflops.toFixed(1)} GFLOP/s > ${tfChoice.name} ${tfGflops.toFixed(1)} GFLOP/s)`,
        calibration: { gemmGflops: onnxGflops, backend: "onnx" },
      };
    }
  }
  return {
    name: tfChoice.name,
    reason: `${tfChoice.reason}; GEMM ${tfGflops.toFixed(1)} GFLOP/s${probe.available ? "" : `; onnx unavailable: ${probe.reason}`}`,
    calibration: { gemmGflops: tfGflops, backend: tfChoice.name },
  };
}

/** A model loaded on a backend, ready to generate; a sweep worker keeps one across its cells. */
export interface LoadedNetwork {
  config: ModelConfig;
  net: Network;
  /** the guide network and how it guides; null = unguided */
  guide: { net: Network; guidance: Guidance } | null;
  backend: { name: string; reason: string; calibration: { gemmGflops: number; backend: string } };
  /** a fresh meter for one run, counting kernels the way this backend can */
  meter(): Meter;
}

/** Loads the weights and builds the network on the chosen backend (calibrating it unless given). */
export async function loadNetwork(o: GenerationOptions): Promise<LoadedNetwork> {
  checkGenerationOptions(o);
  const expect = o.preset ? PRESETS[o.preset] : undefined;
  const { config, flat, manifest } = loadWeights(o.modelDir, expect);
  const guidance = resolveGuidance(o.modelDir, manifest.guidance, o.guidance);
  const guideWeights = guidance ? loadWeights(guidance.guideDir) : null;
  if (guidance && guideWeights) checkGuide(config, guideWeights.config, guidance.guideDir);
  const backend = await chooseBackend(o);
  if (backend.name === "onnx") {
    const make = (w: Float32Array) =>
      OnnxDiT.create(config, w, { threads: o.threads, device: o.device ?? "cpu" });
    const onnx = await make(flat);
    const guide = guidance && guideWeights ? { net: await make(guideWeights.flat), guidance } : null;
    // FLOPs from the ONNX graph's nodes (optionally with ORT's own per-node times); no tfjs tensors are held.
    // The guide runs the same graph, so the model's counter serves its calls too
    const meter = () =>
      new Meter({ countKernels: onnxKernelCounter(onnx, { profile: o.ortProfile }), tensorBytes: () => 0 });
    return { config, net: onnx, guide, backend, meter };
  }
  // FLOPs from the tfjs kernels that actually ran
  const guide = guidance && guideWeights ? { net: new VideoDiT(config, guideWeights.flat), guidance } : null;
  return { config, net: new VideoDiT(config, flat), guide, backend, meter: () => new Meter() };
}

/**
 * Generates `o.clips` clips. With `loaded`, runs on that network and leaves it
 * loaded (the caller disposes it); otherwise loads one for this run and
 * disposes it at the end.
 */
export async function runGeneration(o: GenerationOptions, loaded?: LoadedNetwork): Promise<GenerationResult> {
  checkGenerationOptions(o);
  const l = loaded ?? (await loadNetwork(o));
  try {
    return await generateWith(o, l, l.meter());
  } finally {
    if (!loaded) {
      l.net.dispose();
      l.guide?.net.dispose();
    }
  }
}

async function generateWith(o: GenerationOptions, l: LoadedNetwork, meter: Meter): Promise<GenerationResult> {
  const { config: cfg, net, backend } = l;
  const schedule = makeSchedule("cosine", cfg.trainTimesteps);
  const sampler = makeSampler(o.sampler, schedule, { predictionType: cfg.prediction, eta: o.eta });
  checkSteps(o.steps, schedule.T);
  const K = cfg.contextFrames;
  const n = cfg.imageSize * cfg.imageSize * cfg.channels;
  const call = (m: Network) =>
    meter.wrap<Context>((x, t, ctx) => m.predict(x, [t], ctx.frames, ctx.mask, ctx.selfCond));
  const metered = call(net);
  const guide = l.guide ? { metered: call(l.guide.net), ...l.guide.guidance } : null;
  // wasm resolves its results as already-settled promises, so without this the loop never yields to the
  // event loop and Ctrl-C (or a sweep's stop message) would not be seen until the whole clip is done
  const network = async (x: Float32Array, t: number, ctx: Context) => {
    const y = await metered(x, t, ctx);
    if (guide && t >= guide.fromT && (guide.frames === "all" || ctx.mask.every((m) => m === 0))) {
      const g = await guide.metered(x, t, ctx);
      for (let i = 0; i < y.length; i++) y[i] += guide.weight * (y[i] - g[i]);
    }
    await new Promise((resolve) => setImmediate(resolve));
    return y;
  };
  const clips: Float32Array[][] = [];
  let stopped = false;
  sampler.setTimesteps(o.steps);
  const guidedCalls = guide ? sampler.timesteps.filter((t) => t >= guide.fromT).length : 0;
  // a frame with history; with guidance on first frames only, the first frame of a clip adds guidedCalls
  const nfePerFrame = sampler.nfeFor(o.steps) + (guide?.frames === "all" ? guidedCalls : 0);
  const nClips = o.clips ?? 1;
  let index = 0;
  for (let c = 0; c < nClips && !stopped; c++) {
    const frames: Float32Array[] = [];
    clips.push(frames);
    for (let i = 0; i < o.frames; i++) {
      // the K most recent generated frames; slot K-1 is the newest, missing ones use the learned empty context
      const ctx: Context = { frames: new Float32Array(K * n), mask: new Array(K).fill(0), selfCond: null };
      for (let k = 0; k < K; k++) {
        const src = frames[frames.length - K + k];
        if (src) {
          ctx.frames.set(src, k * n);
          ctx.mask[k] = 1;
        }
      }
      meter.beginFrame(index++);
      const stepHook = meter.stepHook();
      const res = await sampleFrame({
        model: network,
        context: ctx,
        sampler,
        steps: o.steps,
        shape: n,
        rng: frameRng(o.seed + c, i),
        shouldStop: o.shouldStop,
        onStep: (info) => {
          // the next call sees this one's clean-frame estimate (self-conditioning)
          // (clipped to the data range, as in training: applySelfCond)
          if (cfg.selfCond) ctx.selfCond = info.predX0.map((v) => Math.max(-1, Math.min(1, v)));
          stepHook(info);
          o.onProgress?.({
            frame: c * o.frames + i,
            frames: nClips * o.frames,
            step: info.step,
            steps: o.steps,
            nfe: info.nfe,
          });
        },
      });
      meter.addSamplerFlops(res.samplerFlops);
      meter.endFrame();
      if (res.stopped) {
        stopped = true;
        break;
      }
      frames.push(res.sample.map((v) => Math.max(-1, Math.min(1, v))));
    }
  }
  const done = clips.reduce((a, f) => a + f.length, 0);
  const record = meter.toRecord({
    complete: !stopped && done === nClips * o.frames,
    backend: { name: backend.name, reason: backend.reason },
    device: describeDevice(),
    model: {
      name: cfg.name,
      params: paramCount(cfg),
      flopsPerNfeAnalytic: analyticFlopsPerCall(cfg, "flops", 1),
      config: { ...cfg, modelDir: o.modelDir },
    },
    sampler: {
      name: o.sampler,
      steps: o.steps,
      nfePerFrame,
      schedule: schedule.kind,
      spacing: "trailing",
      guidance: guide
        ? {
            kind: "autoguidance",
            guide: guide.guideDir,
            weight: guide.weight,
            fromT: guide.fromT,
            frames: guide.frames,
            guideCallsPerFrame: guidedCalls,
          }
        : null,
    },
    // the frames asked for: readers print `totals.frames of video.frames` (a run stopped before its first frame has 0 of N)
    video: { frames: nClips * o.frames, fps: o.fps, width: cfg.imageSize, height: cfg.imageSize },
    seed: o.seed,
    flopConvention: o.convention,
    calibration: backend.calibration,
  });
  return { config: cfg, frames: clips[0] ?? [], clips, record, stopped };
}
