/**
 * Plots as vega-lite specs, compiled with vega-lite and rendered to SVG by
 * vega in Node (no browser), then to PNG by sharp. Data is always inline:
 * the loader refuses every URL, so rendering never touches the network.
 *
 * Sweep plots: wall time per frame vs NFE (with each sampler's fitted line),
 * USD per video-minute vs NFE (one panel per price), quality vs NFE (one panel
 * per metric), quality vs USD per video-minute with the Pareto front marked.
 * Run plot: wall time per frame, time per sampler step, achieved throughput.
 */
import { join } from "node:path";
import sharp from "sharp";
import * as vega from "vega";
import type { TopLevelSpec } from "vega-lite";
import * as vl from "vega-lite";
import { writeFileAtomic } from "./files.ts";
import { type RunRecord, toConvention } from "./records.ts";
import { cellQuality, cellUsd, priceKeys, qualityKeys, type SweepRecord, sweepParetoFront } from "./sweep.ts";

export interface Plot {
  /** file stem: `<name>.svg`, `<name>.png` */
  name: string;
  title: string;
  /** one sentence under the plot in the HTML report */
  caption: string;
  spec: TopLevelSpec;
}

export interface RenderedPlot extends Plot {
  svg: string;
}

const PANEL_W = 360;
const PANEL_H = 240;
const RUN_PANEL_H = 290;

const CONFIG = {
  background: "white",
  font: "DejaVu Sans, Helvetica, Arial, sans-serif",
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14, anchor: "start" as const },
};

const NFE_AXIS = "network evaluations per frame (NFE)";

const METRIC_LABELS: Record<string, [long: string, short: string]> = {
  swdPixels: ["sliced Wasserstein distance on pixels", "SWD, pixels"],
  swdPatches: ["sliced Wasserstein distance on patches", "SWD, patches"],
  paletteError: ["palette error", "palette error"],
};

/** Full name of a quality metric, for captions and panel headers. */
export function metricLabel(metric: string): string {
  return METRIC_LABELS[metric]?.[0] ?? metric;
}

/** Short name for axis titles (a rotated title longer than the plot is tall pushes the layout apart). */
function metricShort(metric: string): string {
  return METRIC_LABELS[metric]?.[1] ?? metric;
}

/** "local machine" or "h100-sxm (extrapolated)" */
export function priceLabel(key: string): string {
  return key === "local" ? "this machine" : `${key} (extrapolated)`;
}

// ---------------------------------------------------------------- sweep plots

export interface SweepPlotOptions {
  /** quality metric for the Pareto plot; default swdPatches (or the first present) */
  metric?: string;
  /** price column for the Pareto plot: "local" or a GPU id; default the first present */
  priceKey?: string;
}

/** The sweep's plots; plots whose data is absent (no prices, no quality) are left out. */
export function sweepPlotSpecs(sweep: SweepRecord, opts: SweepPlotOptions = {}): Plot[] {
  const plots: Plot[] = [wallVsNfe(sweep)];
  const prices = priceKeys(sweep.cells);
  const metrics = qualityKeys(sweep.cells);
  if (prices.length > 0) plots.push(usdVsNfe(sweep, prices));
  if (metrics.length > 0) plots.push(qualityVsNfe(sweep, metrics));
  if (prices.length > 0 && metrics.length > 0) {
    const metric = opts.metric ?? (metrics.includes("swdPatches") ? "swdPatches" : metrics[0]);
    const priceKey = opts.priceKey ?? prices[0];
    plots.push(qualityVsUsd(sweep, metric, priceKey));
  }
  return plots;
}

function wallVsNfe(sweep: SweepRecord): Plot {
  const points = sweep.cells.map((c) => ({
    sampler: c.sampler,
    steps: c.steps,
    nfe: c.nfePerFrame,
    wallMs: c.wallMsPerFrame,
  }));
  // Each fit drawn as a segment over the NFE range it was fitted on.
  const lines = sweep.fits.flatMap((f) => {
    if (!f.ok) return [];
    const lo = f.cells[0].nfePerFrame;
    const hi = f.cells[f.cells.length - 1].nfePerFrame;
    return [lo, hi].map((nfe) => ({ sampler: f.sampler, nfe, wallMs: f.aMs + f.bMsPerNfe * nfe }));
  });
  const color = { field: "sampler", type: "nominal", title: "sampler", sort: sweep.grid.samplers } as const;
  return {
    name: "wall-vs-nfe",
    title: "Wall time per frame against NFE",
    caption:
      "Points: measured wall time per frame in each cell. Dashed lines: each sampler's least-squares fit a + b × NFE.",
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      config: CONFIG,
      title: "Wall time per frame against NFE, per sampler",
      width: PANEL_W * 1.4,
      height: PANEL_H * 1.2,
      layer: [
        {
          data: { values: lines },
          mark: { type: "line", strokeDash: [5, 3], strokeWidth: 1.5 },
          encoding: {
            x: { field: "nfe", type: "quantitative" },
            y: { field: "wallMs", type: "quantitative" },
            color,
            detail: { field: "sampler" },
          },
        },
        {
          data: { values: points },
          mark: { type: "point", filled: true, size: 55 },
          encoding: {
            x: { field: "nfe", type: "quantitative", title: NFE_AXIS },
            y: { field: "wallMs", type: "quantitative", title: "wall time per frame (ms)" },
            color,
            shape: { field: "sampler", type: "nominal", title: "sampler", sort: sweep.grid.samplers },
          },
        },
      ],
    },
  };
}

function usdVsNfe(sweep: SweepRecord, prices: string[]): Plot {
  const values = sweep.cells.flatMap((c) =>
    prices.flatMap((k) => {
      const usd = cellUsd(c, k);
      return usd === null ? [] : [{ sampler: c.sampler, nfe: c.nfePerFrame, price: priceLabel(k), usd }];
    }),
  );
  return {
    name: "usd-vs-nfe",
    title: "USD per video-minute against NFE",
    caption:
      "USD per minute of video as the cost stage computed it from each cell's wall time, one panel per machine " +
      "(GPU figures are extrapolations; see the assumptions).",
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      config: CONFIG,
      title: "USD per video-minute against NFE, per sampler",
      data: { values },
      facet: { field: "price", type: "nominal", title: "priced on", sort: prices.map(priceLabel) },
      columns: Math.min(3, prices.length),
      resolve: { scale: { y: "independent" } },
      spec: {
        width: PANEL_W * 0.8,
        height: PANEL_H,
        mark: { type: "line", point: { filled: true, size: 40 } },
        encoding: {
          x: { field: "nfe", type: "quantitative", title: NFE_AXIS },
          y: { field: "usd", type: "quantitative", title: "USD per video-minute", axis: { format: ".2~e" } },
          color: { field: "sampler", type: "nominal", title: "sampler", sort: sweep.grid.samplers },
          order: { field: "nfe", type: "quantitative" },
        },
      },
    },
  };
}

function qualityVsNfe(sweep: SweepRecord, metrics: string[]): Plot {
  const values = sweep.cells.flatMap((c) =>
    metrics.flatMap((m) => {
      const q = cellQuality(c, m);
      return q === null ? [] : [{ sampler: c.sampler, nfe: c.nfePerFrame, metric: metricLabel(m), value: q }];
    }),
  );
  return {
    name: "quality-vs-nfe",
    title: "Quality against NFE",
    caption: "Each quality metric against held-out clips (lower is better), one panel per metric.",
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      config: CONFIG,
      title: "Quality against NFE, per sampler (lower is better)",
      data: { values },
      facet: { field: "metric", type: "nominal", title: "metric", sort: metrics.map(metricLabel) },
      columns: Math.min(3, metrics.length),
      resolve: { scale: { y: "independent" } },
      spec: {
        width: PANEL_W * 0.8,
        height: PANEL_H,
        mark: { type: "line", point: { filled: true, size: 40 } },
        encoding: {
          // log NFE: quality moves most over the first few evaluations
          x: { field: "nfe", type: "quantitative", title: `${NFE_AXIS}, log scale`, scale: { type: "log" } },
          y: { field: "value", type: "quantitative", title: "value (lower is better)" },
          color: { field: "sampler", type: "nominal", title: "sampler", sort: sweep.grid.samplers },
          order: { field: "nfe", type: "quantitative" },
        },
      },
    },
  };
}

function qualityVsUsd(sweep: SweepRecord, metric: string, priceKey: string): Plot {
  const front = new Set(sweepParetoFront(sweep.cells, metric, priceKey));
  const points = sweep.cells.flatMap((c) => {
    const usd = cellUsd(c, priceKey);
    const q = cellQuality(c, metric);
    if (usd === null || q === null) return [];
    return [{ sampler: c.sampler, steps: c.steps, usd, q, onFront: front.has(c) }];
  });
  const frontPts = points.filter((p) => p.onFront).sort((a, b) => a.usd - b.usd);
  const usds = points.map((p) => p.usd).filter((u) => u > 0);
  // log scale when cost spans more than a decade: the cheap cells would crowd otherwise
  const logX = usds.length === points.length && usds.length > 0 && Math.max(...usds) / Math.min(...usds) > 10;
  const xTitle = `USD per video-minute on ${priceLabel(priceKey)}${logX ? " (log scale)" : ""}`;
  const x = {
    field: "usd",
    type: "quantitative",
    title: xTitle,
    scale: logX ? { type: "log" as const, nice: false, padding: 12 } : { zero: false },
    axis: { format: ".2~e" },
  } as const;
  const y = { field: "q", type: "quantitative", title: `${metricShort(metric)} (lower is better)` } as const;
  return {
    name: "quality-vs-usd",
    title: "Quality against USD per video-minute, Pareto front",
    caption:
      `Each cell's ${metricLabel(metric)} against its USD per video-minute on ${priceLabel(priceKey)}. ` +
      "The black staircase joins the Pareto front: cells no other cell beats on both cost and quality (ringed).",
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      config: CONFIG,
      title: "Quality against cost, with the Pareto front",
      width: PANEL_W * 1.4,
      height: PANEL_H * 1.2,
      layer: [
        {
          data: { values: frontPts },
          mark: { type: "line", interpolate: "step-after", color: "black", strokeWidth: 1.5 },
          encoding: { x, y },
        },
        {
          data: { values: frontPts },
          mark: { type: "point", size: 160, color: "black", strokeWidth: 1.5 },
          encoding: { x, y },
        },
        {
          data: { values: points },
          mark: { type: "point", filled: true, size: 50 },
          encoding: {
            x,
            y,
            color: { field: "sampler", type: "nominal", title: "sampler", sort: sweep.grid.samplers },
            shape: { field: "sampler", type: "nominal", title: "sampler", sort: sweep.grid.samplers },
          },
        },
      ],
    },
  };
}

// ---------------------------------------------------------------- single run

/** Wall time per frame, time per sampler step, achieved throughput per frame (convention named). */
export function runPlotSpecs(record: RunRecord): Plot[] {
  const macs = record.flopConvention === "macs";
  const rateUnit = macs ? "GMAC/s" : "GFLOP/s";
  const rateNote = macs ? "multiply-add = 1 MAC" : "multiply-add = 2 FLOP";
  const frames = record.frames.map((f) => ({
    frame: f.index,
    wallMs: f.wallMs,
    kind: f.index === record.frames[0]?.index ? "first frame (with warm-up)" : "later frames",
    rate: f.wallMs > 0 ? toConvention(f.flops, record.flopConvention) / f.wallMs / 1e6 : null,
  }));
  const steps = record.frames.flatMap((f) =>
    f.stepWallMs.map((ms, k) => ({ frame: `frame ${f.index}`, step: k + 1, ms })),
  );
  const peak = toConvention(record.calibration.gemmGflops * 1e9, record.flopConvention) / 1e9;
  const frameAxis = { field: "frame", type: "ordinal", title: "frame index" } as const;
  return [
    {
      name: "run-timing",
      title: "Where the time goes in this run",
      caption:
        `Left: wall time of each frame (the first includes warm-up). Middle: wall time of each sampler step, one line per frame. ` +
        `Right: achieved ${rateUnit} per frame (${rateNote}) against the calibrated GEMM peak of ${record.calibration.backend}.`,
      spec: {
        $schema: "https://vega.github.io/schema/vega-lite/v6.json",
        config: CONFIG,
        title: `${record.sampler.name}, ${record.sampler.steps} steps, ${record.sampler.nfePerFrame} NFE per frame, on ${record.backend.name}`,
        hconcat: [
          {
            width: PANEL_W * 0.75,
            height: RUN_PANEL_H,
            data: { values: frames },
            mark: "bar",
            encoding: {
              x: frameAxis,
              y: { field: "wallMs", type: "quantitative", title: "wall time per frame (ms)" },
              color: {
                field: "kind",
                type: "nominal",
                title: null,
                legend: { orient: "bottom", labelLimit: 400 },
              },
            },
          },
          {
            width: PANEL_W * 0.75,
            height: RUN_PANEL_H,
            data: { values: steps },
            mark: { type: "line", point: steps.length <= 200, opacity: 0.7 },
            encoding: {
              x: { field: "step", type: "quantitative", title: "sampler step", axis: { tickMinStep: 1 } },
              y: { field: "ms", type: "quantitative", title: "wall time per step (ms)" },
              detail: { field: "frame" },
              color: { value: "#4c78a8" },
            },
          },
          {
            width: PANEL_W * 0.75,
            height: RUN_PANEL_H,
            layer: [
              {
                data: { values: frames },
                mark: { type: "line", point: true },
                encoding: {
                  x: frameAxis,
                  y: { field: "rate", type: "quantitative", title: `achieved ${rateUnit} (${rateNote})` },
                },
              },
              {
                data: { values: [{ peak, label: `GEMM peak ${peak.toPrecision(3)} ${rateUnit}` }] },
                layer: [
                  {
                    mark: { type: "rule", strokeDash: [4, 3], color: "#e45756" },
                    encoding: { y: { field: "peak", type: "quantitative" } },
                  },
                  {
                    mark: { type: "text", align: "left", dx: 4, dy: -6, color: "#e45756" },
                    encoding: {
                      y: { field: "peak", type: "quantitative" },
                      x: { value: 0 },
                      text: { field: "label" },
                    },
                  },
                ],
              },
            ],
          },
        ],
      },
    },
  ];
}

// ---------------------------------------------------------------- rendering

/** A loader that refuses every URL: plots carry their data inline and never fetch. */
function offlineLoader() {
  const loader = vega.loader();
  const refuse = async (uri: string): Promise<never> => {
    throw new Error(`framecost plots load nothing from outside (asked for ${uri})`);
  };
  loader.load = refuse;
  loader.sanitize = refuse;
  return loader;
}

/** Every `url` a compiled vega spec's data would load. */
function dataUrls(x: unknown): string[] {
  if (Array.isArray(x)) return x.flatMap(dataUrls);
  if (!x || typeof x !== "object") return [];
  const o = x as Record<string, unknown>;
  const own = Array.isArray(o.data)
    ? o.data.flatMap((d: unknown) => {
        const url = (d as { url?: unknown }).url;
        return url === undefined ? [] : [typeof url === "string" ? url : JSON.stringify(url)];
      })
    : [];
  return [...own, ...(Array.isArray(o.marks) ? o.marks.flatMap(dataUrls) : [])];
}

/** vega-lite spec -> SVG text, in Node. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec).spec;
  // vega would log a failed load and draw an empty plot: refuse up front instead
  const urls = dataUrls(compiled);
  if (urls.length > 0)
    throw new Error(`framecost plots load nothing from outside (asked for ${urls.join(", ")})`);
  const view = new vega.View(vega.parse(compiled), { renderer: "none", loader: offlineLoader() });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** SVG -> PNG through sharp (librsvg); `density` 144 gives 2x the SVG's pixel size. */
export async function svgToPng(svg: string, density = 144): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density }).png().toBuffer();
}

export async function renderPlots(plots: readonly Plot[]): Promise<RenderedPlot[]> {
  const out: RenderedPlot[] = [];
  for (const p of plots) out.push({ ...p, svg: await renderSvg(p.spec) });
  return out;
}

/** Writes `<name>.svg` and `<name>.png` for each plot into `dir`; returns the paths. */
export async function writePlots(
  dir: string,
  plots: readonly RenderedPlot[],
): Promise<Array<{ name: string; svg: string; png: string }>> {
  const out = [];
  for (const p of plots) {
    const svg = join(dir, `${p.name}.svg`);
    const png = join(dir, `${p.name}.png`);
    await writeFileAtomic(svg, p.svg);
    await writeFileAtomic(png, await svgToPng(p.svg));
    out.push({ name: p.name, svg, png });
  }
  return out;
}

/**
 * Makes the ids inside one SVG unique within a page (vega numbers clip paths
 * and gradients from 1 in every SVG; two plots inline in one page would
 * otherwise clip each other's marks).
 */
export function scopeSvgIds(svg: string, prefix: string): string {
  const ids = new Set([...svg.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]));
  if (ids.size === 0) return svg;
  return svg
    .replace(/(\sid=")([^"]+)(")/g, (_m, a: string, id: string, b: string) => `${a}${prefix}-${id}${b}`)
    .replace(/url\(#([^)]+)\)/g, (m, id: string) => (ids.has(id) ? `url(#${prefix}-${id})` : m))
    .replace(/(href=")#([^"]+)(")/g, (m, a: string, id: string, b: string) =>
      ids.has(id) ? `${a}#${prefix}-${id}${b}` : m,
    );
}
