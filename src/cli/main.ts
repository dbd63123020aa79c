#!/usr/bin/env node
// framecost: the program. Each command lives in its own file and registers itself here.
import { Command, CommanderError } from "commander";
import { exitCodeOf } from "../util/errors.ts";
import { register as registerCompare } from "./compare.ts";
import { register as registerCost } from "./cost.ts";
import { register as registerDistill } from "./distill.ts";
import { register as registerDoctor } from "./doctor.ts";
import { register as registerGenerate } from "./generate.ts";
import { register as registerGpus } from "./gpus.ts";
import { register as registerGuide } from "./guide.ts";
import { register as registerLevers } from "./levers.ts";
import { register as registerMerge } from "./merge.ts";
import { register as registerPath } from "./path.ts";
import { register as registerReport } from "./report.ts";
import { register as registerServe } from "./serve.ts";
import { register as registerSweep } from "./sweep.ts";
import { register as registerTrain } from "./train.ts";

const program = new Command();
program
  .name("framecost")
  .description(
    "Run a tiny video diffusion model locally and meter what it costs: FLOPs, steps, NFEs, wall-clock, USD per minute of video.",
  )
  .showHelpAfterError(false)
  .exitOverride();

// Commands: one import and one register() call per file in src/cli/.
const registrations: Array<(p: Command) => void> = [
  registerGenerate,
  registerSweep,
  registerMerge,
  registerDoctor,
  registerTrain,
  registerDistill,
  registerGuide,
  registerReport,
  registerGpus,
  registerCost,
  registerPath,
  registerLevers,
  registerCompare,
  registerServe,
];
for (const register of registrations) register(program);

// Commander's own parse errors (unknown option, missing value, unknown command) become one line, like
// ours: capture the message and the command it came from instead of letting commander print it.
let commanderFailure: { message: string; command: Command } | undefined;
const quiet = (cmd: Command): void => {
  cmd.exitOverride().configureOutput({
    outputError: (message) => {
      commanderFailure = { message, command: cmd };
    },
  });
  cmd.commands.forEach(quiet);
};
quiet(program);

/** "framecost doctor" for the doctor command: the words to put before --help. */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit 0 through here; parse errors are user mistakes (exit 2).
    if (err.exitCode !== 0 && commanderFailure) {
      const what = commanderFailure.message
        .replace(/^error: /, "")
        .replace(/\s*\n\s*/g, " ")
        .trim()
        .replace(/\.$/, "");
      console.error(`framecost: ${what}; see "${commandPath(commanderFailure.command)} --help"`);
    }
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  if (process.env.FRAMECOST_DEBUG === "1") console.error(err);
  else console.error(`framecost: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(exitCodeOf(err));
}
