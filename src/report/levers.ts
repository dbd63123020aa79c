/**
 * levers.json as a terminal table and as the cost-quality frontier plot:
 * the teacher's sampler curves (quality against cost per frame at several
 * step counts) with every measured lever as a labelled point.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import Table from "cli-table3";
import {
  type LeverFigures,
  type LeversRecord,
  type MeasuredLever,
  parseLeversRecord,
} from "../cost/measured.ts";
import { writeFileAtomic } from "./files.ts";
import { type Plot, renderPlots, writePlots } from "./plots.ts";

const CONFIG = {
  background: "white",
  font: "DejaVu Sans, Helvetica, Arial, sans-serif",
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14, anchor: "start" as const },
};

const signed = (x: number) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}%`;
const x3 = (x: number) => `x${x.toPrecision(3)}`;

/** The table `framecost levers` prints: cost, factors and quality per lever, on one protocol. */
export function formatLeversTable(r: LeversRecord): string[] {
  const teacher = r.levers.find((l) => l.name === r.teacher) as MeasuredLever;
  const tq = teacher.figures.firstFrame;
  const t = new Table({
    head: [
      "lever",
      "path lever",
      "NFE/frame",
      "GFLOP/frame",
      "ms/frame",
      "x teacher NFE",
      "x teacher wall",
      "factor (vs baseline)",
      "compactness",
      "specks/frame",
      "SWD patches",
      "palette",
      "last/first",
      "motion",
    ],
    colAligns: ["left", "left", ...Array(12).fill("right")],
    style: { head: [], border: [], compact: true },
  });
  const notAvailable: string[] = [];
  for (const l of r.levers) {
    if (l.status !== "measured") {
      notAvailable.push(`  ${l.name} (${l.pathLever ?? "no path lever"}): not available: ${l.reason}`);
      continue;
    }
    const f = l.figures;
    const q = f.firstFrame;
    const isTeacher = l.name === r.teacher;
    t.push([
      l.name,
      l.pathLever ?? (isTeacher ? "(reference)" : "-"),
      f.nfePerFrame.toFixed(1),
      (f.flopsPerFrame / 1e9).toFixed(3),
      f.wallMsPerFrame.toFixed(1),
      x3(l.vsTeacher.nfe),
      x3(l.vsTeacher.wall),
      isTeacher
        ? ""
        : `NFE ${x3(l.vsBaseline.nfe)}, wall ${x3(l.vsBaseline.wall)}${l.baseline === r.teacher ? "" : ` vs ${l.baseline}`}`,
      isTeacher
        ? q.compactness.toFixed(3)
        : `${q.compactness.toFixed(3)} (${signed(q.compactness / tq.compactness - 1)})`,
      q.specksPerFrame.toFixed(2),
      q.swdPatches.toFixed(3),
      q.paletteError.toFixed(3),
      f.longClip ? `${f.longClip.lastOverFirst.toFixed(2)}x` : "",
      f.longClip ? f.longClip.motion.toFixed(4) : "",
    ]);
  }
  const p = r.protocol;
  const L = [
    `Levers on ${r.model}, ${p.name} protocol: ${p.clips} first frames and ${p.longClips} clips of ${p.longFrames} frames per lever against ${p.referenceClips} held-out clips, seed ${p.seed}, on ${p.backend} (${r.device.cpuModel}, ${r.device.cores} cores)`,
    t.toString(),
    `real frames: compactness ${r.real.compactness.toFixed(3)}, specks ${r.real.specksPerFrame.toFixed(2)} per frame${r.real.motion === null ? "" : `, motion ${r.real.motion.toFixed(4)}`}`,
    "NFEs and FLOPs per frame over every frame the protocol generated (metered); wall time: the median frame after each run's first (warm-up left out); factors are cost ratios (< 1 is cheaper); compactness in brackets: against the teacher's (higher is better)",
  ];
  const notes = r.levers
    .filter((l) => l.note && l.status === "measured")
    .map((l) => `  ${l.name}: ${l.note}`);
  if (notes.length > 0) L.push("notes:", ...notes);
  if (notAvailable.length > 0) L.push("not available on this build:", ...notAvailable);
  if (r.frontier.length > 0) {
    const samplers = [...new Set(r.frontier.map((f) => f.sampler))];
    L.push("frontier (the teacher per sampler, compactness at NFEs per frame):");
    for (const s of samplers)
      L.push(
        `  ${s.padEnd(9)} ${r.frontier
          .filter((f) => f.sampler === s)
          .map(
            (f) =>
              `${f.steps} steps ${f.figures.nfePerFrame.toFixed(0)} NFE ${f.figures.firstFrame.compactness.toFixed(3)}`,
          )
          .join(", ")}`,
      );
  }
  L.push(`measured in ${r.wallSeconds.toFixed(0)} s`);
  return L;
}

interface Pt {
  nfe: number;
  ms: number;
  compactness: number;
}
const pt = (f: LeverFigures): Pt => ({
  nfe: f.nfePerFrame,
  ms: f.wallMsPerFrame,
  compactness: f.firstFrame.compactness,
});

/**
 * Quality (first-frame compactness, higher is better) against cost per frame,
 * by NFEs (left) and by wall time (right): the teacher's sampler curves, every
 * measured lever as a labelled point, the real frames' compactness as a rule.
 */
export function frontierPlot(r: LeversRecord): Plot {
  const curve = r.frontier.map((f) => ({ sampler: f.sampler, steps: f.steps, ...pt(f.figures) }));
  const levers = r.levers
    .filter((l): l is MeasuredLever => l.status === "measured")
    .map((l) => ({ lever: l.name, ...pt(l.figures) }));
  const byQuality = [...levers].sort((a, b) => a.compactness - b.compactness);
  const samplers = [...new Set(r.frontier.map((f) => f.sampler))];
  const y = {
    field: "compactness",
    type: "quantitative",
    title: "first-frame compactness (higher is better)",
    scale: { zero: false },
  } as const;
  const panel = (field: "nfe" | "ms", title: string) => {
    const x = { field, type: "quantitative", title, scale: { type: "log" as const } } as const;
    return {
      width: 330,
      height: 260,
      layer: [
        {
          data: { values: [{ compactness: r.real.compactness }] },
          mark: { type: "rule" as const, strokeDash: [4, 3], color: "#777" },
          encoding: { y },
        },
        {
          data: { values: curve },
          mark: { type: "line" as const, point: { filled: true, size: 30 } },
          encoding: {
            x,
            y,
            color: { field: "sampler", type: "nominal" as const, title: "teacher, sampler", sort: samplers },
            order: { field: "nfe", type: "quantitative" as const },
          },
        },
        {
          data: { values: levers },
          mark: { type: "point" as const, shape: "diamond", filled: true, size: 90, color: "black" },
          encoding: { x, y },
        },
        // labels alternate above and below in order of quality, so levers at nearly one point stay legible
        ...[0, 1].map((side) => ({
          data: { values: byQuality.filter((_, i) => i % 2 === side) },
          mark: {
            type: "text" as const,
            align: "left" as const,
            dx: 7,
            dy: side === 0 ? -7 : 9,
            fontSize: 10,
          },
          encoding: { x, y, text: { field: "lever", type: "nominal" as const } },
        })),
      ],
    };
  };
  return {
    name: "levers-frontier",
    title: "Quality against cost per frame: the levers and the teacher's frontier",
    caption:
      `Lines: the teacher (${r.model}, its default guidance) at ${[...new Set(r.frontier.map((f) => f.steps))].join(", ")} steps per sampler; ` +
      `black diamonds: each measured lever; dashed: real frames (${r.real.compactness.toFixed(3)}). ` +
      `${r.protocol.name} protocol (${r.protocol.clips} first frames, ${r.protocol.longClips} clips of ${r.protocol.longFrames} frames); wall time on ${r.protocol.backend}, ${r.device.cores} cores.`,
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      config: CONFIG,
      title: "Quality against cost per frame: levers and the teacher's frontier",
      hconcat: [
        panel("nfe", "network evaluations per frame (log scale)"),
        panel("ms", "wall time per frame, ms (log scale)"),
      ],
    },
  };
}

/** levers.json (validated on the way out, as it will be on the way in) and the frontier plot's SVG and PNG, in `dir`. */
export async function writeLeversOutputs(
  dir: string,
  r: LeversRecord,
): Promise<{ json: string; plots: Array<{ name: string; svg: string; png: string }> }> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, "levers.json");
  parseLeversRecord(JSON.parse(JSON.stringify(r)), "the levers record being written");
  await writeFileAtomic(json, `${JSON.stringify(r, null, 2)}\n`);
  const plots = await writePlots(dir, await renderPlots([frontierPlot(r)]));
  return { json, plots };
}
