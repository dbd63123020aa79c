/**
 * What the report stage reads from a RunRecord (schema: src/meter/record.ts)
 * and the key figures it derives. Every FLOP count in a record is in FLOPs
 * (1 multiply-accumulate = 2); `flopConvention` only says how to print them.
 */
import type { FlopConvention } from "../meter/flops.ts";
import type { RunRecord } from "../meter/record.ts";

export { conventionNote, conventionUnit, type FlopConvention, toConvention } from "../meter/flops.ts";
export { type RunRecord, RunRecordSchema, validateRunRecord } from "../meter/record.ts";

/** Key figures of one run, derived from its totals (ratios of measured figures, not new measurements). */
export interface RunFigures {
  wallMsPerFrame: number;
  wallMsPerNfe: number;
  wallMsPerStep: number;
  nfePerFrame: number;
  gflops: number;
  utilization: number;
  /** in FLOPs whatever the convention (convert with toConvention to print) */
  flopsPerNfe: number;
  flopConvention: FlopConvention;
  /** from the record's cost section when it has one; keys "local" or a GPU id */
  usdPerVideoMinute: Record<string, number>;
  /** numeric quality metrics when the record carries them */
  quality: Record<string, number>;
}

export function runFigures(r: RunRecord): RunFigures {
  const t = r.totals;
  return {
    wallMsPerFrame: t.wallMs / t.frames,
    wallMsPerNfe: t.wallMs / t.nfe,
    wallMsPerStep: t.wallMs / t.steps,
    nfePerFrame: t.nfe / t.frames,
    gflops: r.throughput.gflops,
    utilization: r.throughput.utilization,
    flopsPerNfe: r.model.flopsPerNfe,
    flopConvention: r.flopConvention,
    usdPerVideoMinute: usdFromCost(r.cost),
    quality: numericLeaves((r as Record<string, unknown>).quality),
  };
}

/**
 * USD per video-minute from a record's cost section, whose shape the cost
 * stage owns. Reads, where present: `usdPerVideoMinute` as a number (local)
 * or `{ local?, byGpu? }` or a map of GPU id to number; `local.usdPerVideoMinute`
 * (src/cost/run.ts LocalCost); and arrays `gpus` / `extrapolations` of
 * `{ gpu: { id } | id, usdPerVideoMinute }` (src/cost/run.ts Extrapolation).
 * Anything else is ignored: keys are "local" or a GPU id.
 */
export function usdFromCost(cost: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (!isObject(cost)) return out;
  const put = (key: string, v: unknown) => {
    if (typeof v === "number" && Number.isFinite(v)) out[key] = v;
  };
  const u = cost.usdPerVideoMinute;
  if (typeof u === "number") put("local", u);
  else if (isObject(u)) {
    put("local", u.local);
    for (const [k, v] of Object.entries(isObject(u.byGpu) ? u.byGpu : u)) if (k !== "local") put(k, v);
  }
  if (isObject(cost.local)) put("local", cost.local.usdPerVideoMinute);
  for (const list of [cost.gpus, cost.extrapolations]) {
    if (!Array.isArray(list)) continue;
    for (const e of list) {
      if (!isObject(e)) continue;
      const id = isObject(e.gpu) ? e.gpu.id : e.gpu;
      if (typeof id === "string") put(id, e.usdPerVideoMinute);
    }
  }
  return out;
}

function numericLeaves(x: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (!isObject(x)) return out;
  for (const [k, v] of Object.entries(x)) if (typeof v === "number" && Number.isFinite(v)) out[k] = v;
  return out;
}

export function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}
