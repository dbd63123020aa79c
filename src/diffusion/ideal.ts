/**
 * The ideal denoiser for a finite data set: if x0 is one of the reference
 * frames r_i (prior weights w_i) and x_t = a x0 + s eps (a = sqrt(abar),
 * s = sqrt(1 - abar)), the exact posterior mean is
 *   E[x0 | x_t] = sum_i softmax_i(log w_i - |x_t - a r_i|^2 / (2 s^2)) r_i.
 * Any sampler driven by it solves the true reverse process of that data set,
 * so tests can measure sampler error against known answers.
 */
import type { PredictionType } from "./prediction.ts";
import type { ModelFn } from "./sample.ts";
import type { NoiseSchedule } from "./schedule.ts";

export interface IdealDenoiser {
  /** dimension of one frame */
  dim: number;
  /** E[x0 | x_t] for one frame x_t ([dim]) at training timestep t */
  posteriorMean(xt: Float32Array, t: number): Float64Array;
  /** model function: x_t ([k*dim], k frames) -> eps or v prediction ([k*dim]) */
  model: ModelFn<unknown>;
}

export function makeIdealDenoiser(
  refs: readonly Float32Array[],
  schedule: NoiseSchedule,
  predictionType: PredictionType,
  weights?: readonly number[],
): IdealDenoiser {
  if (refs.length === 0) throw new Error("ideal denoiser: need at least one reference frame");
  const dim = refs[0].length;
  for (const r of refs)
    if (r.length !== dim) throw new Error("ideal denoiser: reference frames differ in size");
  const w = weights ?? refs.map(() => 1);
  if (w.length !== refs.length || w.some((v) => !(v > 0))) {
    throw new Error("ideal denoiser: need one positive weight per reference frame");
  }
  const logW = w.map((v) => Math.log(v));

  const posteriorMeanAt = (x: Float32Array, off: number, abar: number): Float64Array => {
    const a = Math.sqrt(abar);
    const s2 = 1 - abar;
    const logits = new Float64Array(refs.length);
    let max = -Infinity;
    for (let i = 0; i < refs.length; i++) {
      const r = refs[i];
      let d2 = 0;
      for (let j = 0; j < dim; j++) {
        const d = x[off + j] - a * r[j];
        d2 += d * d;
      }
      logits[i] = logW[i] - d2 / (2 * s2);
      if (logits[i] > max) max = logits[i];
    }
    let z = 0;
    for (let i = 0; i < refs.length; i++) {
      logits[i] = Math.exp(logits[i] - max);
      z += logits[i];
    }
    const m = new Float64Array(dim);
    for (let i = 0; i < refs.length; i++) {
      const p = logits[i] / z;
      if (p === 0) continue;
      const r = refs[i];
      for (let j = 0; j < dim; j++) m[j] += p * r[j];
    }
    return m;
  };

  const model: ModelFn<unknown> = async (x, t) => {
    if (x.length % dim !== 0)
      throw new Error(`ideal denoiser: input of ${x.length} is not a multiple of ${dim}`);
    const abar = schedule.alphasCumprod[t];
    if (abar === undefined) throw new Error(`ideal denoiser: timestep ${t} outside [0, ${schedule.T - 1}]`);
    const a = Math.sqrt(abar);
    const s = Math.sqrt(1 - abar);
    const out = new Float32Array(x.length);
    for (let off = 0; off < x.length; off += dim) {
      const m = posteriorMeanAt(x, off, abar);
      for (let j = 0; j < dim; j++) {
        const eps = (x[off + j] - a * m[j]) / s;
        out[off + j] = predictionType === "eps" ? eps : a * eps - s * m[j];
      }
    }
    return out;
  };

  return { dim, posteriorMean: (xt, t) => posteriorMeanAt(xt, 0, schedule.alphasCumprod[t]), model };
}

/**
 * The ideal denoiser for Gaussian data x0 ~ N(mean, std^2 I), the limit of
 * many reference frames: E[x0 | x_t] = mean + a std^2 (x_t - a mean) / (a^2 std^2 + s^2).
 * Its probability-flow ODE has a closed-form solution (gaussianFlowEndpoint),
 * so a sampler's discretisation error can be measured exactly.
 */
export function makeGaussianDenoiser(
  mean: number,
  std: number,
  schedule: NoiseSchedule,
  predictionType: PredictionType,
): ModelFn<unknown> {
  return async (x, t) => {
    const abar = schedule.alphasCumprod[t];
    if (abar === undefined)
      throw new Error(`gaussian denoiser: timestep ${t} outside [0, ${schedule.T - 1}]`);
    const a = Math.sqrt(abar);
    const s = Math.sqrt(1 - abar);
    const gain = (a * std * std) / (abar * std * std + s * s);
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const m = mean + gain * (x[i] - a * mean);
      const eps = (x[i] - a * m) / s;
      out[i] = predictionType === "eps" ? eps : a * eps - s * m;
    }
    return out;
  };
}

/**
 * Where the probability-flow ODE takes the VP sample x_t = z at timestep t
 * for Gaussian data: in sigma space (x = x_t / a, sigma^2 = (1 - abar) / abar)
 * x - mean scales with sqrt(std^2 + sigma^2), so
 * x0 = mean + (z / a - mean) std / sqrt(std^2 + sigma^2).
 */
export function gaussianFlowEndpoint(
  z: Float32Array,
  t: number,
  mean: number,
  std: number,
  schedule: NoiseSchedule,
): Float64Array {
  const abar = schedule.alphasCumprod[t];
  const a = Math.sqrt(abar);
  const sigma2 = (1 - abar) / abar;
  const k = std / Math.sqrt(std * std + sigma2);
  const out = new Float64Array(z.length);
  for (let i = 0; i < z.length; i++) out[i] = mean + (z[i] / a - mean) * k;
  return out;
}
