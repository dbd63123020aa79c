/**
 * The RunRecord: what one generation cost, written as JSON and read back with
 * the same zod schema. Versioned: a change that breaks readers bumps
 * `schemaVersion`.
 *
 * Units: every FLOP count in a record is in FLOPs (1 multiply-accumulate = 2),
 * whatever `flopConvention` says; `flopConvention` is the unit the user asked
 * reports to print (see `toConvention` in flops.ts). Times are milliseconds of
 * wall clock, memory is bytes.
 */
import { z } from "zod";
import { RuntimeFailure, UserError } from "../util/errors.ts";

export const SCHEMA_VERSION = 1;

const finite = z.number().refine(Number.isFinite, "must be a finite number");
const nonNegative = finite.refine((v) => v >= 0, "must be >= 0");
const count = z.int().nonnegative();
const positiveInt = z.int().positive();
const msOrNull = nonNegative.nullable();

const FrameSchema = z.object({
  index: count,
  /** wall clock from beginFrame to endFrame */
  wallMs: nonNegative,
  /** network evaluations in this frame */
  nfe: count,
  /** calls of the wrapped network (differs from nfe only when one call batches several evaluations) */
  calls: count,
  /** sampler steps in this frame */
  steps: count,
  /** network FLOPs + sampler arithmetic FLOPs */
  flops: nonNegative,
  samplerFlops: nonNegative,
  /** wall clock of each step, from the previous step boundary (or the frame start) */
  stepWallMs: z.array(nonNegative),
  /** of `nfe`, the evaluations made as feature-cached calls (they skip blocks; absent = none) */
  cachedNfe: count.optional(),
  /** frames made together, one batched call per step (wallMs, nfe, flops are this frame's share; calls are shared) */
  batch: positiveInt.optional(),
});

const KernelSchema = z.object({
  name: z.string().min(1),
  /** invocations per network evaluation (averaged over calls when shapes vary) */
  countPerNfe: nonNegative,
  /** 0 for data movement, which is counted with 0 FLOPs on purpose */
  flopsPerNfe: nonNegative,
  bytesPerNfe: nonNegative,
  /** kernel time per NFE from the counted call of each shape */
  msPerNfe: nonNegative,
  /** false: no FLOP rule for this kernel (its FLOPs are unknown, not zero) */
  counted: z.boolean(),
});

const UncountedSchema = z.object({
  name: z.string().min(1),
  /** invocations over the whole run */
  count: count,
  /** kernel time over the whole run: kernel time in the counted call of each shape x calls of that shape */
  ms: nonNegative,
});

// Loose at the top level: later stages may add their own sections (cost, quality) and they survive a round trip.
export const RunRecordSchema = z.looseObject({
  schemaVersion: z.literal(SCHEMA_VERSION),
  /** false when the run stopped before every requested frame and output was written */
  complete: z.boolean(),
  /**
   * why an incomplete run stopped: the signal (Ctrl-C is SIGINT) and what the run was doing. Optional, added
   * after version 1 shipped: readers of version 1 accept it (the top level is loose), so no version bump
   */
  interrupted: z
    .object({ signal: z.enum(["SIGINT", "SIGTERM"]), during: z.enum(["generating", "writing"]) })
    .optional(),
  createdAt: z.iso.datetime(),
  backend: z.object({ name: z.string().min(1), reason: z.string() }),
  device: z.object({ cpuModel: z.string(), cores: positiveInt }),
  model: z.object({
    name: z.string().min(1),
    params: count,
    /** counted from the kernels that ran */
    flopsPerNfe: nonNegative,
    /** from the model's config (meter/analytic.ts); null where no formula applies */
    flopsPerNfeAnalytic: nonNegative.nullable(),
    config: z.looseObject({}),
    /** the weights' arithmetic: "int8" = the blocks' dense layers as integer MatMuls (their integer ops are in the FLOPs); absent = fp32 */
    precision: z.enum(["fp32", "int8"]).optional(),
  }),
  sampler: z.object({
    name: z.string().min(1),
    steps: positiveInt,
    nfePerFrame: count,
    schedule: z.string(),
    spacing: z.string(),
    /** autoguidance (run/generation.ts): its guide calls are NFEs like any other; null or absent = unguided */
    guidance: z
      .object({
        kind: z.literal("autoguidance"),
        guide: z.string(),
        weight: nonNegative,
        fromT: z.int().nonnegative(),
        /** which frames are guided: "first" = frames with no history only (nfePerFrame then counts a frame with history) */
        frames: z.enum(["first", "all"]),
        /** guide calls a guided frame adds */
        guideCallsPerFrame: count,
      })
      .nullable()
      .optional(),
    /**
     * feature caching (DeepCache-style, run/generation.ts): every `interval`-th call of a frame runs in full,
     * the calls between skip blocks [fromBlock, toBlock) and reuse their residual; null or absent = off
     */
    featureCache: z
      .object({
        kind: z.literal("deepcache"),
        interval: z.int().min(2),
        fromBlock: count,
        toBlock: positiveInt,
        depth: positiveInt,
      })
      .nullable()
      .optional(),
  }),
  /** calls made as one batched call (absent = none): clips per call, and model + guide in one session run */
  batching: z
    .object({
      clipsPerCall: positiveInt,
      guideInSameCall: z.boolean(),
    })
    .optional(),
  video: z.object({
    /** frames requested (totals.frames counts those generated) */
    frames: positiveInt,
    fps: nonNegative.refine((v) => v > 0, "must be > 0"),
    width: positiveInt,
    height: positiveInt,
  }),
  seed: z.int(),
  flopConvention: z.enum(["flops", "macs"]),
  calibration: z.object({ gemmGflops: nonNegative.refine((v) => v > 0, "must be > 0"), backend: z.string() }),
  frames: z.array(FrameSchema),
  nfeTiming: z.object({
    /** the first network call: compilation, allocation and the one-time kernel counting */
    warmupMs: msOrNull,
    /** steady state: calls after the first that were not counted (a counted call per new shape is excluded), per NFE */
    meanMs: msOrNull,
    medianMs: msOrNull,
    p90Ms: msOrNull,
    count: count,
  }),
  kernels: z.array(KernelSchema),
  uncounted: z.array(UncountedSchema),
  /** sampler arithmetic outside the network, over the run */
  samplerFlops: nonNegative,
  totals: z.object({
    frames: count,
    steps: count,
    nfe: count,
    calls: count,
    flops: nonNegative,
    wallMs: nonNegative,
    /** of `nfe`, the evaluations made as feature-cached calls (absent = none); their FLOPs are what ran */
    cachedNfe: count.optional(),
  }),
  throughput: z.object({
    /** totals.flops / totals.wallMs */
    gflops: nonNegative,
    /** gflops / calibration.gemmGflops */
    utilization: nonNegative,
  }),
  memory: z.object({
    /** most bytes held by tfjs tensors at once (from the counted calls and after every call) */
    peakTensorBytes: count,
    /** process peak resident set (process.resourceUsage().maxRSS) */
    peakRssBytes: count,
  }),
  /** filled by the cost stage; the meter does not read it */
  cost: z.looseObject({}).optional(),
});

export type RunRecord = z.infer<typeof RunRecordSchema>;
export type FrameRecord = z.infer<typeof FrameSchema>;
export type KernelRecord = z.infer<typeof KernelSchema>;
export type UncountedRecord = z.infer<typeof UncountedSchema>;

/** `frames[3].wallMs` from a zod issue path. */
function fieldPath(path: readonly PropertyKey[]): string {
  let s = "";
  for (const p of path) {
    if (typeof p === "number") s += `[${p}]`;
    else s += s === "" ? String(p) : `.${String(p)}`;
  }
  return s === "" ? "(the top level)" : s;
}

function describeValue(root: unknown, path: readonly PropertyKey[]): string {
  let v: unknown = root;
  for (const p of path) {
    if (v == null || typeof v !== "object") return "missing";
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  if (v === undefined) return "missing";
  const text = JSON.stringify(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** "field frames[3].wallMs is invalid (...; value seen: ...)" for the first failing field, or null when valid. */
function firstBadField(record: unknown): { data: RunRecord } | { problem: string } {
  const parsed = RunRecordSchema.safeParse(record);
  if (parsed.success) return { data: parsed.data };
  const issue = parsed.error.issues[0];
  const seen = describeValue(record, issue.path);
  return { problem: `field ${fieldPath(issue.path)} is invalid (${issue.message}; value seen: ${seen})` };
}

/** Checks a record read from a user's file: a UserError naming the first bad field. */
export function validateRunRecord(record: unknown, sourceName: string): RunRecord {
  const r = firstBadField(record);
  if ("data" in r) return r.data;
  throw new UserError(
    `${sourceName}: ${r.problem}; this is not a RunRecord that framecost wrote: regenerate it with \`framecost generate\``,
  );
}

/**
 * Reads a RunRecord from JSON text. Non-JSON, a wrong schemaVersion and a
 * schema failure each give one UserError line naming the first bad field.
 */
export function parseRunRecord(text: string, sourceName: string): RunRecord {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new UserError(
      `${sourceName}: not valid JSON (${why}); pass the run.json that \`framecost generate\` wrote`,
    );
  }
  if (data == null || typeof data !== "object" || Array.isArray(data)) {
    throw new UserError(
      `${sourceName}: expected a JSON object (a RunRecord), got ${Array.isArray(data) ? "an array" : JSON.stringify(data)}; pass the run.json that \`framecost generate\` wrote`,
    );
  }
  const version = (data as Record<string, unknown>).schemaVersion;
  if (version !== SCHEMA_VERSION) {
    throw new UserError(
      `${sourceName}: field schemaVersion is ${version === undefined ? "missing" : JSON.stringify(version)}, ` +
        `this framecost reads schemaVersion ${SCHEMA_VERSION}; regenerate the record with this version of framecost`,
    );
  }
  return validateRunRecord(data, sourceName);
}

/** The JSON text the program writes (2-space indent, trailing newline), checked against the schema first. */
export function serializeRunRecord(record: RunRecord): string {
  const r = firstBadField(record);
  // the program built this record: a failure here is a bug, not a user mistake
  if ("problem" in r)
    throw new RuntimeFailure(`internal error: the run record to be written has ${r.problem}`);
  return `${JSON.stringify(r.data, null, 2)}\n`;
}
