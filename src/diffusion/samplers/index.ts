/** The sampler registry: every sampler by name, one file each. */
import { UserError } from "../../util/errors.ts";
import type { NoiseSchedule } from "../schedule.ts";
import type { Sampler, SamplerName, SamplerOptions } from "./base.ts";
import { DdimSampler } from "./ddim.ts";
import { DdpmSampler } from "./ddpm.ts";
import { DpmSolverPP2MSampler } from "./dpmpp-2m.ts";
import { EulerSampler } from "./euler.ts";
import { HeunSampler } from "./heun.ts";

export type { Sampler, SamplerName, SamplerOptions, StepResult } from "./base.ts";

export interface SamplerEntry {
  /** one line for help text */
  description: string;
  create: (schedule: NoiseSchedule, opts: SamplerOptions) => Sampler;
}

export const SAMPLERS: Readonly<Record<SamplerName, SamplerEntry>> = {
  ddpm: {
    description: "DDPM ancestral sampling (stochastic, first order, 1 NFE/step)",
    create: (s, o) => new DdpmSampler(s, o),
  },
  ddim: {
    description: "DDIM (deterministic at eta 0, first order, 1 NFE/step)",
    create: (s, o) => new DdimSampler(s, o),
  },
  euler: {
    description: "Euler on the probability-flow ODE in sigma space (first order, 1 NFE/step)",
    create: (s, o) => new EulerSampler(s, o),
  },
  heun: {
    description: "Heun on the probability-flow ODE (second order, 2n-1 NFEs for n steps)",
    create: (s, o) => new HeunSampler(s, o),
  },
  "dpmpp-2m": {
    description: "DPM-Solver++(2M) multistep (second order, 1 NFE/step)",
    create: (s, o) => new DpmSolverPP2MSampler(s, o),
  },
};

export function samplerNames(): SamplerName[] {
  return Object.keys(SAMPLERS) as SamplerName[];
}

export function isSamplerName(name: string): name is SamplerName {
  return Object.hasOwn(SAMPLERS, name);
}

export function makeSampler(name: string, schedule: NoiseSchedule, opts: SamplerOptions = {}): Sampler {
  if (!isSamplerName(name)) {
    throw new UserError(`unknown sampler "${name}"; use one of: ${samplerNames().join(", ")}`);
  }
  return SAMPLERS[name].create(schedule, opts);
}
