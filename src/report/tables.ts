/**
 * A RunRecord as terminal tables (cli-table3): summary, timing statistics,
 * per-frame costs, and the kernels that cost the most, counted or not.
 * Every FLOP figure carries its unit (FLOPs or MACs) next to the number
 * (STYLE.md 9); utilization names the calibrated peak it divides by
 * (STYLE.md 10). Plain text, no colour, so output is stable for tests.
 */
import Table from "cli-table3";
import { conventionNote, conventionUnit, type FlopConvention, toConvention } from "../meter/flops.ts";
import { quantile } from "../meter/meter.ts";
import type { RunRecord } from "../meter/record.ts";

export interface TableOptions {
  /** unit to print counts in; default the record's flopConvention */
  convention?: FlopConvention;
  /** kernels listed by FLOPs before the rest are summed into one row; default 12 */
  top?: number;
  /** frames listed before the rest are summed into one row; default 60 */
  maxFrames?: number;
}

const PREFIXES: [number, string][] = [
  [1e15, "P"],
  [1e12, "T"],
  [1e9, "G"],
  [1e6, "M"],
  [1e3, "k"],
];

/** 114945280 -> "114.9 M" (4 significant digits), for counts whose unit follows. */
/** One line on the guidance of a run: what it is and what it adds to the NFEs. */
export function describeGuidance(g: NonNullable<RunRecord["sampler"]["guidance"]>): string {
  const which = g.frames === "first" ? "each first frame of a clip (no history)" : "each frame";
  return `autoguidance weight ${g.weight} by ${g.guide} at t >= ${g.fromT}: ${which} calls the guide ${g.guideCallsPerFrame} more times (in the NFEs; --guidance 0 turns it off)`;
}

export function si(value: number): string {
  const abs = Math.abs(value);
  for (const [scale, prefix] of PREFIXES) {
    if (abs >= scale) return `${(value / scale).toPrecision(4)} ${prefix}`;
  }
  return `${Number.isInteger(value) ? value : value.toPrecision(4)} `;
}

/** A FLOP count in the chosen convention with its unit: "114.9 MFLOPs" / "57.47 MMACs". */
export function formatFlops(flops: number, convention: FlopConvention): string {
  return `${si(toConvention(flops, convention))}${conventionUnit(convention)}`;
}

/** Throughput in the chosen convention: "7.53 GFLOP/s" / "3.77 GMAC/s". */
export function formatRate(gflops: number, convention: FlopConvention): string {
  const unit = convention === "macs" ? "GMAC/s" : "GFLOP/s";
  return `${toConvention(gflops, convention).toFixed(2)} ${unit}`;
}

export function formatMs(ms: number | null): string {
  if (ms === null) return "n/a";
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 1) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(3)} ms`;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
  return `${Math.round(bytes)} B`;
}

function pct(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : "n/a";
}

function table(head: string[], align?: ("left" | "right")[]): Table.Table {
  return new Table({
    head,
    colAligns: align,
    style: { head: [], border: [], compact: true },
  });
}

function keyValue(rows: [string, string][]): string {
  const t = new Table({ style: { head: [], border: [], compact: true } });
  for (const [k, v] of rows) t.push({ [k]: v });
  return t.toString();
}

function stats(values: readonly number[]): {
  mean: number | null;
  median: number | null;
  p90: number | null;
} {
  if (values.length === 0) return { mean: null, median: null, p90: null };
  const sorted = [...values].sort((a, b) => a - b);
  return {
    mean: sorted.reduce((s, v) => s + v, 0) / sorted.length,
    median: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
  };
}

/** What was run, what it cost in total, and how fast against the calibrated peak. */
export function summaryTable(r: RunRecord, convention: FlopConvention): string {
  const unit = conventionUnit(convention);
  const analytic = r.model.flopsPerNfeAnalytic;
  const perNfe =
    `${formatFlops(r.model.flopsPerNfe, convention)} counted` +
    (analytic !== null
      ? `, ${formatFlops(analytic, convention)} analytic (counted/analytic ${(r.model.flopsPerNfe / analytic).toFixed(4)})`
      : "");
  const networkFlops = r.totals.flops - r.samplerFlops;
  const frameMs = r.frames.length > 0 ? r.totals.wallMs / r.totals.frames : null;
  const rows: [string, string][] = [
    ["run", `${r.complete ? "complete" : "INCOMPLETE (stopped early)"}, ${r.createdAt}, seed ${r.seed}`],
    ["model", `${r.model.name}, ${r.model.params.toLocaleString("en-US")} parameters`],
    [`${unit} per NFE`, perNfe],
    [
      "sampler",
      `${r.sampler.name}, ${r.sampler.steps} steps, ${r.sampler.nfePerFrame} NFE per frame, ${r.sampler.schedule} schedule, ${r.sampler.spacing} spacing`,
    ],
    ...(r.sampler.guidance ? [["guidance", describeGuidance(r.sampler.guidance)] as [string, string]] : []),
    [
      "video",
      `${r.totals.frames} of ${r.video.frames} frames written, ${r.video.width}x${r.video.height} at ${r.video.fps} fps`,
    ],
    ["backend", `${r.backend.name} (${r.backend.reason})`],
    ["device", `${r.device.cpuModel}, ${r.device.cores} logical cores`],
    [
      "totals",
      `${r.totals.steps} steps, ${r.totals.nfe} NFE (${r.totals.calls} network calls), ${formatMs(r.totals.wallMs)} wall`,
    ],
    [
      unit,
      `${formatFlops(r.totals.flops, convention)} (network ${formatFlops(networkFlops, convention)}, sampler ${formatFlops(r.samplerFlops, convention)})`,
    ],
    ["per frame", frameMs === null ? "n/a" : `${formatMs(frameMs)} wall (mean)`],
    [
      "throughput",
      `${formatRate(r.throughput.gflops, convention)} achieved = ${(100 * r.throughput.utilization).toFixed(1)}% of ` +
        `${formatRate(r.calibration.gemmGflops, convention)}, the fp32 GEMM peak calibrated on ${r.calibration.backend}`,
    ],
    [
      "memory",
      `peak tensors ${formatBytes(r.memory.peakTensorBytes)}, peak process RSS ${formatBytes(r.memory.peakRssBytes)}`,
    ],
  ];
  return keyValue(rows);
}

/** Warm-up apart from steady state; per NFE, per frame, per step. */
export function timingTable(r: RunRecord): string {
  const t = table(
    ["wall clock", "count", "mean", "median", "p90"],
    ["left", "right", "right", "right", "right"],
  );
  const nt = r.nfeTiming;
  t.push([
    "first call (warm-up, incl. kernel counting)",
    nt.warmupMs === null ? "0" : "1",
    formatMs(nt.warmupMs),
    "",
    "",
  ]);
  t.push([
    "per NFE, steady state",
    String(nt.count),
    formatMs(nt.meanMs),
    formatMs(nt.medianMs),
    formatMs(nt.p90Ms),
  ]);
  const frame = stats(r.frames.map((f) => f.wallMs));
  t.push([
    "per frame",
    String(r.frames.length),
    formatMs(frame.mean),
    formatMs(frame.median),
    formatMs(frame.p90),
  ]);
  const stepMs = r.frames.flatMap((f) => f.stepWallMs);
  const step = stats(stepMs);
  t.push([
    "per sampler step",
    String(stepMs.length),
    formatMs(step.mean),
    formatMs(step.median),
    formatMs(step.p90),
  ]);
  return t.toString();
}

/** One row per frame (the first `maxFrames`, the rest summed). */
export function framesTable(r: RunRecord, convention: FlopConvention, maxFrames = 60): string {
  const unit = conventionUnit(convention);
  const t = table(
    ["frame", "wall", "steps", "NFE", unit, `G${unit === "MACs" ? "MAC" : "FLOP"}/s`, "ms/step"],
    ["right", "right", "right", "right", "right", "right", "right"],
  );
  const row = (label: string, wallMs: number, steps: number, nfe: number, flops: number) => [
    label,
    formatMs(wallMs),
    String(steps),
    String(nfe),
    formatFlops(flops, convention),
    wallMs > 0 ? toConvention(flops / (wallMs * 1e6), convention).toFixed(2) : "n/a",
    steps > 0 ? formatMs(wallMs / steps) : "n/a",
  ];
  for (const f of r.frames.slice(0, maxFrames))
    t.push(row(String(f.index), f.wallMs, f.steps, f.nfe, f.flops));
  const rest = r.frames.slice(maxFrames);
  if (rest.length > 0) {
    const sum = (pick: (f: (typeof rest)[number]) => number) => rest.reduce((s, f) => s + pick(f), 0);
    t.push(
      row(
        `${rest.length} more frame${rest.length === 1 ? "" : "s"}`,
        sum((f) => f.wallMs),
        sum((f) => f.steps),
        sum((f) => f.nfe),
        sum((f) => f.flops),
      ),
    );
  }
  t.push(row("total", r.totals.wallMs, r.totals.steps, r.totals.nfe, r.totals.flops));
  return t.toString();
}

function kernelStatus(k: RunRecord["kernels"][number]): string {
  if (!k.counted) return "UNCOUNTED: no rule";
  return k.flopsPerNfe === 0 ? "data movement (0 by rule)" : "counted";
}

/**
 * Kernels per NFE, top `top` by FLOPs then by time; uncounted kernels are
 * always listed; the rest are summed into one row.
 */
export function kernelsTable(r: RunRecord, convention: FlopConvention, top = 12): string {
  const unit = conventionUnit(convention);
  const t = table(
    [
      "kernel",
      "per NFE",
      `${unit}/NFE`,
      `% ${unit}`,
      "bytes/NFE",
      `${unit}/byte`,
      "ms/NFE",
      "% time",
      "status",
    ],
    ["left", "right", "right", "right", "right", "right", "right", "right", "left"],
  );
  const totalFlops = r.kernels.reduce((s, k) => s + k.flopsPerNfe, 0);
  const totalMs = r.kernels.reduce((s, k) => s + k.msPerNfe, 0);
  const ordered = [...r.kernels].sort(
    (a, b) => b.flopsPerNfe - a.flopsPerNfe || b.msPerNfe - a.msPerNfe || a.name.localeCompare(b.name),
  );
  const shown = ordered.filter((k, i) => i < top || !k.counted);
  const hidden = ordered.filter((k, i) => !(i < top || !k.counted));
  const cells = (name: string, count: number, flops: number, bytes: number, ms: number, status: string) => [
    name,
    Number.isInteger(count) ? String(count) : count.toFixed(2),
    status.startsWith("UNCOUNTED") ? "unknown" : formatFlops(flops, convention),
    status.startsWith("UNCOUNTED") ? "" : pct(flops, totalFlops),
    formatBytes(bytes),
    bytes > 0 && !status.startsWith("UNCOUNTED") ? toConvention(flops / bytes, convention).toFixed(2) : "",
    formatMs(ms),
    pct(ms, totalMs),
    status,
  ];
  for (const k of shown)
    t.push(cells(k.name, k.countPerNfe, k.flopsPerNfe, k.bytesPerNfe, k.msPerNfe, kernelStatus(k)));
  if (hidden.length > 0) {
    const sum = (pick: (k: (typeof hidden)[number]) => number) => hidden.reduce((s, k) => s + pick(k), 0);
    t.push(
      cells(
        `${hidden.length} more kernel${hidden.length === 1 ? "" : "s"}`,
        sum((k) => k.countPerNfe),
        sum((k) => k.flopsPerNfe),
        sum((k) => k.bytesPerNfe),
        sum((k) => k.msPerNfe),
        "counted",
      ),
    );
  }
  return t.toString();
}

/** Kernels without a FLOP rule over the whole run, or a line saying there were none. */
export function uncountedLine(r: RunRecord): string {
  if (r.uncounted.length === 0) return "uncounted kernels: none (every kernel that ran has a FLOP rule)";
  const parts = r.uncounted.map((u) => `${u.name} x${u.count} (${formatMs(u.ms)})`);
  return `uncounted kernels (no FLOP rule; their FLOPs are missing from the totals above): ${parts.join(", ")}`;
}

/** The whole report: every table under a heading. */
export function renderReport(r: RunRecord, opts: TableOptions = {}): string {
  const convention = opts.convention ?? r.flopConvention;
  const sections = [
    `framecost run report. Counts in ${conventionNote(convention)}.`,
    summaryTable(r, convention),
    "\nTiming (wall clock; the first call is reported apart from the steady state)",
    timingTable(r),
    "\nFrames",
    framesTable(r, convention, opts.maxFrames ?? 60),
    "\nKernels per NFE (FLOPs and bytes counted once per input shape; times from the counted call of each shape)",
    kernelsTable(r, convention, opts.top ?? 12),
    uncountedLine(r),
  ];
  return `${sections.join("\n")}\n`;
}
