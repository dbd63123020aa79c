/** `framecost train`: train a preset on the synthetic clips, with progress, checkpoints and resume. */
import type { Command } from "commander";
import { z } from "zod";
import { DEFAULT_TRAIN, type TrainProgress, train } from "../diffusion/trainer.ts";
import { type ModelConfig, PRESETS, presetNames } from "../model/config.ts";
import { UserError } from "../util/errors.ts";
import { backendOpt, intOpt, numberOpt, parseOptions, pathOpt, stringOpt } from "./options.ts";

// preset stays a string so an unknown one gets the line that lists the presets
const schema = z.object({
  preset: stringOpt(),
  minutes: numberOpt({ gt: 0 }).optional(),
  steps: intOpt({ min: 1 }).optional(),
  out: pathOpt(),
  checkpointDir: pathOpt().optional(),
  batch: intOpt({ min: 1 }),
  workers: intOpt({ min: 1 }),
  lr: numberOpt({ gt: 0 }),
  minSnrGamma: numberOpt({ min: 0 }),
  snrFloor: numberOpt({ min: 0 }),
  // partial context keeps its share, so at most 1 - pPartial of samples can be context-free
  pUncond: numberOpt({ min: 0, max: 1 - DEFAULT_TRAIN.batchOptions.pPartial }),
  seed: intOpt({ min: 0 }),
  backend: backendOpt({ auto: true }),
  selfCond: z.boolean().default(false),
});

export function fmtMin(ms: number): string {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

/**
 * A training loop's progress line on stderr (train, distill): redrawn in place on a terminal every 250 ms,
 * a line every 15 s in a log. `name` labels the line; `lossDigits` the loss's decimals.
 */
export function trainProgressPrinter<P extends TrainProgress>(
  name: (p: P) => string,
  lossDigits: number,
): (p: P) => void {
  const tty = process.stderr.isTTY;
  let lastPrint = 0;
  return (p) => {
    const now = performance.now();
    if (now - lastPrint < (tty ? 250 : 15_000)) return;
    lastPrint = now;
    const budget = p.budgetMs ? `/${fmtMin(p.budgetMs)}` : p.totalSteps ? ` (${p.step}/${p.totalSteps})` : "";
    const frac = p.budgetMs ? p.elapsedMs / p.budgetMs : p.totalSteps ? p.step / p.totalSteps : 0;
    const bar = "#".repeat(Math.round(Math.min(1, frac) * 20)).padEnd(20, ".");
    const line = `${name(p)} [${bar}] ${fmtMin(p.elapsedMs)}${budget} step ${p.step} loss ${p.lossEma.toFixed(lossDigits)} lr ${p.lr.toExponential(2)} ${p.stepsPerSec.toFixed(2)} steps/s`;
    process.stderr.write(tty ? `\r${line}` : `${line}\n`);
  };
}

export function register(program: Command): void {
  program
    .command("train")
    .description("train a model preset on synthetic clips (resumes from its checkpoint folder)")
    .option("--preset <name>", `model preset (${presetNames().join(", ")})`, "tiny")
    .option("--minutes <m>", "wall-clock budget in minutes (includes earlier resumed sessions)")
    .option("--steps <n>", "step budget")
    .option("--out <dir>", "where the final EMA weights go", "models/tiny")
    .option("--checkpoint-dir <dir>", "checkpoints (default: checkpoints/<preset>)")
    .option("--batch <n>", "batch size per step, split across workers", String(DEFAULT_TRAIN.batch))
    .option("--workers <n>", "gradient worker threads (one engine each)", String(DEFAULT_TRAIN.workers))
    .option("--lr <x>", "peak learning rate (AdamW)", String(DEFAULT_TRAIN.lr))
    .option(
      "--min-snr-gamma <g>",
      "loss weighting: min-SNR-gamma (Hang et al. 2023); 0 = uniform MSE on the prediction target",
      String(DEFAULT_TRAIN.batchOptions.minSnrGamma),
    )
    .option(
      "--snr-floor <f>",
      "loss weighting: high-noise steps (SNR below f) weigh as much as SNR = f instead of less (truncated SNR, Salimans & Ho 2022); needs --min-snr-gamma above f; 0 = off",
      String(DEFAULT_TRAIN.batchOptions.snrFloor),
    )
    .option(
      "--p-uncond <p>",
      "share of samples trained with no context at all: how first frames (no history) are learned",
      String(DEFAULT_TRAIN.batchOptions.pUncond),
    )
    .option(
      "--self-cond",
      "self-conditioning (Chen et al. 2022): the network also sees its previous estimate of the clean frame; half the samples train with it (one extra forward pass), generation feeds it from step to step",
    )
    .option("--seed <n>", "seed for init and data", "0")
    .option(
      "--backend <name>",
      "the workers' engine: auto (onnx where installed, else wasm), onnx (onnxruntime's native kernels) or a tfjs backend (wasm, cpu)",
      DEFAULT_TRAIN.backend,
    )
    .action(async (raw) => {
      const o = parseOptions(schema, raw);
      const preset: ModelConfig | undefined = PRESETS[o.preset];
      if (!preset)
        throw new UserError(
          `--preset: unknown preset "${o.preset}"; known presets: ${presetNames().join(", ")}`,
        );
      const config: ModelConfig = o.selfCond ? { ...preset, selfCond: true } : preset;
      if (!o.minutes && !o.steps) throw new UserError("train needs a budget: pass --minutes M or --steps N");
      if (o.snrFloor > 0 && !(o.snrFloor < o.minSnrGamma))
        throw new UserError(
          `--snr-floor ${o.snrFloor} needs a larger --min-snr-gamma (got ${o.minSnrGamma}): the weights clamp SNR to [floor, gamma]`,
        );
      let stop = false;
      process.once("SIGINT", () => {
        stop = true;
        process.stderr.write("\nstopping after this step; saving a checkpoint...\n");
      });
      const result = await train({
        ...DEFAULT_TRAIN,
        config,
        outDir: o.out,
        checkpointDir: o.checkpointDir ?? `checkpoints/${o.preset}`,
        minutes: o.minutes,
        steps: o.steps,
        batch: o.batch,
        workers: o.workers,
        lr: o.lr,
        seed: o.seed,
        backend: o.backend,
        batchOptions: {
          ...DEFAULT_TRAIN.batchOptions,
          minSnrGamma: o.minSnrGamma,
          snrFloor: o.snrFloor,
          pUncond: o.pUncond,
        },
        command: `framecost ${process.argv.slice(2).join(" ")}`,
        shouldStop: () => stop,
        onStart: (info) =>
          process.stderr.write(
            `train: ${config.name} from step ${info.step}, ${info.workers} worker${info.workers > 1 ? "s" : ""} on ${info.backend}\n`,
          ),
        onProgress: trainProgressPrinter(() => "train", 4),
      });
      process.stderr.write(
        `\ntrained ${result.steps} steps in ${fmtMin(result.elapsedMs)}; EMA weights in ${o.out}\n`,
      );
    });
}
