/**
 * DDIM (Song et al. 2021, eq. 12): from t to the next spaced timestep t'
 * (a = abar_t, a' = abar_t'; a' = 1 after the last),
 *   x_t' = sqrt(a') x0 + sqrt(1 - a' - s^2) eps + s z,
 *   s = eta * sqrt((1-a') / (1-a)) * sqrt(1 - a/a')                  (eq. 16)
 * eta = 0 is the deterministic sampler (a first-order ODE solver), eta = 1
 * matches DDPM's variance. Unlike diffusers (t' = t - T // n), t' is the next
 * entry of `timesteps`, which is the same for leading and trailing spacing and
 * exact for linspace.
 */
import { UserError } from "../../util/errors.ts";
import type { Rng } from "../../util/rng.ts";
import type { NoiseSchedule } from "../schedule.ts";
import { BaseSampler, needRng, type SamplerOptions, type StepResult } from "./base.ts";

export class DdimSampler extends BaseSampler {
  readonly name = "ddim";
  readonly order = 1;
  override readonly deterministic: boolean;
  readonly eta: number;
  private readonly clip: number | undefined;

  constructor(schedule: NoiseSchedule, opts: SamplerOptions = {}) {
    super(schedule, opts);
    const eta = opts.eta ?? 0;
    if (!Number.isFinite(eta) || eta < 0) {
      throw new UserError(`eta must be a number >= 0 (0 = deterministic DDIM, 1 = DDPM-like), got ${eta}`);
    }
    this.eta = eta;
    this.deterministic = eta === 0;
    this.clip = opts.clipSample;
  }

  private noiseStd(i: number): number {
    const a = this.abar(this.timesteps[i]);
    const ap = this.abar(this.nextT(i));
    return this.eta * Math.sqrt((1 - ap) / (1 - a)) * Math.sqrt(Math.max(1 - a / ap, 0));
  }

  protected stepAt(i: number, out: Float32Array, x: Float32Array, rng?: Rng): StepResult {
    const t = this.timesteps[i];
    const a = this.abar(t);
    const ap = this.abar(this.nextT(i));
    const x0 = this.x0From(out, x, t);
    let eps: Float32Array;
    if (this.clip !== undefined) {
      this.ops.clampInPlace(x0, this.clip);
      // eps consistent with the clipped x0, as diffusers does
      eps = this.ops.lin2(1 / Math.sqrt(1 - a), x, -Math.sqrt(a) / Math.sqrt(1 - a), x0);
    } else {
      eps = this.epsFrom(out, x, t);
    }
    const s = this.noiseStd(i);
    const dirCoef = Math.sqrt(Math.max(1 - ap - s * s, 0));
    if (s === 0) return { prevSample: this.ops.lin2(Math.sqrt(ap), x0, dirCoef, eps), predX0: x0 };
    const z = needRng(this.name, rng).normals(x.length);
    return { prevSample: this.ops.lin3(Math.sqrt(ap), x0, dirCoef, eps, s, z), predX0: x0 };
  }

  // x0: 3; eps: 0 (eps-prediction, no clip) or 3; update: 3, or 5 with noise
  flopsForCall(i: number, numel: number): number {
    const eps = this.clip === undefined && this.predictionType === "eps" ? 0 : 3;
    return (3 + eps + (this.noiseStd(i) === 0 ? 3 : 5)) * numel;
  }
}
