/**
 * The training loop: data-parallel gradient workers (one engine per worker
 * thread: a single-threaded onnxruntime session or a tfjs backend; parameters
 * shared through a SharedArrayBuffer), AdamW and
 * EMA on the main thread in plain JS, warm-up then cosine learning-rate decay
 * over the step or time budget, checkpoints it can resume from.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import type { Worker } from "node:worker_threads";
import { HELD_OUT_SEED_BASE } from "../data/clips.ts";
import { defaultBackends, type ModuleLoader } from "../engine/backend.ts";
import { probeOnnx, requireOnnx } from "../engine/onnx.ts";
import type { ModelConfig } from "../model/config.ts";
import { saveWeights, writeAtomic } from "../model/io.ts";
import { initParams, paramCount } from "../model/params.ts";
import { RuntimeFailure, UserError } from "../util/errors.ts";
import { mixSeed } from "../util/rng.ts";
import { startTsWorker } from "../util/workers.ts";
import type { DistillSpec } from "./distill.ts";
import { type BatchOptions, DEFAULT_BATCH_OPTIONS } from "./train-batch.ts";

export interface TrainOptions {
  config: ModelConfig;
  /** where the final (EMA) weights go */
  outDir: string;
  /** where checkpoints go (resumed from when present) */
  checkpointDir: string;
  /** wall-clock budget in minutes (counting earlier sessions when resuming) */
  minutes?: number;
  /** step budget */
  steps?: number;
  /** total batch per step, split across workers */
  batch: number;
  workers: number;
  lr: number;
  warmupSteps: number;
  /** final learning rate as a fraction of lr */
  minLrFraction: number;
  emaDecay: number;
  gradClip: number;
  seed: number;
  /** the workers' engine: "onnx" (onnxruntime's native kernels), a tfjs backend name, or "auto" */
  backend: string;
  checkpointEverySec: number;
  /** save EMA snapshots when elapsed training time passes these minutes (for the quality-vs-time table) */
  snapshotMinutes: number[];
  batchOptions: BatchOptions;
  /** the command line that started it, recorded in the weights' metadata */
  command?: string;
  /** starting weights (distillation: the teacher's) instead of a fresh init */
  init?: Float32Array;
  /** progressive distillation: the workers' targets come from this teacher (distill.ts) */
  distill?: DistillSpec;
  /** more to record in the weights' training metadata */
  metadata?: Record<string, unknown>;
  /** called once the workers are up, with the engine "auto" resolved to */
  onStart?: (info: { backend: string; workers: number; step: number }) => void;
  onProgress?: (p: TrainProgress) => void;
  shouldStop?: () => boolean;
}

export interface TrainProgress {
  step: number;
  totalSteps?: number;
  elapsedMs: number;
  budgetMs?: number;
  loss: number;
  lossEma: number;
  lr: number;
  stepsPerSec: number;
}

export interface HistoryPoint {
  step: number;
  elapsedMs: number;
  loss: number;
}

/** One run of the train command on a checkpoint: a resumed run may change the recipe, and the weights say so. */
export interface TrainSession {
  command?: string;
  fromStep: number;
  toStep: number;
  fromMinutes: number;
  toMinutes: number;
  lossWeighting: string;
  /** the workers' engine (absent in runs from before the onnx engine: tfjs-wasm) */
  backend?: string;
}

interface CheckpointState {
  step: number;
  sessions?: TrainSession[];
  elapsedMs: number;
  history: HistoryPoint[];
  snapshotsDone: number[];
  config: ModelConfig;
  seed: number;
  /** a distillation round's student steps (absent for pretraining) */
  distillSteps?: number;
}

export const DEFAULT_TRAIN: Omit<TrainOptions, "config" | "outDir" | "checkpointDir"> = {
  batch: 64,
  workers: Math.max(1, Math.min(2, cpus().length)),
  lr: 1e-3,
  warmupSteps: 200,
  minLrFraction: 0.05,
  emaDecay: 0.999,
  gradClip: 1,
  seed: 0,
  backend: "auto",
  checkpointEverySec: 120,
  snapshotMinutes: [10, 30, 60, 120, 150],
  batchOptions: DEFAULT_BATCH_OPTIONS,
};

function minutesOf(ms: number): number {
  return Math.round(ms / 600) / 100;
}

function lossWeightingName(gamma: number, floor: number, prediction: string): string {
  if (gamma <= 0) return `uniform (${prediction === "v" ? "v" : "noise"}-prediction MSE)`;
  return floor > 0 ? `min-SNR-${gamma}, SNR floor ${floor}` : `min-SNR-${gamma}`;
}

function startWorker(
  opts: TrainOptions,
  backend: string,
  params: SharedArrayBuffer,
  grads: SharedArrayBuffer,
): Promise<Worker> {
  const w = startTsWorker(new URL("./train-worker.ts", import.meta.url), {
    cfg: opts.config,
    backend,
    params,
    grads,
    batchOptions: opts.batchOptions,
    seedLimit: HELD_OUT_SEED_BASE,
    distill: opts.distill,
  });
  return new Promise((resolve, reject) => {
    w.once("message", () => resolve(w));
    w.once("error", reject);
  });
}

function request(w: Worker, seed: number, batch: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onErr = (e: Error) => reject(e);
    w.once("error", onErr);
    w.once("message", (m: { loss?: number; error?: string }) => {
      w.off("error", onErr);
      if (m.error !== undefined) reject(new RuntimeFailure(`training worker failed: ${m.error}`));
      else resolve(m.loss as number);
    });
    w.postMessage({ seed, batch });
  });
}

/**
 * The engine the gradient workers use. "auto" takes onnxruntime where it is
 * installed (its GEMMs are ~4x tfjs-wasm's here, FACTS.md), else tfjs-wasm.
 */
export async function resolveTrainBackend(name: string, load?: ModuleLoader): Promise<string> {
  const tfBackends = defaultBackends(load);
  const known = ["auto", "onnx", ...tfBackends.map((b) => b.name)];
  if (!known.includes(name))
    throw new UserError(`--backend must be one of ${known.join(", ")}, got "${name}"`);
  const tfBackend = tfBackends.find((b) => b.name === name);
  if (tfBackend) {
    const p = await tfBackend.probe();
    if (!p.available)
      throw new UserError(
        `--backend ${name} is not available: ${p.reason}; to get it: ${tfBackend.howToGet}`,
      );
    return name;
  }
  if (name === "onnx") {
    await requireOnnx(load);
    return "onnx";
  }
  return (await probeOnnx(load)).available ? "onnx" : "wasm";
}

export async function train(
  opts: TrainOptions,
): Promise<{ steps: number; elapsedMs: number; history: HistoryPoint[] }> {
  if (!opts.minutes && !opts.steps)
    throw new UserError("train needs a budget: pass --minutes M or --steps N");
  // before anything is written: a bad --backend leaves no checkpoint folder behind
  const backend = await resolveTrainBackend(opts.backend);
  const cfg = opts.config;
  const n = paramCount(cfg);
  const paramsSab = new SharedArrayBuffer(n * 4);
  const params = new Float32Array(paramsSab);
  const m = new Float32Array(n);
  const v = new Float32Array(n);
  const ema = new Float32Array(n);
  let state: CheckpointState = {
    step: 0,
    elapsedMs: 0,
    history: [],
    snapshotsDone: [],
    config: cfg,
    seed: opts.seed,
    distillSteps: opts.distill?.studentSteps,
  };

  mkdirSync(opts.checkpointDir, { recursive: true });
  const ckptBin = join(opts.checkpointDir, "checkpoint.bin");
  const ckptJson = join(opts.checkpointDir, "checkpoint.json");
  if (existsSync(ckptBin) && existsSync(ckptJson)) {
    const saved = JSON.parse(readFileSync(ckptJson, "utf8")) as CheckpointState;
    if (JSON.stringify(saved.config) !== JSON.stringify(cfg)) {
      throw new UserError(
        `checkpoint in ${opts.checkpointDir} is for another model config ("${saved.config.name}"); use another --checkpoint-dir or remove it`,
      );
    }
    if (saved.distillSteps !== opts.distill?.studentSteps) {
      const what = (n?: number) =>
        n === undefined
          ? "pretraining"
          : n === 0
            ? "guidance distillation"
            : `a ${n}-step distillation round`;
      throw new UserError(
        `checkpoint in ${opts.checkpointDir} is for ${what(saved.distillSteps)}, not ${what(opts.distill?.studentSteps)}; use another --checkpoint-dir or remove it`,
      );
    }
    const buf = readFileSync(ckptBin);
    const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    if (all.length !== 4 * n)
      throw new UserError(
        `${ckptBin} is truncated (${all.length} values, expected ${4 * n}); remove it to start over`,
      );
    params.set(all.subarray(0, n));
    m.set(all.subarray(n, 2 * n));
    v.set(all.subarray(2 * n, 3 * n));
    ema.set(all.subarray(3 * n, 4 * n));
    state = saved;
  } else {
    if (opts.init && opts.init.length !== n)
      throw new Error(`train: ${opts.init.length} starting weights for ${n} parameters`);
    params.set(opts.init ?? initParams(cfg, opts.seed));
    ema.set(params);
  }

  const saveCheckpoint = () => {
    const all = new Float32Array(4 * n);
    all.set(params, 0);
    all.set(m, n);
    all.set(v, 2 * n);
    all.set(ema, 3 * n);
    writeAtomic(ckptBin, new Uint8Array(all.buffer));
    writeAtomic(ckptJson, JSON.stringify(state));
  };

  const workers = Math.max(1, opts.workers);
  const per = Math.floor(opts.batch / workers);
  if (per < 1) throw new UserError(`--batch ${opts.batch} is smaller than --workers ${workers}`);
  const gradSabs = Array.from({ length: workers }, () => new SharedArrayBuffer(n * 4));
  const grads = gradSabs.map((s) => new Float32Array(s));
  const pool = await Promise.all(gradSabs.map((g) => startWorker(opts, backend, paramsSab, g)));
  opts.onStart?.({ backend, workers, step: state.step });

  const budgetMs = opts.minutes ? opts.minutes * 60_000 : undefined;
  const b1 = 0.9;
  const b2 = 0.999;
  const eps = 1e-8;
  let lossEma = Number.NaN;
  const sessionStart = performance.now();
  const elapsedAtStart = state.elapsedMs;
  const stepAtStart = state.step;
  const weighting = lossWeightingName(
    opts.batchOptions.minSnrGamma,
    opts.batchOptions.snrFloor,
    cfg.prediction,
  );
  state.sessions ??= [];
  const session: TrainSession = {
    command: opts.command,
    fromStep: state.step,
    toStep: state.step,
    fromMinutes: minutesOf(state.elapsedMs),
    toMinutes: minutesOf(state.elapsedMs),
    lossWeighting: weighting,
    backend,
  };
  state.sessions.push(session);
  let lastCkpt = performance.now();
  let windowLoss = 0;
  let windowCount = 0;
  const g = new Float32Array(n);
  try {
    for (;;) {
      const elapsed = elapsedAtStart + (performance.now() - sessionStart);
      const frac = Math.max(opts.steps ? state.step / opts.steps : 0, budgetMs ? elapsed / budgetMs : 0);
      if (frac >= 1 || opts.shouldStop?.()) break;
      const losses = await Promise.all(
        pool.map((w, i) => request(w, mixSeed(opts.seed, state.step * workers + i), per)),
      );
      const loss = losses.reduce((a, b) => a + b, 0) / workers;
      // average the workers' gradients, then clip by global norm
      let norm2 = 0;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let w = 0; w < workers; w++) s += grads[w][i];
        s /= workers;
        g[i] = s;
        norm2 += s * s;
      }
      const clip = Math.min(1, opts.gradClip / (Math.sqrt(norm2) + 1e-12));
      const step = state.step + 1;
      const warm = Math.min(1, step / opts.warmupSteps);
      const lr =
        opts.lr *
        warm *
        (opts.minLrFraction + (1 - opts.minLrFraction) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, frac))));
      const c1 = 1 - b1 ** step;
      const c2 = 1 - b2 ** step;
      const decay = Math.min(opts.emaDecay, (1 + step) / (10 + step));
      for (let i = 0; i < n; i++) {
        const gi = g[i] * clip;
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        params[i] -= (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
        ema[i] = decay * ema[i] + (1 - decay) * params[i];
      }
      state.step = step;
      state.elapsedMs = elapsedAtStart + (performance.now() - sessionStart);
      session.toStep = step;
      session.toMinutes = minutesOf(state.elapsedMs);
      lossEma = Number.isNaN(lossEma) ? loss : 0.98 * lossEma + 0.02 * loss;
      windowLoss += loss;
      windowCount++;
      if (windowCount === 25) {
        state.history.push({ step, elapsedMs: Math.round(state.elapsedMs), loss: windowLoss / windowCount });
        windowLoss = 0;
        windowCount = 0;
      }
      for (const mins of opts.snapshotMinutes) {
        if (!state.snapshotsDone.includes(mins) && state.elapsedMs >= mins * 60_000) {
          state.snapshotsDone.push(mins);
          saveWeights(join(opts.checkpointDir, `snapshot-${mins}min`), cfg, ema, {
            snapshotMinutes: mins,
            step,
            elapsedMs: Math.round(state.elapsedMs),
          });
        }
      }
      const sessionMs = performance.now() - sessionStart;
      opts.onProgress?.({
        step,
        totalSteps: opts.steps,
        elapsedMs: state.elapsedMs,
        budgetMs,
        loss,
        lossEma,
        lr,
        stepsPerSec: (1000 * (step - stepAtStart)) / Math.max(1, sessionMs),
      });
      if (performance.now() - lastCkpt > opts.checkpointEverySec * 1000) {
        saveCheckpoint();
        lastCkpt = performance.now();
      }
    }
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  saveCheckpoint();
  saveWeights(opts.outDir, cfg, ema, {
    command: opts.command,
    steps: state.step,
    wallMinutes: minutesOf(state.elapsedMs),
    batch: opts.batch,
    workers,
    lr: opts.lr,
    warmupSteps: opts.warmupSteps,
    emaDecay: opts.emaDecay,
    seed: opts.seed,
    backend,
    schedule: "cosine",
    lossWeighting: weighting,
    batchOptions: opts.batchOptions,
    // every run of the command that made these weights, with its recipe (a resumed run may change it)
    sessions: state.sessions,
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    finishedAt: new Date().toISOString(),
    ...opts.metadata,
  });
  writeAtomic(
    join(opts.outDir, "training-log.json"),
    `${JSON.stringify({ steps: state.step, elapsedMs: Math.round(state.elapsedMs), history: state.history })}\n`,
  );
  return { steps: state.step, elapsedMs: state.elapsedMs, history: state.history };
}
