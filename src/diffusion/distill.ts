/**
 * Progressive distillation (Salimans & Ho 2022, "Progressive Distillation for Fast Sampling of
 * Diffusion Models", algorithm 2) on v-prediction, with guidance distillation folded into its first
 * round (Meng et al. 2023, "On Distillation of Guided Diffusion Models"): the teacher's step is the
 * guided one (network + guide, two calls where the guide acts), the student makes one call per step.
 *
 * A student with n DDIM steps learns, at each of its timesteps t (trailing spacing, t'' the next one),
 * the prediction whose single DDIM step from z_t lands where two teacher DDIM steps (t -> t' -> t'',
 * the teacher's 2n-step grid) land. With a = sqrt(abar), s = sqrt(1 - abar), DDIM on v is
 *   x0 = a z - s v,  eps = s z + a v,  z'' = a'' x0 + s'' eps,
 * so the x0 the student must predict is x~ = (z'' - (s''/s) z) / (a'' - (s''/s) a) and its v target
 * is v~ = (a z - x~) / s (a^2 + s^2 = 1). At the last step t'' is the clean end (a'' = 1, s'' = 0): x~ = z''.
 * The student trains on the same weighted MSE as pretraining, so the training graph's backward applies.
 *
 * Guidance distillation alone (Meng et al. 2023, stage one; `studentSteps` 0): no steps are halved; the
 * student learns, at every timestep, the guided teacher's prediction D + w (D - G) itself, so it samples
 * like the guided teacher with any sampler and steps, at one call per step instead of two.
 */
import { inputSlots, type ModelConfig, patchInputDim, patchOutputDim, tokensOf } from "../model/config.ts";
import { type NetworkInputs, timestepFeatures } from "../model/dit.ts";
import { UserError } from "../util/errors.ts";
import type { Rng } from "../util/rng.ts";
import { makeTimesteps } from "./timesteps.ts";
import type { TrainBatch } from "./train-batch.ts";

/** abar at t, with t = -1 the clean end (abar = 1), as the samplers take it. */
export function abarAt(alphasCumprod: ArrayLike<number>, t: number): number {
  return t < 0 ? 1 : alphasCumprod[t];
}

/** One deterministic DDIM step on v-prediction from abar `abar` to `abarNext`, element i of z and v. */
export function ddimStepV(z: number, v: number, abar: number, abarNext: number): number {
  const a = Math.sqrt(abar);
  const s = Math.sqrt(1 - abar);
  const x0 = a * z - s * v;
  const eps = s * z + a * v;
  return Math.sqrt(abarNext) * x0 + Math.sqrt(1 - abarNext) * eps;
}

/** The v a student must predict at z (abar) so that one DDIM step lands on z2 (abar2 > abar). */
export function distillTargetV(z: number, z2: number, abar: number, abar2: number): number {
  const a = Math.sqrt(abar);
  const s = Math.sqrt(1 - abar);
  const a2 = Math.sqrt(abar2);
  const r = Math.sqrt(1 - abar2) / s;
  const x = (z2 - r * z) / (a2 - r * a);
  return (a * z - x) / s;
}

/** One student step and the teacher's two steps it replaces: t -> mid -> next (next -1 = the clean end). */
export interface DistillStep {
  t: number;
  mid: number;
  next: number;
}

/**
 * The student's n steps over the teacher's 2n: the teacher's trailing grid at even positions, which is
 * the student's own trailing grid (the one `generate --steps n` visits; the tests check it for any T, n).
 */
export function distillSteps(T: number, studentSteps: number): DistillStep[] {
  const teacher = makeTimesteps("trailing", T, 2 * studentSteps);
  const student = makeTimesteps("trailing", T, studentSteps);
  const out: DistillStep[] = [];
  for (let j = 0; j < studentSteps; j++) {
    if (teacher[2 * j] !== student[j])
      throw new Error(
        `distillSteps: a ${studentSteps}-step student's timestep ${student[j]} is not the ${2 * studentSteps}-step teacher's ${teacher[2 * j]}`,
      );
    out.push({
      t: teacher[2 * j],
      mid: teacher[2 * j + 1],
      next: j + 1 < studentSteps ? teacher[2 * j + 2] : -1,
    });
  }
  return out;
}

/** The step counts of the rounds from a teacher at `from` steps down to `to`: from/2, from/4, ..., to. */
export function roundSteps(from: number, to: number): number[] {
  const bad = (n: number) => !Number.isInteger(n) || n < 1;
  if (bad(from) || bad(to) || to >= from || !Number.isInteger(Math.log2(from / to)))
    throw new UserError(
      `distillation halves the steps each round: --teacher-steps ${from} must be --steps ${to} times a power of two (e.g. --teacher-steps 16 --steps 4)`,
    );
  const out: number[] = [];
  for (let n = from / 2; n >= to; n /= 2) out.push(n);
  return out;
}

/** What a distillation worker needs besides the student's weights: the teacher, its guide, the grid. */
export interface DistillSpec {
  /** the teacher's weights (float32, shared with the workers) */
  teacher: SharedArrayBuffer;
  /** the guide's weights, round 1 only (a distilled student is unguided) */
  guide: SharedArrayBuffer | null;
  /** the teacher's guided prediction D + weight (D - G) where t >= fromT */
  guidance: { weight: number; fromT: number } | null;
  /** the student's steps; 0 = guidance distillation alone (every timestep, `setGuidedTarget`) */
  studentSteps: number;
}

/** The teacher's prediction [T*B, p*p*C] for a batch of inputs whose sample b is at timestep t[b]. */
export type TeacherFn = (inputs: NetworkInputs, t: Float64Array) => Promise<Float32Array>;

/**
 * Replaces `batch.target` (drawn at student timesteps, see `pickStudentT`) with the distillation target:
 * two teacher DDIM steps from each sample's z_t, then the v whose one step lands there.
 */
export async function setDistillTarget(
  cfg: ModelConfig,
  alphasCumprod: ArrayLike<number>,
  batch: TrainBatch,
  steps: DistillStep[],
  teacher: TeacherFn,
): Promise<void> {
  if (cfg.prediction !== "v")
    throw new UserError(`distillation needs a v-prediction model, "${cfg.name}" predicts ${cfg.prediction}`);
  const B = batch.inputs.batch;
  const R = tokensOf(cfg) * B;
  const P = patchInputDim(cfg);
  const Q = patchOutputDim(cfg);
  const C = cfg.channels;
  const cin = C * inputSlots(cfg);
  const pp = cfg.patch * cfg.patch;
  const byT = new Map(steps.map((s) => [s.t, s]));
  const step = Array.from(batch.t, (t) => {
    const s = byT.get(t);
    if (!s) throw new Error(`setDistillTarget: sample timestep ${t} is not on the student's grid`);
    return s;
  });
  const abar = (t: number) => abarAt(alphasCumprod, t);
  // the noisy frame's patches: the first C channels of each pixel slot of a token
  const z = new Float32Array(R * Q);
  for (let row = 0; row < R; row++)
    for (let q = 0; q < pp; q++)
      for (let c = 0; c < C; c++) z[row * Q + q * C + c] = batch.inputs.tokens[row * P + q * cin + c];
  const v1 = await teacher(batch.inputs, batch.t);
  const tMid = Float64Array.from(step, (s) => s.mid);
  const z1 = new Float32Array(R * Q);
  for (let i = 0; i < z1.length; i++) {
    const s = step[Math.floor(i / Q) % B];
    z1[i] = ddimStepV(z[i], v1[i], abar(s.t), abar(s.mid));
  }
  const tokens = batch.inputs.tokens.slice();
  for (let row = 0; row < R; row++)
    for (let q = 0; q < pp; q++)
      for (let c = 0; c < C; c++) tokens[row * P + q * cin + c] = z1[row * Q + q * C + c];
  const midInputs: NetworkInputs = { ...batch.inputs, tokens, tFeat: timestepFeatures(tMid, cfg.freqDim) };
  const v2 = await teacher(midInputs, tMid);
  for (let i = 0; i < z.length; i++) {
    const s = step[Math.floor(i / Q) % B];
    const z2 = ddimStepV(z1[i], v2[i], abar(s.mid), abar(s.next));
    batch.target[i] = distillTargetV(z[i], z2, abar(s.t), abar(s.next));
  }
}

/** Guidance distillation alone: the target is the guided teacher's prediction at the sample's own z_t, t. */
export async function setGuidedTarget(batch: TrainBatch, teacher: TeacherFn): Promise<void> {
  batch.target.set(await teacher(batch.inputs, batch.t));
}

/** Draws a sample's timestep uniformly from the student's grid (makeTrainBatch's `pickT`). */
export function pickStudentT(steps: DistillStep[]): (rng: Rng) => number {
  return (rng) => steps[rng.int(0, steps.length - 1)].t;
}

/**
 * The guided teacher from a network: D + weight (D - G) on the samples at t >= fromT (autoguidance as
 * run/generation.ts applies it, every frame); the guide is called only when some sample needs it.
 */
export function guidedTeacher(
  cfg: ModelConfig,
  predict: (flat: Float32Array, inputs: NetworkInputs) => Promise<Float32Array>,
  teacher: Float32Array,
  guide: Float32Array | null,
  guidance: { weight: number; fromT: number } | null,
): TeacherFn {
  const Q = patchOutputDim(cfg);
  return async (inputs, t) => {
    const d = await predict(teacher, inputs);
    if (!guide || !guidance || !t.some((x) => x >= guidance.fromT)) return d;
    const g = await predict(guide, inputs);
    const B = inputs.batch;
    const w = guidance.weight;
    for (let i = 0; i < d.length; i++)
      if (t[Math.floor(i / Q) % B] >= guidance.fromT) d[i] += w * (d[i] - g[i]);
    return d;
  };
}
