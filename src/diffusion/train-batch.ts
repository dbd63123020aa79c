/**
 * One training batch, built on the host: synthetic clips -> (noisy frame,
 * K clean previous frames, timestep) -> network inputs, v (or eps) targets
 * and per-row loss weights (min-SNR-gamma, Hang et al. 2023).
 */
import { clipFrames } from "../data/clips.ts";
import { inputSlots, type ModelConfig, patchInputDim, patchOutputDim, tokensOf } from "../model/config.ts";
import { type NetworkInputs, patchifyFrames, prepareInputs } from "../model/dit.ts";
import { Rng } from "../util/rng.ts";
import type { NoiseSchedule } from "./schedule.ts";

export interface BatchOptions {
  /** probability that a sample gets no context at all (how the first frame of a clip is trained) */
  pUncond: number;
  /** probability that a sample gets only part of its context (the second frame of a clip) */
  pPartial: number;
  /** context frames get N(0, sigma^2) noise with sigma uniform in [0, contextNoise]: robustness to generated context */
  contextNoise: number;
  /** min-SNR gamma for loss weights; 0 = unweighted */
  minSnrGamma: number;
  /**
   * SNR floor of the weights (with minSnrGamma > 0): the x0-error weight is SNR clamped to [snrFloor, gamma]
   * instead of min(SNR, gamma), so high-noise steps (SNR < floor) weigh as much as SNR = floor
   * (Salimans & Ho 2022's truncated SNR, max(SNR, 1)); 0 = off
   */
  snrFloor: number;
  /** frames per synthetic clip the samples are drawn from */
  clipFrames: number;
  /** self-conditioned models: share of samples that see the network's own estimate (the rest see it missing) */
  pSelfCond: number;
}

export const DEFAULT_BATCH_OPTIONS: BatchOptions = {
  pUncond: 0.3,
  pPartial: 0.1,
  contextNoise: 0.05,
  minSnrGamma: 5,
  snrFloor: 0,
  clipFrames: 32,
  pSelfCond: 0.5,
};

export interface TrainBatch {
  inputs: NetworkInputs;
  /** [T*B, p*p*C] regression target in the network's output layout */
  target: Float32Array;
  /** [T*B] loss weight per row (row = token * B + b) */
  rowWeight: Float32Array;
  /** [B] alpha-bar of each sample's timestep */
  abar: Float64Array;
  /** [B] each sample's timestep */
  t: Float64Array;
  /** [B] 1 where a self-conditioned model gets its own estimate of the sample (applySelfCond) */
  selfCond: Uint8Array;
}

/**
 * Clip seeds are drawn below `seedLimit` so held-out seeds (data/clips.ts) never appear in training.
 */
export function makeTrainBatch(
  cfg: ModelConfig,
  schedule: NoiseSchedule,
  batch: number,
  seed: number,
  seedLimit: number,
  opts: BatchOptions = DEFAULT_BATCH_OPTIONS,
  /** draws a sample's timestep (distillation: the student's grid); default uniform over [0, T-1] */
  pickT?: (rng: Rng) => number,
): TrainBatch {
  const rng = new Rng(seed);
  const K = cfg.contextFrames;
  const n = cfg.imageSize * cfg.imageSize * cfg.channels;
  const x0 = new Float32Array(batch * n);
  const xt = new Float32Array(batch * n);
  const tgt = new Float32Array(batch * n);
  const ctx = new Float32Array(batch * K * n);
  const mask = new Float32Array(batch * K);
  const ts = new Float64Array(batch);
  const weight = new Float32Array(batch);
  for (let b = 0; b < batch; b++) {
    const clipSeed = rng.int(0, seedLimit - 1);
    const idx = rng.int(K, opts.clipFrames - 1);
    const frames = clipFrames(clipSeed, idx - K, idx, { size: cfg.imageSize });
    x0.set(frames[K], b * n);
    const u = rng.next();
    // how many of the K most recent frames this sample sees
    const seen = u < opts.pUncond ? 0 : u < opts.pUncond + opts.pPartial ? rng.int(1, Math.max(1, K - 1)) : K;
    const sigma = rng.uniform(0, opts.contextNoise);
    for (let k = K - seen; k < K; k++) {
      mask[b * K + k] = 1;
      const src = frames[k];
      const off = (b * K + k) * n;
      for (let i = 0; i < n; i++) ctx[off + i] = src[i] + sigma * rng.normal();
    }
    const t = pickT ? pickT(rng) : rng.int(0, schedule.T - 1);
    ts[b] = t;
    const abar = schedule.alphasCumprod[t];
    const sa = Math.sqrt(abar);
    const s1 = Math.sqrt(1 - abar);
    for (let i = 0; i < n; i++) {
      const e = rng.normal();
      const x = x0[b * n + i];
      xt[b * n + i] = sa * x + s1 * e;
      tgt[b * n + i] = cfg.prediction === "v" ? sa * e - s1 * x : e;
    }
    weight[b] = lossWeight(abar / (1 - abar), cfg.prediction, opts.minSnrGamma, opts.snrFloor);
  }
  // drawn after everything else, so models without self-conditioning see the batches they always did
  const selfCond = new Uint8Array(batch);
  if (cfg.selfCond) for (let b = 0; b < batch; b++) selfCond[b] = rng.next() < opts.pSelfCond ? 1 : 0;
  const inputs = prepareInputs(cfg, batch, xt, ctx, mask, ts);
  const target = patchifyFrames(cfg, batch, tgt);
  const tokens = (cfg.imageSize / cfg.patch) ** 2;
  const rowWeight = new Float32Array(tokens * batch);
  for (let r = 0; r < rowWeight.length; r++) rowWeight[r] = weight[r % batch];
  const abars = Float64Array.from(ts, (t) => schedule.alphasCumprod[t]);
  return { inputs, target, rowWeight, abar: abars, t: ts, selfCond };
}

/**
 * Self-conditioning's second pass (Chen et al. 2022): writes the clean-frame estimate implied by
 * `prediction` ([T*B, p*p*C], the network on this batch with the estimate missing) into the
 * self-conditioning slot of the samples marked in `batch.selfCond`, clipped to [-1, 1]. It is an input,
 * not a function of the parameters: no gradient flows through it.
 */
export function applySelfCond(cfg: ModelConfig, batch: TrainBatch, prediction: Float32Array): void {
  const B = batch.inputs.batch;
  const R = tokensOf(cfg) * B;
  const P = patchInputDim(cfg);
  const Q = patchOutputDim(cfg);
  const C = cfg.channels;
  const cin = C * inputSlots(cfg);
  const slot = C * (cfg.contextFrames + 1);
  if (!cfg.selfCond) throw new Error(`applySelfCond: model "${cfg.name}" is not self-conditioned`);
  if (prediction.length !== R * Q)
    throw new Error(`applySelfCond: prediction has ${prediction.length} values, the batch needs ${R * Q}`);
  const { tokens, missing } = batch.inputs;
  for (let row = 0; row < R; row++) {
    const b = row % B;
    if (!batch.selfCond[b]) continue;
    const a = Math.sqrt(batch.abar[b]);
    const s = Math.sqrt(1 - batch.abar[b]);
    for (let q = 0; q < cfg.patch * cfg.patch; q++) {
      for (let c = 0; c < C; c++) {
        const xt = tokens[row * P + q * cin + c];
        const y = prediction[row * Q + q * C + c];
        const x0 = cfg.prediction === "v" ? a * xt - s * y : (xt - s * y) / a;
        const at = row * P + q * cin + slot + c;
        tokens[at] = Math.max(-1, Math.min(1, x0));
        missing[at] = 0;
      }
    }
  }
}

/**
 * The loss weight of one sample on the network's own target (v or eps) at signal-to-noise ratio `snr`.
 * On the clean-frame error |x0 - x0_hat|^2 the weight is min(SNR, gamma) (min-SNR-gamma), or SNR clamped to
 * [floor, gamma] with a floor; the v error is (SNR + 1) times the x0 error and the eps error SNR times, so
 * the weight on v or eps is that divided by SNR + 1 or SNR. gamma 0: uniform (1) on the target.
 */
export function lossWeight(snr: number, prediction: "v" | "eps", gamma: number, floor = 0): number {
  if (gamma <= 0) return 1;
  return Math.min(Math.max(snr, floor), gamma) / (prediction === "v" ? snr + 1 : snr);
}

/**
 * Per-row loss weights scaled by 1 / (rows * features), so that sum(w (out - target)^2)
 * is the weighted mean both training engines minimise ([T*B] values, one per row).
 */
export function meanLossWeights(batch: TrainBatch): Float32Array {
  const n = batch.target.length; // rows x features
  return batch.rowWeight.map((x) => x / n);
}
