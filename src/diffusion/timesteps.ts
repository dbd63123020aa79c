/**
 * Which of the T training timesteps a sampler visits for n steps, as diffusers'
 * DDIM/DDPM/Euler `set_timesteps` spaces them (steps_offset = 0), always
 * descending integers in [0, T-1]:
 *   leading:  (0..n-1) * floor(T/n), reversed       T=1000, n=10: 900, 800, ..., 0
 *   linspace: round(linspace(0, T-1, n)), reversed   999, 888, ..., 111, 0
 *   trailing: round(T - i * T/n) - 1, i = 0..n-1      999, 899, ..., 99
 * Rounding is half-to-even like numpy. Lin et al. 2024 ("Common Diffusion Noise
 * Schedules and Sample Steps are Flawed", table 2) list the same three; trailing
 * and linspace start at the last timestep, leading does not.
 */
import { UserError } from "../util/errors.ts";

export type TimestepSpacing = "leading" | "linspace" | "trailing";
export const TIMESTEP_SPACINGS: readonly TimestepSpacing[] = ["leading", "linspace", "trailing"];

export function parseSpacing(name: string): TimestepSpacing {
  if ((TIMESTEP_SPACINGS as readonly string[]).includes(name)) return name as TimestepSpacing;
  throw new UserError(`unknown timestep spacing "${name}"; use one of: ${TIMESTEP_SPACINGS.join(", ")}`);
}

/** numpy.round: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** Throws the user-facing error for a step count outside [1, T]. */
export function checkSteps(n: number, T: number): void {
  if (!Number.isInteger(n) || n < 1 || n > T) {
    throw new UserError(
      `steps must be a whole number from 1 to ${T} (the noise schedule's length), got ${n}; pass e.g. --steps 50`,
    );
  }
}

export function makeTimesteps(spacing: TimestepSpacing, T: number, n: number): number[] {
  checkSteps(n, T);
  const ts: number[] = [];
  if (spacing === "leading") {
    const ratio = Math.floor(T / n);
    for (let i = n - 1; i >= 0; i--) ts.push(i * ratio);
  } else if (spacing === "linspace") {
    // numpy.linspace: start + i * step, with the last point set to stop exactly
    const step = n > 1 ? (T - 1) / (n - 1) : 0;
    for (let i = n - 1; i >= 0; i--) ts.push(i === n - 1 && n > 1 ? T - 1 : roundHalfEven(i * step));
  } else if (spacing === "trailing") {
    const ratio = T / n;
    for (let i = 0; i < n; i++) ts.push(roundHalfEven(T - i * ratio) - 1);
  } else {
    throw new UserError(
      `unknown timestep spacing "${String(spacing)}"; use one of: ${TIMESTEP_SPACINGS.join(", ")}`,
    );
  }
  return ts;
}
