/**
 * Two records side by side with ratios B / A: two runs (two backends, two
 * machines, two samplers) or two sweeps (cells matched by sampler and steps).
 * Ratios of measured figures, nothing new measured.
 */

import { parseRunRecord } from "../meter/record.ts";
import { UserError } from "../util/errors.ts";
import { readUserFile } from "../util/files.ts";
import { num, si, sig } from "./format.ts";
import { metricLabel, priceLabel } from "./plots.ts";
import { type FlopConvention, isObject, type RunRecord, runFigures, toConvention } from "./records.ts";
import {
  cellMachine,
  cellQuality,
  cellUsd,
  type MachineRow,
  parseSweepRecord,
  priceKeys,
  qualityKeys,
  type SamplerFit,
  type SweepCell,
  type SweepRecord,
  sweepMachines,
  sweepThroughput,
  withCellFigures,
} from "./sweep.ts";

export type Loaded =
  | { kind: "run"; path: string; record: RunRecord }
  | { kind: "sweep"; path: string; sweep: SweepRecord };

/**
 * Reads a run or sweep record (told apart by `kind: "sweep"` or a `cells`
 * array); every problem is one UserError line naming the file.
 */
export async function loadRecordFile(path: string): Promise<Loaded> {
  const text = await readUserFile(path, "pass a run.json or sweep.json that framecost wrote");
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new UserError(
      `${path}: not valid JSON (${why}); pass a run.json or sweep.json that framecost wrote`,
    );
  }
  if (isObject(data) && (data.kind === "sweep" || Array.isArray(data.cells))) {
    // older sweeps: each cell's machine from its record file
    return { kind: "sweep", path, sweep: await withCellFigures(path, parseSweepRecord(data, path)) };
  }
  return { kind: "run", path, record: parseRunRecord(text, path) };
}

/** A figure in A and B and their ratio B / A (null where either is missing or A is 0). */
export interface RatioRow {
  figure: string;
  a: number | null;
  b: number | null;
  ratio: number | null;
}

/** A descriptive line (backend, model, ...) shown for both sides. */
export interface ContextRow {
  label: string;
  a: string;
  b: string;
}

export interface RunComparison {
  kind: "run";
  a: string;
  b: string;
  context: ContextRow[];
  rows: RatioRow[];
  notes: string[];
}

export interface SweepCellComparison {
  sampler: string;
  steps: number;
  nfePerFrame: RatioRow;
  wallMsPerFrame: RatioRow;
  usdPerVideoMinute: RatioRow | null;
  quality: RatioRow | null;
}

export interface SweepComparison {
  kind: "sweep";
  a: string;
  b: string;
  context: ContextRow[];
  /** per sampler present in both: a, b and R² of each side's fit */
  fits: RatioRow[];
  /** each side's machines, each over its own cells */
  machines: { a: MachineRow[]; b: MachineRow[] };
  /** throughput over the cells in both (the same work on each side): frames/s, GFLOP/s, GEMM peak, utilization */
  throughput: RatioRow[];
  cells: SweepCellComparison[];
  /** "ddim/8" for cells in one record only */
  onlyInA: string[];
  onlyInB: string[];
  priceKey: string | null;
  metric: string | null;
  notes: string[];
}

export type Comparison = RunComparison | SweepComparison;

export interface CompareOptions {
  /** counts printed in this convention; default A's */
  convention?: FlopConvention;
  /** sweeps: which USD column ("local" or a GPU id); default the first both have */
  priceKey?: string;
  /** sweeps: which quality metric; default swdPatches or the first both have */
  metric?: string;
}

export function ratioRow(
  figure: string,
  a: number | null | undefined,
  b: number | null | undefined,
): RatioRow {
  const av = a ?? null;
  const bv = b ?? null;
  return { figure, a: av, b: bv, ratio: av !== null && bv !== null && av !== 0 ? bv / av : null };
}

export function compare(a: Loaded, b: Loaded, opts: CompareOptions = {}): Comparison {
  if (a.kind !== b.kind) {
    throw new UserError(
      `cannot compare ${a.path} (a ${a.kind} record) with ${b.path} (a ${b.kind} record): give two run records or two sweep records`,
    );
  }
  if (a.kind === "run" && b.kind === "run") return compareRuns(a, b, opts);
  if (a.kind === "sweep" && b.kind === "sweep") return compareSweeps(a, b, opts);
  throw new Error("unreachable");
}

export function compareRuns(
  A: { path: string; record: RunRecord },
  B: { path: string; record: RunRecord },
  opts: CompareOptions = {},
): RunComparison {
  const a = A.record;
  const b = B.record;
  const conv = opts.convention ?? a.flopConvention;
  const unit = conv === "macs" ? "MAC" : "FLOP";
  const fa = runFigures(a);
  const fb = runFigures(b);
  const c = (x: number) => toConvention(x, conv);
  const rows: RatioRow[] = [
    ratioRow("wall ms per frame", fa.wallMsPerFrame, fb.wallMsPerFrame),
    ratioRow("frames per second", 1000 / fa.wallMsPerFrame, 1000 / fb.wallMsPerFrame),
    ratioRow("wall ms per NFE", fa.wallMsPerNfe, fb.wallMsPerNfe),
    ratioRow("wall ms per sampler step", fa.wallMsPerStep, fb.wallMsPerStep),
    ratioRow("NFE per frame", fa.nfePerFrame, fb.nfePerFrame),
    ratioRow("steady-state median ms per NFE", a.nfeTiming.medianMs, b.nfeTiming.medianMs),
    ratioRow(`achieved G${unit}/s`, c(fa.gflops), c(fb.gflops)),
    ratioRow(`calibrated GEMM peak, G${unit}/s`, c(a.calibration.gemmGflops), c(b.calibration.gemmGflops)),
    ratioRow("utilization of the GEMM peak", fa.utilization, fb.utilization),
    ratioRow(`${unit}s per NFE`, c(fa.flopsPerNfe), c(fb.flopsPerNfe)),
    ratioRow(
      "peak tensor memory, MiB",
      a.memory.peakTensorBytes / 2 ** 20,
      b.memory.peakTensorBytes / 2 ** 20,
    ),
  ];
  for (const k of unionKeys(fa.usdPerVideoMinute, fb.usdPerVideoMinute)) {
    rows.push(
      ratioRow(`USD per video-minute, ${priceLabel(k)}`, fa.usdPerVideoMinute[k], fb.usdPerVideoMinute[k]),
    );
  }
  for (const k of unionKeys(fa.quality, fb.quality)) {
    rows.push(ratioRow(`${metricLabel(k)} (lower is better)`, fa.quality[k], fb.quality[k]));
  }
  const context: ContextRow[] = [
    { label: "backend", a: a.backend.name, b: b.backend.name },
    {
      label: "machine",
      a: `${a.device.cpuModel} (${a.device.cores} cores)`,
      b: `${b.device.cpuModel} (${b.device.cores} cores)`,
    },
    { label: "model", a: modelText(a), b: modelText(b) },
    { label: "sampler", a: samplerText(a), b: samplerText(b) },
    { label: "video", a: videoText(a), b: videoText(b) },
    { label: "complete", a: a.complete ? "yes" : "no", b: b.complete ? "yes" : "no" },
  ];
  const notes = [`counts in ${conv === "macs" ? "MACs (1 multiply-add = 1)" : "FLOPs (1 multiply-add = 2)"}`];
  if (!a.complete || !b.complete) notes.push("an unfinished run is compared on the frames it finished");
  return { kind: "run", a: A.path, b: B.path, context, rows, notes };
}

export function compareSweeps(
  A: { path: string; sweep: SweepRecord },
  B: { path: string; sweep: SweepRecord },
  opts: CompareOptions = {},
): SweepComparison {
  const a = A.sweep;
  const b = B.sweep;
  const notes: string[] = [];
  const pb = new Set(priceKeys(b.cells));
  const commonPrices = priceKeys(a.cells).filter((k) => pb.has(k));
  const priceKey = opts.priceKey ?? commonPrices[0] ?? null;
  if (opts.priceKey && !commonPrices.includes(opts.priceKey)) {
    throw new UserError(
      `--price ${opts.priceKey} is not priced in both sweeps; both have: ${commonPrices.join(", ") || "none"}`,
    );
  }
  const qb = new Set(qualityKeys(b.cells));
  const commonMetrics = qualityKeys(a.cells).filter((k) => qb.has(k));
  const metric =
    opts.metric ?? (commonMetrics.includes("swdPatches") ? "swdPatches" : (commonMetrics[0] ?? null));
  if (opts.metric && !commonMetrics.includes(opts.metric)) {
    throw new UserError(
      `--metric ${opts.metric} is not measured in both sweeps; both have: ${commonMetrics.join(", ") || "none"}`,
    );
  }
  if (priceKey === null) notes.push("no USD column in both sweeps: cost not compared");
  if (metric === null) notes.push("no quality metric in both sweeps: quality not compared");

  const key = (c: { sampler: string; steps: number }) => `${c.sampler}/${c.steps}`;
  const byB = new Map(b.cells.map((c) => [key(c), c]));
  const inA = new Set(a.cells.map(key));
  const cells: SweepCellComparison[] = [];
  const bothA: SweepCell[] = [];
  const bothB: SweepCell[] = [];
  for (const ca of a.cells) {
    const cb = byB.get(key(ca));
    if (!cb) continue;
    bothA.push(ca);
    bothB.push(cb);
    cells.push({
      sampler: ca.sampler,
      steps: ca.steps,
      nfePerFrame: ratioRow("NFE per frame", ca.nfePerFrame, cb.nfePerFrame),
      wallMsPerFrame: ratioRow("wall ms per frame", ca.wallMsPerFrame, cb.wallMsPerFrame),
      usdPerVideoMinute:
        priceKey === null
          ? null
          : ratioRow(
              `USD per video-minute, ${priceLabel(priceKey)}`,
              cellUsd(ca, priceKey),
              cellUsd(cb, priceKey),
            ),
      quality:
        metric === null
          ? null
          : ratioRow(metricLabel(metric), cellQuality(ca, metric), cellQuality(cb, metric)),
    });
  }
  const fitsB = new Map(b.fits.map((f) => [f.sampler, f]));
  const fits: RatioRow[] = [];
  for (const fa of a.fits) {
    const fb = fitsB.get(fa.sampler);
    if (!fb) continue;
    fits.push(
      ratioRow(`${fa.sampler}: a, ms per frame`, fitValue(fa, "aMs"), fitValue(fb, "aMs")),
      ratioRow(`${fa.sampler}: b, ms per NFE`, fitValue(fa, "bMsPerNfe"), fitValue(fb, "bMsPerNfe")),
      ratioRow(`${fa.sampler}: R²`, fitValue(fa, "r2"), fitValue(fb, "r2")),
    );
  }
  // the cells' own machines where they record them (a merged sweep may hold several), else the sweep's
  const machine = (s: SweepRecord) => {
    const ms = sweepMachines(s.cells);
    if (ms.length > 0) return [...new Set(ms.map((m) => `${m.cpu} (${m.cores} cores)`))].join("; ");
    return s.machine ? `${s.machine.cpu.model} (${s.machine.cpu.cores} cores)` : "not recorded";
  };
  const backend = (s: SweepRecord) => {
    const names = [...new Set(s.cells.flatMap((c) => cellMachine(c)?.machine.backend ?? []))];
    return names.length > 0 ? names.join(", ") : "not recorded";
  };
  const ta = sweepThroughput(bothA);
  const tb = sweepThroughput(bothB);
  const throughput =
    ta || tb
      ? [
          ratioRow("frames per second", ta?.framesPerSecond, tb?.framesPerSecond),
          ratioRow("achieved GFLOP/s", ta?.gflops, tb?.gflops),
          ratioRow("calibrated GEMM peak, GFLOP/s (median of cells)", ta?.gemmGflops, tb?.gemmGflops),
          ratioRow("utilization of the GEMM peak", ta?.utilization, tb?.utilization),
        ]
      : [];
  if (throughput.length === 0) notes.push("no cell records its machine: throughput not compared");
  return {
    kind: "sweep",
    a: A.path,
    b: B.path,
    context: [
      { label: "machine", a: machine(a), b: machine(b) },
      { label: "backend", a: backend(a), b: backend(b) },
      { label: "samplers", a: a.grid.samplers.join(", "), b: b.grid.samplers.join(", ") },
      { label: "steps", a: a.grid.steps.join(", "), b: b.grid.steps.join(", ") },
      { label: "cells", a: String(a.cells.length), b: String(b.cells.length) },
    ],
    fits,
    machines: { a: sweepMachines(a.cells), b: sweepMachines(b.cells) },
    throughput,
    cells,
    onlyInA: a.cells.map(key).filter((k) => !byB.has(k)),
    onlyInB: b.cells.map(key).filter((k) => !inA.has(k)),
    priceKey,
    metric,
    notes,
  };
}

// ---------------------------------------------------------------- text

/** The comparison as aligned plain-text tables, ending with a newline. */
export function formatComparison(c: Comparison): string {
  const out: string[] = [`A: ${c.a}`, `B: ${c.b}`, ""];
  out.push(...columns([["", "A", "B"], ...c.context.map((r) => [r.label, r.a, r.b])], true), "");
  if (c.kind === "run") {
    out.push(...columns([["figure", "A", "B", "B/A"], ...c.rows.map(rowCells)]));
  } else {
    const ms = [...c.machines.a.map((m) => ["A", m] as const), ...c.machines.b.map((m) => ["B", m] as const)];
    if (ms.length > 0) {
      out.push("machines (each over its own cells)");
      out.push(
        ...columns([
          ["", "machine", "cells", "GEMM peak GFLOP/s", "frames/s", "GFLOP/s", "utilization"],
          ...ms.map(([side, m]) => [
            side,
            m.label,
            String(m.cells),
            num(m.gemmGflops),
            num(m.framesPerSecond),
            num(m.gflops),
            `${sig(100 * m.utilization)}%`,
          ]),
        ]),
        "",
      );
    }
    if (c.throughput.length > 0) {
      out.push(`throughput over the ${c.cells.length} cells in both`);
      out.push(...columns([["", "A", "B", "B/A"], ...c.throughput.map(rowCells)]), "");
    }
    if (c.fits.length > 0) {
      out.push("fit: wall ms per frame = a + b × NFE");
      out.push(...columns([["", "A", "B", "B/A"], ...c.fits.map(rowCells)]), "");
    }
    const head = ["sampler", "steps", "NFE A", "NFE B", "wall ms/frame A", "B", "B/A"];
    if (c.priceKey !== null) head.push(`USD/video-min (${c.priceKey}) A`, "B", "B/A");
    if (c.metric !== null) head.push(`${c.metric} A`, "B", "B/A");
    const rows = c.cells.map((x) => {
      const r = [
        x.sampler,
        String(x.steps),
        fmt(x.nfePerFrame.a),
        fmt(x.nfePerFrame.b),
        ...rowCells(x.wallMsPerFrame).slice(1),
      ];
      if (x.usdPerVideoMinute) r.push(...rowCells(x.usdPerVideoMinute).slice(1));
      if (x.quality) r.push(...rowCells(x.quality).slice(1));
      return r;
    });
    out.push(...columns([head, ...rows]));
    if (c.cells.length === 0) out.push("(no cell is in both sweeps)");
    if (c.onlyInA.length > 0) out.push(`only in A: ${c.onlyInA.join(", ")}`);
    if (c.onlyInB.length > 0) out.push(`only in B: ${c.onlyInB.join(", ")}`);
  }
  if (c.notes.length > 0) out.push("", ...c.notes.map((n) => `note: ${n}`));
  return `${out.join("\n")}\n`;
}

function rowCells(r: RatioRow): string[] {
  return [r.figure, fmt(r.a), fmt(r.b), r.ratio === null ? "-" : `${sig(r.ratio)}x`];
}

function fmt(x: number | null): string {
  return x === null ? "-" : num(x);
}

/** Columns two spaces apart; the first left-aligned, the rest right-aligned (numbers) unless `left`. */
function columns(rows: string[][], left = false): string[] {
  const width: number[] = [];
  for (const r of rows) {
    r.forEach((cell, i) => {
      width[i] = Math.max(width[i] ?? 0, cell.length);
    });
  }
  return rows.map((r) =>
    r
      .map((cell, i) => (i === 0 || left ? cell.padEnd(width[i]) : cell.padStart(width[i])))
      .join("  ")
      .trimEnd(),
  );
}

function unionKeys(x: Record<string, number>, y: Record<string, number>): string[] {
  return [...new Set([...Object.keys(x), ...Object.keys(y)])];
}

function fitValue(f: SamplerFit, k: "aMs" | "bMsPerNfe" | "r2"): number | null {
  return f.ok ? f[k] : null;
}

function modelText(r: RunRecord): string {
  return `${r.model.name} (${si(r.model.params)} params)`;
}
function samplerText(r: RunRecord): string {
  return `${r.sampler.name}, ${r.sampler.steps} steps`;
}
function videoText(r: RunRecord): string {
  return `${r.totals.frames} frames ${r.video.width}x${r.video.height} @ ${r.video.fps} fps`;
}
