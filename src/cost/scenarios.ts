/**
 * Production-scale scenarios computed analytically from a model's shape:
 * FLOPs per network call (attention's quadratic term and text cross-attention
 * included), NFEs from steps and guidance, GPU-seconds at a stated MFU, USD
 * per clip and per video minute, energy from board power, and the
 * once-per-clip work (text encoder, VAE decoder) reported apart.
 *
 * A video minute is fps x 60 frames: clips of `frames` frames, as many as it
 * takes (a fraction of a clip counts as that fraction of its cost).
 */
import { type FlopConvention, toConvention } from "../meter/flops.ts";
import { UserError } from "../util/errors.ts";
import {
  type ClipFlops,
  type Derived,
  defaultMfu,
  type ParallelModel,
  parallelModel,
  speedup,
} from "./calibration.ts";
import {
  type Catalog,
  type ChosenPrice,
  chosenPrice,
  type Gpu,
  missingPriceReason,
  requirePrice,
} from "./catalog.ts";
import {
  type Clip,
  callsPerStep,
  type DitShape,
  type NfeFlops,
  nfeFlops,
  promptsPerClip,
  textEncoderFlops,
  tokenGrid,
  vaeDecoderFlops,
} from "./shapes.ts";

export interface ScenarioOptions {
  shape: DitShape;
  clip: Clip;
  fps: number;
  steps: number;
  cfg: boolean;
  gpu: Gpu;
  catalog: Catalog;
  /** overrides the catalog's price */
  priceUsdPerHour?: number;
  /** overrides the GPU's calibrated MFU */
  mfu?: number;
  /** sequence-parallel GPUs per clip (default 1) */
  gpus?: number;
  kwhPriceUsd?: number;
  convention?: FlopConvention;
  /** multiplies the per-NFE network time (feature caching, lower precision); 1 = none */
  networkTimeFactor?: number;
  /** what the network time factor stands for, for the assumptions list */
  networkTimeNote?: string;
}

export interface Assumption {
  name: string;
  value: string;
  source: string;
}

export interface Scenario {
  model: { id: string; label: string; params: number | null; source: string };
  clip: Clip & {
    fps: number;
    seconds: number;
    latentFrames: number;
    tokensPerNfe: number;
    textTokens: number;
  };
  convention: FlopConvention;
  steps: number;
  cfg: boolean;
  nfePerStep: number;
  /** network calls per clip */
  nfe: number;
  /** per network call, in the convention */
  flopsPerNfe: number;
  breakdownPerNfe: Omit<NfeFlops, "tokens" | "textTokens" | "total">;
  networkFlops: number;
  oncePerClip: { textEncoderFlops: number; vaeDecoderFlops: number; gpuSeconds: number; usd: number };
  /** network + once-per-clip, in the convention */
  totalFlops: number;
  gpu: { id: string; name: string; peakTflops: number; boardPowerW: number };
  price: ChosenPrice;
  /** null: priced; an UnpricedScenario says here why it has no USD figures and how to give a price */
  priceMissing: string | null;
  mfu: Derived;
  gpus: number;
  parallel: { speedup: number; efficiency: number; serialFraction: number; source: string };
  /** wall clock per clip */
  wallSeconds: number;
  /** billed GPU time per clip: gpus x wall */
  gpuSeconds: number;
  usdPerClip: number;
  clipsPerVideoMinute: number;
  usdPerVideoMinute: number;
  energy: {
    whPerClip: number;
    whPerVideoMinute: number;
    kwhPriceUsd: number | null;
    usdPerClip: number | null;
    usdPerVideoMinute: number | null;
  };
  assumptions: Assumption[];
}

/**
 * A scenario on a GPU with no rental price on record (and none given): time,
 * energy and FLOPs as usual, every USD figure null and `priceMissing` saying
 * how to give a price.
 */
export type UnpricedScenario = Omit<
  Scenario,
  "price" | "priceMissing" | "usdPerClip" | "usdPerVideoMinute" | "oncePerClip"
> & {
  price: null;
  priceMissing: string;
  usdPerClip: null;
  usdPerVideoMinute: null;
  oncePerClip: Omit<Scenario["oncePerClip"], "usd"> & { usd: null };
};

/** FLOPs of one clip (in FLOPs, whatever the convention). */
export function clipFlops(
  shape: DitShape,
  clip: Clip,
  steps: number,
  cfg: boolean,
): ClipFlops & { per: NfeFlops } {
  const per = nfeFlops(shape, clip);
  const calls = shape.generation === "frame" ? clip.frames : 1;
  const nfe = calls * steps * callsPerStep(shape, cfg);
  const grid = tokenGrid(shape, clip);
  const text = shape.textEncoder ? textEncoderFlops(shape.textEncoder) * promptsPerClip(cfg) : 0;
  const vae = shape.vae
    ? vaeDecoderFlops(shape.vae, grid.latentFrames * calls, grid.latentHeight, grid.latentWidth)
    : 0;
  return {
    per,
    nfe,
    flopsPerNfe: per.total,
    networkFlops: per.total * nfe,
    textEncoderFlops: text,
    vaeDecoderFlops: vae,
    oncePerClipFlops: text + vae,
    totalFlops: per.total * nfe + text + vae,
  };
}

function check(o: ScenarioOptions): void {
  const bad = (flag: string, v: number, what: string) => {
    throw new UserError(`${flag} must be ${what}, got ${v}`);
  };
  if (!(o.steps > 0)) bad("--steps", o.steps, "> 0");
  if (!Number.isInteger(o.clip.frames) || o.clip.frames < 1)
    bad("--frames", o.clip.frames, "an integer >= 1");
  if (!(o.fps > 0)) bad("--fps", o.fps, "> 0");
  if (o.mfu !== undefined && !(o.mfu > 0 && o.mfu <= 1)) bad("--mfu", o.mfu, "in (0, 1]");
  if (o.gpus !== undefined && (!Number.isInteger(o.gpus) || o.gpus < 1))
    bad("--gpus", o.gpus, "an integer >= 1");
}

/** Evaluates one scenario; throws a UserError for impossible inputs or a GPU without a price. */
export function evaluateScenario(o: ScenarioOptions): Scenario {
  return compute(o, requirePrice(o.gpu, o.priceUsdPerHour)) as Scenario;
}

/**
 * Like evaluateScenario, but a GPU with no price on record is no error: the
 * answer keeps its time, energy and FLOPs and leaves the USD figures null.
 */
export function evaluateScenarioOrUnpriced(o: ScenarioOptions): Scenario | UnpricedScenario {
  return compute(o, chosenPrice(o.gpu, o.priceUsdPerHour));
}

function compute(o: ScenarioOptions, price: ChosenPrice | null): Scenario | UnpricedScenario {
  check(o);
  const convention = o.convention ?? "flops";
  const c = (x: number) => toConvention(x, convention);
  const f = clipFlops(o.shape, o.clip, o.steps, o.cfg);
  const grid = tokenGrid(o.shape, o.clip);
  const mfu: Derived =
    o.mfu !== undefined ? { value: o.mfu, source: "--mfu (user)" } : defaultMfu(o.catalog, o.gpu);
  const n = o.gpus ?? 1;
  const par: ParallelModel = parallelModel(o.gpu);
  const sp = n === 1 ? 1 : speedup(par, n);
  const peak = o.gpu.bf16DenseTflops.value * 1e12;
  const timeFactor = o.networkTimeFactor ?? 1;
  // one GPU: every FLOP at the same delivered rate peak x MFU
  const networkSeconds1 = (f.networkFlops * timeFactor) / (peak * mfu.value);
  const onceSeconds1 = f.oncePerClipFlops / (peak * mfu.value);
  const wallSeconds = (networkSeconds1 + onceSeconds1) / sp;
  const gpuSeconds = wallSeconds * n;
  const usdPerGpuSecond = price ? price.usdPerHour / 3600 : null;
  const usdPerClip = usdPerGpuSecond === null ? null : gpuSeconds * usdPerGpuSecond;
  const clipsPerVideoMinute = (o.fps * 60) / o.clip.frames;
  const whPerClip = (o.gpu.boardPowerW.value * gpuSeconds) / 3600;
  const kwh = o.kwhPriceUsd ?? null;
  const assumptions: Assumption[] = [
    {
      name: "flops",
      value: "matrix products only (linear layers, attention's two products, convolutions); 1 MAC = 2 FLOPs",
      source: "fvcore / DiT paper counting; PyTorch FlopCounterMode's 2-FLOP MAC",
    },
    {
      name: "model shape",
      value: o.shape.label,
      // a preset's date (a user's config file has none: "given")
      source: /^\d{4}/.test(o.shape.asOf) ? `${o.shape.source}, ${o.shape.asOf}` : o.shape.source,
    },
    {
      name: "peak",
      value: `${o.gpu.bf16DenseTflops.value} TFLOP/s dense BF16`,
      source: `${o.gpu.bf16DenseTflops.source}, ${o.gpu.bf16DenseTflops.asOf}`,
    },
    { name: "mfu", value: mfu.value.toFixed(3), source: mfu.source },
    price
      ? { name: "price", value: `${price.usdPerHour} USD/GPU-hour`, source: `${price.source}, ${price.asOf}` }
      : { name: "price", value: "none: USD figures left out", source: missingPriceReason(o.gpu) },
    {
      name: "video minute",
      value: `${o.fps} fps x 60 = ${o.fps * 60} frames = ${clipsPerVideoMinute.toFixed(3)} clips of ${o.clip.frames} frames`,
      source: "DESIGN.md: a video minute is fps x 60 frames",
    },
    {
      name: "once per clip",
      value: `text encoder ${o.shape.textEncoder ? `${o.shape.textEncoder.name}, ${o.shape.textEncoder.tokens} tokens${o.cfg ? " x 2 prompts (CFG)" : ""}` : "none"}; VAE decoder ${o.shape.vae ? `${o.shape.vae.name}${o.shape.vae.exact ? "" : " (estimate)"}` : "none"}; same MFU as the network`,
      source: [o.shape.textEncoder?.source, o.shape.vae?.source].filter(Boolean).join("; ") || "n/a",
    },
    {
      name: "energy",
      value: `board power ${o.gpu.boardPowerW.value} W for the whole GPU time (GPU only: no host, cooling or idle)`,
      source: `${o.gpu.boardPowerW.source}, ${o.gpu.boardPowerW.asOf}`,
    },
  ];
  if (o.shape.vaeStride[0] > 1 && (o.clip.frames - 1) % o.shape.vaeStride[0] !== 0) {
    assumptions.push({
      name: "frames",
      value: `${o.clip.frames} is not ${o.shape.vaeStride[0]}n+1: latent frames rounded up to ${grid.latentFrames}`,
      source: `causal video VAEs keep the first frame and compress the rest ${o.shape.vaeStride[0]}x in time: latent frames = 1 + (frames - 1) / ${o.shape.vaeStride[0]} (Wan technical report, arXiv 2503.20314, 2025; HunyuanVideo, arXiv 2412.03603, 2024; CogVideoX, arXiv 2408.06072, 2024)`,
    });
  }
  if (n > 1) {
    assumptions.push({
      name: "sequence parallel",
      value: `${n} GPUs per clip, serial fraction ${par.serialFraction.toFixed(4)} -> speed-up ${sp.toFixed(3)}`,
      source: par.source,
    });
  }
  if (timeFactor !== 1) {
    assumptions.push({
      name: "network time factor",
      value: timeFactor.toFixed(4),
      source: o.networkTimeNote ?? "given",
    });
  }
  return {
    model: { id: o.shape.id, label: o.shape.label, params: o.shape.params, source: o.shape.source },
    clip: {
      ...o.clip,
      fps: o.fps,
      seconds: o.clip.frames / o.fps,
      latentFrames: grid.latentFrames,
      tokensPerNfe: grid.tokens,
      textTokens: o.shape.text.mode === "none" ? 0 : o.shape.text.tokens,
    },
    convention,
    steps: o.steps,
    cfg: o.cfg,
    nfePerStep: callsPerStep(o.shape, o.cfg),
    nfe: f.nfe,
    flopsPerNfe: c(f.flopsPerNfe),
    breakdownPerNfe: {
      linear: c(f.per.linear),
      attention: c(f.per.attention),
      crossAttention: c(f.per.crossAttention),
      embedding: c(f.per.embedding),
    },
    networkFlops: c(f.networkFlops),
    oncePerClip: {
      textEncoderFlops: c(f.textEncoderFlops),
      vaeDecoderFlops: c(f.vaeDecoderFlops),
      gpuSeconds: (onceSeconds1 / sp) * n,
      usd: usdPerGpuSecond === null ? null : (onceSeconds1 / sp) * n * usdPerGpuSecond,
    },
    totalFlops: c(f.totalFlops),
    gpu: {
      id: o.gpu.id,
      name: o.gpu.name,
      peakTflops: o.gpu.bf16DenseTflops.value,
      boardPowerW: o.gpu.boardPowerW.value,
    },
    price,
    priceMissing: price ? null : missingPriceReason(o.gpu),
    mfu,
    gpus: n,
    parallel: { speedup: sp, efficiency: sp / n, serialFraction: par.serialFraction, source: par.source },
    wallSeconds,
    gpuSeconds,
    usdPerClip,
    clipsPerVideoMinute,
    usdPerVideoMinute: usdPerClip === null ? null : usdPerClip * clipsPerVideoMinute,
    energy: {
      whPerClip,
      whPerVideoMinute: whPerClip * clipsPerVideoMinute,
      kwhPriceUsd: kwh,
      usdPerClip: kwh === null ? null : (whPerClip / 1000) * kwh,
      usdPerVideoMinute: kwh === null ? null : ((whPerClip * clipsPerVideoMinute) / 1000) * kwh,
    },
    assumptions,
    // price and the USD fields are null together (the union's two members)
  } as Scenario | UnpricedScenario;
}
