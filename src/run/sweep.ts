/**
 * A sweep: the grid of samplers x steps with one model, every cell metered
 * and scored against held-out clips, cells run in parallel on worker threads
 * (one backend each). Every cell's RunRecord is written as it finishes (so an
 * interrupted sweep keeps them and `resume` skips them).
 *
 * With `shard: { index, count }` only the cells of shard I of N run. Every
 * shard computes the same split from the grid alone (no coordination, any
 * shard can rerun by itself), and writes a shard record that
 * `framecost merge` (run/merge.ts) combines with the others.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import type { Worker } from "node:worker_threads";
import { summarizeRunCost } from "../cost/index.ts";
import type { LeversRecord } from "../cost/measured.ts";
import { makeSampler } from "../diffusion/samplers/index.ts";
import { makeSchedule } from "../diffusion/schedule.ts";
import { doctorData } from "../media/machine.ts";
import { type RunRecord, validateRunRecord } from "../meter/record.ts";
import { loadWeights } from "../model/io.ts";
import { writeSweepOutputs } from "../report/html.ts";
import { writeShardRecord } from "../report/shard.ts";
import {
  buildSweepRecord,
  cellFigures,
  type GridIdentity,
  type Machine,
  type ModelIdentity,
  type SweepCell,
  type SweepRecord,
} from "../report/sweep.ts";
import { UserError } from "../util/errors.ts";
import { framecostVersion } from "../util/version.ts";
import { startTsWorker } from "../util/workers.ts";
import { checkGenerationOptions } from "./generation.ts";
import type { CellReply, CellRequest } from "./sweep-worker.ts";

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
  /** run only shard `index` (1-based) of `count` */
  shard?: Shard;
  /** write plots and report.html (benchmarks turn it off) */
  report: boolean;
  /** NFEs done so far out of the grid's total (what a progress bar shows) */
  onProgress?: (doneNfe: number, totalNfe: number) => void;
  /** before the workers start: cells to run, cells kept from an earlier run, NFEs to do */
  onStart?: (s: { todo: number; kept: number; totalNfe: number; workers: number }) => void;
  /** a cell finished; `done` of `total` cells of this run (shard) are finished */
  onCell?: (id: string, done: number, total: number) => void;
}

export interface Shard {
  index: number;
  count: number;
}

/** What `framecost sweep` runs when no flag says otherwise (the bench measures scaling on this grid too). */
export const SWEEP_DEFAULTS = {
  steps: [1, 2, 4, 8, 16, 32, 50],
  samplers: ["ddim", "euler", "heun", "dpmpp-2m"],
  frames: 4,
  clips: 4,
  referenceClips: 32,
} as const;

export interface CellSpec {
  /** "ddim-8": the cell's identity within a grid, and its file name */
  id: string;
  sampler: string;
  steps: number;
  /** network evaluations per frame (what the shard split balances) */
  nfe: number;
}

/** The grid's cells in grid order (samplers, then steps, as given). */
export function gridCells(samplers: readonly string[], steps: readonly number[]): CellSpec[] {
  const schedule = makeSchedule("cosine");
  return samplers.flatMap((sampler) =>
    steps.map((n) => ({
      id: `${sampler}-${n}`,
      sampler,
      steps: n,
      nfe: makeSampler(sampler, schedule).nfeFor(n),
    })),
  );
}

/**
 * Shard (1..count) of every cell: longest-processing-time first, each cell
 * (most NFEs first, ties in grid order) to the shard with the fewest NFEs so
 * far (ties to the lowest index). A function of the grid and `count` only, so
 * every shard computes the same split; the shards' NFEs differ by at most
 * the largest cell's.
 */
export function assignShards(cells: readonly CellSpec[], count: number): Map<string, number> {
  const load = new Array<number>(count).fill(0);
  const out = new Map<string, number>();
  // Array.prototype.sort is stable: equal NFEs keep grid order
  for (const c of [...cells].sort((a, b) => b.nfe - a.nfe)) {
    let best = 0;
    for (let i = 1; i < count; i++) if (load[i] < load[best]) best = i;
    out.set(c.id, best + 1);
    load[best] += c.nfe;
  }
  return out;
}

export function gridIdentity(o: SweepOptions): GridIdentity {
  return {
    samplers: [...o.samplers],
    steps: [...o.steps],
    frames: o.frames,
    clips: o.clips,
    referenceClips: o.referenceClips,
    seed: o.seed,
    fps: o.fps,
    convention: o.convention,
    gpus: [...o.gpus],
  };
}

/**
 * The weights in a model folder, wherever the folder sits: model.json holds
 * the weights' sha256 (loadWeights checks the file against it), the config
 * and the guidance; the guide's model.json holds the guide's.
 */
export function modelIdentity(dir: string): ModelIdentity {
  const main = loadWeights(dir);
  const hash = createHash("sha256").update(readFileSync(join(dir, "model.json")));
  let guideWeightsSha256: string | null = null;
  if (main.manifest.guidance) {
    const guideDir = join(dir, main.manifest.guidance.guide);
    guideWeightsSha256 = loadWeights(guideDir).manifest.sha256;
    hash.update(readFileSync(join(guideDir, "model.json")));
  }
  return {
    name: main.config.name,
    sha256: hash.digest("hex"),
    weightsSha256: main.manifest.sha256,
    guideWeightsSha256,
  };
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
  /** the cells this run (shard) finished, as a sweep record */
  sweep: SweepRecord;
  /** every cell of the grid with its shard (all 1 when not sharded) */
  plan: Array<CellSpec & { shard: number }>;
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
  const shard = o.shard ?? { index: 1, count: 1 };
  if (!(Number.isInteger(shard.index) && shard.index >= 1 && shard.index <= shard.count))
    throw new UserError(`--shard must be I/N with 1 <= I <= N, got ${shard.index}/${shard.count}`);
  const all = gridCells(o.samplers, o.steps);
  const ids = new Set<string>();
  for (const c of all) {
    if (ids.has(c.id))
      throw new UserError(`the grid names cell ${c.id} twice; list each sampler and step count once`);
    ids.add(c.id);
  }
  const assigned = assignShards(all, shard.count);
  const plan = all.map((c) => ({ ...c, shard: assigned.get(c.id)! }));
  const specs = plan.filter((c) => c.shard === shard.index);
  mkdirSync(join(o.out, "cells"), { recursive: true });

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
  const nWorkers = Math.max(1, Math.min(o.workers, todo.length));
  o.onStart?.({ todo: todo.length, kept: specs.length - todo.length, totalNfe, workers: nWorkers });

  const t0 = performance.now();
  const workers: Worker[] = [];
  let interrupted = false;
  let startupMs = 0;
  let failure: Error | null = null;
  try {
    // start every worker at once: each spends seconds loading tsx and tfjs
    const started = (todo.length > 0 ? Array.from({ length: nWorkers }) : []).map(() => {
      const w = startTsWorker(new URL("./sweep-worker.ts", import.meta.url), null);
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
        // the worker wrote the cell's file before replying: it is finished (what resume reads)
        results.set(spec.id, { record: reply.record, quality: reply.quality });
        o.onCell?.(spec.id, results.size, specs.length);
      }
    };
    await Promise.all(workers.map((w) => runOn(w)));
  } finally {
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
      ...cellFigures(r.record),
    });
  }
  const sweep = buildSweepRecord({
    grid: { steps: o.steps, samplers: o.samplers, frames: o.frames },
    cells,
    assumptions,
  });
  return { sweep, plan, wallMs, startupMs, interrupted };
}

/**
 * Writes what a finished (or interrupted) sweep leaves in `o.out`: unsharded,
 * sweep.json, sweep.csv, plots and report.html; a shard, its shard.json.
 * The machine is described once, here.
 */
export async function writeSweepResult(
  o: SweepOptions,
  res: SweepResult,
  /** `framecost levers`' record: the report gains its frontier plot */
  levers: LeversRecord | null = null,
): Promise<{ files: string[]; machine: Machine }> {
  // a shard's cells carry the peak of the backend they ran; calibrating every backend would add seconds to each shard
  const machine = (await doctorData({ calibrate: !o.shard })) as unknown as Machine;
  if (o.shard) {
    const path = await writeShardRecord(o.out, {
      kind: "sweep-shard",
      schemaVersion: 1,
      createdAt: new Date().toISOString(),
      framecost: framecostVersion(),
      identity: gridIdentity(o),
      model: modelIdentity(o.model),
      shard: o.shard,
      plan: res.plan.map((c) => ({ sampler: c.sampler, steps: c.steps, shard: c.shard })),
      complete:
        !res.interrupted &&
        res.sweep.cells.length === res.plan.filter((c) => c.shard === o.shard!.index).length,
      cells: res.sweep.cells,
      machine,
      assumptions: res.sweep.assumptions,
    });
    return { files: [path], machine };
  }
  const written = await writeSweepOutputs(o.out, { ...res.sweep, machine }, { machine, levers });
  return { files: [written.json, written.csv, written.html], machine };
}
