/**
 * Shared by the samplers that integrate the probability-flow ODE in sigma
 * space (Karras et al. 2022; diffusers' Euler/Heun): the sample is
 * x = x_t / sqrt(abar_t) = x0 + sigma eps, sigma_t = sqrt((1 - abar_t) / abar_t),
 * and the network sees x_t = x / sqrt(sigma^2 + 1).
 *
 * sigmaMax caps the starting noise level, as EDM does (Karras et al. 2022,
 * table 1: sigma_max = 80): spaced timesteps whose sigma exceeds it move down
 * to tMax, the largest training timestep with sigma <= sigmaMax, or the steps
 * are respaced below it where that would repeat one (capSpaced); the initial
 * noise is scaled to sigma(tMax). Off (Infinity) unless a
 * sampler sets a default: Euler keeps diffusers' EulerDiscreteScheduler
 * behaviour, and needs the cap little: its first step uses only the start
 * slope, nearly x / sigma up there, so a long first step costs it almost
 * nothing (Gaussian-data errors with the cap: within 0.5% on cosine, within
 * 7% on linear, lower where the steps get respaced; pinned in the tests).
 * Heun caps at 80 by default (see heun.ts).
 */
import { UserError } from "../../util/errors.ts";
import type { NoiseSchedule } from "../schedule.ts";
import { makeTimesteps } from "../timesteps.ts";
import { BaseSampler, type SamplerOptions } from "./base.ts";

export abstract class SigmaSpaceSampler extends BaseSampler {
  /** highest sigma any call sees; Infinity = no cap */
  readonly sigmaMax: number;
  /** the largest training timestep with sigma <= sigmaMax (T-1 without a cap) */
  protected readonly tMax: number;

  constructor(
    schedule: NoiseSchedule,
    opts: SamplerOptions = {},
    defaultSigmaMax = Number.POSITIVE_INFINITY,
  ) {
    super(schedule, opts);
    this.sigmaMax = opts.sigmaMax ?? defaultSigmaMax;
    if (typeof this.sigmaMax !== "number" || !(this.sigmaMax > 0)) {
      throw new UserError(
        `sigmaMax must be a number > 0 (80 as in Karras et al. 2022, Infinity for no cap), got ${this.sigmaMax}`,
      );
    }
    let tMax = -1;
    for (let t = 0; t < schedule.T; t++) if (this.sigma(t) <= this.sigmaMax) tMax = t;
    if (tMax < 0) {
      throw new UserError(
        `sigmaMax ${this.sigmaMax} is below every noise level of the ${schedule.kind} schedule (smallest sigma ${this.sigma(0).toPrecision(4)}); use e.g. sigmaMax 80`,
      );
    }
    this.tMax = tMax;
  }

  protected override takesSigmaMax(): boolean {
    return true;
  }

  override setTimesteps(n: number): void {
    super.setTimesteps(n);
    if (this.spaced.some((t) => t > this.tMax)) {
      this.spaced = this.capSpaced(this.spaced, n);
      this.timesteps = this.callTimesteps(this.spaced);
    }
    // x = sqrt(sigma^2 + 1) z is x_t = z in variance-preserving space, so every sampler starts alike
    this.initNoiseSigma = Math.sqrt(this.sigma(this.timesteps[0]) ** 2 + 1);
  }

  /**
   * Timesteps above tMax become tMax. Where that makes two steps equal, a
   * zero-length step would still cost its network calls, so the n steps are
   * spaced over [0, tMax] instead, by the same rule (EDM's discretisation of
   * discrete-time models: their sigmas filtered to <= sigma_max, steps spaced
   * over what is left); only n > tMax + 1 keeps the repeats.
   */
  private capSpaced(spaced: number[], n: number): number[] {
    const capped = spaced.map((t) => Math.min(t, this.tMax));
    if (new Set(capped).size === capped.length || n > this.tMax + 1) return capped;
    return makeTimesteps(this.spacing, this.tMax + 1, n);
  }

  /** sigma at training timestep t; 0 at the clean end (t = -1) */
  protected sigma(t: number): number {
    if (t < 0) return 0;
    const abar = this.abar(t);
    return Math.sqrt((1 - abar) / abar);
  }

  /** x -> x_t = x / sqrt(sigma^2 + 1) (1 FLOP/element) */
  override scaleModelInput(sample: Float32Array, t: number): Float32Array {
    super.scaleModelInput(sample, t);
    return this.ops.scale(1 / Math.sqrt(this.sigma(t) ** 2 + 1), sample);
  }

  /** x0 from the network output at call timestep t for the sigma-space sample x (3 FLOPs/element) */
  protected x0AtSigma(out: Float32Array, x: Float32Array, t: number): Float32Array {
    return this.x0From(out, x, t, 1 / Math.sqrt(this.sigma(t) ** 2 + 1));
  }
}
