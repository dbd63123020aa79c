/**
 * What a run request from the page may ask for, checked before anything is
 * loaded: each problem becomes one line (the server answers 400 with it) that
 * names the field, the value seen and what it must be, as the CLI's flags do.
 */
import { samplerNames } from "../diffusion/samplers/index.ts";
import { UserError } from "../util/errors.ts";
import type { ModelEntry } from "./models.ts";

export interface RunRequest {
  /** a model folder exactly as listed (models.ts) */
  model: string;
  sampler: string;
  steps: number;
  seed: number;
  /** autoguidance weight; null = the folder's own default (0 = off) */
  guidance: number | null;
  /** frames of the clip (1 = one frame; more = clip mode, each conditioned on the ones before) */
  frames: number;
  /** catalog GPU to price the run on */
  gpu: string;
  /** its price per hour; null = the catalog's lowest quote */
  gpuUsdPerHour: number | null;
  /** an hour of this machine; null = not priced */
  localUsdPerHour: number | null;
}

export const LIMITS = { steps: 1000, frames: 64, seed: 2 ** 31 - 1 } as const;

function shown(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function field(body: Record<string, unknown>, key: string, required: boolean): unknown {
  const v = body[key];
  if (v === undefined && required) throw new UserError(`${key} is missing; the request must give it`);
  return v;
}

function integer(body: Record<string, unknown>, key: string, min: number, max: number): number {
  const v = field(body, key, true);
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
    throw new UserError(`${key} must be an integer between ${min} and ${max}, got ${shown(v)}`);
  return v;
}

/** A number >= 0, or null (absent). */
function price(body: Record<string, unknown>, key: string): number | null {
  const v = field(body, key, false);
  if (v === undefined || v === null) return null;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0)
    throw new UserError(`${key} must be a number >= 0 (USD per hour) or null, got ${shown(v)}`);
  return v;
}

function oneOf(body: Record<string, unknown>, key: string, allowed: readonly string[]): string {
  const v = field(body, key, true);
  if (typeof v !== "string" || !allowed.includes(v))
    throw new UserError(`${key} must be one of ${allowed.join(", ")}; got ${shown(v)}`);
  return v;
}

/** Checks a parsed JSON body against the allowed models and catalog GPUs; throws a UserError with the fix. */
export function parseRunRequest(
  body: unknown,
  models: readonly ModelEntry[],
  gpus: readonly string[],
): RunRequest {
  if (body === null || typeof body !== "object" || Array.isArray(body))
    throw new UserError(
      `the request must be a JSON object with model, sampler, steps, ...; got ${shown(body)}`,
    );
  const b = body as Record<string, unknown>;
  const m = field(b, "model", true);
  if (typeof m === "string" && m.split(/[\\/]/).includes(".."))
    throw new UserError(
      `model must be one of the listed folders (${models.map((x) => x.dir).join(", ")}); a path with ".." is refused, got ${shown(m)}`,
    );
  const model = oneOf(
    b,
    "model",
    models.map((x) => x.dir),
  );
  const entry = models.find((x) => x.dir === model);
  const sampler = oneOf(b, "sampler", samplerNames());
  const steps = integer(b, "steps", 1, LIMITS.steps);
  const seed = integer(b, "seed", 0, LIMITS.seed);
  const frames = integer(b, "frames", 1, LIMITS.frames);
  const g = field(b, "guidance", false);
  let guidance: number | null = null;
  if (g !== undefined && g !== null) {
    if (typeof g !== "number" || !Number.isFinite(g) || g < 0)
      throw new UserError(`guidance must be a number >= 0 (0 = off) or null (the folder's), got ${shown(g)}`);
    if (g > 0 && !entry?.guidance)
      throw new UserError(`guidance must be 0 for ${model}: it has no guide (models/tiny has one), got ${g}`);
    guidance = g;
  }
  const gpu = oneOf(b, "gpu", gpus);
  return {
    model,
    sampler,
    steps,
    seed,
    guidance,
    frames,
    gpu,
    gpuUsdPerHour: price(b, "gpuUsdPerHour"),
    localUsdPerHour: price(b, "localUsdPerHour"),
  };
}
