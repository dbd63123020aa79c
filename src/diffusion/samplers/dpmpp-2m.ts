/**
 * DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", alg. 2; diffusers'
 * DPMSolverMultistepScheduler with algorithm_type "dpmsolver++", solver_order 2,
 * midpoint, final sigma 0). It works on the VP sample x_t with alpha = sqrt(abar),
 * sigma = sqrt(1 - abar), lambda = log(alpha / sigma), and the data
 * prediction m = x0(x_t). From t (lambda) to the next spaced timestep (lambda'),
 * h = lambda' - lambda:
 *   first order:  x' = (sigma'/sigma) x - alpha' (e^-h - 1) m                   (DDIM)
 *   second order: x' = (sigma'/sigma) x - alpha' (e^-h - 1) (m + D / 2),
 *                 D = (m - m_prev) / r, r = h_prev / h, reusing the previous call's m.
 * The first step has no m_prev and the last (to sigma = 0, alpha = 1, where it
 * gives x' = m) is first order, as in diffusers. One network call per step.
 */
import type { Rng } from "../../util/rng.ts";
import type { NoiseSchedule } from "../schedule.ts";
import { BaseSampler, refuseEta, type SamplerOptions, type StepResult } from "./base.ts";

export class DpmSolverPP2MSampler extends BaseSampler {
  readonly name = "dpmpp-2m";
  readonly order = 2;
  private prevX0: Float32Array | null = null;
  private prevH = 0;

  constructor(schedule: NoiseSchedule, opts: SamplerOptions = {}) {
    super(schedule, opts);
    refuseEta(this.name, opts);
  }

  protected override reset(): void {
    this.prevX0 = null;
    this.prevH = 0;
  }

  private lambda(t: number): number {
    const abar = this.abar(t);
    return 0.5 * Math.log(abar / (1 - abar));
  }

  protected stepAt(i: number, out: Float32Array, x: Float32Array, _rng?: Rng): StepResult {
    const t = this.timesteps[i];
    const tNext = this.nextT(i);
    const m = this.x0From(out, x, t);
    if (tNext < 0) {
      // to sigma = 0: x' = m exactly
      this.reset();
      return { prevSample: m.slice(), predX0: m };
    }
    const sig = Math.sqrt(1 - this.abar(t));
    const aNext = Math.sqrt(this.abar(tNext));
    const sigNext = Math.sqrt(1 - this.abar(tNext));
    const h = this.lambda(tNext) - this.lambda(t);
    const c = -aNext * Math.expm1(-h); // -alpha' (e^-h - 1) > 0
    let prev: Float32Array;
    if (this.prevX0 === null) {
      prev = this.ops.lin2(sigNext / sig, x, c, m);
    } else {
      // m + D/2 = (1 + 1/(2r)) m - 1/(2r) m_prev
      const k = 1 / (2 * (this.prevH / h));
      prev = this.ops.lin3(sigNext / sig, x, c * (1 + k), m, -c * k, this.prevX0);
    }
    this.prevX0 = m.slice(); // callers may keep or change the predX0 they get
    this.prevH = h;
    return { prevSample: prev, predX0: m };
  }

  // x0 3; first order 3, second order 5, last call 0 (x' = m)
  flopsForCall(i: number, numel: number): number {
    if (i === this.timesteps.length - 1) return 3 * numel;
    return (i === 0 ? 6 : 8) * numel;
  }
}
