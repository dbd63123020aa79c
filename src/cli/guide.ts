/**
 * `framecost guide MODEL --from SNAPSHOT`: give a model folder its autoguidance
 * guide (run/generation.ts): the snapshot's weights go into MODEL/guide in
 * bfloat16 (half the bytes; rounding each weight within 2^-8 moved the
 * shipped model's guided first-frame compactness by 0.005), and
 * MODEL/model.json names it with the weight and noise levels that generation
 * then uses by default.
 */
import { join } from "node:path";
import type { Command } from "commander";
import { z } from "zod";
import { type GuidanceDefaults, loadWeights, saveWeights, setGuidanceDefaults } from "../model/io.ts";
import { checkGuide } from "../run/generation.ts";
import { UserError } from "../util/errors.ts";
import { choiceOpt, intOpt, numberOpt, parseOptions, pathOpt } from "./options.ts";

const schema = z.object({
  from: pathOpt({ mustExist: "dir" }),
  weight: numberOpt({ min: 0, max: 100 }),
  fromT: intOpt({ min: 0, max: 1000 }),
  frames: choiceOpt(["first", "all"]),
});

export const GUIDE_FOLDER = "guide";

/** Writes the guide and the defaults; returns the guide's folder. */
export function attachGuide(
  modelDir: string,
  snapshotDir: string,
  g: Omit<GuidanceDefaults, "guide">,
): string {
  const model = loadWeights(modelDir);
  const snap = loadWeights(snapshotDir);
  checkGuide(model.config, snap.config, snapshotDir);
  const dir = join(modelDir, GUIDE_FOLDER);
  saveWeights(
    dir,
    snap.config,
    snap.flat,
    { ...snap.manifest.training, source: snapshotDir },
    { dtype: "bfloat16" },
  );
  setGuidanceDefaults(modelDir, { guide: GUIDE_FOLDER, ...g });
  return dir;
}

export function register(program: Command): void {
  program
    .command("guide")
    .description(
      "give a model folder an autoguidance guide: an early EMA snapshot of the same training run (Karras et al. 2024)",
    )
    .argument("<model>", "model folder (model.json + weights.bin)")
    .requiredOption(
      "--from <dir>",
      "the guide: a snapshot folder of the same run (checkpoints/<run>/snapshot-10min)",
    )
    .option("--weight <w>", "guidance weight w: D + w (D - guide)", "2")
    .option("--from-t <t>", "guide only calls at timesteps t >= this (of 1000: the high-noise part)", "300")
    .option(
      "--frames <which>",
      "all: every frame; first: only frames with no history (a clip's first, made from nothing)",
      "all",
    )
    .action((modelDir: string, raw: Record<string, unknown>) => {
      const o = parseOptions(schema, raw);
      if (o.weight === 0) throw new UserError("--weight 0 is no guidance; pass a weight above 0");
      const dir = attachGuide(modelDir, o.from, { weight: o.weight, fromT: o.fromT, frames: o.frames });
      process.stdout.write(
        `${dir}: guide from ${o.from} (bfloat16); generation with ${modelDir} now guides ${o.frames === "first" ? "first frames" : "every frame"} with weight ${o.weight} at t >= ${o.fromT} (--guidance 0 turns it off)\n`,
      );
    });
}
