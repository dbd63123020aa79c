import { UserError } from "../util/errors.ts";

/**
 * Discrete-time noise schedules: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps,
 * t = 0..T-1 (t = 0 is the least noisy training step).
 */
export type ScheduleKind = "linear" | "cosine";

export const SCHEDULE_KINDS: readonly ScheduleKind[] = ["linear", "cosine"];

export interface NoiseSchedule {
  kind: ScheduleKind;
  /** number of training timesteps */
  T: number;
  /** [T] beta_t */
  betas: Float64Array;
  /** [T] 1 - beta_t */
  alphas: Float64Array;
  /** [T] prod_{s<=t} alpha_s */
  alphasCumprod: Float64Array;
}

/** Nichol & Dhariwal 2021 eq. 17 with s = 0.008 (diffusers "squaredcos_cap_v2"). */
function cosineAlphaBar(u: number): number {
  return Math.cos(((u + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
}

export function makeSchedule(kind: ScheduleKind, T = 1000): NoiseSchedule {
  if (!Number.isInteger(T) || T < 2) {
    throw new UserError(`schedule length T must be an integer >= 2, got ${T}; use e.g. T = 1000`);
  }
  const betas = new Float64Array(T);
  if (kind === "linear") {
    // DDPM (Ho et al. 2020): betas linspace(1e-4, 0.02, T)
    const b0 = 1e-4;
    const b1 = 0.02;
    for (let i = 0; i < T; i++) betas[i] = b0 + ((b1 - b0) * i) / (T - 1);
  } else if (kind === "cosine") {
    // diffusers betas_for_alpha_bar: beta_i = min(1 - abar((i+1)/T) / abar(i/T), 0.999)
    for (let i = 0; i < T; i++) {
      const b = 1 - cosineAlphaBar((i + 1) / T) / cosineAlphaBar(i / T);
      betas[i] = Math.min(b, 0.999);
    }
  } else {
    throw new UserError(`unknown schedule "${String(kind)}"; use one of: ${SCHEDULE_KINDS.join(", ")}`);
  }
  const alphas = new Float64Array(T);
  const alphasCumprod = new Float64Array(T);
  let prod = 1;
  for (let i = 0; i < T; i++) {
    alphas[i] = 1 - betas[i];
    prod *= alphas[i];
    alphasCumprod[i] = prod;
  }
  return { kind, T, betas, alphas, alphasCumprod };
}
