/**
 * DDPM ancestral sampling (Ho et al. 2020), over any subset of timesteps as
 * diffusers' DDPMScheduler does it (variance "fixed_small"): from t to the next
 * spaced timestep t' with a = abar_t, a' = abar_t', beta = 1 - a/a',
 *   mean = sqrt(a') beta / (1-a) * x0 + sqrt(1-beta) (1-a') / (1-a) * x_t   (eq. 7)
 *   var  = (1-a') / (1-a) * beta
 * and x_t' = mean + sqrt(var) z. The last step goes to a' = 1, where var = 0.
 */
import type { Rng } from "../../util/rng.ts";
import type { NoiseSchedule } from "../schedule.ts";
import { BaseSampler, needRng, refuseEta, type SamplerOptions, type StepResult } from "./base.ts";

export class DdpmSampler extends BaseSampler {
  readonly name = "ddpm";
  readonly order = 1;
  override readonly deterministic = false;
  private readonly clip: number | undefined;

  constructor(schedule: NoiseSchedule, opts: SamplerOptions = {}) {
    super(schedule, opts);
    refuseEta(this.name, opts);
    this.clip = opts.clipSample;
  }

  private variance(i: number): number {
    const a = this.abar(this.timesteps[i]);
    const ap = this.abar(this.nextT(i));
    const beta = 1 - a / ap;
    return Math.max(((1 - ap) / (1 - a)) * beta, 0);
  }

  protected stepAt(i: number, out: Float32Array, x: Float32Array, rng?: Rng): StepResult {
    const t = this.timesteps[i];
    const a = this.abar(t);
    const ap = this.abar(this.nextT(i));
    const beta = 1 - a / ap;
    const x0 = this.x0From(out, x, t);
    if (this.clip !== undefined) this.ops.clampInPlace(x0, this.clip);
    const c0 = (Math.sqrt(ap) * beta) / (1 - a);
    const cx = (Math.sqrt(1 - beta) * (1 - ap)) / (1 - a);
    const v = this.variance(i);
    if (v === 0) return { prevSample: this.ops.lin2(c0, x0, cx, x), predX0: x0 };
    const z = needRng(this.name, rng).normals(x.length);
    return { prevSample: this.ops.lin3(c0, x0, cx, x, Math.sqrt(v), z), predX0: x0 };
  }

  // x0: 3; mean: 3, or mean + noise: 5
  flopsForCall(i: number, numel: number): number {
    return (3 + (this.variance(i) === 0 ? 3 : 5)) * numel;
  }
}
