/**
 * The sampler interface (as diffusers' schedulers) and what all samplers share.
 *
 * Use: setTimesteps(n); x = initNoiseSigma * noise; then for each t of
 * `timesteps` (one entry per network call, in order):
 *   out = model(scaleModelInput(x, t), t); x = step(out, t, x, rng).prevSample
 * The model is always called with the variance-preserving x_t at an integer
 * training timestep t; samplers that integrate in sigma space (Euler, Heun)
 * keep x = x_t / sqrt(abar_t) and scale it back in scaleModelInput.
 * step() returns new arrays and never writes into its inputs; callers must not
 * write into a sample they passed to step() (Heun keeps it for its correction).
 */
import { UserError } from "../../util/errors.ts";
import type { Rng } from "../../util/rng.ts";
import { ElementwiseOps } from "../ops.ts";
import { epsCoefficients, type PredictionType, x0Coefficients } from "../prediction.ts";
import type { NoiseSchedule } from "../schedule.ts";
import { checkSteps, makeTimesteps, type TimestepSpacing } from "../timesteps.ts";

export type SamplerName = "ddpm" | "ddim" | "euler" | "heun" | "dpmpp-2m";

export interface SamplerOptions {
  /** what the model predicts; default "eps" */
  predictionType?: PredictionType;
  /** which training timesteps n steps visit; default "trailing" (starts at T-1, see timesteps.ts) */
  spacing?: TimestepSpacing;
  /** DDIM's eta: 0 = deterministic DDIM, 1 = DDPM-like noise; default 0; other samplers refuse eta != 0 */
  eta?: number;
  /** clamp predX0 into [-c, c] (ddpm, ddim; diffusers' clip_sample); default off */
  clipSample?: number;
  /** cap on the starting noise level (euler, heun; see sigma.ts); default 80 for heun, no cap (Infinity) for euler */
  sigmaMax?: number;
}

export interface StepResult {
  /** the sample after this call, in the sampler's own space (see scaleModelInput) */
  prevSample: Float32Array;
  /** the clean sample predicted at this call, in data space */
  predX0: Float32Array;
}

export interface Sampler {
  readonly name: SamplerName;
  readonly schedule: NoiseSchedule;
  readonly predictionType: PredictionType;
  readonly spacing: TimestepSpacing;
  /** 1 = first-order solver, 2 = second-order */
  readonly order: 1 | 2;
  /** false when step() draws noise (ddpm, ddim with eta > 0) */
  readonly deterministic: boolean;
  /** network evaluations that n steps will take, known before running */
  nfeFor(n: number): number;
  setTimesteps(n: number): void;
  /** steps set by setTimesteps */
  readonly numInferenceSteps: number;
  /** model timesteps in call order; length === nfeFor(numInferenceSteps) */
  readonly timesteps: readonly number[];
  /** standard deviation of the starting noise in the sampler's space */
  readonly initNoiseSigma: number;
  scaleModelInput(sample: Float32Array, t: number): Float32Array;
  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: Rng): StepResult;
  /** whether network call `callIndex` (0-based) completes a sampler step (Heun: every second call, and the last) */
  completesStep(callIndex: number): boolean;
  /** arithmetic FLOPs outside the network of call `callIndex` (scaleModelInput + step), for `numel` elements */
  flopsForCall(callIndex: number, numel: number): number;
  /** sum of flopsForCall over all calls of the current timesteps */
  totalFlops(numel: number): number;
  /** FLOPs actually performed by this sampler instance so far */
  readonly flopsCounted: number;
}

export abstract class BaseSampler implements Sampler {
  abstract readonly name: SamplerName;
  abstract readonly order: 1 | 2;
  readonly deterministic: boolean = true;
  readonly predictionType: PredictionType;
  readonly spacing: TimestepSpacing;
  numInferenceSteps = 0;
  timesteps: number[] = [];
  initNoiseSigma = 1;
  /** the n spaced timesteps (equal to timesteps except for Heun) */
  protected spaced: number[] = [];
  protected readonly ops = new ElementwiseOps();
  /** index into timesteps of the next call */
  protected callIndex = 0;

  constructor(
    readonly schedule: NoiseSchedule,
    opts: SamplerOptions = {},
  ) {
    this.predictionType = opts.predictionType ?? "eps";
    this.spacing = opts.spacing ?? "trailing";
    if (opts.sigmaMax !== undefined && !this.takesSigmaMax()) {
      throw new UserError(
        `sigmaMax applies only to the euler and heun samplers, got sigmaMax ${opts.sigmaMax}; drop sigmaMax or use euler or heun`,
      );
    }
  }

  /** whether opts.sigmaMax means something here (the sigma-space samplers); called from the constructor */
  protected takesSigmaMax(): boolean {
    return false;
  }

  get flopsCounted(): number {
    return this.ops.flops;
  }

  nfeFor(n: number): number {
    checkSteps(n, this.schedule.T);
    return n;
  }

  setTimesteps(n: number): void {
    checkSteps(n, this.schedule.T);
    this.numInferenceSteps = n;
    this.spaced = makeTimesteps(this.spacing, this.schedule.T, n);
    this.timesteps = this.callTimesteps(this.spaced);
    this.callIndex = 0;
    this.reset();
  }

  /** model timesteps per call from the n spaced timesteps (Heun repeats them) */
  protected callTimesteps(spaced: number[]): number[] {
    return spaced;
  }

  /** clear multistep state */
  protected reset(): void {}

  scaleModelInput(sample: Float32Array, t: number): Float32Array {
    this.checkCall(t);
    return sample;
  }

  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: Rng): StepResult {
    this.checkCall(t);
    if (modelOutput.length !== sample.length) {
      throw new Error(`model output has ${modelOutput.length} elements, sample has ${sample.length}`);
    }
    const r = this.stepAt(this.callIndex, modelOutput, sample, rng);
    this.callIndex++;
    return r;
  }

  protected abstract stepAt(i: number, out: Float32Array, sample: Float32Array, rng?: Rng): StepResult;

  completesStep(_callIndex: number): boolean {
    return true;
  }

  abstract flopsForCall(callIndex: number, numel: number): number;

  totalFlops(numel: number): number {
    let f = 0;
    for (let i = 0; i < this.timesteps.length; i++) f += this.flopsForCall(i, numel);
    return f;
  }

  /** abar at training timestep t; t = -1 is the clean end (abar = 1, diffusers' set_alpha_to_one) */
  protected abar(t: number): number {
    return t < 0 ? 1 : this.schedule.alphasCumprod[t];
  }

  /** the spaced timestep after call i's, or -1 after the last */
  protected nextT(i: number): number {
    return i + 1 < this.timesteps.length ? this.timesteps[i + 1] : -1;
  }

  /**
   * predicted x0 from the model output at timestep t, where the model saw
   * x_t = xScale * x (1 for VP samplers); 3 FLOPs/element
   */
  protected x0From(out: Float32Array, x: Float32Array, t: number, xScale = 1): Float32Array {
    const [cx, co] = x0Coefficients(this.predictionType, this.abar(t));
    return this.ops.lin2(cx * xScale, x, co, out);
  }

  /** predicted eps (eps-prediction: the output itself, 0 FLOPs; v: 3 FLOPs/element) */
  protected epsFrom(out: Float32Array, xt: Float32Array, t: number): Float32Array {
    if (this.predictionType === "eps") return out;
    const [cx, co] = epsCoefficients(this.predictionType, this.abar(t));
    return this.ops.lin2(cx, xt, co, out);
  }

  private checkCall(t: number): void {
    if (this.timesteps.length === 0) throw new Error(`${this.name}: call setTimesteps(n) before sampling`);
    if (this.callIndex >= this.timesteps.length) {
      throw new Error(`${this.name}: all ${this.timesteps.length} calls done; call setTimesteps(n) again`);
    }
    if (t !== this.timesteps[this.callIndex]) {
      throw new Error(
        `${this.name}: expected timestep ${this.timesteps[this.callIndex]} at call ${this.callIndex}, got ${t}`,
      );
    }
  }
}

/** sigma = sqrt((1 - abar) / abar): the noise level of x_t / sqrt(abar) (Karras et al. 2022) */
export function sigmaOf(abar: number): number {
  return Math.sqrt((1 - abar) / abar);
}

export function refuseEta(name: SamplerName, opts: SamplerOptions): void {
  if (opts.eta !== undefined && opts.eta !== 0) {
    throw new UserError(
      `eta applies only to the ddim sampler, got eta ${opts.eta} with ${name}; drop --eta or use ddim`,
    );
  }
}

export function needRng(name: string, rng: Rng | undefined): Rng {
  if (!rng) throw new Error(`${name}: this sampler draws noise; pass an Rng to step()`);
  return rng;
}
