/**
 * One metered generation: load the model on a backend, then frame after
 * frame run the sampler from noise, each frame conditioned on the last K
 * generated ones, with every network call going through the meter. Returns
 * the frames and the RunRecord; writing files is the caller's job. Used by
 * `generate` and by each `sweep` cell.
 */

import { join } from "node:path";
import { BatchRng, frameRng } from "../diffusion/rng.ts";
import { sampleFrame } from "../diffusion/sample.ts";
import { makeSampler, samplerNames } from "../diffusion/samplers/index.ts";
import { makeSchedule } from "../diffusion/schedule.ts";
import { checkSteps } from "../diffusion/timesteps.ts";
import { initBackend } from "../engine/backend.ts";
import { calibrateGemm } from "../engine/calibrate.ts";
import { calibrateOnnxGemm, probeOnnx, requireOnnx } from "../engine/onnx.ts";
import { analyticFlopsPerCall } from "../meter/analytic.ts";
import type { FlopConvention } from "../meter/flops.ts";
import { describeDevice, Meter, type MeterSummary } from "../meter/meter.ts";
import { onnxKernelCounter } from "../meter/onnx-flops.ts";
import type { RunRecord } from "../meter/record.ts";
import { type ModelConfig, PRESETS, presetNames } from "../model/config.ts";
import { cacheBlocks, VideoDiT } from "../model/dit.ts";
import { type GuidanceDefaults, type GuideFrames, loadWeights } from "../model/io.ts";
import { OnnxDiT, type Precision } from "../model/onnx-export.ts";
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
  /**
   * feature caching (DeepCache-style): every K-th call of a frame runs the whole network, the calls between
   * skip the middle blocks and reuse their residual; 1 (default) = off
   */
  cacheInterval?: number;
  /** fp32 (default) or int8: the blocks' dense layers dynamically quantized (onnx backend only) */
  precision?: Precision;
  /**
   * one call where two share a step: the clips of a run as one batch (clip c still from seed + c), and on
   * onnx the model with its guide in one session run; default false (the CLI's default is on)
   */
  batchCalls?: boolean;
  /** reuse a calibration (sweeps calibrate once) */
  calibration?: { gemmGflops: number; backend: string };
  onProgress?: (p: GenerationProgress) => void;
  shouldStop?: () => boolean;
}

/** The sampler and steps a run uses where neither the caller nor the model folder (model.json "sampling") names them. */
export const DEFAULT_SAMPLING = { sampler: "ddpm", steps: 20 };

/** After every network call: where the run is, what the call saw and predicted, and the meter so far. */
export interface GenerationProgress {
  /** frame index in the run (clip c's frame i is c * frames + i) */
  frame: number;
  frames: number;
  /** sampler steps of this frame completed */
  step: number;
  steps: number;
  /** network calls of this frame so far */
  nfe: number;
  /** network calls of a frame (the record's sampler.nfePerFrame) */
  nfePerFrame: number;
  /** the timestep of this call */
  t: number;
  /** the first clip's x_t at this call, [H, W, 3] (variance-preserving; sampler space scaled back); read only */
  xt: Float32Array;
  /** the first clip's clean frame predicted at this call (guided), [H, W, 3]; read only */
  predX0: Float32Array;
  /** the first clip's sample after this call; once step === steps, the finished frame (before clipping) */
  sample: Float32Array;
  /** the meter's totals so far (the open frame's NFEs and FLOPs are in them, its wall time is not) */
  totals: RunRecord["totals"];
  /** the meter's measurements so far: timings, kernels (a few hundred microseconds: read it when needed) */
  metered: () => MeterSummary;
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

/** How one call runs: plain, or a feature-cache full / cached call (with the cached residuals); with the guide. */
interface NetCall {
  cache?: "full" | "cached";
  pair?: boolean;
  deltas?: Float32Array[];
}

interface Network {
  predictWith(
    x: Float32Array,
    t: number[],
    ctx: Float32Array | null,
    mask: number[] | null,
    selfCond: Float32Array | null,
    call: NetCall,
  ): Promise<{ predictions: Float32Array[]; deltas: Float32Array[] }>;
  /** runs the guide in the same call (`pair`) */
  readonly hasGuide?: boolean;
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
  o: Pick<GenerationOptions, "sampler" | "steps" | "frames" | "preset" | "cacheInterval">,
): void {
  const k = o.cacheInterval ?? 1;
  if (!Number.isInteger(k) || k < 1)
    throw new UserError(`--cache-interval must be an integer >= 1 (1 = no feature caching), got ${k}`);
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
  precision: Precision;
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
  const precision = o.precision ?? "fp32";
  if (backend.name === "onnx") {
    const make = (w: Float32Array, pairWith?: Float32Array) =>
      OnnxDiT.create(config, w, {
        threads: o.threads,
        device: o.device ?? "cpu",
        precision,
        guide: pairWith,
      });
    // with batched calls the model's graphs can hold the guide too: a guided step is one session run
    const onnx = await make(flat, o.batchCalls ? guideWeights?.flat : undefined);
    const guideNet = guidance && guideWeights ? await make(guideWeights.flat) : null;
    const guide = guidance && guideNet ? { net: guideNet, guidance } : null;
    // FLOPs from the ONNX graph each call ran (optionally with ORT's own per-node times); no tfjs tensors
    const models = guideNet ? [onnx, guideNet] : [onnx];
    const meter = () =>
      new Meter({ countKernels: onnxKernelCounter(models, { profile: o.ortProfile }), tensorBytes: () => 0 });
    return { config, net: onnx, guide, backend, precision, meter };
  }
  if (precision !== "fp32") {
    throw new UserError(
      `--precision ${precision} runs on onnxruntime only, and this run is on ${backend.name}; pass --backend onnx, or --precision fp32`,
    );
  }
  // FLOPs from the tfjs kernels that actually ran
  const guide = guidance && guideWeights ? { net: new VideoDiT(config, guideWeights.flat), guidance } : null;
  return { config, net: new VideoDiT(config, flat), guide, backend, precision, meter: () => new Meter() };
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
  const nClips = o.clips ?? 1;
  // clips made together: one batch of every clip when calls are batched, else one clip at a time
  const G = o.batchCalls ? nClips : 1;
  const guide = l.guide ? { net: l.guide.net, ...l.guide.guidance } : null;
  const pairGuide = guide !== null && o.batchCalls === true && net.hasGuide === true;
  const interval = o.cacheInterval ?? 1;
  const [fromBlock, toBlock] = cacheBlocks(cfg);

  // one metered function per (network, call kind): each has its own FLOPs; cached ones count as cachedNfe
  type CallCtx = Context & { call: NetCall };
  type Which = "model" | "guide" | "pair";
  let last: { predictions: Float32Array[]; deltas: Float32Array[] } = { predictions: [], deltas: [] };
  let analyticFlops = 0;
  const wrapped = new Map<string, (x: Float32Array, t: number, ctx: CallCtx) => Promise<Float32Array>>();
  const run = async (which: Which, x: Float32Array, t: number, ctx: Context, call: NetCall) => {
    const key = `${which}|${call.cache ?? "plain"}`;
    let fn = wrapped.get(key);
    if (!fn) {
      const m = which === "guide" && guide ? guide.net : net;
      fn = meter.wrap<CallCtx>(
        async (xs, ts, c) => {
          last = await m.predictWith(xs, new Array(G).fill(ts), c.frames, c.mask, c.selfCond, c.call);
          return last.predictions[0];
        },
        { nfePerCall: G * (which === "pair" ? 2 : 1), cached: call.cache === "cached" },
      );
      wrapped.set(key, fn);
    }
    await fn(x, t, { ...ctx, call });
    analyticFlops += (which === "pair" ? 2 : 1) * analyticFlopsPerCall(cfg, "flops", G, call.cache);
    return last;
  };
  // feature cache of each network: the residual of its latest full call in this frame, and that call's index
  let cacheM: { delta: Float32Array | null; at: number } = { delta: null, at: -1 };
  let cacheG: { delta: Float32Array | null; at: number } = { delta: null, at: -1 };
  let callIndex = 0;
  // full on every interval-th call of the frame (or when the residual is not from this interval's full call)
  const modeFor = (c: typeof cacheM, i: number): NetCall["cache"] =>
    interval <= 1
      ? undefined
      : i % interval === 0 || c.delta === null || c.at !== i - (i % interval)
        ? "full"
        : "cached";
  const withDeltas = (mode: NetCall["cache"], ds: (Float32Array | null)[]): NetCall =>
    mode === "cached" ? { cache: mode, deltas: ds as Float32Array[] } : { cache: mode };
  // wasm resolves its results as already-settled promises, so without this the loop never yields to the
  // event loop and Ctrl-C (or a sweep's stop message) would not be seen until the whole clip is done
  const network = async (x: Float32Array, t: number, ctx: Context) => {
    const i = callIndex++;
    const guided =
      guide !== null && t >= guide.fromT && (guide.frames === "all" || ctx.mask.every((m) => m === 0));
    let y: Float32Array;
    let g: Float32Array | null = null;
    if (guided && pairGuide) {
      const mM = modeFor(cacheM, i);
      const mode = mM === "full" || modeFor(cacheG, i) === "full" ? "full" : mM;
      const r = await run("pair", x, t, ctx, {
        ...withDeltas(mode, [cacheM.delta, cacheG.delta]),
        pair: true,
      });
      [y, g] = r.predictions;
      if (mode === "full") {
        cacheM = { delta: r.deltas[0], at: i };
        cacheG = { delta: r.deltas[1], at: i };
      }
    } else {
      const mode = modeFor(cacheM, i);
      const r = await run("model", x, t, ctx, withDeltas(mode, [cacheM.delta]));
      y = r.predictions[0];
      if (mode === "full") cacheM = { delta: r.deltas[0], at: i };
      if (guided) {
        const mg = modeFor(cacheG, i);
        const rg = await run("guide", x, t, ctx, withDeltas(mg, [cacheG.delta]));
        g = rg.predictions[0];
        if (mg === "full") cacheG = { delta: rg.deltas[0], at: i };
      }
    }
    if (guide && g) for (let j = 0; j < y.length; j++) y[j] += guide.weight * (y[j] - g[j]);
    await new Promise((resolve) => setImmediate(resolve));
    return y;
  };
  const clips: Float32Array[][] = [];
  let stopped = false;
  const metered = () => meter.summary();
  sampler.setTimesteps(o.steps);
  const guidedCalls = guide ? sampler.timesteps.filter((t) => t >= guide.fromT).length : 0;
  // a frame with history; with guidance on first frames only, the first frame of a clip adds guidedCalls
  const nfePerFrame = sampler.nfeFor(o.steps) + (guide?.frames === "all" ? guidedCalls : 0);
  let index = 0;
  for (let c0 = 0; c0 < nClips && !stopped; c0 += G) {
    const group = Array.from({ length: Math.min(G, nClips - c0) }, (_, j) => c0 + j);
    for (const _ of group) clips.push([]);
    const B = group.length;
    for (let i = 0; i < o.frames; i++) {
      // per clip, the K most recent generated frames; slot K-1 is the newest, missing ones use the learned empty context
      const ctx: Context = {
        frames: new Float32Array(B * K * n),
        mask: new Array(B * K).fill(0),
        selfCond: null,
      };
      group.forEach((c, b) => {
        const frames = clips[c];
        for (let k = 0; k < K; k++) {
          const src = frames[frames.length - K + k];
          if (src) {
            ctx.frames.set(src, (b * K + k) * n);
            ctx.mask[b * K + k] = 1;
          }
        }
      });
      meter.beginFrame(index);
      index += B;
      callIndex = 0;
      cacheM = { delta: null, at: -1 };
      cacheG = { delta: null, at: -1 };
      const stepHook = meter.stepHook();
      const rngs = group.map((c) => frameRng(o.seed + c, i));
      const res = await sampleFrame({
        model: network,
        context: ctx,
        sampler,
        steps: o.steps,
        shape: B * n,
        rng: B === 1 ? rngs[0] : new BatchRng(rngs),
        shouldStop: o.shouldStop,
        onStep: (info) => {
          // the next call sees this one's clean-frame estimate (self-conditioning)
          // (clipped to the data range, as in training: applySelfCond)
          if (cfg.selfCond) ctx.selfCond = info.predX0.map((v) => Math.max(-1, Math.min(1, v)));
          stepHook(info);
          o.onProgress?.({
            frame: group[0] * o.frames + i * B + (info.step === o.steps ? B - 1 : 0),
            frames: nClips * o.frames,
            step: info.step,
            steps: o.steps,
            nfe: info.nfe,
            nfePerFrame,
            t: info.t,
            xt: info.xt.subarray(0, n),
            predX0: info.predX0.subarray(0, n),
            sample: info.sample.subarray(0, n),
            totals: meter.totalsNow(),
            metered,
          });
        },
      });
      meter.addSamplerFlops(res.samplerFlops);
      meter.endFrames(B);
      if (res.stopped) {
        stopped = true;
        break;
      }
      group.forEach((c, b) => {
        clips[c].push(res.sample.subarray(b * n, (b + 1) * n).map((v) => Math.max(-1, Math.min(1, v))));
      });
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
      // with feature caching, the formula over the calls as they were made (full and cached)
      flopsPerNfeAnalytic:
        interval > 1 && meter.summary().totals.nfe > 0
          ? analyticFlops / meter.summary().totals.nfe
          : analyticFlopsPerCall(cfg, "flops", 1),
      config: { ...cfg, modelDir: o.modelDir },
      precision: l.precision,
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
      ...(interval > 1
        ? { featureCache: { kind: "deepcache" as const, interval, fromBlock, toBlock, depth: cfg.depth } }
        : {}),
    },
    ...(G > 1 || pairGuide ? { batching: { clipsPerCall: G, guideInSameCall: pairGuide } } : {}),
    // the frames asked for: readers print `totals.frames of video.frames` (a run stopped before its first frame has 0 of N)
    video: { frames: nClips * o.frames, fps: o.fps, width: cfg.imageSize, height: cfg.imageSize },
    seed: o.seed,
    flopConvention: o.convention,
    calibration: backend.calibration,
  });
  return { config: cfg, frames: clips[0] ?? [], clips, record, stopped };
}
