/**
 * The sampling loop: noise to one frame. The model is only a function
 * (x_t, t, context) -> prediction; the loop never knows what it is (the meter
 * wraps it from outside). One entry of `sampler.timesteps` is one network call.
 */
import type { Rng } from "../util/rng.ts";
import type { Sampler } from "./samplers/base.ts";

export type ModelFn<C> = (x: Float32Array, t: number, context: C) => Promise<Float32Array>;

export interface StepInfo {
  /** sampler steps completed so far (Heun completes one per two calls) */
  step: number;
  totalSteps: number;
  /** network calls so far */
  nfe: number;
  totalNfe: number;
  /** the timestep of the call just made */
  t: number;
  /** what the network saw at this call: the variance-preserving x_t (scaleModelInput); read only */
  xt: Float32Array;
  /** the clean sample predicted at this call */
  predX0: Float32Array;
  /** the sample after this call (sampler space; once every step is done, the frame before clipping) */
  sample: Float32Array;
}

export interface SampleFrameOptions<C> {
  model: ModelFn<C>;
  context: C;
  sampler: Sampler;
  steps: number;
  /** elements per sample (e.g. H*W*3, times a batch) */
  shape: number;
  /** draws the initial noise, then the step noise of stochastic samplers */
  rng: Rng;
  onStep?: (info: StepInfo) => void;
  /** checked before every network call; true stops the loop there */
  shouldStop?: () => boolean;
}

export interface SampleFrameResult {
  /** the final sample; when stopped, the sample where the loop stopped (still noisy) */
  sample: Float32Array;
  /** the last predicted clean sample (the initial noise if no call was made) */
  predX0: Float32Array;
  /** network calls made */
  nfe: number;
  /** sampler steps completed */
  steps: number;
  stopped: boolean;
  /** sampler arithmetic outside the network, FLOPs actually performed (DESIGN.md convention) */
  samplerFlops: number;
}

export async function sampleFrame<C>(opts: SampleFrameOptions<C>): Promise<SampleFrameResult> {
  const { model, context, sampler, steps, shape, rng, onStep, shouldStop } = opts;
  if (!Number.isInteger(shape) || shape < 1)
    throw new Error(`sampleFrame: shape must be a positive integer, got ${shape}`);
  sampler.setTimesteps(steps);
  const totalNfe = sampler.nfeFor(steps);
  if (sampler.timesteps.length !== totalNfe) {
    throw new Error(
      `${sampler.name}: states ${totalNfe} NFEs for ${steps} steps but has ${sampler.timesteps.length} timesteps`,
    );
  }
  const flops0 = sampler.flopsCounted;
  let x = rng.normals(shape);
  if (sampler.initNoiseSigma !== 1) {
    const k = sampler.initNoiseSigma;
    for (let i = 0; i < shape; i++) x[i] *= k;
  }
  const initFlops = sampler.initNoiseSigma !== 1 ? shape : 0;
  let predX0 = x;
  let nfe = 0;
  let done = 0;
  let stopped = false;
  for (let i = 0; i < totalNfe; i++) {
    if (shouldStop?.()) {
      stopped = true;
      break;
    }
    const t = sampler.timesteps[i];
    const input = sampler.scaleModelInput(x, t);
    const out = await model(input, t, context);
    nfe++;
    if (out.length !== shape) {
      throw new Error(`model returned ${out.length} elements for an input of ${shape} at t=${t}`);
    }
    const r = sampler.step(out, t, x, rng);
    x = r.prevSample;
    predX0 = r.predX0;
    if (sampler.completesStep(i)) done++;
    onStep?.({ step: done, totalSteps: steps, nfe, totalNfe, t, xt: input, predX0, sample: x });
  }
  return {
    sample: x,
    predX0,
    nfe,
    steps: done,
    stopped,
    samplerFlops: sampler.flopsCounted - flops0 + initFlops,
  };
}
