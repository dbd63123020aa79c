/**
 * `framecost distill`'s rounds: progressive distillation (diffusion/distill.ts) from a model folder's
 * guided DDIM sampler at `teacherSteps` down to `steps`, halving each round; the first round distils the
 * guidance away too. Each round trains with the training loop (diffusion/trainer.ts: both workers, its
 * own checkpoint folder it resumes from, its own time or step budget), starts the student from its
 * teacher, and writes the student as a model folder whose model.json says to sample it with ddim at its
 * steps and no guidance. A state file in the checkpoint folder lists finished rounds; a rerun of the same
 * command skips them and resumes the one in progress.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type DistillSpec, roundSteps } from "../diffusion/distill.ts";
import type { BatchOptions } from "../diffusion/train-batch.ts";
import { type TrainOptions, type TrainProgress, train } from "../diffusion/trainer.ts";
import {
  loadWeights,
  type SamplingDefaults,
  saveWeights,
  type WeightsDtype,
  writeAtomic,
} from "../model/io.ts";
import { UserError } from "../util/errors.ts";
import { checkGuide, resolveGuidance } from "./generation.ts";

export interface DistillOptions {
  teacherDir: string;
  /** the teacher's guided DDIM steps the first round distils (16: guided ddim 16 is about as clean as 32 here) */
  teacherSteps: number;
  /** the last round's student steps */
  steps: number;
  /** the first round's guidance weight over the teacher folder's default (0: distil the unguided teacher) */
  guidance?: number;
  /**
   * Guidance distillation alone (Meng et al. 2023, stage one): one round, no steps halved, the student
   * learns the guided prediction at every timestep and samples with `sampling` at one call per step.
   */
  guidanceOnly?: { sampling: SamplingDefaults };
  /** the students' folders: `{steps}` is replaced by a round's steps; without it only the last round goes there */
  out: string;
  checkpointDir: string;
  /** budget of each round */
  roundMinutes?: number;
  roundSteps?: number;
  batch: number;
  workers: number;
  lr: number;
  warmupSteps: number;
  emaDecay: number;
  seed: number;
  backend: string;
  batchOptions: BatchOptions;
  /** the students' weight files; bfloat16 halves them */
  dtype: WeightsDtype;
  command?: string;
  onRoundStart?: (r: {
    index: number;
    rounds: number;
    teacherSteps: number;
    steps: number;
    fromStep: number;
    backend: string;
  }) => void;
  onProgress?: (p: TrainProgress & { steps: number }) => void;
  onRoundEnd?: (r: RoundRecord) => void;
  shouldStop?: () => boolean;
}

/** A finished round, as the state file and the students' model.json record it. */
export interface RoundRecord {
  teacherSteps: number;
  steps: number;
  /** guidance distilled in this round (the teacher's), null when the teacher was unguided */
  guidance: { weight: number; fromT: number } | null;
  trainSteps: number;
  minutes: number;
  /** the student's float32 weights (the next round's teacher) */
  weightsDir: string;
  /** the shipped folder, or null where --out names only the last round */
  outDir: string | null;
}

interface DistillState {
  teacher: string;
  teacherSha256: string;
  teacherSteps: number;
  /** the first round's guidance weight (0: unguided); absent in state files written before it was an option */
  guidanceWeight?: number;
  rounds: RoundRecord[];
}

export function outDirFor(out: string, steps: number, last: boolean): string | null {
  if (out.includes("{steps}")) return out.replaceAll("{steps}", String(steps));
  return last ? out : null;
}

function sharedCopy(x: Float32Array): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(x.byteLength);
  new Float32Array(sab).set(x);
  return sab;
}

export async function distill(o: DistillOptions): Promise<{ rounds: RoundRecord[]; stopped: boolean }> {
  if (!o.roundMinutes && !o.roundSteps)
    throw new UserError("distill needs a budget per round: pass --round-minutes M or --round-steps N");
  // a guidance-only distillation is one round of "0 steps": every timestep, none halved
  const plan = o.guidanceOnly ? [0] : roundSteps(o.teacherSteps, o.steps);
  const teacherSteps0 = o.guidanceOnly ? 0 : o.teacherSteps;
  const base = loadWeights(o.teacherDir);
  const cfg = base.config;
  if (cfg.prediction !== "v")
    throw new UserError(
      `${o.teacherDir} predicts ${cfg.prediction}; distillation here needs a v-prediction model`,
    );
  if (cfg.selfCond)
    throw new UserError(`${o.teacherDir} is self-conditioned; distill does not support that yet`);
  const guidance = resolveGuidance(
    o.teacherDir,
    base.manifest.guidance,
    o.guidance === undefined ? undefined : { weight: o.guidance },
  );
  if (guidance && guidance.frames !== "all")
    throw new UserError(
      `${o.teacherDir} guides first frames only; distill distils guidance on every frame (guide it with --guide-frames all)`,
    );
  if (o.guidanceOnly && !guidance)
    throw new UserError(
      `--guidance-only distils a guided teacher, and ${o.teacherDir} is unguided here; give it a guide (framecost guide) or a --guidance weight > 0`,
    );
  const guide = guidance ? loadWeights(guidance.guideDir) : null;
  if (guidance && guide) checkGuide(cfg, guide.config, guidance.guideDir);

  mkdirSync(o.checkpointDir, { recursive: true });
  const statePath = join(o.checkpointDir, "distill.json");
  let state: DistillState = {
    teacher: resolve(o.teacherDir),
    teacherSha256: base.manifest.sha256,
    teacherSteps: teacherSteps0,
    guidanceWeight: guidance?.weight ?? 0,
    rounds: [],
  };
  if (existsSync(statePath)) {
    const saved = JSON.parse(readFileSync(statePath, "utf8")) as DistillState;
    const savedWeight = saved.guidanceWeight ?? guidance?.weight ?? 0;
    if (
      saved.teacherSha256 !== state.teacherSha256 ||
      saved.teacherSteps !== teacherSteps0 ||
      savedWeight !== state.guidanceWeight
    )
      throw new UserError(
        `${o.checkpointDir} holds a distillation of ${saved.teacher} from ${saved.teacherSteps} steps at guidance ${savedWeight}, not of ${resolve(o.teacherDir)} from ${teacherSteps0} at guidance ${state.guidanceWeight}; use another --checkpoint-dir or remove it`,
      );
    state = saved;
  }

  let teacher = base.flat;
  let teacherSteps = teacherSteps0;
  let stopped = false;
  for (let i = 0; i < plan.length; i++) {
    const steps = plan[i];
    const first = i === 0;
    const done = state.rounds.find((r) => r.steps === steps);
    const roundDir = join(o.checkpointDir, steps === 0 ? "round-guided" : `round-${steps}step`);
    const weightsDir = join(roundDir, "student");
    if (done) {
      teacher = loadWeights(done.weightsDir).flat;
      teacherSteps = steps;
      continue;
    }
    const roundGuidance = first && guidance ? { weight: guidance.weight, fromT: guidance.fromT } : null;
    const spec: DistillSpec = {
      teacher: sharedCopy(teacher),
      guide: first && guide ? sharedCopy(guide.flat) : null,
      guidance: roundGuidance,
      studentSteps: steps,
    };
    const distillation = {
      teacher: o.teacherDir,
      teacherSampler: `${steps === 0 ? "every timestep" : `ddim ${teacherSteps} steps`}${roundGuidance ? `, guided (weight ${roundGuidance.weight} at t >= ${roundGuidance.fromT})` : ""}`,
      studentSteps: steps,
      method:
        steps === 0
          ? "guidance distillation (Meng et al. 2023, stage one) on v: the guided prediction at every timestep"
          : "progressive distillation (Salimans & Ho 2022) on v" +
            (roundGuidance ? ", guidance distilled (Meng et al. 2023)" : ""),
      earlierRounds: state.rounds,
    };
    const trainOpts: TrainOptions = {
      config: cfg,
      outDir: weightsDir,
      checkpointDir: roundDir,
      minutes: o.roundMinutes,
      steps: o.roundSteps,
      batch: o.batch,
      workers: o.workers,
      lr: o.lr,
      warmupSteps: o.warmupSteps,
      minLrFraction: 0.05,
      emaDecay: o.emaDecay,
      gradClip: 1,
      seed: o.seed + steps,
      backend: o.backend,
      checkpointEverySec: 60,
      snapshotMinutes: [],
      batchOptions: o.batchOptions,
      command: o.command,
      init: teacher,
      distill: spec,
      metadata: { distillation },
      onStart: (info) =>
        o.onRoundStart?.({
          index: i,
          rounds: plan.length,
          teacherSteps,
          steps,
          fromStep: info.step,
          backend: info.backend,
        }),
      onProgress: (p) => o.onProgress?.({ ...p, steps }),
      shouldStop: o.shouldStop,
    };
    const result = await train(trainOpts);
    if (o.shouldStop?.()) {
      stopped = true;
      break;
    }
    const student = loadWeights(weightsDir);
    const outDir = o.guidanceOnly ? o.out : outDirFor(o.out, steps, i === plan.length - 1);
    const record: RoundRecord = {
      teacherSteps,
      steps,
      guidance: roundGuidance,
      trainSteps: result.steps,
      minutes: Math.round(result.elapsedMs / 600) / 100,
      weightsDir,
      outDir,
    };
    if (outDir) {
      saveWeights(
        outDir,
        cfg,
        student.flat,
        {
          ...student.manifest.training,
          distillation: { ...distillation, minutes: record.minutes, trainSteps: record.trainSteps },
        },
        { dtype: o.dtype, sampling: o.guidanceOnly?.sampling ?? { sampler: "ddim", steps } },
      );
      copyFileSync(join(weightsDir, "training-log.json"), join(outDir, "training-log.json"));
    }
    state.rounds.push(record);
    writeAtomic(statePath, `${JSON.stringify(state, null, 2)}\n`);
    o.onRoundEnd?.(record);
    teacher = student.flat;
    teacherSteps = steps;
  }
  return { rounds: state.rounds, stopped };
}
