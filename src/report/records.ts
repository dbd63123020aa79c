/**
 * What the report stage reads from a RunRecord, and the key figures it derives.
 *
 * PROVISIONAL: the RunRecord schema belongs to `src/meter/record.ts` (not
 * landed when this was written). Until then this is a loose view of the
 * agreed shape: only the fields the report reads are checked, everything else
 * passes through untouched. Swap `RunRecordSchema` for the meter's when it
 * lands; the rest of src/report/ uses only `RunRecord` and the helpers below.
 */
import { z } from "zod";

const finite = z.number().refine(Number.isFinite, "must be a finite number");
const count = z.number().int().nonnegative();

export const RunRecordSchema = z.looseObject({
  schemaVersion: z.literal(1),
  complete: z.boolean(),
  backend: z.looseObject({ name: z.string(), reason: z.string() }),
  model: z.looseObject({ name: z.string(), params: count, flopsPerNfe: finite }),
  sampler: z.looseObject({ name: z.string(), steps: count, nfePerFrame: finite }),
  video: z.looseObject({ frames: count, fps: finite, width: count, height: count }),
  flopConvention: z.string(),
  calibration: z.looseObject({ gemmGflops: finite }),
  frames: z.array(z.looseObject({ index: count, wallMs: finite, nfe: count, steps: count, flops: finite })),
  totals: z.looseObject({ frames: count, steps: count, nfe: count, flops: finite, wallMs: finite }),
  throughput: z.looseObject({ gflops: finite, utilization: finite }),
  memory: z.unknown(),
  kernels: z.array(z.unknown()),
  cost: z.unknown().optional(),
  quality: z.unknown().optional(),
});
export type RunRecord = z.infer<typeof RunRecordSchema>;

/** True when the record counts multiply-adds as one (MACs) rather than two FLOPs. */
export function isMacConvention(convention: string): boolean {
  return /mac/i.test(convention);
}

/** The unit word for a FLOP count under the record's convention. */
export function flopUnit(convention: string): "FLOP" | "MAC" {
  return isMacConvention(convention) ? "MAC" : "FLOP";
}

/** One phrase naming the convention, to sit next to any FLOP figure. */
export function conventionNote(convention: string): string {
  return isMacConvention(convention)
    ? "MAC convention: 1 multiply-add = 1 MAC"
    : "FLOP convention: 1 multiply-add = 2 FLOP";
}

/** Key figures of one run, derived from its totals (ratios, not new measurements). */
export interface RunFigures {
  wallMsPerFrame: number;
  wallMsPerNfe: number;
  wallMsPerStep: number;
  nfePerFrame: number;
  gflops: number;
  utilization: number;
  flopsPerNfe: number;
  flopConvention: string;
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
    quality: numericLeaves(r.quality),
  };
}

/**
 * USD per video-minute from a record's cost section, whose shape the cost
 * stage owns. Accepts `{ usdPerVideoMinute: number | { local?, byGpu? } | Record }`
 * and ignores anything else.
 */
export function usdFromCost(cost: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (!isObject(cost)) return out;
  const u = cost.usdPerVideoMinute;
  if (typeof u === "number" && Number.isFinite(u)) out.local = u;
  else if (isObject(u)) {
    if (typeof u.local === "number" && Number.isFinite(u.local)) out.local = u.local;
    const byGpu = isObject(u.byGpu) ? u.byGpu : u;
    for (const [k, v] of Object.entries(byGpu)) {
      if (k !== "local" && typeof v === "number" && Number.isFinite(v)) out[k] = v;
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
