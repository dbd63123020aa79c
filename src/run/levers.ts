/**
 * The levers stage (`framecost levers`, bench/levers.ts): every cost lever
 * the shipped model can pull, each a generation configuration described as
 * data, run through the same evaluation protocol (evaluate.ts) so that cost
 * (NFEs, FLOPs and wall time per frame, metered) and quality (first-frame
 * compactness, specks, SWD, palette; long-clip drift and motion) are
 * measured the same way for all of them; plus the teacher at several step
 * counts per sampler, the cost-quality frontier the levers are read against.
 *
 * A lever whose model folder, sampler or generation option this build lacks
 * is recorded as "not available" with the reason, never run: the levers
 * built elsewhere (students, caching, int8, batching) appear in the table as
 * soon as their folder or option exists.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import type { LeverConfig, LeverEntry, LeverFigures, LeversRecord, Protocol } from "../cost/measured.ts";
import { LEVERS_SCHEMA_VERSION } from "../cost/measured.ts";
import type { LeverName } from "../cost/path-names.ts";
import { samplerNames } from "../diffusion/samplers/index.ts";
import { describeDevice } from "../meter/meter.ts";
import type { RunRecord } from "../meter/record.ts";
import { UserError } from "../util/errors.ts";
import { DEFAULT_EVALUATION, type Evaluation, evaluateModel } from "./evaluate.ts";
import type { GenerationOptions } from "./generation.ts";

export interface LeverSpec {
  name: string;
  label: string;
  /** the `framecost path` lever it stands for; null: none there */
  pathLever: LeverName | null;
  /** the entry its factor is taken against; default the teacher */
  baseline?: string;
  /** what the configuration honestly is, where the label alone would claim too much */
  note?: string;
  /** a model folder beside the teacher's (models/<model>); default the teacher's own */
  model?: string;
  /** default the teacher's */
  sampler?: string;
  steps?: number;
  /** "off": --guidance 0; default the model folder's own guidance */
  guidance?: "default" | "off";
  /** further GenerationOptions fields: the flags of levers built in other stages */
  extra?: Record<string, unknown>;
}

/** generate's default: ddpm 20 steps guided by the model's early snapshot (30 NFEs per frame on models/tiny). */
export const TEACHER: Required<Pick<LeverSpec, "name" | "sampler" | "steps">> & LeverSpec = {
  name: "teacher",
  label: "teacher: generate's default (ddpm 20 steps, guided)",
  pathLever: null,
  sampler: "ddpm",
  steps: 20,
  guidance: "default",
};

/** Every lever the table measures, in the order it prints them. */
export const LEVERS: readonly LeverSpec[] = [
  TEACHER,
  { name: "ddpm-10", label: "fewer steps: ddpm 10", pathLever: "fewer-steps", steps: 10 },
  { name: "ddpm-5", label: "fewer steps: ddpm 5", pathLever: "fewer-steps", steps: 5 },
  {
    name: "dpmpp-2m-10",
    label: "better sampler: dpmpp-2m 10",
    pathLever: "fewer-steps",
    sampler: "dpmpp-2m",
    steps: 10,
  },
  {
    name: "dpmpp-2m-5",
    label: "better sampler: dpmpp-2m 5",
    pathLever: "fewer-steps",
    sampler: "dpmpp-2m",
    steps: 5,
  },
  {
    name: "guide-off",
    label: "guide off (guidance distillation's upper bound)",
    pathLever: "guidance-distillation",
    guidance: "off",
    note: "the calls a guidance-distilled model makes, with the unguided network's quality (guidance-distilled below is the trained one)",
  },
  {
    name: "guidance-distilled",
    label: "guidance distillation: the guide distilled into the network",
    pathLever: "guidance-distillation",
    model: "tiny-guidance-distilled",
    guidance: "off",
    note: "framecost distill --guidance-only: the guided teacher's prediction learned by one network, one call per step",
  },
  ...[4, 2, 1].map(
    (k): LeverSpec => ({
      name: `student-${k}step`,
      label: `step distillation: ${k}-step student`,
      pathLever: "step-distillation",
      baseline: "guide-off",
      model: `tiny-${k}step`,
      sampler: "ddim",
      steps: k,
      guidance: "off",
      note: "one call per step, no guide; its factor is against the unguided teacher (the guide's calls are guidance-distillation's)",
    }),
  ),
  {
    name: "cache-2",
    label: "feature caching: deep blocks reused every 2nd step",
    pathLever: "feature-caching",
    extra: { cacheInterval: 2 },
  },
  {
    name: "int8",
    label: "lower precision: int8 graph",
    pathLever: "lower-precision",
    extra: { precision: "int8" },
  },
  {
    name: "batched",
    label: "batching: model and guide in one call",
    pathLever: null,
    extra: { batchCalls: "on" },
    note: "no lever of the waterfall: a production pipeline batches already",
  },
];

/**
 * Every option runGeneration takes on this build: a lever whose `extra` names another is not available.
 * Typed as a Record over GenerationOptions' keys, so a new option does not compile until it is listed here.
 */
const GENERATION_OPTIONS: Record<keyof GenerationOptions, true> = {
  modelDir: true,
  preset: true,
  sampler: true,
  steps: true,
  frames: true,
  clips: true,
  fps: true,
  seed: true,
  backend: true,
  threads: true,
  device: true,
  ortProfile: true,
  eta: true,
  guidance: true,
  convention: true,
  calibration: true,
  onProgress: true,
  shouldStop: true,
  cacheInterval: true,
  precision: true,
  batchCalls: true,
};

/** The teacher at these step counts per sampler: the frontier the levers are read against. */
export const FRONTIER = { samplers: ["ddpm", "ddim", "dpmpp-2m"], steps: [2, 5, 10, 20, 50] };

/** The model card's counts (evaluate.ts' defaults), and a quarter of them. */
export const PROTOCOLS: Record<"full" | "quick", Omit<Protocol, "backend" | "seed">> = {
  full: {
    name: "full",
    clips: DEFAULT_EVALUATION.clips,
    longClips: DEFAULT_EVALUATION.longClips,
    longFrames: DEFAULT_EVALUATION.longFrames,
    referenceClips: DEFAULT_EVALUATION.referenceClips,
  },
  quick: { name: "quick", clips: 8, longClips: 2, longFrames: 8, referenceClips: 32 },
};

export interface LeversOptions {
  /** the teacher's model folder; students are looked for beside it */
  modelDir: string;
  protocol: Protocol;
  levers?: readonly LeverSpec[];
  frontier?: { samplers: string[]; steps: number[] } | null;
  threads?: number;
  onProgress?: (line: string) => void;
}

function configOf(spec: LeverSpec, modelDir: string): LeverConfig {
  return {
    model: spec.model ? join(dirname(modelDir), spec.model) : modelDir,
    sampler: spec.sampler ?? TEACHER.sampler,
    steps: spec.steps ?? TEACHER.steps,
    guidance: spec.guidance ?? "default",
    extra: spec.extra ?? {},
  };
}

/** Why a configuration cannot run on this build, or null. */
export function unavailable(c: LeverConfig): string | null {
  if (!existsSync(join(c.model, "model.json")))
    return `${join(c.model, "model.json")} not found on this build`;
  if (!samplerNames().includes(c.sampler as never)) return `sampler ${c.sampler} is not on this build`;
  const unknown = Object.keys(c.extra).filter((k) => !(k in GENERATION_OPTIONS));
  if (unknown.length > 0) return `generation has no option ${unknown.join(", ")} on this build`;
  return null;
}

/**
 * Median wall time of a frame over the runs' frames after their first (the first alone where a run has
 * one): the first carries the session's warm-up and the one-time kernel counting, and the median keeps a
 * frame slowed by another process on a shared machine from moving the figure.
 */
function warmWallMs(runs: readonly RunRecord[]): number {
  const walls = runs
    .flatMap((r) => (r.frames.length > 1 ? r.frames.slice(1) : r.frames).map((f) => f.wallMs))
    .sort((a, b) => a - b);
  const m = walls.length >> 1;
  return walls.length % 2 === 1 ? walls[m] : (walls[m - 1] + walls[m]) / 2;
}

function figuresOf(ev: Evaluation): LeverFigures {
  const runs = [ev.records.firstFrame, ev.records.longClip];
  const frames = runs.reduce((a, r) => a + r.totals.frames, 0);
  const sum = (f: (r: (typeof runs)[number]) => number) => runs.reduce((a, r) => a + f(r), 0);
  const g = ev.firstFrame;
  return {
    nfePerFrame: sum((r) => r.totals.nfe) / frames,
    flopsPerFrame: sum((r) => r.totals.flops) / frames,
    // each run's first frame carries the session's warm-up and the one-time kernel counting: left out
    wallMsPerFrame: warmWallMs(runs),
    msPerNfe: ev.records.longClip.nfeTiming.medianMs ?? ev.records.firstFrame.nfeTiming.medianMs,
    frames,
    backend: ev.records.firstFrame.backend.name,
    firstFrame: {
      compactness: g.shapes.generated.compactness,
      specksPerFrame: g.shapes.generated.specksPerFrame,
      shapesPerFrame: g.shapes.generated.shapesPerFrame,
      emptyShare: g.shapes.generated.emptyShare,
      swdPixels: g.generated.swdPixels,
      swdPatches: g.generated.swdPatches,
      paletteError: g.generated.paletteError,
    },
    longClip: {
      lastOverFirst: ev.longClip.lastOverFirst,
      lastCompactness: ev.longClip.shapes.last.compactness,
      motion: ev.longClip.motionGenerated,
    },
  };
}

const ratios = (a: LeverFigures, b: LeverFigures) => ({
  nfe: a.nfePerFrame / b.nfePerFrame,
  flops: a.flopsPerFrame / b.flopsPerFrame,
  wall: a.wallMsPerFrame / b.wallMsPerFrame,
});

/** Measures every lever (and the frontier) on one protocol; the record `framecost levers` writes. */
export async function measureLevers(o: LeversOptions): Promise<LeversRecord> {
  const t0 = performance.now();
  const specs = o.levers ?? LEVERS;
  if (!specs.some((s) => s.name === TEACHER.name))
    throw new Error(`the levers must include the teacher ("${TEACHER.name}")`);
  const p = o.protocol;
  const cache = new Map<string, { ev: Evaluation; figures: LeverFigures }>();
  let calibration: GenerationOptions["calibration"];
  let real: LeversRecord["real"] | undefined;
  const evaluate = async (c: LeverConfig) => {
    const key = JSON.stringify(c);
    const hit = cache.get(key);
    if (hit) return hit;
    const ev = await evaluateModel(c.model, {
      ...DEFAULT_EVALUATION,
      clips: p.clips,
      steps: c.steps,
      sampler: c.sampler,
      longClips: p.longClips,
      longFrames: p.longFrames,
      longSteps: c.steps,
      referenceClips: p.referenceClips,
      seed: p.seed,
      backend: p.backend,
      guidance: c.guidance === "off" ? { weight: 0 } : undefined,
      extra: { threads: o.threads, calibration, ...c.extra },
    });
    // one GEMM calibration for the whole table: the teacher's
    calibration ??= ev.records.firstFrame.calibration;
    real ??= {
      compactness: ev.firstFrame.shapes.real.compactness,
      specksPerFrame: ev.firstFrame.shapes.real.specksPerFrame,
      motion: ev.longClip.motionReal,
    };
    const out = { ev, figures: figuresOf(ev) };
    cache.set(key, out);
    return out;
  };
  const describe = (f: LeverFigures) =>
    `${f.nfePerFrame.toFixed(1)} NFEs, ${f.wallMsPerFrame.toFixed(1)} ms per frame, compactness ${f.firstFrame.compactness.toFixed(3)}`;

  const ordered = [...specs].sort(
    (a, b) => Number(b.name === TEACHER.name) - Number(a.name === TEACHER.name),
  );
  const byName = new Map<string, LeverEntry>();
  let i = 0;
  for (const spec of ordered) {
    i++;
    const config = configOf(spec, o.modelDir);
    const base = {
      name: spec.name,
      label: spec.label,
      pathLever: spec.pathLever,
      baseline: spec.baseline ?? TEACHER.name,
      ...(spec.note ? { note: spec.note } : {}),
      config,
    };
    const baseline = byName.get(base.baseline);
    let reason = unavailable(config);
    if (reason === null && spec.name !== TEACHER.name && baseline?.status !== "measured")
      reason = `its baseline ${base.baseline} was not measured`;
    if (reason !== null) {
      if (spec.name === TEACHER.name)
        throw new UserError(`the teacher cannot run: ${reason}; pass --model DIR`);
      o.onProgress?.(`[${i}/${ordered.length}] ${spec.name}: not available: ${reason}`);
      byName.set(spec.name, { ...base, status: "not available", reason });
      continue;
    }
    try {
      const { figures } = await evaluate(config);
      const teacher = byName.get(TEACHER.name);
      const tf = teacher?.status === "measured" ? teacher.figures : figures;
      const bf = baseline?.status === "measured" ? baseline.figures : figures;
      byName.set(spec.name, {
        ...base,
        status: "measured",
        figures,
        vsTeacher: ratios(figures, tf),
        vsBaseline: ratios(figures, bf),
      });
      o.onProgress?.(`[${i}/${ordered.length}] ${spec.name}: ${describe(figures)}`);
    } catch (err) {
      // a lever whose run refuses its configuration (a user error: bad folder, guide, flag) is reported, not fatal
      if (!(err instanceof UserError) || spec.name === TEACHER.name) throw err;
      o.onProgress?.(`[${i}/${ordered.length}] ${spec.name}: not available: ${err.message}`);
      byName.set(spec.name, { ...base, status: "not available", reason: err.message });
    }
  }

  const frontier: LeversRecord["frontier"] = [];
  const grid = o.frontier === undefined ? FRONTIER : o.frontier;
  if (grid) {
    const teacherConfig = configOf(TEACHER, o.modelDir);
    for (const sampler of grid.samplers)
      for (const steps of grid.steps) {
        const { figures } = await evaluate({ ...teacherConfig, sampler, steps });
        frontier.push({ sampler, steps, figures });
        o.onProgress?.(`frontier ${sampler} ${steps} steps: ${describe(figures)}`);
      }
  }
  return {
    schemaVersion: LEVERS_SCHEMA_VERSION,
    kind: "framecost-levers",
    createdAt: new Date().toISOString(),
    model: o.modelDir,
    device: describeDevice(),
    protocol: p,
    real: real!,
    teacher: TEACHER.name,
    levers: specs.map((s) => byName.get(s.name)!),
    frontier,
    wallSeconds: (performance.now() - t0) / 1000,
  };
}
