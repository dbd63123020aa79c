/**
 * Quality of a trained model, measured on held-out clips of the generator:
 * the model card's figures and the pinned quality test both come from here.
 *  - first frames (no history) at `steps` sampler steps vs real first frames,
 *    beside pure noise and a 1-step sample;
 *  - long clips generated frame after frame: the metric on the first frame
 *    vs the last, and how much the frames move.
 */
import { HELD_OUT_SEED_BASE, makeClip } from "../data/clips.ts";
import type { RunRecord } from "../meter/record.ts";
import { type QualityFigures, qualityFigures } from "../quality/metrics.ts";
import { heldOutFrames } from "../quality/reference.ts";
import { type ShapeFigures, shapeFigures } from "../quality/shapes.ts";
import { Rng } from "../util/rng.ts";
import { type GenerationOptions, type Guidance, runGeneration } from "./generation.ts";

export interface EvaluationOptions {
  modelDir: string;
  /** clips for the first-frame figures */
  clips: number;
  steps: number;
  sampler: string;
  /** clips and frames for the long-clip figures */
  longClips: number;
  longFrames: number;
  longSteps: number;
  /** held-out clips the metrics compare against */
  referenceClips: number;
  seed: number;
  backend: string;
  /** autoguidance over the model folder's default (generation.ts); undefined = the folder's default */
  guidance?: Partial<Guidance>;
  /** further generation options every run of the evaluation gets (a lever's flags, a shared calibration) */
  extra?: Partial<Omit<GenerationOptions, "modelDir" | "sampler" | "steps" | "frames" | "clips" | "seed">>;
  /** the speed levers of generation.ts (feature caching, int8, batched calls); absent = off */
  levers?: Pick<GenerationOptions, "cacheInterval" | "precision" | "batchCalls">;
}

export const DEFAULT_EVALUATION: Omit<EvaluationOptions, "modelDir"> = {
  clips: 32,
  steps: 50,
  sampler: "ddpm",
  longClips: 8,
  longFrames: 16,
  longSteps: 20,
  referenceClips: 64,
  seed: 12345,
  backend: "wasm",
};

export interface Evaluation {
  options: Omit<EvaluationOptions, "modelDir">;
  firstFrame: {
    generated: QualityFigures;
    oneStep: QualityFigures;
    noise: QualityFigures;
    heldOut: QualityFigures;
    /** clean shapes or ragged blobs: generated first frames and the real ones they are compared with */
    shapes: { generated: ShapeFigures; real: ShapeFigures };
  };
  longClip: {
    first: QualityFigures;
    last: QualityFigures;
    lastOverFirst: number;
    motionGenerated: number;
    motionReal: number;
    /** the last frames of the generated clips and every frame of the real ones */
    shapes: { last: ShapeFigures; real: ShapeFigures };
  };
  samples: { firstFrames: Float32Array[]; longClip: Float32Array[] };
  /** the metered runs: the first frames at `steps` and the long clips at `longSteps` */
  records: { firstFrame: RunRecord; longClip: RunRecord };
}

/** Mean absolute change between consecutive frames, averaged over clips. */
export function motion(clips: Float32Array[][]): number {
  let sum = 0;
  let n = 0;
  for (const frames of clips)
    for (let i = 1; i < frames.length; i++) {
      let d = 0;
      for (let j = 0; j < frames[i].length; j++) d += Math.abs(frames[i][j] - frames[i - 1][j]);
      sum += d / frames[i].length;
      n++;
    }
  return n > 0 ? sum / n : 0;
}

export async function evaluateModel(
  modelDir: string,
  o: Omit<EvaluationOptions, "modelDir"> = DEFAULT_EVALUATION,
): Promise<Evaluation> {
  const gen = (steps: number, frames: number, clips: number) =>
    runGeneration({
      modelDir,
      sampler: o.sampler,
      steps,
      frames,
      clips,
      fps: 24,
      seed: o.seed,
      backend: o.backend,
      guidance: o.guidance,
      ...o.levers,
      convention: "flops",
      ...o.extra,
    });
  const first = await gen(o.steps, 1, o.clips);
  const size = first.config.imageSize;
  const shape = { height: size, width: size };
  const realFirst = heldOutFrames(o.referenceClips, 1, size);
  const firstFrames = first.clips.map((c) => c[0]);
  const oneStep = (await gen(1, 1, o.clips)).clips.map((c) => c[0]);
  const rng = new Rng(o.seed);
  const noise = firstFrames.map((f) => rng.normals(f.length).map((v) => Math.max(-1, Math.min(1, v))));
  // a second set of real frames: the floor a perfect model would reach with this many samples
  const heldOut: Float32Array[] = [];
  for (let c = 0; c < o.clips; c++)
    heldOut.push(makeClip(HELD_OUT_SEED_BASE + 500_000 + c, { frames: 1, size })[0]);

  const long = await gen(o.longSteps, o.longFrames, o.longClips);
  const realAll = heldOutFrames(o.referenceClips, o.longFrames, size);
  const firstOfLong = long.clips.map((c) => c[0]);
  const lastOfLong = long.clips.map((c) => c[c.length - 1]);
  const realClips: Float32Array[][] = [];
  for (let c = 0; c < o.longClips; c++)
    realClips.push(makeClip(HELD_OUT_SEED_BASE + c, { frames: o.longFrames, size }));
  const qFirst = qualityFigures(firstOfLong, realAll, shape);
  const qLast = qualityFigures(lastOfLong, realAll, shape);
  return {
    options: o,
    firstFrame: {
      generated: qualityFigures(firstFrames, realFirst, shape),
      oneStep: qualityFigures(oneStep, realFirst, shape),
      noise: qualityFigures(noise, realFirst, shape),
      heldOut: qualityFigures(heldOut, realFirst, shape),
      shapes: { generated: shapeFigures(firstFrames, shape), real: shapeFigures(realFirst, shape) },
    },
    longClip: {
      first: qFirst,
      last: qLast,
      lastOverFirst: qLast.swdPixels / qFirst.swdPixels,
      motionGenerated: motion(long.clips),
      motionReal: motion(realClips),
      shapes: { last: shapeFigures(lastOfLong, shape), real: shapeFigures(realAll, shape) },
    },
    samples: { firstFrames, longClip: long.clips[0] },
    records: { firstFrame: first.record, longClip: long.record },
  };
}
