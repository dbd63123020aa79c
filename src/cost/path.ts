/**
 * The path to a target USD per video minute (the essay's $0.01): a waterfall
 * of cost levers, each a change to the scenario with a factor that is
 * computed by the cost model, measured by framecost (the steps sweep) or
 * taken from a published figure with its source and date.
 *
 * How factors combine: the levers are applied in order to the scenario, all
 * of them, and each factor is cost(after) / cost(before) along that chain.
 * Factors are then held fixed: switching a lever off (or giving it another
 * factor) changes only that lever's factor, and
 *   end = start x product of the enabled factors.
 * With every lever on, the end is exactly the cost of the fully changed
 * scenario; with some off it is an approximation, and `end.recomputed`
 * reports the scenario with only the enabled changes applied.
 */
import { z } from "zod";
import { UserError } from "../util/errors.ts";
import { defaultMfu } from "./calibration.ts";
import { type Catalog, chosenPrice, type Gpu } from "./catalog.ts";
import { type LeversRecord, PATH_FACTOR_KIND, type ToyFactor, toyFactor } from "./measured.ts";
import { modelShape } from "./models.ts";
import { LEVER_NAMES, type LeverName } from "./path-names.ts";
import {
  ESSAY,
  FEATURE_CACHING_SPEEDUP,
  FP8,
  FP8_TENSOR_CORES,
  FP8_TENSOR_CORES_SOURCE,
  fp8TimeFactor,
  GUIDANCE_DISTILLATION,
  LOW_RES_HEIGHT,
  NATIVE_LOW_FPS,
  RESERVED_DISCOUNT,
  SAMPLER_FALLBACK,
  STEP_DISTILLATION,
  TARGET_MFU,
} from "./published.ts";
import { evaluateScenario, type Scenario, type ScenarioOptions } from "./scenarios.ts";
import type { DitShape } from "./shapes.ts";

export { LEVER_NAMES, type LeverName };

export type SourceKind = "computed" | "measured" | "published" | "not measured (published fallback)" | "user";

export interface LeverSource {
  kind: SourceKind;
  text: string;
  asOf?: string;
}

/** The minimal view of a sweep record the steps lever reads (src/report/sweep.ts writes the full one). */
export interface SweepLike {
  cells: Array<{
    sampler: string;
    steps: number;
    nfePerFrame: number;
    quality: Record<string, number> | null;
  }>;
}

export interface StepsMeasurement {
  reference: { sampler: string; steps: number; nfePerFrame: number };
  chosen: { sampler: string; steps: number; nfePerFrame: number };
  metrics: string[];
  tolerance: number;
  /** chosen NFEs / reference NFEs */
  ratio: number;
  /** where the sweep came from (its file), for the source line */
  sweepSource?: string;
}

/**
 * The NFEs at which the cheapest cell stays within `tolerance` (relative;
 * every metric is lower-is-better) of the reference. The reference is the
 * sweep's 50-step run (its most steps if it has no 50) of a one-call-per-step
 * sampler, as the start scenario's steps are; among several, the best on the
 * first metric, or `referenceSampler`. `metric` restricts the check to one
 * metric.
 */
export function measureStepsLever(
  sweep: SweepLike,
  tolerance: number,
  metric?: string,
  referenceSampler?: string,
): StepsMeasurement {
  const withQ = sweep.cells.filter((c) => c.quality !== null);
  if (withQ.length === 0) {
    throw new UserError(
      "the sweep has no quality figures (every cell's quality is null); rerun the sweep with quality metrics",
    );
  }
  const pool = referenceSampler === undefined ? withQ : withQ.filter((c) => c.sampler === referenceSampler);
  if (pool.length === 0) {
    const names = [...new Set(withQ.map((c) => c.sampler))].join(", ");
    throw new UserError(`--reference-sampler ${referenceSampler} is not in the sweep; it has: ${names}`);
  }
  const refSteps = pool.some((c) => c.steps === 50) ? 50 : Math.max(...pool.map((c) => c.steps));
  const atRef = pool.filter((c) => c.steps === refSteps);
  const onePerStep = atRef.filter((c) => c.nfePerFrame === c.steps);
  const candidates = onePerStep.length > 0 ? onePerStep : atRef;
  const firstQ = candidates[0].quality as Record<string, number>;
  const metrics =
    metric === undefined ? Object.keys(firstQ).filter((k) => Number.isFinite(firstQ[k])) : [metric];
  if (metric !== undefined && !(metric in firstQ)) {
    throw new UserError(
      `--quality-metric ${metric} is not in the sweep; it has: ${Object.keys(firstQ).join(", ")}`,
    );
  }
  const q = (c: (typeof withQ)[number], m: string) => (c.quality as Record<string, number>)[m];
  const ref = candidates.reduce((a, b) => (q(b, metrics[0]) < q(a, metrics[0]) ? b : a));
  const within = withQ.filter((c) =>
    metrics.every((m) => Number.isFinite(q(c, m)) && q(c, m) <= q(ref, m) + tolerance * Math.abs(q(ref, m))),
  );
  const chosen = within.reduce((a, b) => (b.nfePerFrame < a.nfePerFrame ? b : a), ref);
  const pick = (c: typeof ref) => ({ sampler: c.sampler, steps: c.steps, nfePerFrame: c.nfePerFrame });
  return {
    reference: pick(ref),
    chosen: pick(chosen),
    metrics,
    tolerance,
    ratio: chosen.nfePerFrame / ref.nfePerFrame,
  };
}

// ---------------------------------------------------------------- levers file

const LeverOverrideSchema = z.strictObject({
  name: z.enum(LEVER_NAMES),
  enabled: z.boolean().optional(),
  factor: z
    .number()
    .refine(Number.isFinite, "must be a finite number")
    .refine((v) => v > 0, "must be > 0")
    .optional(),
  source: z.string().min(1, "must be a non-empty string").optional(),
});
export const LeversFileSchema = z.strictObject({ levers: z.array(LeverOverrideSchema) });
export type LeverOverride = z.infer<typeof LeverOverrideSchema>;

/** Validates a parsed `--levers` file; one UserError line naming the field for the first problem. */
export function parseLeversFile(data: unknown, where: string): LeverOverride[] {
  const r = LeversFileSchema.safeParse(data);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = issue.path
      .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
      .join("")
      .replace(/^\./, "");
    let v: unknown = data;
    for (const p of issue.path)
      v = v != null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[p] : undefined;
    const field = path === "" ? "the top level" : path;
    if (issue.code === "invalid_value") {
      throw new UserError(
        `${where}: ${field} must be one of ${LEVER_NAMES.join(", ")}, got ${JSON.stringify(v)}`,
      );
    }
    if (issue.code === "unrecognized_keys") {
      throw new UserError(
        `${where}: ${field} has unknown field(s) ${issue.keys.join(", ")}; a lever takes name, enabled, factor, source`,
      );
    }
    if (v === undefined)
      throw new UserError(
        `${where}: ${field} is missing; add it (a lever file is {"levers": [{"name", "enabled"?, "factor"?, "source"?}]})`,
      );
    throw new UserError(
      `${where}: ${field} ${issue.message.replace(/^Invalid input: /, "")}, got ${JSON.stringify(v)}`,
    );
  }
  const seen = new Set<string>();
  for (const [i, l] of r.data.levers.entries()) {
    if (seen.has(l.name))
      throw new UserError(`${where}: levers[${i}].name "${l.name}" appears twice; give each lever once`);
    seen.add(l.name);
    if (l.factor !== undefined && l.source === undefined) {
      throw new UserError(
        `${where}: levers[${i}].source is missing; a factor from a file needs a source (where the number comes from)`,
      );
    }
  }
  return r.data.levers;
}

// ---------------------------------------------------------------- the chain

interface State {
  o: ScenarioOptions;
  /** lower precision applied: the network time factor includes FP8's (or the toy's measured one) */
  fp8: boolean;
  /** feature caching applied */
  caching: boolean;
  /** network-time factors measured on the toy (levers.json), used instead of the published ones */
  toyTime?: { caching?: number; precision?: number };
}

interface Step {
  state: State;
  detail: string;
  source: LeverSource;
  note?: string;
}

interface Context {
  catalog: Catalog;
  steps: StepsMeasurement | null;
  /** the toy's accepted factors from --levers-measured, by lever; empty: none */
  toy: Map<LeverName, ToyFactor>;
}

function cost(s: State): number {
  return evaluateScenario(s.o).usdPerVideoMinute;
}

function withTime(s: State, fp8: boolean, caching: boolean, toyTime = s.toyTime): State {
  const precision = fp8 ? (toyTime?.precision ?? fp8TimeFactor()) : 1;
  const cache = caching ? (toyTime?.caching ?? 1 / FEATURE_CACHING_SPEEDUP.value) : 1;
  const notes = [
    fp8
      ? toyTime?.precision !== undefined
        ? `lower precision: x${precision.toFixed(3)} (measured on the toy by framecost levers)`
        : `FP8: x${fp8TimeFactor().toFixed(3)} (${FP8.source})`
      : null,
    caching
      ? toyTime?.caching !== undefined
        ? `feature caching: x${cache.toFixed(3)} (measured on the toy by framecost levers)`
        : `feature caching: /${FEATURE_CACHING_SPEEDUP.value} (${FEATURE_CACHING_SPEEDUP.source})`
      : null,
  ].filter(Boolean);
  return {
    o: {
      ...s.o,
      networkTimeFactor: precision * cache,
      networkTimeNote: notes.join("; ") || undefined,
    },
    fp8,
    caching,
    toyTime,
  };
}

function toySource(t: ToyFactor): LeverSource {
  return { kind: "measured", text: t.text };
}

/** Weights in bytes at the state's precision, from published parameter counts or the shape. */
function weightBytes(shape: DitShape, fp8: boolean): number {
  const D = shape.width;
  const params =
    shape.params ??
    shape.depth *
      (4 * D * D + (shape.gatedFfn ? 3 : 2) * D * shape.ffn + (shape.text.mode === "cross" ? 4 * D * D : 0));
  return params * (fp8 ? 1 : 2);
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(2);
}

const LEVERS: Record<
  LeverName,
  { label: string; defaultEnabled: boolean; apply: (s: State, ctx: Context) => Step }
> = {
  "fewer-steps": {
    label: "fewer sampler steps",
    defaultEnabled: true,
    apply: (s, ctx) => {
      const m = ctx.steps;
      const toy = m ? undefined : ctx.toy.get("fewer-steps");
      if (toy) {
        const steps = s.o.steps * toy.factor;
        return {
          state: { ...s, o: { ...s.o, steps } },
          detail: `NFEs x${toy.factor.toFixed(3)}: ${fmt(s.o.steps)} -> ${fmt(steps)} steps`,
          source: toySource(toy),
          note: "assumes the NFE ratio at equal quality carries over from the toy to this model",
        };
      }
      const ratio = m ? m.ratio : SAMPLER_FALLBACK.toNfe / SAMPLER_FALLBACK.fromNfe;
      const steps = s.o.steps * ratio;
      const source: LeverSource = m
        ? {
            kind: "measured",
            text: `framecost sweep${m.sweepSource ? ` ${m.sweepSource}` : ""} (measured on framecost's own model): ${m.chosen.sampler} at ${m.chosen.nfePerFrame} NFEs/frame stays within ${(m.tolerance * 100).toFixed(0)}% of ${m.reference.sampler} at ${m.reference.nfePerFrame} NFEs/frame on ${m.metrics.join(", ")}`,
          }
        : {
            kind: "not measured (published fallback)",
            text: `NOT MEASURED (no --sweep given): ${SAMPLER_FALLBACK.source}`,
            asOf: SAMPLER_FALLBACK.asOf,
          };
      return {
        state: { ...s, o: { ...s.o, steps } },
        detail: `NFEs x${ratio.toFixed(3)}: ${fmt(s.o.steps)} -> ${fmt(steps)} steps`,
        source,
        note: "assumes the NFE ratio at equal quality carries over from the model it was measured on to this one",
      };
    },
  },
  "guidance-distillation": {
    label: "guidance distillation (2 calls per step -> 1)",
    defaultEnabled: true,
    apply: (s, ctx) => {
      const calls = s.o.shape.guidanceCalls ?? 2;
      const toy = ctx.toy.get("guidance-distillation");
      if (toy && s.o.cfg) {
        // CFG off, and the toy's call ratio kept: NFEs = steps x calls x factor at one call per step
        const steps = s.o.steps * calls * toy.factor;
        return {
          state: { ...s, o: { ...s.o, cfg: false, steps } },
          detail: `NFEs x${toy.factor.toFixed(3)}: one call per step, ${fmt(s.o.steps * calls)} -> ${fmt(steps)} calls`,
          source: toySource(toy),
          note: `the toy's guide runs on the high-noise steps only; CFG on every step would save x${(1 / calls).toFixed(2)}`,
        };
      }
      return {
        state: { ...s, o: { ...s.o, cfg: false } },
        detail: !s.o.cfg
          ? "already one call per step (no CFG)"
          : calls === 2
            ? "CFG off: one network call per step"
            : `CFG off: ${calls} network calls per step -> 1`,
        source: { kind: "published", text: GUIDANCE_DISTILLATION.source, asOf: GUIDANCE_DISTILLATION.asOf },
      };
    },
  },
  "step-distillation": {
    label: "step distillation (few-step model)",
    defaultEnabled: true,
    apply: (s, ctx) => {
      const toy = ctx.toy.get("step-distillation");
      if (toy) {
        const steps = s.o.steps * toy.factor;
        return {
          state: { ...s, o: { ...s.o, steps } },
          detail: `NFEs x${toy.factor.toFixed(3)}: ${fmt(s.o.steps)} -> ${fmt(steps)} steps`,
          source: toySource(toy),
          note: "assumes the toy's student-over-teacher NFE ratio carries over to this model",
        };
      }
      const steps = Math.min(s.o.steps, STEP_DISTILLATION.value);
      return {
        state: { ...s, o: { ...s.o, steps } },
        detail: `${fmt(s.o.steps)} -> ${fmt(steps)} steps`,
        source: { kind: "published", text: STEP_DISTILLATION.source, asOf: STEP_DISTILLATION.asOf },
        note: STEP_DISTILLATION.note,
      };
    },
  },
  "smaller-model": {
    label: "smaller model of the same family",
    defaultEnabled: true,
    apply: (s) => {
      const sib = s.o.shape.smallerSibling;
      if (!sib) {
        return {
          state: s,
          detail: `no smaller ${s.o.shape.family} model among the presets`,
          source: { kind: "computed", text: "framecost FLOP model (no sibling: factor 1)" },
        };
      }
      const shape = modelShape(sib);
      return {
        state: { ...s, o: { ...s.o, shape } },
        detail: `${s.o.shape.label} -> ${shape.label}`,
        source: { kind: "computed", text: `framecost FLOP model of both shapes (${shape.source})` },
        note: "a smaller model is a quality trade, not a free saving",
      };
    },
  },
  "lower-resolution": {
    label: "lower resolution",
    defaultEnabled: true,
    apply: (s) => {
      const h0 = s.o.clip.height;
      const target = LOW_RES_HEIGHT.value;
      const mW = s.o.shape.vaeStride[2] * s.o.shape.patch[2];
      const mH = s.o.shape.vaeStride[1] * s.o.shape.patch[1];
      if (h0 <= target) {
        return {
          state: s,
          detail: `already ${s.o.clip.width}x${h0} (at or below ${target}p)`,
          source: { kind: "computed", text: "framecost FLOP model" },
        };
      }
      const height = Math.max(mH, Math.round(target / mH) * mH);
      const width = Math.max(mW, Math.round((s.o.clip.width * (height / h0)) / mW) * mW);
      return {
        state: { ...s, o: { ...s.o, clip: { ...s.o.clip, width, height } } },
        detail: `${s.o.clip.width}x${h0} -> ${width}x${height}`,
        source: {
          kind: "computed",
          text: `framecost FLOP model; target size: ${LOW_RES_HEIGHT.source}`,
          asOf: LOW_RES_HEIGHT.asOf,
        },
      };
    },
  },
  "lower-frame-rate": {
    label: "lower frame rate",
    defaultEnabled: true,
    apply: (s) => {
      const fps = Math.min(s.o.fps, NATIVE_LOW_FPS.value);
      return {
        state: { ...s, o: { ...s.o, fps } },
        detail:
          fps < s.o.fps
            ? `${s.o.fps} -> ${fps} fps (fewer frames per video minute)`
            : `already ${s.o.fps} fps`,
        source: {
          kind: "computed",
          text: `frames per video minute = fps x 60; target rate: ${NATIVE_LOW_FPS.source}`,
          asOf: NATIVE_LOW_FPS.asOf,
        },
      };
    },
  },
  "feature-caching": {
    label: "feature caching between steps",
    defaultEnabled: false,
    apply: (s, ctx) => {
      const toy = ctx.toy.get("feature-caching");
      if (toy) {
        return {
          state: withTime(s, s.fp8, true, { ...s.toyTime, caching: toy.factor }),
          detail: `network time x${toy.factor.toFixed(3)}`,
          source: toySource(toy),
          note: "the toy's wall-time ratio on a CPU; assumes it carries over",
        };
      }
      return {
        state: withTime(s, s.fp8, true),
        detail: `network time /${FEATURE_CACHING_SPEEDUP.value}`,
        source: {
          kind: "published",
          text: FEATURE_CACHING_SPEEDUP.source,
          asOf: FEATURE_CACHING_SPEEDUP.asOf,
        },
        note: FEATURE_CACHING_SPEEDUP.note,
      };
    },
  },
  "lower-precision": {
    label: "lower precision (FP8)",
    defaultEnabled: true,
    apply: (s, ctx) => {
      const toy = ctx.toy.get("lower-precision");
      if (toy) {
        return {
          state: withTime(s, true, s.caching, { ...s.toyTime, precision: toy.factor }),
          detail: `network time x${toy.factor.toFixed(3)}`,
          source: toySource(toy),
          note: "the toy's int8-over-fp32 wall-time ratio on a CPU; assumes it carries over to the GPU's low-precision kernels",
        };
      }
      if (!FP8_TENSOR_CORES[s.o.gpu.id]) {
        return {
          state: s,
          detail: `${s.o.gpu.id} has no FP8 tensor cores`,
          source: { kind: "published", text: FP8_TENSOR_CORES_SOURCE },
        };
      }
      return {
        state: withTime(s, true, s.caching),
        detail: `network time x${fp8TimeFactor().toFixed(3)} (= ${FP8.baselineSeconds} s / ${FP8.fa3PlusFp8Speedup} / ${FP8.fa3Seconds} s)`,
        source: { kind: "published", text: FP8.source, asOf: FP8.asOf },
        note: "measured on 8xH100 with Transformer Engine; text encoder and VAE stay in BF16",
      };
    },
  },
  "cheapest-gpu": {
    label: "cheapest GPU per delivered FLOP",
    defaultEnabled: true,
    apply: (s, ctx) => {
      const options: Array<{ gpu: Gpu; state: State; usd: number; perPflop: number }> = [];
      for (const gpu of ctx.catalog.gpus) {
        const price = chosenPrice(gpu);
        if (!price) continue;
        // a measured (int8) factor applies on any GPU; FP8 needs FP8 tensor cores
        const fp8 = s.fp8 && (s.toyTime?.precision !== undefined || FP8_TENSOR_CORES[gpu.id] === true);
        if (weightBytes(s.o.shape, fp8) > gpu.memoryGB.value * 1e9) continue;
        const moved = withTime(
          { ...s, o: { ...s.o, gpu, priceUsdPerHour: undefined, mfu: undefined } },
          fp8,
          s.caching,
        );
        const mfu = defaultMfu(ctx.catalog, gpu).value;
        options.push({
          gpu,
          state: moved,
          usd: cost(moved),
          perPflop: price.usdPerHour / 3600 / (gpu.bf16DenseTflops.value * 1e-3 * mfu),
        });
      }
      options.sort((a, b) => a.usd - b.usd);
      const best = options[0];
      if (!best || best.gpu.id === s.o.gpu.id) {
        return {
          state: s,
          detail: `${s.o.gpu.id} is already the cheapest for this workload`,
          source: { kind: "computed", text: "catalog prices, peaks and calibrated MFUs" },
        };
      }
      const table = options.map((x) => `${x.gpu.id} $${x.perPflop.toPrecision(3)}/PFLOP`).join(", ");
      return {
        state: best.state,
        detail: `${s.o.gpu.id} -> ${best.gpu.id} (USD per delivered PFLOP: ${table}${s.fp8 && !best.state.fp8 ? "; no FP8 on it" : ""})`,
        source: {
          kind: "computed",
          text: "catalog prices (lowest quote), dense BF16 peaks and calibrated MFUs; GPUs whose memory cannot hold the weights are left out",
        },
      };
    },
  },
  "higher-utilization": {
    label: "higher utilization (MFU)",
    defaultEnabled: true,
    apply: (s, ctx) => {
      const now = s.o.mfu ?? defaultMfu(ctx.catalog, s.o.gpu).value;
      const mfu = Math.max(now, TARGET_MFU.value);
      return {
        state: { ...s, o: { ...s.o, mfu } },
        detail:
          mfu > now
            ? `MFU ${now.toFixed(3)} -> ${mfu.toFixed(3)}`
            : `MFU ${now.toFixed(3)} already at or above ${TARGET_MFU.value}`,
        source: { kind: "published", text: TARGET_MFU.source, asOf: TARGET_MFU.asOf },
        note: TARGET_MFU.note,
      };
    },
  },
  "lower-price": {
    label: "lower price per GPU-hour (reserved)",
    defaultEnabled: true,
    apply: (s) => {
      const now = evaluateScenario(s.o).price.usdPerHour;
      const off = (RESERVED_DISCOUNT.low + RESERVED_DISCOUNT.high) / 2;
      const p = now * (1 - off);
      return {
        state: { ...s, o: { ...s.o, priceUsdPerHour: p } },
        detail: `$${now.toFixed(2)} -> $${p.toFixed(2)} per GPU-hour (${(off * 100).toFixed(0)}% off, the middle of ${RESERVED_DISCOUNT.low * 100}-${RESERVED_DISCOUNT.high * 100}%)`,
        source: { kind: "published", text: RESERVED_DISCOUNT.source, asOf: RESERVED_DISCOUNT.asOf },
      };
    },
  },
};

export interface LeverResult {
  name: LeverName;
  label: string;
  enabled: boolean;
  /** the factor used: the chain's, or the levers file's */
  factor: number;
  /** cost(after) / cost(before) along the chain */
  chainFactor: number;
  source: LeverSource;
  detail: string;
  note?: string;
  /** running cost after this lever (unchanged when disabled) */
  usdPerVideoMinuteAfter: number;
  /**
   * what --levers-measured said of this lever (null: nothing, or no file): the toy's ratio, whether it is
   * within the quality tolerance, and the chain factor the published figure gives at the same point
   */
  toy: {
    factor: number;
    kind: "nfe" | "wall";
    lever: string;
    compactnessChange: number;
    accepted: boolean;
    text: string;
    /** this lever's chain factor without the toy's measurement (published, or the sweep's) */
    publishedChainFactor: number;
    publishedSource: LeverSource;
  } | null;
  /** which factor the waterfall applies */
  applies: "toy" | "own";
  /** with --levers-measured, a lever the toy could stand for but did not measure: why (from the file) */
  toyAbsent: string | null;
}

export interface ScenarioBrief {
  model: string;
  width: number;
  height: number;
  frames: number;
  fps: number;
  steps: number;
  cfg: boolean;
  gpu: string;
  usdPerHour: number;
  mfu: number;
  networkTimeFactor: number;
  usdPerVideoMinute: number;
}

export interface PathResult {
  targetUsdPerVideoMinute: number;
  start: ScenarioBrief & { scenario: Scenario };
  levers: LeverResult[];
  end: {
    usdPerVideoMinute: number;
    /** the scenario with only the enabled levers' changes applied (file factors multiplied in) */
    recomputedUsdPerVideoMinute: number;
    /** every lever's change applied: the chain's last state */
    chain: ScenarioBrief;
  };
  /** the levers file the toy's factors came from; null without --levers-measured */
  measured: { model: string; protocol: string; createdAt: string; tolerance: number } | null;
  /** end / target: how many times too expensive it still is (< 1: below the target) */
  gapToTarget: number;
  reachesTarget: boolean;
  essay: {
    soraUsdPerDay: number;
    videoMinutesPerDay: { start: number; end: number };
    cheaperLabBand: { fromUsdPerVideoMinute: number; toUsdPerVideoMinute: number; source: string };
    outside: Array<{ what: string; usdPerVideoMinute: number; source: string }>;
    source: string;
  };
}

function brief(s: State): ScenarioBrief {
  const sc = evaluateScenario(s.o);
  return {
    model: s.o.shape.id,
    width: s.o.clip.width,
    height: s.o.clip.height,
    frames: s.o.clip.frames,
    fps: s.o.fps,
    steps: s.o.steps,
    cfg: s.o.cfg,
    gpu: s.o.gpu.id,
    usdPerHour: sc.price.usdPerHour,
    mfu: sc.mfu.value,
    networkTimeFactor: s.o.networkTimeFactor ?? 1,
    usdPerVideoMinute: sc.usdPerVideoMinute,
  };
}

export interface PathOptions {
  start: ScenarioOptions;
  targetUsdPerVideoMinute: number;
  catalog: Catalog;
  /** the steps lever's measurement; null: the published fallback, marked not measured */
  steps: StepsMeasurement | null;
  overrides?: LeverOverride[];
  /** `framecost levers`' record: the toy's measured factors, used where within `toyTolerance` */
  measured?: LeversRecord | null;
  /** how much worse the toy's first-frame compactness may be than the teacher's, relative (default 0.1) */
  toyTolerance?: number;
}

/** Why levers.json has no factor for a lever it could measure; null when the toy cannot stand for it. */
function absentReason(r: LeversRecord, name: LeverName): string | null {
  if (!PATH_FACTOR_KIND[name]) return null;
  const missing = r.levers.filter((l) => l.pathLever === name && l.status === "not available");
  if (missing.length === 0) return "the levers file has no entry for it";
  return missing.map((l) => `${l.name}: ${l.status === "not available" ? l.reason : ""}`).join("; ");
}

/** Runs the waterfall. */
export function buildPath(p: PathOptions): PathResult {
  if (!(p.targetUsdPerVideoMinute > 0)) {
    throw new UserError(`--target-usd-per-minute must be > 0, got ${p.targetUsdPerVideoMinute}`);
  }
  const found = new Map<LeverName, ToyFactor>();
  if (p.measured)
    for (const name of LEVER_NAMES) {
      const t = toyFactor(p.measured, name, p.toyTolerance ?? 0.1);
      if (t) found.set(name, t);
    }
  const accepted = new Map([...found].filter(([, t]) => t.accepted));
  const ctx: Context = { catalog: p.catalog, steps: p.steps, toy: accepted };
  const withoutToy: Context = { ...ctx, toy: new Map() };
  const overrides = new Map((p.overrides ?? []).map((o) => [o.name, o]));
  const start: State = { o: { ...p.start, networkTimeFactor: 1 }, fp8: false, caching: false };
  const startScenario = evaluateScenario(start.o);
  const startUsd = startScenario.usdPerVideoMinute;
  let state = start;
  let before = startUsd;
  let running = startUsd;
  // the enabled changes alone, for the recomputed end
  let enabledOnly = start;
  let fileFactors = 1;
  const levers: LeverResult[] = [];
  for (const name of LEVER_NAMES) {
    const def = LEVERS[name];
    const step = def.apply(state, ctx);
    const after = cost(step.state);
    const chainFactor = after / before;
    const t = found.get(name);
    const own = t ? def.apply(state, withoutToy) : null;
    // the toy applies unless the sweep measured fewer steps (the sweep's reference is 50 steps, as the start's)
    const toyApplies = t?.accepted === true && step.source.kind === "measured" && step.source.text === t.text;
    const o = overrides.get(name);
    const enabled = o?.enabled ?? def.defaultEnabled;
    const factor = o?.factor ?? chainFactor;
    const source: LeverSource =
      o?.factor !== undefined ? { kind: "user", text: `--levers file: ${o.source}` } : step.source;
    if (enabled) {
      running *= factor;
      if (o?.factor !== undefined) fileFactors *= o.factor;
      else enabledOnly = def.apply(enabledOnly, ctx).state;
    }
    levers.push({
      name,
      label: def.label,
      enabled,
      factor,
      chainFactor,
      source,
      detail: step.detail,
      note: step.note,
      usdPerVideoMinuteAfter: running,
      toy:
        t && own
          ? {
              factor: t.factor,
              kind: t.kind,
              lever: t.lever.name,
              compactnessChange: t.compactnessChange,
              accepted: t.accepted,
              text: t.text,
              publishedChainFactor: cost(own.state) / before,
              publishedSource: own.source,
            }
          : null,
      applies: toyApplies && o?.factor === undefined ? "toy" : "own",
      toyAbsent: p.measured && !t ? absentReason(p.measured, name) : null,
    });
    state = step.state;
    before = after;
  }
  const end = running;
  const recomputed = cost(enabledOnly) * fileFactors;
  const sora = ESSAY.soraUsdPerDay;
  const h100 = p.catalog.gpus.find((g) => g.id === "h100-sxm");
  const h100Price = h100 ? chosenPrice(h100) : null;
  const outside: PathResult["essay"]["outside"] = [
    {
      what: "Cantor's Sora estimate, ~$1.30 per 10-second clip",
      usdPerVideoMinute: ESSAY.cantorUsdPer10sClip * 6,
      source: ESSAY.cantorSource,
    },
  ];
  if (h100Price) {
    outside.push({
      what: `Factorial Funds' ~12 H100-minutes per video minute, at $${h100Price.usdPerHour}/h`,
      usdPerVideoMinute: (ESSAY.outside[0].h100MinutesPerMinute / 60) * h100Price.usdPerHour,
      source: `${ESSAY.outside[0].what}; price: ${h100Price.source}`,
    });
  }
  return {
    targetUsdPerVideoMinute: p.targetUsdPerVideoMinute,
    start: { ...brief(start), scenario: startScenario },
    levers,
    end: { usdPerVideoMinute: end, recomputedUsdPerVideoMinute: recomputed, chain: brief(state) },
    measured: p.measured
      ? {
          model: p.measured.model,
          protocol: p.measured.protocol.name,
          createdAt: p.measured.createdAt,
          tolerance: p.toyTolerance ?? 0.1,
        }
      : null,
    gapToTarget: end / p.targetUsdPerVideoMinute,
    reachesTarget: end <= p.targetUsdPerVideoMinute,
    essay: {
      soraUsdPerDay: sora,
      videoMinutesPerDay: { start: sora / startUsd, end: sora / end },
      cheaperLabBand: {
        fromUsdPerVideoMinute: startUsd * ESSAY.cheaperLabBand.from,
        toUsdPerVideoMinute: startUsd * ESSAY.cheaperLabBand.to,
        source: `${ESSAY.citation}: Chinese labs at 1/6 to 1/10 of Sora's inference cost for the same output, applied to this start`,
      },
      outside,
      source: ESSAY.source,
    },
  };
}
