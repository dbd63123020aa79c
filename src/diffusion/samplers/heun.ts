/**
 * Heun's method on the probability-flow ODE in sigma space (Karras et al.
 * 2022, alg. 1; diffusers' HeunDiscreteScheduler). Each step from sigma to
 * sigma' takes an Euler step, evaluates the network again at sigma' and
 * averages the two slopes (trapezoidal rule):
 *   d1 = (x - x0(x, sigma)) / sigma,  x~ = x + (sigma' - sigma) d1,
 *   d2 = (x~ - x0(x~, sigma')) / sigma',  x' = x + (sigma' - sigma) (d1 + d2) / 2.
 * The last step, to sigma' = 0, stays an Euler step (d2 would divide by 0),
 * so n steps take 2n - 1 network calls, and `timesteps` repeats every spaced
 * timestep but the first: t0, t1, t1, t2, t2, ..., t_{n-1}, t_{n-1}.
 *
 * sigmaMax (default SIGMA_MAX = 80, EDM's sigma_max: Karras et al. 2022,
 * "Elucidating the Design Space of Diffusion-Based Generative Models",
 * table 1) caps the starting noise level (see sigma.ts). Why: on the cosine
 * schedule t = 999 is sigma 20290 (the beta clip at 0.999), so the first
 * step spans almost the whole sigma range (20290 -> 6.4 at 10 trailing
 * steps), and the trapezoid rule multiplies even a fraction of a percent of
 * change in the slope between the step's ends by a length of ~20000:
 * N(0, 0.5^2) data came out 166 RMS off at 5 NFEs, where Euler, which uses
 * only the start slope x / sigma, was 0.15 off. Sigma 80 is still noise 80x
 * the largest std data in [-1, 1] can have, and shortens that step 250-fold (cosine:
 * t = 990, sigma 71.3; tests pin the errors with and without the cap).
 * diffusers' HeunDiscreteScheduler has no cap; sigmaMax: Infinity is it.
 */
import type { Rng } from "../../util/rng.ts";
import type { NoiseSchedule } from "../schedule.ts";
import { checkSteps } from "../timesteps.ts";
import { refuseEta, type SamplerOptions, type StepResult } from "./base.ts";
import { SigmaSpaceSampler } from "./sigma.ts";

/** EDM's sigma_max (Karras et al. 2022, table 1) */
export const SIGMA_MAX = 80;

export class HeunSampler extends SigmaSpaceSampler {
  readonly name = "heun";
  readonly order = 2;
  // state between the Euler half (even call) and the correction (odd call)
  private start: Float32Array | null = null;
  private d1: Float32Array | null = null;
  private dSigma = 0;

  constructor(schedule: NoiseSchedule, opts: SamplerOptions = {}) {
    super(schedule, opts, SIGMA_MAX);
    refuseEta(this.name, opts);
  }

  override nfeFor(n: number): number {
    checkSteps(n, this.schedule.T);
    return 2 * n - 1;
  }

  protected override callTimesteps(spaced: number[]): number[] {
    const ts = [spaced[0]];
    for (let k = 1; k < spaced.length; k++) ts.push(spaced[k], spaced[k]);
    return ts;
  }

  protected override reset(): void {
    this.start = null;
    this.d1 = null;
    this.dSigma = 0;
  }

  override completesStep(callIndex: number): boolean {
    return callIndex % 2 === 1 || callIndex === this.timesteps.length - 1;
  }

  protected stepAt(i: number, out: Float32Array, x: Float32Array, _rng?: Rng): StepResult {
    const t = this.timesteps[i];
    const x0 = this.x0AtSigma(out, x, t);
    const s = this.sigma(t);
    if (i % 2 === 0) {
      // Euler half: from spaced[i/2] to spaced[i/2 + 1] (or sigma 0 after the last)
      const k = i / 2;
      const sNext = k + 1 < this.spaced.length ? this.sigma(this.spaced[k + 1]) : 0;
      const d1 = this.ops.lin2(1 / s, x, -1 / s, x0);
      this.start = x;
      this.d1 = d1;
      this.dSigma = sNext - s;
      return { prevSample: this.ops.lin2(1, x, this.dSigma, d1), predX0: x0 };
    }
    // correction: x is the Euler estimate at sigma' = s
    if (!this.start || !this.d1) throw new Error("heun: correction call without its Euler half");
    const d2 = this.ops.lin2(1 / s, x, -1 / s, x0);
    const h = this.dSigma / 2;
    const prev = this.ops.lin3(1, this.start, h, this.d1, h, d2);
    this.reset();
    return { prevSample: prev, predX0: x0 };
  }

  // scaleModelInput 1, x0 3; Euler half: slope 3 + update 3; correction: slope 3 + update 5
  flopsForCall(i: number, numel: number): number {
    return (i % 2 === 0 ? 10 : 12) * numel;
  }
}
