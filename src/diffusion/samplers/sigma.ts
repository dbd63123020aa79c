/**
 * Shared by the samplers that integrate the probability-flow ODE in sigma
 * space (Karras et al. 2022; diffusers' Euler/Heun): the sample is
 * x = x_t / sqrt(abar_t) = x0 + sigma eps, sigma_t = sqrt((1 - abar_t) / abar_t),
 * and the network sees x_t = x / sqrt(sigma^2 + 1).
 */
import { BaseSampler } from "./base.ts";

export abstract class SigmaSpaceSampler extends BaseSampler {
  override setTimesteps(n: number): void {
    super.setTimesteps(n);
    // x = sqrt(sigma^2 + 1) z is x_t = z in variance-preserving space, so every sampler starts alike
    this.initNoiseSigma = Math.sqrt(this.sigma(this.timesteps[0]) ** 2 + 1);
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
