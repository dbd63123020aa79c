/**
 * `framecost path`: from a real model's cost today to a target USD per video
 * minute (default the essay's $0.01), lever by lever, each factor computed,
 * measured (the steps sweep) or published with its source. `--out DIR` draws
 * the waterfall (SVG + PNG) and writes path.json.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { z } from "zod";
import { loadCatalog } from "../cost/catalog.ts";
import { waterfallPlot } from "../cost/chart.ts";
import { parseLeversRecord } from "../cost/measured.ts";
import {
  buildPath,
  type LeverOverride,
  measureStepsLever,
  type PathResult,
  parseLeversFile,
  type StepsMeasurement,
  type SweepLike,
} from "../cost/path.ts";
import { g3, usd } from "../cost/run.ts";
import { writeFileAtomic } from "../media/files.ts";
import { readJsonFile } from "../report/files.ts";
import { renderSvg, writePlots } from "../report/plots.ts";
import { parseSweepRecord } from "../report/sweep.ts";
import { UserError } from "../util/errors.ts";
import { addScenarioFlags, formatScenario, ScenarioFlags, scenarioFromFlags } from "./cost.ts";
import { numberOpt, parseOptions, pathOpt, stringOpt } from "./options.ts";

const PathOptions = z.object({
  ...ScenarioFlags,
  targetUsdPerMinute: numberOpt({ min: 1e-6, max: 1e6 }).default(0.01),
  sweep: pathOpt({ mustExist: "file" }).optional(),
  qualityTolerance: numberOpt({ min: 0, max: 100 }).default(0.1),
  qualityMetric: stringOpt().optional(),
  referenceSampler: stringOpt().optional(),
  levers: pathOpt({ mustExist: "file" }).optional(),
  leversMeasured: pathOpt({ mustExist: "file" }).optional(),
  out: pathOpt().optional(),
  verbose: z.boolean().default(false),
});

/** Minimal sweep shape accepted when the file is not a full framecost sweep record. */
const SweepLikeSchema = z.object({
  cells: z
    .array(
      z.object({
        sampler: z.string().min(1),
        steps: z.number().int().positive(),
        nfePerFrame: z.number().positive(),
        quality: z.record(z.string(), z.number()).nullable(),
      }),
    )
    .min(1),
});

async function readSweep(path: string): Promise<SweepLike> {
  const data = await readJsonFile(path);
  // a file that says it is a framecost sweep record is read as one (its schemaVersion checked)
  const claims = data !== null && typeof data === "object" && "schemaVersion" in data;
  const minimal = SweepLikeSchema.safeParse(data);
  if (minimal.success && !claims) return minimal.data;
  // not even the minimal shape: let the full schema name the problem
  return parseSweepRecord(data, path);
}

function sourceTag(kind: string): string {
  return kind === "not measured (published fallback)" ? "NOT MEASURED" : kind;
}

export function formatPath(r: PathResult, verbose: boolean): string[] {
  const L: string[] = [];
  L.push(
    `Path to ${usd(r.targetUsdPerVideoMinute)} per video minute from ${r.start.model} ${r.start.width}x${r.start.height}, ${r.start.frames} frames at ${r.start.fps} fps, ${r.start.steps} steps${r.start.cfg ? " + CFG" : ""} on ${r.start.gpu} ($${r.start.usdPerHour.toFixed(2)}/h, MFU ${r.start.mfu.toFixed(3)})`,
  );
  if (r.measured)
    L.push(
      `  toy factors from framecost levers on ${r.measured.model} (${r.measured.protocol} protocol, ${r.measured.createdAt}); used where first-frame compactness stays within ${(r.measured.tolerance * 100).toFixed(0)}% of the teacher's, else published`,
    );
  L.push(`  start${" ".repeat(42)}${usd(r.start.usdPerVideoMinute).padStart(9)}`);
  const refs: string[] = [];
  for (const l of r.levers) {
    refs.push(`${l.source.text}${l.source.asOf ? ` (${l.source.asOf})` : ""}`);
    const tag = `[${refs.length}] ${sourceTag(l.source.kind)}`;
    const factor = l.enabled ? `x${l.factor.toPrecision(3)}` : `off (x${l.factor.toPrecision(3)})`;
    L.push(
      `  ${l.label.padEnd(45)} ${l.enabled ? usd(l.usdPerVideoMinuteAfter).padStart(9) : "".padStart(9)}  ${factor.padEnd(15)} ${l.detail}  ${tag}`,
    );
    const pad = `  ${"".padEnd(45)} ${"".padStart(9)}  `;
    if (l.toy) {
      const kind = l.toy.publishedSource.kind;
      const pubTag = kind === "not measured (published fallback)" ? "published (fallback)" : kind;
      const pub = `${pubTag === "measured" ? "the sweep's" : pubTag} x${l.toy.publishedChainFactor.toPrecision(3)}`;
      const toyPct = `${l.toy.compactnessChange >= 0 ? "+" : ""}${(l.toy.compactnessChange * 100).toFixed(1)}%`;
      const why =
        l.applies === "toy"
          ? "applies the toy's"
          : !l.toy.accepted
            ? `applies the ${pubTag} one (the toy's costs ${toyPct} compactness, beyond the tolerance)`
            : l.name === "fewer-steps" && l.source.kind === "measured"
              ? "applies the sweep's (--sweep wins: its reference is 50 steps, as the start's)"
              : `applies the ${sourceTag(l.source.kind)} one`;
      L.push(
        `${pad}toy x${l.toy.factor.toPrecision(3)} (${l.toy.lever}, ${l.toy.kind === "nfe" ? "NFEs" : "wall time"}, compactness ${toyPct}) beside ${pub}: ${why}`,
      );
    } else if (l.toyAbsent)
      L.push(`${pad}toy: not measured (${l.toyAbsent}); applies the ${sourceTag(l.source.kind)} one`);
    if (l.note && verbose) L.push(`${pad}note: ${l.note}`);
  }
  L.push(
    `  end${" ".repeat(44)}${usd(r.end.usdPerVideoMinute).padStart(9)}  = start x product of the enabled factors`,
  );
  L.push(
    r.reachesTarget
      ? `  below the target: ${g3(1 / r.gapToTarget)}x under ${usd(r.targetUsdPerVideoMinute)}`
      : `  gap to the target: ${g3(r.gapToTarget)}x (the end is ${g3(r.gapToTarget)} times ${usd(r.targetUsdPerVideoMinute)})`,
  );
  L.push(
    `  the enabled changes applied together to the scenario (not multiplied): ${usd(r.end.recomputedUsdPerVideoMinute)}; every lever on: ${usd(r.end.chain.usdPerVideoMinute)} (${r.end.chain.model} ${r.end.chain.width}x${r.end.chain.height}, ${g3(r.end.chain.steps)} steps${r.end.chain.cfg ? " + CFG" : ""}, ${r.end.chain.gpu})`,
  );
  const e = r.essay;
  L.push("");
  L.push(
    `$${(e.soraUsdPerDay / 1e6).toFixed(0)}M a day (Sora's reported cost) buys ${g3(e.videoMinutesPerDay.start)} video minutes a day at the start and ${g3(e.videoMinutesPerDay.end)} at the end.`,
  );
  L.push(
    `The essay's cheaper labs, at 1/6 to 1/10 of the start: ${usd(e.cheaperLabBand.fromUsdPerVideoMinute)} to ${usd(e.cheaperLabBand.toUsdPerVideoMinute)} per video minute.`,
  );
  for (const o of e.outside)
    L.push(`Outside estimate: ${o.what}: ${usd(o.usdPerVideoMinute)} per video minute.`);
  L.push("");
  L.push("sources:");
  refs.forEach((s, i) => {
    L.push(`  [${i + 1}] ${s}`);
  });
  L.push(`  essay: ${e.source}`);
  return L;
}

export function register(program: Command): void {
  const cmd = program
    .command("path")
    .description(
      "waterfall of cost levers from a real model's cost today to a target USD per video minute (default $0.01)",
    );
  addScenarioFlags(cmd, "model preset (default wan2.1-14b); see framecost cost --help")
    .option("--target-usd-per-minute <x>", "the target (default 0.01, the essay's floor)")
    .option(
      "--sweep <file>",
      "a sweep.json from framecost sweep: measures the fewer-steps lever on the shipped model",
    )
    .option(
      "--quality-tolerance <x>",
      "how much worse, relative (default 0.1): the sweep's cells than its reference on every metric (fewer steps); the toy's levers than the teacher on first-frame compactness (--levers-measured)",
    )
    .option("--quality-metric <name>", "fewer-steps lever: check only this quality metric (default: all)")
    .option(
      "--reference-sampler <name>",
      "fewer-steps lever: the sampler whose 50-step cell is the reference (default: the best one-call-per-step sampler)",
    )
    .option(
      "--levers <file>",
      'JSON {"levers": [{"name", "enabled"?, "factor"?, "source"?}]}: switch levers or give other factors',
    )
    .option(
      "--levers-measured <file>",
      "a levers.json from framecost levers: each lever the toy measured shows its factor beside the published one, and the waterfall applies it where its quality is within --quality-tolerance",
    )
    .option("--out <dir>", "write path.json and the waterfall chart (path-waterfall.svg, .png) here")
    .option("--verbose", "also print each lever's caveat and the starting scenario")
    .action(async (raw: Record<string, unknown>) => {
      const f = parseOptions(PathOptions, raw);
      const catalog = loadCatalog(f.catalog);
      if (f.gpu?.includes(",")) throw new UserError(`--gpu takes one GPU, got ${f.gpu}`);
      const start = scenarioFromFlags(f, catalog, "wan2.1-14b");
      let steps: StepsMeasurement | null = null;
      if (f.sweep !== undefined) {
        const sweep = await readSweep(f.sweep);
        const m = measureStepsLever(sweep, f.qualityTolerance, f.qualityMetric, f.referenceSampler);
        steps = { ...m, sweepSource: f.sweep };
      }
      let overrides: LeverOverride[] = [];
      if (f.levers !== undefined)
        overrides = parseLeversFile(await readJsonFile(f.levers), `--levers ${f.levers}`);
      const measured =
        f.leversMeasured === undefined
          ? null
          : parseLeversRecord(await readJsonFile(f.leversMeasured), `--levers-measured ${f.leversMeasured}`);
      const r = buildPath({
        start,
        targetUsdPerVideoMinute: f.targetUsdPerMinute,
        catalog,
        steps,
        overrides,
        measured,
        toyTolerance: f.qualityTolerance,
      });
      if (f.out !== undefined) {
        await mkdir(f.out, { recursive: true });
        const plot = waterfallPlot(r);
        await writePlots(f.out, [{ ...plot, svg: await renderSvg(plot.spec) }]);
        await writeFileAtomic(join(f.out, "path.json"), `${JSON.stringify(r, null, 2)}\n`);
      }
      if (f.json) {
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return;
      }
      const lines = formatPath(r, f.verbose);
      if (f.verbose) lines.push("", "starting scenario:", ...formatScenario(r.start.scenario));
      if (f.out !== undefined)
        lines.push(
          "",
          `wrote ${join(f.out, "path.json")}, ${join(f.out, "path-waterfall.svg")}, ${join(f.out, "path-waterfall.png")}`,
        );
      process.stdout.write(`${lines.join("\n")}\n`);
    });
}
