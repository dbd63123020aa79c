/**
 * Inverse: what would each of steps, GPU price, MFU, resolution and model
 * width have to become, alone, for a scenario to cost a target USD per video
 * minute; and which pairs reach it when each does half the work (in log
 * terms) of the way.
 *
 * Cost is continuous in every lever here (fractional steps, resolution scale
 * and width scale), so non-linear levers are solved by bisection; the cost
 * function is checked against evaluateScenario at the starting point.
 */
import { speedup } from "./calibration.ts";
import type { Scenario, ScenarioOptions } from "./scenarios.ts";
import {
  callsPerStep,
  type DitShape,
  nfeFlopsAtTokens,
  promptsPerClip,
  textEncoderFlops,
  tokenGrid,
  vaeDecoderFlops,
} from "./shapes.ts";

export type InverseLever = "steps" | "price" | "mfu" | "resolution" | "modelWidth";
export const INVERSE_LEVERS: readonly InverseLever[] = ["steps", "price", "mfu", "resolution", "modelWidth"];

/** Continuous changes to a scenario. */
export interface Knobs {
  steps: number;
  usdPerHour: number;
  mfu: number;
  /** both sides of the frame multiplied by this */
  resolutionScale: number;
  /** model width (and FFN width) multiplied by this */
  widthScale: number;
}

/** USD per video minute of `o` with continuous knobs; equals evaluateScenario at the starting knobs. */
export function minuteCost(o: ScenarioOptions, s: Scenario, k: Knobs): number {
  const shape: DitShape = {
    ...o.shape,
    width: o.shape.width * k.widthScale,
    ffn: o.shape.ffn * k.widthScale,
  };
  const grid = tokenGrid(o.shape, o.clip);
  const r2 = k.resolutionScale * k.resolutionScale;
  const calls = o.shape.generation === "frame" ? o.clip.frames : 1;
  const nfe = calls * k.steps * callsPerStep(o.shape, o.cfg);
  const network = nfeFlopsAtTokens(shape, grid.tokens * r2).total * nfe * (o.networkTimeFactor ?? 1);
  const text = o.shape.textEncoder ? textEncoderFlops(o.shape.textEncoder) * promptsPerClip(o.cfg) : 0;
  const vae = o.shape.vae
    ? vaeDecoderFlops(
        o.shape.vae,
        grid.latentFrames * calls,
        grid.latentHeight * k.resolutionScale,
        grid.latentWidth * k.resolutionScale,
      )
    : 0;
  const n = s.gpus;
  const sp = n === 1 ? 1 : speedup({ serialFraction: s.parallel.serialFraction, source: "" }, n);
  const seconds1 = (network + text + vae) / (o.gpu.bf16DenseTflops.value * 1e12 * k.mfu);
  const gpuSeconds = (seconds1 / sp) * n;
  return (gpuSeconds / 3600) * k.usdPerHour * s.clipsPerVideoMinute;
}

export function startKnobs(s: Scenario): Knobs {
  return {
    steps: s.steps,
    usdPerHour: s.price.usdPerHour,
    mfu: s.mfu.value,
    resolutionScale: 1,
    widthScale: 1,
  };
}

/** x in (lo, hi) where a decreasing-in-cost knob makes f(x) = target, or null if not bracketed. */
function bisect(f: (x: number) => number, target: number, lo: number, hi: number): number | null {
  let flo = f(lo);
  const fhi = f(hi);
  // f increases with x for every knob solved here
  if (!(flo <= target && target <= fhi)) return null;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    const fm = f(mid);
    if (fm > target) hi = mid;
    else {
      lo = mid;
      flo = fm;
    }
    if (hi - lo <= 1e-12 * Math.max(1, hi)) break;
  }
  return (lo + hi) / 2;
}

export interface AloneAnswer {
  lever: InverseLever;
  current: number;
  /** the value that reaches the target alone; null when no value can */
  required: number | null;
  /** required / current */
  change: number | null;
  feasible: boolean;
  note: string;
}

/** Solves one knob alone for a cost ratio `ratio` (target / current cost). */
function solveKnob(o: ScenarioOptions, s: Scenario, lever: InverseLever, targetUsd: number): AloneAnswer {
  const k0 = startKnobs(s);
  const f = (patch: Partial<Knobs>) => minuteCost(o, s, { ...k0, ...patch });
  const current = f({});
  const base = { lever } as const;
  if (targetUsd >= current && (lever === "resolution" || lever === "modelWidth" || lever === "steps")) {
    const now = lever === "resolution" ? 1 : lever === "modelWidth" ? o.shape.width : k0.steps;
    return {
      ...base,
      current: now,
      required: now,
      change: 1,
      feasible: true,
      note: "already at or below the target",
    };
  }
  switch (lever) {
    case "price": {
      const required = (k0.usdPerHour * targetUsd) / current;
      return {
        ...base,
        current: k0.usdPerHour,
        required,
        change: required / k0.usdPerHour,
        feasible: required > 0,
        note: "USD per GPU-hour",
      };
    }
    case "mfu": {
      const required = (k0.mfu * current) / targetUsd;
      return {
        ...base,
        current: k0.mfu,
        required,
        change: required / k0.mfu,
        feasible: required <= 1,
        note: required > 1 ? "above 1: more than the GPU's peak, impossible" : "fraction of dense BF16 peak",
      };
    }
    case "steps": {
      // cost = a x steps + once-per-clip: the floor is what one clip costs outside the network
      const once = f({ steps: 0 });
      const a = (current - once) / k0.steps;
      const required = a > 0 ? (targetUsd - once) / a : null;
      const ok = required !== null && required >= 1;
      return {
        ...base,
        current: k0.steps,
        required: required !== null && required > 0 ? required : null,
        change: required !== null && required > 0 ? required / k0.steps : null,
        feasible: ok,
        note: ok
          ? "sampler steps (fractional: the NFE budget it implies)"
          : `below 1 step: even the once-per-clip work (${once.toPrecision(3)} USD/min) ${once >= targetUsd ? "alone exceeds" : "nearly fills"} the target`,
      };
    }
    case "resolution": {
      const x = bisect((r) => f({ resolutionScale: r }), targetUsd, 1e-4, 1);
      const gW = o.shape.vaeStride[2] * o.shape.patch[2];
      const gH = o.shape.vaeStride[1] * o.shape.patch[1];
      const ok = x !== null && o.clip.width * x >= gW && o.clip.height * x >= gH;
      return {
        ...base,
        current: 1,
        required: x,
        change: x,
        feasible: ok,
        note:
          x === null
            ? "no resolution reaches it (the resolution-independent work alone costs more)"
            : `${(o.clip.width * x).toFixed(0)}x${(o.clip.height * x).toFixed(0)} pixels (scale of both sides)${ok ? "" : ": smaller than one token"}`,
      };
    }
    case "modelWidth": {
      const x = bisect((w) => f({ widthScale: w }), targetUsd, 1e-6, 1);
      const width = o.shape.width * (x ?? 0);
      const ok = x !== null && width >= o.shape.heads;
      return {
        ...base,
        current: o.shape.width,
        required: x === null ? null : width,
        change: x,
        feasible: ok,
        note:
          x === null
            ? "no width reaches it (text encoder and VAE decoder alone cost more)"
            : `model width (hidden size; FFN scaled alike, depth ${o.shape.depth} kept)${ok ? "" : ": below one unit per head"}`,
      };
    }
  }
}

export interface PairAnswer {
  levers: [InverseLever, InverseLever];
  /** each lever alone is solved for this cost ratio: sqrt(target / current) */
  ratioEach: number;
  values: Record<string, number | null>;
  /** both changes applied together (not exactly the product where levers interact) */
  combinedUsdPerVideoMinute: number | null;
  reaches: boolean;
  feasible: boolean;
}

export interface InverseResult {
  targetUsdPerVideoMinute: number;
  currentUsdPerVideoMinute: number;
  /** current / target */
  gap: number;
  alone: AloneAnswer[];
  pairs: PairAnswer[];
}

function knobPatch(lever: InverseLever, a: AloneAnswer, o: ScenarioOptions): Partial<Knobs> | null {
  if (a.required === null) return null;
  switch (lever) {
    case "steps":
      return { steps: a.required };
    case "price":
      return { usdPerHour: a.required };
    case "mfu":
      return { mfu: a.required };
    case "resolution":
      return { resolutionScale: a.required };
    case "modelWidth":
      return { widthScale: a.required / o.shape.width };
  }
}

/** Answers `--target-usd-per-minute`: each lever alone, then every pair splitting the gap evenly. */
export function solveInverse(o: ScenarioOptions, s: Scenario, targetUsd: number): InverseResult {
  const k0 = startKnobs(s);
  const current = minuteCost(o, s, k0);
  const alone = INVERSE_LEVERS.map((l) => solveKnob(o, s, l, targetUsd));
  const ratioEach = Math.sqrt(targetUsd / current);
  const half = INVERSE_LEVERS.map((l) => solveKnob(o, s, l, current * ratioEach));
  const pairs: PairAnswer[] = [];
  for (let i = 0; i < INVERSE_LEVERS.length; i++) {
    for (let j = i + 1; j < INVERSE_LEVERS.length; j++) {
      const [a, b] = [half[i], half[j]];
      const pa = knobPatch(a.lever, a, o);
      const pb = knobPatch(b.lever, b, o);
      const combined = pa && pb ? minuteCost(o, s, { ...k0, ...pa, ...pb }) : null;
      pairs.push({
        levers: [a.lever, b.lever],
        ratioEach,
        values: { [a.lever]: a.required, [b.lever]: b.required },
        combinedUsdPerVideoMinute: combined,
        reaches: combined !== null && combined <= targetUsd * (1 + 1e-9),
        feasible: a.feasible && b.feasible,
      });
    }
  }
  return {
    targetUsdPerVideoMinute: targetUsd,
    currentUsdPerVideoMinute: current,
    gap: current / targetUsd,
    alone,
    pairs,
  };
}
