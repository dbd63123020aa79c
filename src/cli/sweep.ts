/**
 * `framecost sweep`: the grid of samplers x steps with the shipped model,
 * every cell metered and scored (src/run/sweep.ts runs it). Writes every
 * cell's RunRecord as it finishes (`--resume` skips them), then sweep.json,
 * sweep.csv, plots and report.html; with `--shard I/N`, the I-th of N parts
 * of the grid and a shard.json that `framecost merge` combines.
 */
import { cpus } from "node:os";
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { z } from "zod";
import { DEFAULT_SUMMARY_GPUS, getGpu, shippedCatalog } from "../cost/index.ts";
import { parseLeversRecord } from "../cost/measured.ts";
import { samplerNames } from "../diffusion/samplers/index.ts";
import { ensureWritableDir, lockDir } from "../media/files.ts";
import { loadWeights } from "../model/io.ts";
import { readJsonFile } from "../report/files.ts";
import { runSweep, SWEEP_DEFAULTS, type SweepOptions, writeSweepResult } from "../run/sweep.ts";
import { catchStopSignals } from "../util/signals.ts";
import {
  backendOpt,
  choiceOpt,
  intOpt,
  listOpt,
  numberOpt,
  parseOptions,
  pathOpt,
  shardOpt,
  stringOpt,
} from "./options.ts";

const Options = z.object({
  steps: listOpt(intOpt({ min: 1, max: 1000 })),
  samplers: listOpt(choiceOpt(samplerNames() as [string, ...string[]])),
  frames: intOpt({ min: 1, max: 1000 }),
  clips: intOpt({ min: 1, max: 100 }),
  referenceClips: intOpt({ min: 1, max: 1000 }),
  seed: intOpt({ min: 0 }),
  fps: intOpt({ min: 1, max: 240 }),
  model: pathOpt({ mustExist: "dir" }),
  backend: backendOpt(),
  threads: intOpt({ min: 1, max: 256 }).optional(),
  workers: intOpt({ min: 1, max: 64 }),
  out: stringOpt(),
  resume: z.boolean().default(false),
  convention: choiceOpt(["flops", "macs"]),
  localPrice: numberOpt({ min: 0, max: 10_000 }).optional(),
  watts: numberOpt({ min: 0.001, max: 100_000 }).optional(),
  kwhPrice: numberOpt({ min: 0, max: 100 }).optional(),
  gpus: listOpt(stringOpt()).optional(),
  shard: shardOpt().optional(),
  leversMeasured: pathOpt({ mustExist: "file" }).optional(),
});

/** commander's option object -> the sweep's options (one UserError line for the first bad flag). */
export function sweepOptionsFrom(raw: Record<string, unknown>): SweepOptions {
  const { leversMeasured: _levers, ...p } = parseOptions(Options, raw);
  // cells are priced on these after minutes of work: a GPU the catalog lacks fails now
  const catalog = shippedCatalog();
  for (const id of p.gpus ?? []) getGpu(catalog, id, "--gpus");
  return { ...p, gpus: p.gpus ?? [...DEFAULT_SUMMARY_GPUS], report: true };
}

export function register(program: Command): void {
  program
    .command("sweep")
    .description(
      "run samplers x steps with the shipped model, metered and scored; write sweep.json/csv, plots, report.html",
    )
    .option("--steps <list>", "comma-separated step counts", SWEEP_DEFAULTS.steps.join(","))
    .option(
      "--samplers <list>",
      `comma-separated samplers (${samplerNames().join(", ")})`,
      SWEEP_DEFAULTS.samplers.join(","),
    )
    .option("--frames <n>", "frames per clip", String(SWEEP_DEFAULTS.frames))
    .option(
      "--clips <n>",
      "clips per cell (seed, seed+1, ...): more clips, steadier quality figures",
      String(SWEEP_DEFAULTS.clips),
    )
    .option(
      "--reference-clips <n>",
      "held-out clips the quality metrics compare against",
      String(SWEEP_DEFAULTS.referenceClips),
    )
    .option("--seed <n>", "seed of the first clip", "0")
    .option("--fps <n>", "frames per second (a video minute = fps x 60 frames)", "24")
    .option("--model <dir>", "model folder", "models/tiny")
    .option("--backend <name>", "backend every worker uses (wasm, cpu, tensorflow, onnx)", "wasm")
    .option("--threads <n>", "onnx: intra-op threads per worker")
    .option(
      "--workers <n>",
      "worker threads running cells in parallel",
      String(Math.max(1, Math.min(2, cpus().length))),
    )
    .option("--out <dir>", "output folder", "out/sweep")
    .option("--resume", "keep finished cells from an earlier run into the same --out")
    .option(
      "--shard <I/N>",
      "run only the I-th of N parts of the grid (the same split on every machine) and write shard.json for `framecost merge`",
    )
    .option(
      "--levers-measured <file>",
      "a levers.json from framecost levers: the report gains its cost-quality frontier plot",
    )
    .option("--convention <name>", "flops or macs", "flops")
    .option("--local-price <usd>", "price of an hour of this machine, USD")
    .option("--watts <w>", "power draw of this machine")
    .option("--kwh-price <usd>", "electricity price, USD per kWh")
    .option("--gpus <ids>", "catalog GPUs to price cells on", DEFAULT_SUMMARY_GPUS.join(","))
    .action(async (raw: Record<string, unknown>) => {
      const o = sweepOptionsFrom(raw);
      const leversFile = parseOptions(
        z.object({ leversMeasured: Options.shape.leversMeasured }),
        raw,
      ).leversMeasured;
      // read before the sweep runs: a bad file should not wait for minutes of cells
      const levers =
        leversFile === undefined
          ? null
          : parseLeversRecord(await readJsonFile(leversFile), `--levers-measured ${leversFile}`);
      // the workers load the weights too, after the sweep has started: a broken model folder fails now
      loadWeights(o.model);
      ensureWritableDir(o.out, "--out");
      const lock = lockDir(o.out, "sweep", "--out");
      const stop = catchStopSignals((signal) => {
        process.stderr.write(
          `\ninterrupted (${signal}): stopping the cells in flight within a step; finished cells are kept (rerun with --resume)\n`,
        );
      });
      const bar = process.stderr.isTTY
        ? new SingleBar({
            format: "sweep [{bar}] {value}/{total} NFEs | cells {cells} | eta {eta}s",
            stream: process.stderr,
          })
        : null;
      const part = o.shard ? ` of shard ${o.shard.index}/${o.shard.count}` : "";
      let cells = "";
      // a sweep that fails (a worker's error, a bad model) must not leave its lock behind
      let res: Awaited<ReturnType<typeof runSweep>>;
      try {
        res = await runSweep(
          {
            ...o,
            onStart: (s) => {
              cells = `${s.kept}/${s.todo + s.kept}`;
              if (bar) bar.start(Math.max(1, s.totalNfe), 0, { cells });
              else
                process.stderr.write(
                  `sweep: ${s.todo} cells${part} to run (${s.kept} kept from before), ${s.totalNfe} NFEs, ${s.workers} workers\n`,
                );
            },
            onProgress: (done) => bar?.update(done, { cells }),
            onCell: (id, done, total) => {
              cells = `${done}/${total}`;
              if (!bar) process.stderr.write(`sweep: cell ${id} done (${cells})\n`);
            },
          },
          () => stop.signal !== null,
        );
      } catch (err) {
        lock.release();
        throw err;
      } finally {
        bar?.stop();
        stop.dispose();
      }
      let written: Awaited<ReturnType<typeof writeSweepResult>>;
      try {
        written = await writeSweepResult(o, res, levers);
      } finally {
        lock.release();
      }
      const rows = res.sweep.cells.map((c) => {
        const q = c.quality ? `swd ${c.quality.swdPixels.toFixed(3)}` : "no quality";
        return `  ${c.sampler.padEnd(9)} ${String(c.steps).padStart(4)} steps ${String(c.nfePerFrame).padStart(4)} NFE/frame ${c.wallMsPerFrame.toFixed(1).padStart(9)} ms/frame  ${q}`;
      });
      const next = o.shard ? "; merge the shards' folders with `framecost merge DIR...`" : "";
      process.stdout.write(
        `${rows.join("\n")}${rows.length > 0 ? "\n" : ""}sweep: ${res.sweep.cells.length} cells${part} in ${(res.wallMs / 1000).toFixed(1)} s; wrote ${written.files.join(", ")}${next}\n`,
      );
      if (res.interrupted) {
        process.stderr.write(
          "framecost: sweep interrupted; finished cells are in cells/, rerun with --resume\n",
        );
        process.exitCode = stop.exitCode();
      }
    });
}
