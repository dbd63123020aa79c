/**
 * The path waterfall as a vega-lite spec (rendered by the report stage's
 * renderer to SVG and PNG). Log scale: the levers span orders of magnitude.
 * Each enabled lever is a bar from the running cost before it to the cost
 * after it; switched-off levers are listed with "(off)" and no bar. The
 * target is a dashed line, the essay's 1/6-1/10 band a shaded strip.
 */
import type { TopLevelSpec } from "vega-lite";
import type { LeverName, PathResult } from "./path.ts";

/** Axis labels short enough to read at -35 degrees. */
const SHORT: Record<LeverName, string> = {
  "fewer-steps": "fewer steps",
  "guidance-distillation": "CFG distillation",
  "step-distillation": "step distillation",
  "smaller-model": "smaller model",
  "lower-resolution": "lower resolution",
  "lower-frame-rate": "lower frame rate",
  "feature-caching": "feature caching",
  "lower-precision": "FP8",
  "cheapest-gpu": "cheapest GPU",
  "higher-utilization": "higher MFU",
  "lower-price": "reserved price",
};

export interface WaterfallPlot {
  name: string;
  title: string;
  caption: string;
  spec: TopLevelSpec;
}

function usdLabel(x: number): string {
  if (x >= 100) return `$${x.toFixed(0)}`;
  if (x >= 1) return `$${x.toFixed(2)}`;
  return `$${Number(x.toPrecision(2))}`;
}

export function waterfallPlot(r: PathResult): WaterfallPlot {
  const rows: Array<Record<string, string | number | null>> = [];
  const floor = Math.min(r.targetUsdPerVideoMinute, r.end.usdPerVideoMinute) / 3;
  rows.push({
    step: `start: ${r.start.model}, ${r.start.gpu}`,
    order: 0,
    lo: floor,
    hi: r.start.usdPerVideoMinute,
    kind: "total",
    label: usdLabel(r.start.usdPerVideoMinute),
  });
  let before = r.start.usdPerVideoMinute;
  for (const [i, l] of r.levers.entries()) {
    const after = l.usdPerVideoMinuteAfter;
    rows.push({
      step: l.enabled ? SHORT[l.name] : `${SHORT[l.name]} (off)`,
      order: i + 1,
      lo: l.enabled ? Math.min(before, after) : null,
      hi: l.enabled ? Math.max(before, after) : null,
      kind: !l.enabled ? "off" : after < before ? "down" : after > before ? "up" : "same",
      label: l.enabled ? `x${l.factor.toPrecision(3)}` : "off",
    });
    before = after;
  }
  rows.push({
    step: "end",
    order: r.levers.length + 1,
    lo: floor,
    hi: r.end.usdPerVideoMinute,
    kind: "total",
    label: usdLabel(r.end.usdPerVideoMinute),
  });
  const band = r.essay.cheaperLabBand;
  const sortOrder = rows.map((x) => String(x.step));
  const spec: TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    width: 620,
    height: 340,
    background: "white",
    title: {
      text: `USD per video minute: ${usdLabel(r.start.usdPerVideoMinute)} -> ${usdLabel(r.end.usdPerVideoMinute)} (target ${usdLabel(r.targetUsdPerVideoMinute)})`,
      anchor: "start",
      fontSize: 14,
    },
    layer: [
      {
        data: {
          values: [
            {
              lo: Math.min(band.fromUsdPerVideoMinute, band.toUsdPerVideoMinute),
              hi: Math.max(band.fromUsdPerVideoMinute, band.toUsdPerVideoMinute),
            },
          ],
        },
        mark: { type: "rect", color: "#f0a030", opacity: 0.18 },
        encoding: { y: { field: "lo", type: "quantitative", scale: { type: "log" } }, y2: { field: "hi" } },
      },
      {
        data: { values: rows },
        mark: { type: "bar", width: { band: 0.7 } },
        encoding: {
          x: {
            field: "step",
            type: "nominal",
            sort: sortOrder,
            axis: { labelAngle: -35, title: null, labelLimit: 220 },
          },
          y: {
            field: "lo",
            type: "quantitative",
            scale: { type: "log" },
            title: "USD per video minute (log scale)",
          },
          y2: { field: "hi" },
          color: {
            field: "kind",
            type: "nominal",
            scale: {
              domain: ["total", "down", "up", "same", "off"],
              range: ["#4c6a8a", "#3a9a5b", "#c0392b", "#999999", "#cccccc"],
            },
            legend: null,
          },
        },
      },
      {
        data: { values: rows },
        mark: { type: "text", dy: -6, fontSize: 10 },
        encoding: {
          x: { field: "step", type: "nominal", sort: sortOrder },
          y: { field: "hi", type: "quantitative", scale: { type: "log" } },
          text: { field: "label" },
        },
      },
      {
        data: {
          values: [{ y: r.targetUsdPerVideoMinute, text: `target ${usdLabel(r.targetUsdPerVideoMinute)}` }],
        },
        layer: [
          {
            mark: { type: "rule", color: "#c0392b", strokeDash: [6, 4] },
            encoding: { y: { field: "y", type: "quantitative", scale: { type: "log" } } },
          },
          {
            mark: { type: "text", align: "left", dx: 4, dy: 12, color: "#c0392b", fontSize: 11, x: 0 },
            encoding: {
              y: { field: "y", type: "quantitative", scale: { type: "log" } },
              text: { field: "text" },
            },
          },
        ],
      },
    ],
    config: {
      font: "DejaVu Sans, Helvetica, Arial, sans-serif",
      axis: { labelFontSize: 10, titleFontSize: 12 },
    },
  };
  return {
    name: "path-waterfall",
    title: "The path to the target, lever by lever",
    caption: `Start: ${r.start.model} ${r.start.width}x${r.start.height}, ${r.start.frames} frames at ${r.start.fps} fps, ${r.start.steps} steps${r.start.cfg ? " + CFG" : ""} on ${r.start.gpu}. Shaded: 1/6 to 1/10 of the start (the essay's cheaper labs). End ${usdLabel(r.end.usdPerVideoMinute)}, ${r.gapToTarget.toPrecision(3)}x the target.`,
    spec,
  };
}
