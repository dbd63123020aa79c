/**
 * `framecost sweep`: the grid of samplers x steps with the shipped model,
 * every cell metered and scored against held-out clips, cells run in
 * parallel on worker threads (one backend each). Writes every cell's
 * RunRecord as it finishes (so an interrupted sweep keeps them and `--resume`
 * skips them), then sweep.json, sweep.csv, plots and report.html.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import type { Worker } from "node:worker_threads";
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { z } from "zod";
import { DEFAULT_SUMMARY_GPUS, summarizeRunCost } from "../cost/index.ts";
import { makeSampler, samplerNames } from "../diffusion/samplers/index.ts";
import { makeSchedule } from "../diffusion/schedule.ts";
import { ensureWritableDir, lockDir } from "../media/files.ts";
import { doctorData } from "../media/machine.ts";
import { type RunRecord, validateRunRecord } from "../meter/record.ts";
import { writeSweepOutputs } from "../report/html.ts";
import { buildSweepRecord, type SweepCell, type SweepRecord } from "../report/sweep.ts";
import { checkGenerationOptions } from "../run/generation.ts";
import type { CellReply, CellRequest } from "../run/sweep-worker.ts";
import { UserError } from "../util/errors.ts";
import { catchStopSignals } from "../util/signals.ts";
import { startTsWorker } from "../util/workers.ts";
import { choiceOpt, intOpt, listOpt, numberOpt, parseOptions, stringOpt } from "./options.ts";

export interface SweepOptions {
  steps: number[];
  samplers: string[];
  frames: number;
  clips: number;
  referenceClips: number;
  seed: number;
  fps: number;
  model: string;
  backend: string;
  threads?: number;
  workers: number;
  out: string;
  resume: boolean;
  convention: "flops" | "macs";
  localPrice?: number;
  watts?: number;
  kwhPrice?: number;
  gpus: string[];
  /** write plots and report.html (benchmarks turn it off) */
  report: boolean;
  quiet?: boolean;
  /** NFEs done so far out of the grid's total (what the progress bar shows) */
  onProgress?: (doneNfe: number, totalNfe: number) => void;
}

/** What `framecost sweep` runs when no flag says otherwise (the bench measures scaling on this grid too). */
export const SWEEP_DEFAULTS = {
  steps: [1, 2, 4, 8, 16, 32, 50],
  samplers: ["ddim", "euler", "heun", "dpmpp-2m"],
  frames: 4,
  clips: 4,
  referenceClips: 32,
} as const;

interface CellSpec {
  id: string;
  sampler: string;
  steps: number;
  nfe: number;
}

function cellFile(out: string, id: string): string {
  return join(out, "cells", `${id}.json`);
}

/** A finished cell's record from an earlier run, or null. */
function previousCell(out: string, id: string, o: SweepOptions): RunRecord | null {
  const path = cellFile(out, id);
  if (!existsSync(path)) return null;
  const rec = validateRunRecord(JSON.parse(readFileSync(path, "utf8")), path) as RunRecord & {
    sweepCell?: { frames: number; clips: number; seed: number; model: string };
  };
  const same =
    rec.sweepCell &&
    rec.sweepCell.frames === o.frames &&
    rec.sweepCell.clips === o.clips &&
    rec.sweepCell.seed === o.seed &&
    rec.sweepCell.model === o.model;
  return rec.complete && same ? rec : null;
}

export interface SweepResult {
  sweep: SweepRecord;
  /** wall ms from start to the last cell, worker start-up included */
  wallMs: number;
  /** of which starting the workers (loading tsx and the tensor library) */
  startupMs: number;
  interrupted: boolean;
}

export async function runSweep(
  o: SweepOptions,
  shouldStop: () => boolean = () => false,
): Promise<SweepResult> {
  for (const s of o.samplers) checkGenerationOptions({ sampler: s, steps: 1, frames: o.frames });
  for (const n of o.steps) checkGenerationOptions({ sampler: o.samplers[0], steps: n, frames: o.frames });
  mkdirSync(join(o.out, "cells"), { recursive: true });
  const schedule = makeSchedule("cosine");
  const specs: CellSpec[] = [];
  for (const sampler of o.samplers)
    for (const steps of o.steps)
      specs.push({
        id: `${sampler}-${steps}`,
        sampler,
        steps,
        nfe: makeSampler(sampler, schedule).nfeFor(steps),
      });

  const results = new Map<string, { record: RunRecord; quality: Record<string, number> | null }>();
  if (o.resume) {
    for (const s of specs) {
      const rec = previousCell(o.out, s.id, o);
      if (rec)
        results.set(s.id, {
          record: rec,
          quality: (rec as { quality?: Record<string, number> }).quality ?? null,
        });
    }
  }
  const todo = specs.filter((s) => !results.has(s.id)).sort((a, b) => b.nfe - a.nfe); // longest first balances workers
  const totalNfe = todo.reduce((a, s) => a + s.nfe * o.frames * o.clips, 0);
  const bar =
    !o.quiet && process.stderr.isTTY
      ? new SingleBar({
          format: "sweep [{bar}] {value}/{total} NFEs | cells {cells} | eta {eta}s",
          stream: process.stderr,
        })
      : null;
  bar?.start(Math.max(1, totalNfe), 0, { cells: `${results.size}/${specs.length}` });
  if (!o.quiet && !bar)
    process.stderr.write(
      `sweep: ${todo.length} cells to run (${specs.length - todo.length} kept from before), ${totalNfe} NFEs, ${o.workers} workers\n`,
    );

  const t0 = performance.now();
  const workers: Worker[] = [];
  let interrupted = false;
  let startupMs = 0;
  let failure: Error | null = null;
  try {
    const nWorkers = Math.max(1, Math.min(o.workers, todo.length));
    // start every worker at once: each spends seconds loading tsx and tfjs
    const started = Array.from({ length: nWorkers }, () => {
      const w = startTsWorker(new URL("../run/sweep-worker.ts", import.meta.url), null);
      workers.push(w);
      return new Promise<void>((resolve, reject) => {
        w.once("message", () => resolve());
        w.once("error", reject);
      });
    });
    await Promise.all(started);
    startupMs = performance.now() - t0;
    let next = 0;
    let doneNfe = 0;
    const runOn = async (w: Worker): Promise<void> => {
      while (next < todo.length && !failure) {
        if (shouldStop()) {
          interrupted = true;
          return;
        }
        const spec = todo[next++];
        const req: CellRequest = {
          id: spec.id,
          file: cellFile(o.out, spec.id),
          sweepCell: { frames: o.frames, clips: o.clips, seed: o.seed, model: o.model },
          referenceClips: Math.max(o.clips, o.referenceClips),
          options: {
            modelDir: o.model,
            sampler: spec.sampler,
            steps: spec.steps,
            frames: o.frames,
            clips: o.clips,
            fps: o.fps,
            seed: o.seed,
            backend: o.backend,
            // cores are shared between workers: onnx's default of every core per worker would oversubscribe
            threads: o.threads ?? Math.max(1, Math.floor(cpus().length / o.workers)),
            convention: o.convention,
          },
        };
        const reply = await new Promise<CellReply & { kind: "done" | "error" }>((resolve, reject) => {
          const onMsg = (m: CellReply) => {
            if (m.kind === "progress") {
              doneNfe += m.nfe;
              bar?.update(doneNfe, { cells: `${results.size}/${specs.length}` });
              o.onProgress?.(doneNfe, totalNfe);
              if (shouldStop()) w.postMessage({ stop: true });
              return;
            }
            w.off("message", onMsg);
            w.off("error", reject);
            resolve(m);
          };
          w.on("message", onMsg);
          w.once("error", reject);
          w.postMessage(req);
        });
        if (reply.kind === "error") {
          failure =
            reply.exitCode === 2
              ? new UserError(reply.message)
              : new Error(`cell ${spec.id}: ${reply.message}`);
          return;
        }
        if (!reply.record.complete) {
          interrupted = true;
          return;
        }
        // the worker wrote the cell's file before replying: it is finished (what --resume reads)
        results.set(spec.id, { record: reply.record, quality: reply.quality });
        if (!o.quiet && !bar)
          process.stderr.write(`sweep: cell ${spec.id} done (${results.size}/${specs.length})\n`);
      }
    };
    await Promise.all(workers.map((w) => runOn(w)));
  } finally {
    bar?.stop();
    await Promise.all(workers.map((w) => w.terminate()));
  }
  if (failure) throw failure;
  const wallMs = performance.now() - t0;

  const cells: SweepCell[] = [];
  let assumptions: unknown = null;
  for (const s of specs) {
    const r = results.get(s.id);
    if (!r) continue;
    const cost = summarizeRunCost(r.record, {
      localUsdPerHour: o.localPrice,
      watts: o.watts,
      kwhPriceUsd: o.kwhPrice,
      gpus: o.gpus,
    });
    assumptions = cost.costSection.assumptions;
    const frames = r.record.totals.frames;
    cells.push({
      sampler: s.sampler,
      steps: s.steps,
      // measured mean: guidance of first frames only adds calls to some frames
      nfePerFrame: frames > 0 ? r.record.totals.nfe / frames : r.record.sampler.nfePerFrame,
      record: `cells/${s.id}.json`,
      quality: r.quality as SweepCell["quality"],
      wallMsPerFrame: frames > 0 ? r.record.totals.wallMs / frames : 0,
      usdPerVideoMinute: cost.costSection.usdPerVideoMinute,
    });
  }
  const sweep = buildSweepRecord({
    grid: { steps: o.steps, samplers: o.samplers, frames: o.frames },
    cells,
    assumptions,
  });
  return { sweep, wallMs, startupMs, interrupted };
}

const Options = z.object({
  steps: listOpt(intOpt({ min: 1, max: 1000 })),
  samplers: listOpt(z.string()),
  frames: intOpt({ min: 1, max: 1000 }),
  clips: intOpt({ min: 1, max: 100 }),
  referenceClips: intOpt({ min: 1, max: 1000 }),
  seed: intOpt({ min: 0 }),
  fps: intOpt({ min: 1, max: 240 }),
  model: stringOpt(),
  backend: stringOpt(),
  threads: intOpt({ min: 1, max: 256 }).optional(),
  workers: intOpt({ min: 1, max: 64 }),
  out: stringOpt(),
  resume: z.boolean().default(false),
  convention: choiceOpt(["flops", "macs"]),
  localPrice: numberOpt({ min: 0 }).optional(),
  watts: numberOpt({ gt: 0 }).optional(),
  kwhPrice: numberOpt({ min: 0 }).optional(),
  gpus: listOpt(z.string()).optional(),
});

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
    .option("--convention <name>", "flops or macs", "flops")
    .option("--local-price <usd>", "price of an hour of this machine, USD")
    .option("--watts <w>", "power draw of this machine")
    .option("--kwh-price <usd>", "electricity price, USD per kWh")
    .option("--gpus <ids>", "catalog GPUs to price cells on", DEFAULT_SUMMARY_GPUS.join(","))
    .action(async (raw: Record<string, unknown>) => {
      const p = parseOptions(Options, raw);
      const o: SweepOptions = { ...p, gpus: p.gpus ?? [...DEFAULT_SUMMARY_GPUS], report: true };
      ensureWritableDir(o.out, "--out");
      const lock = lockDir(o.out, "sweep", "--out");
      const stop = catchStopSignals((signal) => {
        process.stderr.write(
          `\ninterrupted (${signal}): stopping the cells in flight within a step; finished cells are kept (rerun with --resume)\n`,
        );
      });
      let res: SweepResult;
      let written: Awaited<ReturnType<typeof writeSweepOutputs>>;
      try {
        res = await runSweep(o, () => stop.signal !== null);
        const machine = await doctorData({ calibrate: true });
        written = await writeSweepOutputs(
          o.out,
          { ...res.sweep, machine: machine as unknown as SweepRecord["machine"] },
          { machine },
        );
      } finally {
        stop.dispose();
        lock.release();
      }
      const rows = res.sweep.cells.map((c) => {
        const q = c.quality ? `swd ${c.quality.swdPixels.toFixed(3)}` : "no quality";
        return `  ${c.sampler.padEnd(9)} ${String(c.steps).padStart(4)} steps ${String(c.nfePerFrame).padStart(4)} NFE/frame ${c.wallMsPerFrame.toFixed(1).padStart(9)} ms/frame  ${q}`;
      });
      process.stdout.write(
        `${rows.join("\n")}\nsweep: ${res.sweep.cells.length} cells in ${(res.wallMs / 1000).toFixed(1)} s; wrote ${written.json}, ${written.csv}, ${written.html}\n`,
      );
      if (res.interrupted) {
        process.stderr.write(
          "framecost: sweep interrupted; finished cells are in cells/, rerun with --resume\n",
        );
        process.exitCode = stop.exitCode();
      }
    });
}
