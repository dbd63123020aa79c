/**
 * Euler's method on the probability-flow ODE in sigma space (Karras et al.
 * 2022, alg. 1 without churn; diffusers' EulerDiscreteScheduler):
 *   dx/dsigma = (x - x0(x, sigma)) / sigma,   x' = x + (sigma' - sigma) dx/dsigma,
 * with x = x_t / sqrt(abar_t) (see sigma.ts); the last step goes to sigma = 0.
 */
import type { Rng } from "../../util/rng.ts";
import type { NoiseSchedule } from "../schedule.ts";
import { refuseEta, type SamplerOptions, type StepResult } from "./base.ts";
import { SigmaSpaceSampler } from "./sigma.ts";

export class EulerSampler extends SigmaSpaceSampler {
  readonly name = "euler";
  readonly order = 1;

  constructor(schedule: NoiseSchedule, opts: SamplerOptions = {}) {
    super(schedule, opts);
    refuseEta(this.name, opts);
  }

  protected stepAt(i: number, out: Float32Array, x: Float32Array, _rng?: Rng): StepResult {
    const t = this.timesteps[i];
    const s = this.sigma(t);
    const r = (this.sigma(this.nextT(i)) - s) / s;
    const x0 = this.x0AtSigma(out, x, t);
    // x + (s' - s) (x - x0) / s
    return { prevSample: this.ops.lin2(1 + r, x, -r, x0), predX0: x0 };
  }

  // scaleModelInput 1, x0 3, update 3
  flopsForCall(_i: number, numel: number): number {
    return 7 * numel;
  }
}
