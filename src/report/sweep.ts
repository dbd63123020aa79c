/**
 * The sweep record (`sweep.json`, `sweep.csv`) and its analysis.
 *
 * A sweep is a grid of runs, one cell per (sampler, steps). Per sampler we fit
 * wall time per frame = a + b x NFE by least squares: `a` is what a frame
 * costs whatever the step count (context encoding, decoding, bookkeeping), `b`
 * what each network evaluation adds. The fixed share a / (a + b x NFE) and its
 * complement, the share the steps explain, are reported at every cell. The
 * Pareto front keeps the cells no other cell beats on both quality and USD
 * per video-minute.
 */
import { dirname, join, resolve } from "node:path";
import { z } from "zod";
import { RuntimeFailure, UserError } from "../util/errors.ts";
import { firstIssue, readJsonFile, writeFileAtomic } from "./files.ts";
import { pct, sig } from "./format.ts";
import { type RunRecord, RunRecordSchema, validateRunRecord } from "./records.ts";

export const SWEEP_SCHEMA_VERSION = 1;

const finite = z.number().refine(Number.isFinite, "must be a finite number");

/**
 * Quality of one cell against held-out clips (src/quality/metrics.ts). Every
 * metric is a distance or an error: lower is better. Extra numeric metrics
 * pass through.
 */
export const QualitySchema = z
  .object({ swdPixels: finite, swdPatches: finite, paletteError: finite })
  .catchall(finite);
export type Quality = z.infer<typeof QualitySchema>;
export const QUALITY_METRICS = ["swdPixels", "swdPatches", "paletteError"] as const;

/** USD per video-minute as the cost stage computed it: on this machine and per catalog GPU id. */
export const UsdPerVideoMinuteSchema = z.object({
  local: finite.nullable(),
  byGpu: z.record(z.string(), finite),
});
export type UsdPerVideoMinute = z.infer<typeof UsdPerVideoMinuteSchema>;

/** Where a cell ran, from its RunRecord: told apart by CPU model, core count and backend. */
export const CellMachineSchema = z.object({
  cpu: z.string(),
  cores: z.number().int().positive(),
  backend: z.string(),
  /** the GEMM peak this cell's run calibrated and divided by (RunRecord calibration.gemmGflops) */
  gemmGflops: finite.refine((x) => x > 0, "must be > 0"),
});
export type CellMachine = z.infer<typeof CellMachineSchema>;

/** What the cell's run did in its wall time, from its RunRecord (FLOPs counted, 1 multiply-add = 2). */
export const CellThroughputSchema = z.object({
  frames: z.number().int().nonnegative(),
  flops: finite.refine((x) => x >= 0, "must be >= 0"),
  gflops: finite,
  utilization: finite,
});
export type CellThroughput = z.infer<typeof CellThroughputSchema>;

export const SweepCellSchema = z.object({
  sampler: z.string().min(1),
  steps: z.number().int().positive(),
  nfePerFrame: finite.refine((x) => x > 0, "must be > 0"),
  /** the RunRecord itself, or a path to it relative to sweep.json */
  record: z.union([z.string().min(1), RunRecordSchema]),
  quality: QualitySchema.nullable(),
  wallMsPerFrame: finite.refine((x) => x >= 0, "must be >= 0"),
  usdPerVideoMinute: UsdPerVideoMinuteSchema,
  /** absent in sweeps written before cells recorded their machine (cellMachine reads an inline record) */
  machine: CellMachineSchema.optional(),
  throughput: CellThroughputSchema.optional(),
});
export type SweepCell = z.infer<typeof SweepCellSchema>;

/** Per-cell reading of a fit. */
export const FitCellSchema = z.object({
  steps: z.number().int().positive(),
  nfePerFrame: finite,
  fittedWallMsPerFrame: finite,
  /** a / (a + b x NFE): the part of a frame's wall time that does not scale with NFEs; null where the fitted time is not > 0 */
  fixedShare: finite.nullable(),
  /** b x NFE / (a + b x NFE) = 1 - fixedShare: the part the steps explain */
  stepsShare: finite.nullable(),
});
export type FitCell = z.infer<typeof FitCellSchema>;

export const SamplerFitSchema = z.discriminatedUnion("ok", [
  z.object({
    ok: z.literal(true),
    sampler: z.string(),
    /** cells the fit used */
    n: z.number().int(),
    /** intercept: wall ms per frame at zero NFEs */
    aMs: finite,
    /** slope: wall ms per network evaluation */
    bMsPerNfe: finite,
    /** coefficient of determination of the fit over this sampler's cells */
    r2: finite,
    cells: z.array(FitCellSchema),
  }),
  z.object({ ok: z.literal(false), sampler: z.string(), n: z.number().int(), reason: z.string() }),
]);
export type SamplerFit = z.infer<typeof SamplerFitSchema>;

/** Output of `doctor`, carried as data; only the fields the report shows are checked. */
export const MachineSchema = z.looseObject({
  node: z.string(),
  cpu: z.looseObject({ model: z.string(), cores: z.number() }),
  backends: z.array(z.unknown()),
  ffmpeg: z.unknown(),
});
export type Machine = z.infer<typeof MachineSchema>;

/** What a sweep ran: two runs of the same grid give the same cells (paths and machines aside). */
export const GridIdentitySchema = z.object({
  samplers: z.array(z.string().min(1)).min(1),
  steps: z.array(z.number().int().positive()).min(1),
  frames: z.number().int().positive(),
  clips: z.number().int().positive(),
  referenceClips: z.number().int().positive(),
  seed: z.number().int(),
  fps: z.number().positive(),
  convention: z.enum(["flops", "macs"]),
  /** catalog GPUs the cells are priced on */
  gpus: z.array(z.string()),
});
export type GridIdentity = z.infer<typeof GridIdentitySchema>;

/** The weights a sweep ran, whatever folder they sit in. */
export const ModelIdentitySchema = z.object({
  name: z.string(),
  /** sha256 of model.json (which holds the weights' sha256, config and guidance) and of the guide's model.json */
  sha256: z.string(),
  weightsSha256: z.string(),
  guideWeightsSha256: z.string().nullable(),
});
export type ModelIdentity = z.infer<typeof ModelIdentitySchema>;

/** Where a merged sweep's cells came from (`framecost merge`). */
export const MergeInfoSchema = z.object({
  /** N of --shard I/N */
  count: z.number().int().positive(),
  framecost: z.string(),
  model: ModelIdentitySchema,
  identity: GridIdentitySchema,
  shards: z.array(
    z.object({
      index: z.number().int().positive(),
      /** the shard's folder as merge was given it */
      dir: z.string(),
      createdAt: z.string(),
      /** cell ids ("ddim-8") the shard holds */
      cells: z.array(z.string()),
      machine: MachineSchema.nullable(),
    }),
  ),
  /** cells of the grid no shard holds, with the shard they belong to */
  missing: z.array(z.object({ sampler: z.string(), steps: z.number().int(), shard: z.number().int() })),
});
export type MergeInfo = z.infer<typeof MergeInfoSchema>;

export const SweepRecordSchema = z.object({
  schemaVersion: z.literal(SWEEP_SCHEMA_VERSION),
  kind: z.literal("sweep"),
  createdAt: z.string(),
  grid: z.object({
    steps: z.array(z.number().int().positive()).min(1),
    samplers: z.array(z.string().min(1)).min(1),
    frames: z.number().int().positive().optional(),
  }),
  cells: z.array(SweepCellSchema),
  /**
   * every grid cell is in `cells` (false: an interrupted sweep; `sweep --resume` runs the rest). Optional,
   * added after version 1: a version-1 reader strips it, so no version bump
   */
  complete: z.boolean().optional(),
  /** one per sampler in grid order */
  fits: z.array(SamplerFitSchema),
  /** the same fit over every cell, all samplers together (cost follows NFEs, whoever spends them) */
  pooledFit: SamplerFitSchema.nullable(),
  machine: MachineSchema.nullable(),
  /** the cost stage's assumptions (objects with value and source), rendered generically */
  assumptions: z.unknown(),
  /** set by `framecost merge`: the shards the cells came from */
  merged: MergeInfoSchema.optional(),
});
export type SweepRecord = z.infer<typeof SweepRecordSchema>;

// ---------------------------------------------------------------- fitting

export type LineFit =
  | { ok: true; n: number; a: number; b: number; r2: number }
  | { ok: false; n: number; reason: string };

/**
 * Ordinary least squares y = a + b x, in centred form (stable when x and y
 * are large). R^2 = 1 - SSres / SStot, and exactly 1 when the residuals are
 * at rounding level (so a flat exact line, where SStot is 0, also gets 1).
 */
export function fitLine(xs: readonly number[], ys: readonly number[]): LineFit {
  const n = xs.length;
  if (n !== ys.length) throw new Error(`fitLine: ${n} x values but ${ys.length} y values`);
  if (n < 2) return { ok: false, n, reason: `needs at least 2 cells, has ${n}` };
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += xs[i];
    my += ys[i];
  }
  mx /= n;
  my /= n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i] - mx;
    const dy = ys[i] - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (sxx === 0) return { ok: false, n, reason: `needs at least 2 distinct NFE values, has only ${mx}` };
  const b = sxy / sxx;
  const a = my - b * mx;
  let ssRes = 0;
  let maxAbsY = 0;
  for (let i = 0; i < n; i++) {
    const r = ys[i] - (a + b * xs[i]);
    ssRes += r * r;
    maxAbsY = Math.max(maxAbsY, Math.abs(ys[i]));
  }
  // Residuals within rounding (1e-12 of the largest |y|) count as zero: the line is exact.
  const exact = ssRes <= n * (1e-12 * maxAbsY) ** 2;
  const r2 = exact ? 1 : syy === 0 ? 0 : 1 - ssRes / syy;
  return { ok: true, n, a, b, r2 };
}

/** Fit of wall ms per frame against NFE per frame over the given cells. */
export function fitCells(label: string, cells: readonly SweepCell[]): SamplerFit {
  const sorted = [...cells].sort((p, q) => p.nfePerFrame - q.nfePerFrame || p.steps - q.steps);
  const f = fitLine(
    sorted.map((c) => c.nfePerFrame),
    sorted.map((c) => c.wallMsPerFrame),
  );
  if (!f.ok) return { ok: false, sampler: label, n: f.n, reason: f.reason };
  return {
    ok: true,
    sampler: label,
    n: f.n,
    aMs: f.a,
    bMsPerNfe: f.b,
    r2: f.r2,
    cells: sorted.map((c) => {
      const fitted = f.a + f.b * c.nfePerFrame;
      // a share of a non-positive time means nothing (only a wild fit gets there)
      const fixedShare = fitted > 0 ? f.a / fitted : null;
      return {
        steps: c.steps,
        nfePerFrame: c.nfePerFrame,
        fittedWallMsPerFrame: fitted,
        fixedShare,
        stepsShare: fixedShare === null ? null : 1 - fixedShare,
      };
    }),
  };
}

/** One fit per sampler (in `samplers` order) plus the pooled fit over all cells. */
export function fitSweep(
  cells: readonly SweepCell[],
  samplers: readonly string[] = uniqueInOrder(cells.map((c) => c.sampler)),
): { fits: SamplerFit[]; pooledFit: SamplerFit | null } {
  const fits = samplers.map((s) =>
    fitCells(
      s,
      cells.filter((c) => c.sampler === s),
    ),
  );
  const pooledFit = samplers.length > 1 ? fitCells("all samplers", cells) : null;
  return { fits, pooledFit };
}

/** "ddim: 12.3 ms + 4.56 ms x NFE per frame (R² 0.998, 6 cells); fixed share 73% at 1 NFE to 5.1% at 50 NFE" */
export function describeFit(fit: SamplerFit): string {
  if (!fit.ok) return `${fit.sampler}: no fit (${fit.reason})`;
  const first = fit.cells[0];
  const last = fit.cells[fit.cells.length - 1];
  return (
    `${fit.sampler}: wall per frame = ${sig(fit.aMs)} ms + ${sig(fit.bMsPerNfe)} ms × NFE ` +
    `(R² ${fit.r2.toFixed(4)}, ${fit.n} cells); fixed share ${pct(first.fixedShare)} at ${sig(first.nfePerFrame)} NFE` +
    ` to ${pct(last.fixedShare)} at ${sig(last.nfePerFrame)} NFE`
  );
}

// ---------------------------------------------------------------- Pareto front

/**
 * Items no other item beats on both axes (lower is better on both): an item
 * is dropped when another has cost <= and loss <=, one of them strictly.
 * Exact duplicates are all kept. Items with a non-finite cost or loss are
 * ignored. Returned in increasing cost.
 */
export function paretoFront<T>(items: readonly T[], cost: (t: T) => number, loss: (t: T) => number): T[] {
  const pts = items
    .map((item) => ({ item, x: cost(item), y: loss(item) }))
    .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
    .sort((p, q) => p.x - q.x || p.y - q.y);
  const front: typeof pts = [];
  for (const p of pts) {
    const last = front[front.length - 1];
    // Sorted by cost, so p survives only with a strictly lower loss than all cheaper points,
    // or as an exact duplicate of the last point kept.
    if (!last || p.y < last.y || (p.y === last.y && p.x === last.x)) front.push(p);
  }
  return front.map((p) => p.item);
}

/** Price columns present in the sweep: "local" first when any cell has it, then GPU ids sorted. */
export function priceKeys(cells: readonly SweepCell[]): string[] {
  const gpus = new Set<string>();
  let local = false;
  for (const c of cells) {
    if (c.usdPerVideoMinute.local !== null) local = true;
    for (const k of Object.keys(c.usdPerVideoMinute.byGpu)) gpus.add(k);
  }
  return [...(local ? ["local"] : []), ...[...gpus].sort()];
}

export function cellUsd(cell: SweepCell, priceKey: string): number | null {
  if (priceKey === "local") return cell.usdPerVideoMinute.local;
  return cell.usdPerVideoMinute.byGpu[priceKey] ?? null;
}

export function cellQuality(cell: SweepCell, metric: string): number | null {
  return cell.quality?.[metric] ?? null;
}

/** Quality metric names present in any cell: the three standard ones first, then the rest sorted. */
export function qualityKeys(cells: readonly SweepCell[]): string[] {
  const extra = new Set<string>();
  let any = false;
  for (const c of cells) {
    if (!c.quality) continue;
    any = true;
    for (const k of Object.keys(c.quality))
      if (!(QUALITY_METRICS as readonly string[]).includes(k)) extra.add(k);
  }
  return any ? [...QUALITY_METRICS, ...[...extra].sort()] : [];
}

/** The cells on the quality-vs-USD Pareto front for one metric and one price column. */
export function sweepParetoFront(cells: readonly SweepCell[], metric: string, priceKey: string): SweepCell[] {
  return paretoFront(
    cells,
    (c) => cellUsd(c, priceKey) ?? Number.NaN,
    (c) => cellQuality(c, metric) ?? Number.NaN,
  );
}

// ---------------------------------------------------------------- machines

/** A cell's machine and throughput as its RunRecord measured them. */
export function cellFigures(r: RunRecord): { machine: CellMachine; throughput: CellThroughput } {
  return {
    machine: {
      cpu: r.device.cpuModel,
      cores: r.device.cores,
      backend: r.backend.name,
      gemmGflops: r.calibration.gemmGflops,
    },
    throughput: {
      frames: r.totals.frames,
      flops: r.totals.flops,
      gflops: r.throughput.gflops,
      utilization: r.throughput.utilization,
    },
  };
}

/** The cell's machine and throughput: recorded, or read from its inline record, or null. */
export function cellMachine(c: SweepCell): { machine: CellMachine; throughput: CellThroughput } | null {
  if (c.machine && c.throughput) return { machine: c.machine, throughput: c.throughput };
  return typeof c.record === "string" ? null : cellFigures(c.record);
}

export function machineLabel(m: CellMachine): string {
  return `${m.cpu} (${m.cores} cores), ${m.backend}`;
}

/** One machine's figures over the cells it ran. */
export interface MachineRow {
  label: string;
  cpu: string;
  cores: number;
  backend: string;
  /** median of the cells' calibrated peaks (each run calibrates its own) */
  gemmGflops: number;
  cells: number;
  frames: number;
  /** frames / wall time over its cells */
  framesPerSecond: number;
  /** counted FLOPs / wall time over its cells, GFLOP/s */
  gflops: number;
  /** gflops / gemmGflops */
  utilization: number;
}

/**
 * Cells grouped by machine (CPU model, cores, backend), in order of first
 * appearance. Figures are over each machine's own cells: machines that ran
 * different cells are not doing the same work (compare matches cells first).
 */
export function sweepMachines(cells: readonly SweepCell[]): MachineRow[] {
  const groups = new Map<string, SweepCell[]>();
  for (const c of cells) {
    const f = cellMachine(c);
    if (!f) continue;
    const label = machineLabel(f.machine);
    groups.set(label, [...(groups.get(label) ?? []), c]);
  }
  return [...groups].map(([label, group]) => {
    const m = cellMachine(group[0])!.machine;
    return { label, cpu: m.cpu, cores: m.cores, backend: m.backend, ...sweepThroughput(group)! };
  });
}

/**
 * Throughput over cells, whatever machines ran them (null when no cell
 * records its figures): frames and FLOPs over their wall time, against the
 * median of their calibrated peaks.
 */
export function sweepThroughput(
  cells: readonly SweepCell[],
): Omit<MachineRow, "label" | "cpu" | "cores" | "backend"> | null {
  const peaks: number[] = [];
  let frames = 0;
  let flops = 0;
  let ms = 0;
  for (const c of cells) {
    const f = cellMachine(c);
    if (!f) continue;
    peaks.push(f.machine.gemmGflops);
    frames += f.throughput.frames;
    flops += f.throughput.flops;
    ms += c.wallMsPerFrame * f.throughput.frames;
  }
  if (peaks.length === 0) return null;
  const gemmGflops = median(peaks);
  const gflops = ms > 0 ? flops / ms / 1e6 : 0;
  return {
    gemmGflops,
    cells: peaks.length,
    frames,
    framesPerSecond: ms > 0 ? (frames * 1000) / ms : 0,
    gflops,
    utilization: gflops / gemmGflops,
  };
}

/**
 * The sweep with each cell's machine and throughput filled from its record
 * file where the cell does not carry them (sweeps written before cells
 * recorded them); a record that cannot be read leaves its cell as it was.
 */
export async function withCellFigures(sweepPath: string, sweep: SweepRecord): Promise<SweepRecord> {
  const cells = await Promise.all(
    sweep.cells.map(async (c) => {
      if (cellMachine(c) || typeof c.record !== "string") return c;
      try {
        return { ...c, ...cellFigures(await loadCellRecord(sweepPath, c)) };
      } catch (err) {
        if (err instanceof UserError) return c;
        throw err;
      }
    }),
  );
  return { ...sweep, cells };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// ---------------------------------------------------------------- building and files

export interface SweepInput {
  grid: SweepRecord["grid"];
  cells: SweepCell[];
  machine?: Machine | null;
  assumptions?: unknown;
  merged?: MergeInfo;
  /** ISO time; defaults to now */
  createdAt?: string;
}

/** Assembles and validates a sweep record: cells in grid order, fits computed. */
export function buildSweepRecord(input: SweepInput): SweepRecord {
  const samplerOrder = new Map(input.grid.samplers.map((s, i) => [s, i]));
  for (const c of input.cells) {
    if (!samplerOrder.has(c.sampler)) {
      throw new UserError(
        `sweep cell sampler "${c.sampler}" is not in the grid (${input.grid.samplers.join(", ")})`,
      );
    }
  }
  const seen = new Set<string>();
  for (const c of input.cells) {
    const key = `${c.sampler}/${c.steps}`;
    if (seen.has(key))
      throw new UserError(`sweep has two cells for sampler ${c.sampler} at ${c.steps} steps`);
    seen.add(key);
  }
  const cells = [...input.cells].sort(
    (p, q) => samplerOrder.get(p.sampler)! - samplerOrder.get(q.sampler)! || p.steps - q.steps,
  );
  const { fits, pooledFit } = fitSweep(cells, input.grid.samplers);
  const record = {
    schemaVersion: SWEEP_SCHEMA_VERSION,
    kind: "sweep" as const,
    createdAt: input.createdAt ?? new Date().toISOString(),
    grid: input.grid,
    cells,
    complete: cells.length === input.grid.samplers.length * input.grid.steps.length,
    fits,
    pooledFit,
    machine: input.machine ?? null,
    assumptions: input.assumptions ?? null,
    ...(input.merged ? { merged: input.merged } : {}),
  };
  const parsed = SweepRecordSchema.safeParse(record);
  // the program built these cells: a failure here is a bug, not a user mistake
  if (!parsed.success) {
    throw new RuntimeFailure(
      `internal error: the sweep record to be written has ${firstIssue(parsed.error, record)}`,
    );
  }
  return parsed.data;
}

/** Validates parsed JSON as a sweep record; `source` names the file in the error. */
export function parseSweepRecord(data: unknown, source: string): SweepRecord {
  const parsed = SweepRecordSchema.safeParse(data);
  if (!parsed.success) {
    throw new UserError(
      `${source}: ${firstIssue(parsed.error, data)}; this is not a sweep record that framecost wrote: rerun \`framecost sweep\``,
    );
  }
  return parsed.data;
}

export async function readSweepFile(path: string): Promise<SweepRecord> {
  return parseSweepRecord(await readJsonFile(path), path);
}

/** The cell's RunRecord: inline, or read from its path relative to the sweep file. */
export async function loadCellRecord(sweepPath: string, cell: SweepCell): Promise<RunRecord> {
  if (typeof cell.record !== "string") return cell.record;
  const path = resolve(dirname(sweepPath), cell.record);
  return validateRunRecord(await readJsonFile(path), path);
}

/** Writes `sweep.json` and `sweep.csv` into `dir` (each through a temporary name). */
export async function writeSweepFiles(
  dir: string,
  sweep: SweepRecord,
): Promise<{ json: string; csv: string }> {
  const json = join(dir, "sweep.json");
  const csv = join(dir, "sweep.csv");
  await writeFileAtomic(json, `${JSON.stringify(sweep, null, 2)}\n`);
  await writeFileAtomic(csv, sweepToCsv(sweep));
  return { json, csv };
}

// ---------------------------------------------------------------- CSV

/** One CSV row read back: the cell without its inline record, plus the fit's reading of it. */
export interface SweepCsvRow {
  sampler: string;
  steps: number;
  nfePerFrame: number;
  wallMsPerFrame: number;
  fittedWallMsPerFrame: number | null;
  fixedShare: number | null;
  stepsShare: number | null;
  quality: Record<string, number> | null;
  usdPerVideoMinute: { local: number | null; byGpu: Record<string, number> };
  /** the record's relative path, or "inline" */
  record: string;
  /** "CPU (n cores), backend" where the sweep records it */
  machine: string | null;
}

const BASE_COLUMNS = [
  "sampler",
  "steps",
  "nfePerFrame",
  "wallMsPerFrame",
  "fittedWallMsPerFrame",
  "fixedShare",
  "stepsShare",
] as const;

/**
 * One row per cell. Column names are the JSON names (units in the names);
 * nested values are `quality.<metric>` and `usdPerVideoMinute.<local|gpu id>`.
 * Numbers are written in full (shortest round-trip form); missing values are empty.
 */
export function sweepToCsv(sweep: SweepRecord): string {
  const qKeys = qualityKeys(sweep.cells);
  const pKeys = priceKeys(sweep.cells);
  const fitBy = new Map<string, FitCell>();
  for (const f of sweep.fits) if (f.ok) for (const fc of f.cells) fitBy.set(`${f.sampler}/${fc.steps}`, fc);
  // a machine column once cells record theirs (older sweeps keep their columns)
  const machines = sweep.cells.some((c) => cellMachine(c) !== null);
  const header = [
    ...BASE_COLUMNS,
    ...qKeys.map((k) => `quality.${k}`),
    ...pKeys.map((k) => `usdPerVideoMinute.${k}`),
    ...(machines ? ["machine"] : []),
    "record",
  ];
  const rows = sweep.cells.map((c) => {
    const fc = fitBy.get(`${c.sampler}/${c.steps}`);
    return [
      c.sampler,
      c.steps,
      c.nfePerFrame,
      c.wallMsPerFrame,
      fc?.fittedWallMsPerFrame ?? null,
      fc?.fixedShare ?? null,
      fc?.stepsShare ?? null,
      ...qKeys.map((k) => cellQuality(c, k)),
      ...pKeys.map((k) => cellUsd(c, k)),
      ...(machines ? [machineOf(c)] : []),
      typeof c.record === "string" ? c.record : "inline",
    ];
  });
  return `${[header, ...rows].map((r) => r.map(csvField).join(",")).join("\n")}\n`;
}

function machineOf(c: SweepCell): string | null {
  const f = cellMachine(c);
  return f ? machineLabel(f.machine) : null;
}

function csvField(v: string | number | null): string {
  if (v === null) return "";
  const s = String(v);
  return /[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replaceAll('"', '""')}"` : s;
}

/** RFC 4180 fields: quoted fields may hold commas, quotes ("") and newlines. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += ch;
      i++;
      continue;
    }
    if (ch === '"') quoted = true;
    else if (ch === ",") {
      row.push(field);
      field = "";
    } else if (ch === "\n" || ch === "\r") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      if (ch === "\r" && text[i + 1] === "\n") i++;
    } else field += ch;
    i++;
  }
  if (quoted) throw new UserError("CSV ends inside a quoted field; the file is truncated");
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Reads a `sweep.csv` written by `sweepToCsv` back into rows. */
export function parseSweepCsv(text: string, source = "sweep.csv"): SweepCsvRow[] {
  const [header, ...rows] = parseCsv(text);
  if (!header) throw new UserError(`${source}: empty CSV; expected a header row starting with "sampler"`);
  for (const col of [...BASE_COLUMNS, "record"]) {
    if (!header.includes(col))
      throw new UserError(`${source}: missing column "${col}"; was it written by framecost?`);
  }
  const idx = (name: string) => header.indexOf(name);
  return rows.map((cells, r) => {
    if (cells.length !== header.length) {
      throw new UserError(`${source}: row ${r + 2} has ${cells.length} fields, header has ${header.length}`);
    }
    const num = (col: string): number | null => {
      const s = cells[idx(col)];
      if (s === "") return null;
      const x = Number(s);
      if (!Number.isFinite(x))
        throw new UserError(`${source}: row ${r + 2}, column ${col}: "${s}" is not a number`);
      return x;
    };
    const req = (col: string): number => {
      const x = num(col);
      if (x === null) throw new UserError(`${source}: row ${r + 2}, column ${col} is empty`);
      return x;
    };
    const quality: Record<string, number> = {};
    const byGpu: Record<string, number> = {};
    let local: number | null = null;
    header.forEach((col) => {
      if (col.startsWith("quality.")) {
        const x = num(col);
        if (x !== null) quality[col.slice("quality.".length)] = x;
      } else if (col === "usdPerVideoMinute.local") local = num(col);
      else if (col.startsWith("usdPerVideoMinute.")) {
        const x = num(col);
        if (x !== null) byGpu[col.slice("usdPerVideoMinute.".length)] = x;
      }
    });
    return {
      sampler: cells[idx("sampler")],
      steps: req("steps"),
      nfePerFrame: req("nfePerFrame"),
      wallMsPerFrame: req("wallMsPerFrame"),
      fittedWallMsPerFrame: num("fittedWallMsPerFrame"),
      fixedShare: num("fixedShare"),
      stepsShare: num("stepsShare"),
      quality: Object.keys(quality).length > 0 ? quality : null,
      usdPerVideoMinute: { local, byGpu },
      record: cells[idx("record")],
      machine: idx("machine") >= 0 && cells[idx("machine")] !== "" ? cells[idx("machine")] : null,
    };
  });
}

// ---------------------------------------------------------------- small formatting helpers

function uniqueInOrder(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}
