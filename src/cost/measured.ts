/**
 * levers.json: what `framecost levers` measured of each cost lever on the
 * shipped model, every lever on the same protocol (src/run/levers.ts), and
 * how `framecost path --levers-measured` picks the toy's factor for a lever
 * of the waterfall. Lives in cost because the path reads it; the run stage
 * writes it and the report stage draws it.
 */
import { z } from "zod";
import { UserError } from "../util/errors.ts";
import { LEVER_NAMES, type LeverName } from "./path-names.ts";

export const LEVERS_SCHEMA_VERSION = 1;

const finite = z.number().refine(Number.isFinite, "must be a finite number");
const nonNegative = finite.refine((v) => v >= 0, "must be >= 0");
const positive = finite.refine((v) => v > 0, "must be > 0");

/** One configuration's cost and quality, per frame, over every frame the protocol generated. */
export const LeverFiguresSchema = z.strictObject({
  nfePerFrame: positive,
  flopsPerFrame: positive,
  wallMsPerFrame: positive,
  /** median wall time of one network call */
  msPerNfe: nonNegative.nullable(),
  frames: z.int().positive(),
  backend: z.string().min(1),
  firstFrame: z.strictObject({
    /** 4 pi A / P^2 of the shapes (src/quality/shapes.ts); higher is better, real frames ~0.65 */
    compactness: nonNegative,
    specksPerFrame: nonNegative,
    shapesPerFrame: nonNegative,
    emptyShare: nonNegative,
    swdPixels: nonNegative,
    swdPatches: nonNegative,
    paletteError: nonNegative,
  }),
  /** null when the protocol generated no long clips */
  longClip: z
    .strictObject({
      /** SWD of the last frames over the first frames' */
      lastOverFirst: nonNegative,
      lastCompactness: nonNegative,
      motion: nonNegative,
    })
    .nullable(),
});
export type LeverFigures = z.infer<typeof LeverFiguresSchema>;

export const LeverConfigSchema = z.strictObject({
  /** model folder as run */
  model: z.string().min(1),
  sampler: z.string().min(1),
  steps: z.int().positive(),
  /** "default": the model folder's own guidance; "off": --guidance 0 */
  guidance: z.enum(["default", "off"]),
  /** further generation options (the flags of levers built in other stages) */
  extra: z.record(z.string(), z.unknown()),
});
export type LeverConfig = z.infer<typeof LeverConfigSchema>;

const Ratios = z.strictObject({ nfe: positive, flops: positive, wall: positive });

const LeverEntryBase = {
  name: z.string().min(1),
  label: z.string().min(1),
  /** the lever of `framecost path` this stands for; null: none there */
  pathLever: z.enum(LEVER_NAMES).nullable(),
  /** the entry its factor is taken against ("teacher", or e.g. the unguided teacher for a student) */
  baseline: z.string().min(1),
  note: z.string().optional(),
  config: LeverConfigSchema,
};

export const LeverEntrySchema = z.discriminatedUnion("status", [
  z.strictObject({
    ...LeverEntryBase,
    status: z.literal("measured"),
    figures: LeverFiguresSchema,
    /** cost of this entry / cost of the teacher, and / cost of its baseline */
    vsTeacher: Ratios,
    vsBaseline: Ratios,
  }),
  z.strictObject({ ...LeverEntryBase, status: z.literal("not available"), reason: z.string().min(1) }),
]);
export type LeverEntry = z.infer<typeof LeverEntrySchema>;
export type MeasuredLever = Extract<LeverEntry, { status: "measured" }>;

export const FrontierPointSchema = z.strictObject({
  sampler: z.string().min(1),
  steps: z.int().positive(),
  figures: LeverFiguresSchema,
});
export type FrontierPoint = z.infer<typeof FrontierPointSchema>;

export const ProtocolSchema = z.strictObject({
  /** "full" (the model card's counts), "quick", or "custom" */
  name: z.string().min(1),
  clips: z.int().positive(),
  longClips: z.int().nonnegative(),
  longFrames: z.int().positive(),
  referenceClips: z.int().positive(),
  seed: z.int(),
  backend: z.string().min(1),
});
export type Protocol = z.infer<typeof ProtocolSchema>;

export const LeversRecordSchema = z.strictObject({
  schemaVersion: z.literal(LEVERS_SCHEMA_VERSION),
  kind: z.literal("framecost-levers"),
  createdAt: z.iso.datetime(),
  model: z.string().min(1),
  device: z.strictObject({ cpuModel: z.string(), cores: z.int().positive() }),
  protocol: ProtocolSchema,
  /** the real held-out frames on the same figures: what a perfect model scores */
  real: z.strictObject({
    compactness: nonNegative,
    specksPerFrame: nonNegative,
    motion: nonNegative.nullable(),
  }),
  teacher: z.string().min(1),
  levers: z.array(LeverEntrySchema).min(1),
  /** the teacher at several step counts per sampler: the cost-quality frontier */
  frontier: z.array(FrontierPointSchema),
  wallSeconds: nonNegative,
});
export type LeversRecord = z.infer<typeof LeversRecordSchema>;

function pathOf(path: readonly PropertyKey[]): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s === "" ? String(p) : `.${String(p)}`;
  return s === "" ? "the top level" : s;
}

/** Validates a parsed levers.json: one UserError line naming the first bad field and the fix. */
export function parseLeversRecord(data: unknown, where: string): LeversRecord {
  const fix = "regenerate it with `framecost levers --out DIR`";
  if (data == null || typeof data !== "object" || Array.isArray(data))
    throw new UserError(`${where}: not a levers record (a JSON object); ${fix}`);
  const o = data as Record<string, unknown>;
  if (o.kind !== "framecost-levers")
    throw new UserError(
      `${where}: kind is ${JSON.stringify(o.kind)}, not "framecost-levers": this is not a file \`framecost levers\` wrote; ${fix}`,
    );
  if (o.schemaVersion !== LEVERS_SCHEMA_VERSION)
    throw new UserError(
      `${where}: schemaVersion ${JSON.stringify(o.schemaVersion)}, this framecost reads ${LEVERS_SCHEMA_VERSION}; ${fix}`,
    );
  const r = LeversRecordSchema.safeParse(data);
  if (!r.success) {
    const issue = r.error.issues[0];
    let v: unknown = data;
    for (const p of issue.path)
      v = v != null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[p] : undefined;
    const seen = v === undefined ? "missing" : JSON.stringify(v)?.slice(0, 60);
    throw new UserError(
      `${where}: field ${pathOf(issue.path)} is invalid (${issue.message.replace(/^Invalid input: /, "")}; value seen: ${seen}); ${fix}`,
    );
  }
  const names = new Set<string>();
  for (const [i, l] of r.data.levers.entries()) {
    if (names.has(l.name))
      throw new UserError(`${where}: levers[${i}].name "${l.name}" appears twice; ${fix}`);
    names.add(l.name);
  }
  for (const [i, l] of r.data.levers.entries())
    if (!names.has(l.baseline))
      throw new UserError(
        `${where}: levers[${i}].baseline "${l.baseline}" names no lever in the file; ${fix}`,
      );
  const teacher = r.data.levers.find((l) => l.name === r.data.teacher);
  if (teacher?.status !== "measured")
    throw new UserError(
      `${where}: the teacher "${r.data.teacher}" is not a measured lever in the file; ${fix}`,
    );
  return r.data;
}

// ---------------------------------------------------------------- what the path takes from it

/**
 * Which of the toy's ratios stands for each lever of the waterfall: the
 * sampler levers change network calls, so their NFE ratio; caching and
 * precision change the time of a call, so their wall-time ratio.
 */
export const PATH_FACTOR_KIND: Partial<Record<LeverName, "nfe" | "wall">> = {
  "fewer-steps": "nfe",
  "guidance-distillation": "nfe",
  "step-distillation": "nfe",
  "feature-caching": "wall",
  "lower-precision": "wall",
};

/** Relative change of a lever's first-frame compactness against the teacher's (negative: worse). */
export function compactnessChange(lever: MeasuredLever, teacher: MeasuredLever): number {
  return lever.figures.firstFrame.compactness / teacher.figures.firstFrame.compactness - 1;
}

export interface ToyFactor {
  /** the toy's ratio against the entry's baseline: what the waterfall applies when `accepted` */
  factor: number;
  kind: "nfe" | "wall";
  lever: MeasuredLever;
  /** first-frame compactness against the teacher's, relative */
  compactnessChange: number;
  /** within the tolerance: the waterfall uses it */
  accepted: boolean;
  /** one line: what was measured, on which protocol, and why it is used or not */
  text: string;
}

/**
 * The toy's factor for one waterfall lever: among the measured entries that
 * stand for it, the cheapest whose first-frame compactness stays within
 * `tolerance` of the teacher's; if none does, the cheapest of them, marked
 * not accepted (the waterfall then keeps the published factor). null: the
 * file measured nothing for this lever.
 */
export function toyFactor(record: LeversRecord, name: LeverName, tolerance: number): ToyFactor | null {
  const kind = PATH_FACTOR_KIND[name];
  if (!kind) return null;
  const teacher = record.levers.find((l) => l.name === record.teacher) as MeasuredLever;
  const pool = record.levers.filter(
    (l): l is MeasuredLever => l.status === "measured" && l.pathLever === name && l.name !== record.teacher,
  );
  if (pool.length === 0) return null;
  const within = pool.filter((l) => compactnessChange(l, teacher) >= -tolerance);
  const pick = (xs: MeasuredLever[]) =>
    xs.reduce((a, b) => (b.vsBaseline[kind] < a.vsBaseline[kind] ? b : a));
  const lever = pick(within.length > 0 ? within : pool);
  const change = compactnessChange(lever, teacher);
  const accepted = within.length > 0;
  const what = kind === "nfe" ? "NFEs per frame" : "wall time per frame";
  const pct = (x: number) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}%`;
  const base = lever.baseline === record.teacher ? "the teacher" : lever.baseline;
  return {
    factor: lever.vsBaseline[kind],
    kind,
    lever,
    compactnessChange: change,
    accepted,
    text: `framecost levers (the toy, ${record.protocol.name} protocol): ${lever.label}, ${what} x${lever.vsBaseline[kind].toPrecision(3)} against ${base}, first-frame compactness ${pct(change)} against the teacher${accepted ? "" : ` (beyond ${(tolerance * 100).toFixed(0)}%: not used)`}`,
  };
}
