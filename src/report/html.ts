/**
 * `report.html`: one self-contained file (plots inline as SVG, CSS inline, no
 * scripts, no fonts or images fetched) for a sweep or a single run. The
 * machine (from `doctor`) and the cost stage's assumptions arrive as data and
 * are rendered generically, so new fields show up without changes here.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { LeversRecord } from "../cost/measured.ts";
import { writeFileAtomic } from "./files.ts";
import { bytes, num, pct, si, sig } from "./format.ts";
import { frontierPlot } from "./levers.ts";
import {
  metricLabel,
  type Plot,
  priceLabel,
  type RenderedPlot,
  renderPlots,
  runPlotSpecs,
  type SweepPlotOptions,
  scopeSvgIds,
  sweepPlotSpecs,
  writePlots,
} from "./plots.ts";
import {
  conventionNote,
  conventionUnit,
  isObject,
  type RunRecord,
  runFigures,
  toConvention,
} from "./records.ts";
import {
  cellQuality,
  cellUsd,
  describeFit,
  type FitCell,
  type Machine,
  priceKeys,
  qualityKeys,
  type SamplerFit,
  type SweepRecord,
  sweepMachines,
  sweepParetoFront,
  writeSweepFiles,
} from "./sweep.ts";

export interface ReportContext {
  /** `framecost doctor --json` output; defaults to the sweep's own `machine` */
  machine?: Machine | unknown | null;
  /** the cost stage's assumptions (objects with value and source); defaults to the sweep's own */
  assumptions?: unknown;
  /** page title */
  title?: string;
  /** `framecost levers`' record: adds the cost-quality frontier plot (its own protocol, not the sweep's) */
  levers?: LeversRecord | null;
}

// ---------------------------------------------------------------- sweep

/** The sweep report page. `plots` are rendered SVGs (see `renderPlots(sweepPlotSpecs(sweep))`). */
export function renderSweepHtml(
  sweep: SweepRecord,
  plots: readonly RenderedPlot[],
  ctx: ReportContext & SweepPlotOptions = {},
): string {
  const title = ctx.title ?? "framecost sweep report";
  const prices = priceKeys(sweep.cells);
  const metrics = qualityKeys(sweep.cells);
  const metric = ctx.metric ?? (metrics.includes("swdPatches") ? "swdPatches" : metrics[0]);
  const priceKey = ctx.priceKey ?? prices[0];
  const front = metric && priceKey ? new Set(sweepParetoFront(sweep.cells, metric, priceKey)) : new Set();
  const fitCell = new Map<string, FitCell>();
  for (const f of sweep.fits) if (f.ok) for (const c of f.cells) fitCell.set(`${f.sampler}/${c.steps}`, c);

  const cellHeader = [
    "sampler",
    "steps",
    "NFE per frame",
    "wall ms per frame",
    "fitted ms per frame",
    "fixed share",
    ...metrics.map((m) => `${metricLabel(m)} (lower is better)`),
    ...prices.map((k) => `USD per video-minute, ${priceLabel(k)}`),
    ...(front.size > 0 ? ["Pareto front"] : []),
    "record",
  ];
  const cellRows = sweep.cells.map((c) => {
    const fc = fitCell.get(`${c.sampler}/${c.steps}`);
    return [
      esc(c.sampler),
      num(c.steps),
      num(c.nfePerFrame),
      num(c.wallMsPerFrame),
      fc ? num(fc.fittedWallMsPerFrame) : "",
      fc ? pct(fc.fixedShare) : "",
      ...metrics.map((m) => opt(cellQuality(c, m))),
      ...prices.map((k) => opt(cellUsd(c, k))),
      ...(front.size > 0 ? [front.has(c) ? "★" : ""] : []),
      typeof c.record === "string" ? `<code>${esc(c.record)}</code>` : "inline",
    ];
  });

  const fits = [...sweep.fits, ...(sweep.pooledFit ? [sweep.pooledFit] : [])];
  const body = [
    `<h1>${esc(title)}</h1>`,
    `<p class="meta">${esc(
      `${sweep.cells.length} cells: samplers ${sweep.grid.samplers.join(", ")}; steps ${sweep.grid.steps.join(", ")}` +
        (sweep.grid.frames ? `; ${sweep.grid.frames} frames per run` : "") +
        `. Written ${sweep.createdAt}.`,
    )}</p>`,
    section(
      "How much of the cost the steps explain",
      [
        "<p>Per sampler, wall time per frame = a + b × NFE, fitted by least squares over its cells. " +
          "a is what a frame costs whatever the step count; b is what each network evaluation adds. " +
          "The fixed share a / (a + b × NFE) is the part of a frame's time that more or fewer steps would not change; " +
          "the rest is what the steps explain.</p>",
        `<ul>${fits.map((f) => `<li>${esc(describeFit(f))}</li>`).join("")}</ul>`,
        fitTable(fits),
      ].join("\n"),
    ),
    section("Plots", plots.map((p, i) => figure(p, i)).join("\n")),
    section(
      "Cells",
      (front.size > 0
        ? `<p>★ marks the Pareto front of ${esc(metricLabel(metric!))} against USD per video-minute on ${esc(
            priceLabel(priceKey!),
          )}: cells no other cell beats on both.</p>`
        : "") + table(cellHeader, cellRows, "cells"),
    ),
    machinesSection(sweep),
    shardsSection(sweep),
    sweep.merged && sweep.machine === null && ctx.machine === undefined
      ? section(
          "Machine",
          "<p>The shards ran on different machines: each shard's description is in the Shards table, each cell's machine in the Machines table.</p>",
        )
      : machineSection(ctx.machine !== undefined ? ctx.machine : sweep.machine),
    assumptionsSection(ctx.assumptions !== undefined ? ctx.assumptions : sweep.assumptions),
  ];
  return page(title, body.join("\n"));
}

/** Each machine's figures over the cells it ran (from the cells' records). */
function machinesSection(sweep: SweepRecord): string {
  const rows = sweepMachines(sweep.cells);
  if (rows.length === 0) return "";
  return section(
    "Machines",
    `<p>Cells grouped by the machine they ran on (CPU model, cores, backend). Frames/s and GFLOP/s are over each machine's own cells; ` +
      `utilization is GFLOP/s over the median of its cells' calibrated GEMM peaks. Machines that ran different cells did different work: ` +
      `<code>framecost compare</code> matches cells first.</p>` +
      table(
        [
          "machine",
          "CPU",
          "cores",
          "backend",
          "calibrated GEMM peak, GFLOP/s",
          "cells",
          "frames",
          "frames/s",
          "GFLOP/s",
          "utilization",
        ],
        rows.map((r) => [
          esc(r.label),
          esc(r.cpu),
          num(r.cores),
          esc(r.backend),
          num(r.gemmGflops),
          num(r.cells),
          num(r.frames),
          num(r.framesPerSecond),
          num(r.gflops),
          pct(r.utilization),
        ]),
        "machines",
      ),
  );
}

/** Where a merged sweep's cells came from, and what is missing. */
function shardsSection(sweep: SweepRecord): string {
  const m = sweep.merged;
  if (!m) return "";
  const missing =
    m.missing.length > 0
      ? `<p class="warn">${esc(`${m.missing.length} cells of the grid are missing: ${m.missing.map((c) => `${c.sampler}-${c.steps} (shard ${c.shard}/${m.count})`).join(", ")}.`)}</p>`
      : "";
  return section(
    "Shards",
    `<p>${esc(
      `Merged from ${m.shards.length} of ${m.count} shards, framecost ${m.framecost}, model ${m.model.name} (model.json sha256 ${m.model.sha256.slice(0, 12)}, weights ${m.model.weightsSha256.slice(0, 12)}).`,
    )}</p>` +
      missing +
      table(
        ["shard", "folder", "cells", "CPU", "cores", "Node", "written"],
        m.shards.map((s) => {
          const cpu = s.machine?.cpu;
          return [
            `${s.index}/${m.count}`,
            `<code>${esc(s.dir)}</code>`,
            esc(s.cells.join(", ")),
            cpu ? esc(cpu.model) : "",
            cpu ? num(cpu.cores) : "",
            s.machine ? esc(s.machine.node) : "",
            esc(s.createdAt),
          ];
        }),
        "shards",
      ),
  );
}

function fitTable(fits: readonly SamplerFit[]): string {
  const rows = fits.map((f) => {
    if (!f.ok) return [esc(f.sampler), num(f.n), "", "", "", "", esc(`no fit: ${f.reason}`)];
    const lo = f.cells[0];
    const hi = f.cells[f.cells.length - 1];
    return [
      esc(f.sampler),
      num(f.n),
      num(f.aMs),
      num(f.bMsPerNfe),
      f.r2.toFixed(4),
      `${pct(lo.fixedShare)} at ${sig(lo.nfePerFrame)} NFE`,
      `${pct(hi.fixedShare)} at ${sig(hi.nfePerFrame)} NFE`,
    ];
  });
  return table(
    [
      "sampler",
      "cells",
      "a (ms per frame)",
      "b (ms per NFE)",
      "R²",
      "fixed share, fewest NFE",
      "fixed share, most NFE",
    ],
    rows,
    "fits",
  );
}

// ---------------------------------------------------------------- single run

/** The single-run report page. `plots` are rendered SVGs (see `renderPlots(runPlotSpecs(record))`). */
export function renderRunHtml(
  record: RunRecord,
  plots: readonly RenderedPlot[],
  ctx: ReportContext & { source?: string } = {},
): string {
  const title = ctx.title ?? "framecost run report";
  const f = runFigures(record);
  const conv = record.flopConvention;
  const unit = conventionUnit(conv);
  const rate = conv === "macs" ? "GMAC/s" : "GFLOP/s";
  const c = (flops: number) => toConvention(flops, conv);
  const t = record.nfeTiming;
  const figures: Array<[string, string]> = [
    ["wall time per frame", `${num(f.wallMsPerFrame)} ms`],
    ["wall time per NFE", `${num(f.wallMsPerNfe)} ms`],
    ["wall time per sampler step", `${num(f.wallMsPerStep)} ms`],
    ["NFE per frame", num(f.nfePerFrame)],
    [`${unit} per NFE (counted from the kernels that ran)`, si(c(record.model.flopsPerNfe))],
    [
      `${unit} per NFE (analytic, from the model config)`,
      record.model.flopsPerNfeAnalytic === null ? "no formula" : si(c(record.model.flopsPerNfeAnalytic)),
    ],
    [`sampler ${unit} outside the network (whole run)`, si(c(record.samplerFlops))],
    [`achieved ${rate}`, num(toConvention(f.gflops, conv))],
    [
      `utilization of the calibrated GEMM peak (${num(toConvention(record.calibration.gemmGflops, conv))} ${rate} on ${record.calibration.backend})`,
      pct(f.utilization),
    ],
    ["first network call (warm-up)", t.warmupMs === null ? "n/a" : `${num(t.warmupMs)} ms`],
    [
      "steady-state ms per NFE: mean / median / p90",
      [t.meanMs, t.medianMs, t.p90Ms].map((x) => (x === null ? "n/a" : num(x))).join(" / "),
    ],
    ["peak tensor memory", bytes(record.memory.peakTensorBytes)],
    ["peak resident memory", bytes(record.memory.peakRssBytes)],
    ...Object.entries(f.usdPerVideoMinute).map(
      ([k, v]) => [`USD per video-minute, ${priceLabel(k)}`, num(v)] as [string, string],
    ),
    ...Object.entries(f.quality).map(
      ([k, v]) => [`${metricLabel(k)} (lower is better)`, num(v)] as [string, string],
    ),
  ];
  const frameRows = record.frames.map((fr) => [
    num(fr.index),
    num(fr.wallMs),
    num(fr.nfe),
    num(fr.steps),
    si(c(fr.flops)),
    fr.stepWallMs.length > 0 ? num(fr.stepWallMs.reduce((s, x) => s + x, 0) / fr.stepWallMs.length) : "",
  ]);
  const kernelRows = record.kernels.map((k) => [
    esc(k.name),
    num(k.countPerNfe),
    k.counted ? si(c(k.flopsPerNfe)) : "unknown (no FLOP rule)",
    bytes(k.bytesPerNfe),
    num(k.msPerNfe),
  ]);
  const uncountedRows = record.uncounted.map((u) => [esc(u.name), num(u.count), num(u.ms)]);
  const extra = record as Record<string, unknown>;
  const body = [
    `<h1>${esc(title)}</h1>`,
    `<p class="meta">${esc(
      `${record.model.name} (${si(record.model.params)} parameters), ${record.sampler.name} ${record.sampler.steps} steps ` +
        `(${record.sampler.schedule} schedule, ${record.sampler.spacing} spacing), ${record.video.frames} frames of ` +
        `${record.video.width}×${record.video.height} at ${record.video.fps} fps, backend ${record.backend.name} ` +
        `(${record.backend.reason}), ${record.device.cpuModel} (${record.device.cores} cores), seed ${record.seed}. ` +
        `Written ${record.createdAt}${ctx.source ? ` to ${ctx.source}` : ""}.`,
    )}</p>`,
    record.complete
      ? ""
      : `<p class="warn">This run did not finish: ${record.totals.frames} of ${record.video.frames} frames were generated. Figures cover the finished frames only.</p>`,
    `<p class="note">Counts in ${esc(conventionNote(conv))}.</p>`,
    section("Key figures", definitionTable(figures)),
    section("Plots", plots.map((p, i) => figure(p, i)).join("\n")),
    section(
      "Frames",
      table(
        ["frame", "wall ms", "NFE", "steps", `${unit} (network + sampler)`, "mean ms per step"],
        frameRows,
        "frames",
      ),
    ),
    section(
      "Kernels per network evaluation",
      table(
        ["kernel", "calls per NFE", `${unit} per NFE`, "bytes per NFE", "ms per NFE"],
        kernelRows,
        "kernels",
      ) +
        (uncountedRows.length > 0
          ? `<p>Kernels with no FLOP rule (their FLOPs are unknown, not zero):</p>${table(
              ["kernel", "calls", "ms"],
              uncountedRows,
              "uncounted",
            )}`
          : ""),
    ),
    record.cost !== undefined ? section("Cost", renderGeneric(record.cost)) : "",
    extra.quality !== undefined ? section("Quality", renderGeneric(extra.quality)) : "",
    machineSection(ctx.machine ?? null),
    // default: the assumptions the cost stage wrote into the record
    assumptionsSection(ctx.assumptions ?? (isObject(record.cost) ? record.cost.assumptions : null)),
  ];
  return page(title, body.join("\n"));
}

// ---------------------------------------------------------------- writing

export interface WrittenReport {
  html: string;
  plots: Array<{ name: string; svg: string; png: string }>;
}

/**
 * Everything a sweep leaves in `dir`: sweep.json, sweep.csv, plots/<name>.svg
 * and .png, report.html. Each file is written through a temporary name.
 */
export async function writeSweepOutputs(
  dir: string,
  sweep: SweepRecord,
  ctx: ReportContext & SweepPlotOptions = {},
): Promise<WrittenReport & { json: string; csv: string }> {
  await mkdir(dir, { recursive: true });
  const files = await writeSweepFiles(dir, sweep);
  return { ...files, ...(await writeSweepReport(dir, sweep, ctx)) };
}

/** plots/<name>.svg and .png plus report.html in `dir`, for a sweep record. */
export async function writeSweepReport(
  dir: string,
  sweep: SweepRecord,
  ctx: ReportContext & SweepPlotOptions = {},
): Promise<WrittenReport> {
  const specs = [...sweepPlotSpecs(sweep, ctx), ...(ctx.levers ? [frontierPlot(ctx.levers)] : [])];
  return writeReport(join(dir, "report.html"), join(dir, "plots"), specs, (plots) =>
    renderSweepHtml(sweep, plots, ctx),
  );
}

/**
 * The single-run report at `htmlPath`; the plots' SVG/PNG files go to
 * `plotsDir` when given (the HTML carries its own copies either way).
 */
export async function writeRunReport(
  htmlPath: string,
  record: RunRecord,
  ctx: ReportContext & { source?: string; plotsDir?: string } = {},
): Promise<WrittenReport> {
  return writeReport(htmlPath, ctx.plotsDir, runPlotSpecs(record), (plots) =>
    renderRunHtml(record, plots, ctx),
  );
}

async function writeReport(
  htmlPath: string,
  plotsDir: string | undefined,
  specs: Plot[],
  render: (plots: RenderedPlot[]) => string,
): Promise<WrittenReport> {
  const plots = await renderPlots(specs);
  let written: WrittenReport["plots"] = [];
  if (plotsDir) {
    await mkdir(plotsDir, { recursive: true });
    written = await writePlots(plotsDir, plots);
  }
  await writeFileAtomic(htmlPath, render(plots));
  return { html: htmlPath, plots: written };
}

// ---------------------------------------------------------------- generic rendering

function machineSection(machine: unknown): string {
  if (machine === null || machine === undefined) {
    return section(
      "Machine",
      "<p>No machine description was supplied (run <code>framecost doctor</code>).</p>",
    );
  }
  const m = isObject(machine) ? machine : {};
  const cpu = isObject(m.cpu) ? m.cpu : {};
  const lead =
    typeof m.node === "string" && typeof cpu.model === "string"
      ? `<p>${esc(`${cpu.model}, ${String(cpu.cores)} cores; Node ${m.node}`)}</p>`
      : "";
  return section("Machine", lead + renderGeneric(machine));
}

function assumptionsSection(assumptions: unknown): string {
  if (assumptions === null || assumptions === undefined) {
    return section("Assumptions", "<p>No cost assumptions were supplied.</p>");
  }
  if (Array.isArray(assumptions) && assumptions.every((a) => typeof a === "string")) {
    // the cost section's plain list (src/cost/run.ts costSection.assumptions)
    return section("Assumptions", `<ul>${assumptions.map((a) => `<li>${esc(a)}</li>`).join("")}</ul>`);
  }
  const rows = assumptionRows(assumptions, "");
  if (rows.length === 0) return section("Assumptions", renderGeneric(assumptions));
  const extraKeys = [...new Set(rows.flatMap((r) => Object.keys(r.rest)))].sort();
  return section(
    "Assumptions",
    "<p>Every figure the cost stage assumed, with where it comes from. Extrapolated GPU costs are estimates under these.</p>" +
      table(
        ["assumption", "value", "source", ...extraKeys.map(esc)],
        rows.map((r) => [
          esc(r.path),
          r.value,
          r.source,
          ...extraKeys.map((k) => (k in r.rest ? renderGeneric(r.rest[k]) : "")),
        ]),
        "assumptions",
      ),
  );
}

interface AssumptionRow {
  path: string;
  value: string;
  source: string;
  rest: Record<string, unknown>;
}

/** Flattens nested assumptions: any object with a `value` is one row; other leaves are rows without a source. */
function assumptionRows(x: unknown, path: string): AssumptionRow[] {
  if (isObject(x) && "value" in x) {
    const { value, source, unit, ...rest } = x;
    const v = renderGeneric(value) + (typeof unit === "string" ? ` ${esc(unit)}` : "");
    return [
      { path: path || "(value)", value: v, source: source === undefined ? "" : renderGeneric(source), rest },
    ];
  }
  if (isObject(x)) return Object.entries(x).flatMap(([k, v]) => assumptionRows(v, path ? `${path}.${k}` : k));
  if (Array.isArray(x)) {
    return x.flatMap((v, i) => {
      const label =
        isObject(v) && (typeof v.name === "string" || typeof v.id === "string") ? (v.id ?? v.name) : i;
      return assumptionRows(v, `${path}[${String(label)}]`);
    });
  }
  return [{ path: path || "(value)", value: renderGeneric(x), source: "", rest: {} }];
}

/** Any JSON value as HTML: objects as key/value tables, arrays of objects as tables, primitives as text. */
export function renderGeneric(x: unknown, depth = 0): string {
  if (x === null || x === undefined) return '<span class="none">none</span>';
  if (typeof x === "number") return num(x);
  if (typeof x === "boolean") return x ? "yes" : "no";
  if (typeof x === "string") return esc(x);
  if (depth > 6) return `<code>${esc(JSON.stringify(x))}</code>`;
  if (Array.isArray(x)) {
    if (x.length === 0) return '<span class="none">none</span>';
    if (x.every(isObject)) {
      const keys = [...new Set(x.flatMap((o) => Object.keys(o)))];
      return table(
        keys.map(esc),
        x.map((o) => keys.map((k) => (k in o ? renderGeneric(o[k], depth + 1) : ""))),
        "generic",
      );
    }
    return x.map((v) => renderGeneric(v, depth + 1)).join(", ");
  }
  if (isObject(x)) {
    return definitionTable(Object.entries(x).map(([k, v]) => [k, renderGeneric(v, depth + 1)]));
  }
  return esc(String(x));
}

// ---------------------------------------------------------------- HTML pieces

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="framecost">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${body}
<footer>Written by framecost. Times, FLOPs and memory are measured on the machine described above; fits, shares and
ratios are computed from them; GPU costs are extrapolations under the listed assumptions, not measurements.</footer>
</main>
</body>
</html>
`;
}

const CSS = `
:root { color-scheme: light; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1d1d1f; background: #fafafa; }
main { max-width: 1200px; margin: 0 auto; padding: 24px; background: white; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #555; margin-top: 0; }
.note { color: #555; font-size: 13px; }
.warn { background: #fff3cd; border: 1px solid #e0c060; padding: 8px 12px; }
.none { color: #888; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { width: 1%; white-space: nowrap; }
.scroll { overflow-x: auto; }
figure { margin: 16px 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: #444; font-size: 13px; }
code { font-size: 12px; }
footer { margin-top: 32px; color: #666; font-size: 12px; }
`;

function section(title: string, content: string): string {
  return `<section><h2>${esc(title)}</h2>\n${content}\n</section>`;
}

function figure(p: RenderedPlot, i: number): string {
  // inline SVG: strip the XML prolog if any, give ids a per-plot prefix
  const svg = scopeSvgIds(p.svg.replace(/^<\?xml[^>]*>\s*/, ""), `plot${i}`);
  return `<figure class="plot" data-plot="${esc(p.name)}" role="group" aria-label="${esc(p.title)}">
${svg}
<figcaption><strong>${esc(p.title)}.</strong> ${esc(p.caption)}</figcaption>
</figure>`;
}

/** `cells` are HTML already (escape text with esc); numbers are right-aligned. */
function table(header: readonly string[], rows: readonly (readonly string[])[], cls: string): string {
  const th = header.map((h) => `<th>${h}</th>`).join("");
  const tr = rows
    .map(
      (r) =>
        `<tr>${r.map((c) => `<td${/^-?[\d.,]+(e[+-]?\d+)?( ?[%kMGT]\w*)?$/.test(c) ? ' class="n"' : ""}>${c}</td>`).join("")}</tr>`,
    )
    .join("\n");
  return `<div class="scroll"><table class="${cls}"><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table></div>`;
}

/** Rows of [plain-text key, HTML value]. */
function definitionTable(rows: ReadonlyArray<readonly [string, string]>): string {
  const tr = rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join("\n");
  return `<div class="scroll"><table class="kv"><tbody>\n${tr}\n</tbody></table></div>`;
}

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function opt(x: number | null): string {
  return x === null ? "" : num(x);
}
