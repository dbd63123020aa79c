/** `framecost distill`: few-step students of a model folder by progressive (and guidance) distillation. */
import type { Command } from "commander";
import { z } from "zod";
import { DEFAULT_TRAIN, type TrainProgress } from "../diffusion/trainer.ts";
import { distill } from "../run/distill.ts";
import { DEFAULT_SAMPLING } from "../run/generation.ts";
import { backendOpt, choiceOpt, intOpt, numberOpt, parseOptions, pathOpt, stringOpt } from "./options.ts";
import { trainProgressPrinter } from "./train.ts";

const schema = z.object({
  teacher: pathOpt({ mustExist: "dir" }),
  teacherSteps: intOpt({ min: 2, max: 1000 }),
  steps: intOpt({ min: 1, max: 500 }),
  guidance: numberOpt({ min: 0 }).optional(),
  guidanceOnly: z.boolean().optional(),
  out: stringOpt().optional(),
  checkpointDir: pathOpt().optional(),
  minutes: numberOpt({ gt: 0 }).optional(),
  roundMinutes: numberOpt({ gt: 0 }).optional(),
  roundSteps: intOpt({ min: 1 }).optional(),
  batch: intOpt({ min: 1 }),
  workers: intOpt({ min: 1 }),
  lr: numberOpt({ gt: 0 }),
  emaDecay: numberOpt({ min: 0, max: 1 }),
  seed: intOpt({ min: 0 }),
  backend: backendOpt({ auto: true }),
  dtype: choiceOpt(["bfloat16", "float32"]),
});

/** Distillation defaults: a few thousand steps per round from a trained model, so a lower lr and a shorter EMA. */
export const DISTILL_DEFAULTS = { lr: 2e-4, emaDecay: 0.995, warmupSteps: 100, teacherSteps: 16, steps: 4 };

/** --out and --checkpoint-dir when not given: progressive rounds, or guidance distillation alone. */
const FOLDERS = {
  progressive: { out: "models/tiny-{steps}step", checkpointDir: "checkpoints/distill" },
  guidanceOnly: { out: "models/tiny-guidance-distilled", checkpointDir: "checkpoints/distill-guidance" },
};

export function register(program: Command): void {
  program
    .command("distill")
    .description(
      "train few-step students of a model by progressive distillation (the guided teacher's DDIM steps halved each round; resumes from its checkpoint folder)",
    )
    .option(
      "--teacher <dir>",
      "the teacher's model folder (its guide, if any, is distilled away in the first round)",
      "models/tiny",
    )
    .option(
      "--teacher-steps <n>",
      "the teacher's guided DDIM steps the first round halves",
      String(DISTILL_DEFAULTS.teacherSteps),
    )
    .option("--steps <n>", "the last round's student steps", String(DISTILL_DEFAULTS.steps))
    .option(
      "--guidance <w>",
      "the guided teacher's weight in the first round (default: the teacher folder's; 0 distils the unguided teacher)",
    )
    .option(
      "--guidance-only",
      `distil the guidance alone (Meng et al. 2023, stage one): the student learns the guided prediction at every timestep and samples like the teacher (${DEFAULT_SAMPLING.sampler} ${DEFAULT_SAMPLING.steps}) at one call per step; --teacher-steps and --steps do not apply`,
    )
    .option(
      "--out <dir>",
      `the last student's folder; with {steps} in it, every round's (default ${FOLDERS.progressive.out}; with --guidance-only ${FOLDERS.guidanceOnly.out})`,
    )
    .option(
      "--checkpoint-dir <dir>",
      `checkpoints and finished rounds; rerun the same command to resume (default ${FOLDERS.progressive.checkpointDir}; with --guidance-only ${FOLDERS.guidanceOnly.checkpointDir})`,
    )
    .option("--minutes <m>", "wall-clock budget of all rounds, split evenly between them")
    .option("--round-minutes <m>", "wall-clock budget of each round")
    .option("--round-steps <n>", "training steps of each round")
    .option("--batch <n>", "batch size per step, split across workers", "32")
    .option("--workers <n>", "gradient worker threads (one engine each)", String(DEFAULT_TRAIN.workers))
    .option("--lr <x>", "peak learning rate (AdamW)", String(DISTILL_DEFAULTS.lr))
    .option("--ema-decay <x>", "EMA decay of the student's weights", String(DISTILL_DEFAULTS.emaDecay))
    .option("--seed <n>", "seed for data", "0")
    .option(
      "--backend <name>",
      "the workers' engine: auto, onnx or a tfjs backend (wasm, cpu)",
      DEFAULT_TRAIN.backend,
    )
    .option("--dtype <name>", "the students' weight files: bfloat16 (half the size) or float32", "bfloat16")
    .action(async (raw) => {
      const o = parseOptions(schema, raw);
      const { roundSteps } = await import("../diffusion/distill.ts");
      const folders = o.guidanceOnly ? FOLDERS.guidanceOnly : FOLDERS.progressive;
      const rounds = o.guidanceOnly ? 1 : roundSteps(o.teacherSteps, o.steps).length;
      const tty = process.stderr.isTTY;
      // p.steps: the round's student steps (0: guidance distillation)
      const progress = trainProgressPrinter<TrainProgress & { steps: number }>(
        (p) => `distill ${p.steps === 0 ? "guidance" : `${p.steps}-step`}`,
        5,
      );
      let stop = false;
      process.once("SIGINT", () => {
        stop = true;
        process.stderr.write("\nstopping after this step; saving a checkpoint...\n");
      });
      const result = await distill({
        teacherDir: o.teacher,
        teacherSteps: o.teacherSteps,
        steps: o.steps,
        guidance: o.guidance,
        guidanceOnly: o.guidanceOnly ? { sampling: DEFAULT_SAMPLING } : undefined,
        out: o.out ?? folders.out,
        checkpointDir: o.checkpointDir ?? folders.checkpointDir,
        roundMinutes: o.roundMinutes ?? (o.minutes ? o.minutes / rounds : undefined),
        roundSteps: o.roundSteps,
        batch: o.batch,
        workers: o.workers,
        lr: o.lr,
        warmupSteps: DISTILL_DEFAULTS.warmupSteps,
        emaDecay: o.emaDecay,
        seed: o.seed,
        backend: o.backend,
        batchOptions: { ...DEFAULT_TRAIN.batchOptions, snrFloor: 1 },
        dtype: o.dtype,
        command: `framecost ${process.argv.slice(2).join(" ")}`,
        shouldStop: () => stop,
        onRoundStart: (r) =>
          process.stderr.write(
            `distill: round ${r.index + 1}/${r.rounds}, ${r.steps === 0 ? "guided -> one call per step" : `${r.teacherSteps} -> ${r.steps} steps`}, from step ${r.fromStep}, on ${r.backend}\n`,
          ),
        onProgress: progress,
        onRoundEnd: (r) =>
          process.stderr.write(
            `${tty ? "\n" : ""}distill: ${r.steps === 0 ? "guidance-distilled" : `${r.steps}-step`} student after ${r.trainSteps} steps in ${r.minutes} min${r.outDir ? `; wrote ${r.outDir}` : ""}\n`,
          ),
      });
      if (result.stopped)
        process.stderr.write("distill: stopped; run the same command again to resume from the checkpoint\n");
      else process.stderr.write(`distill: ${result.rounds.length} rounds done\n`);
      if (result.stopped) process.exitCode = 130;
    });
}
