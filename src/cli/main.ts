#!/usr/bin/env node
// framecost: the program. Each command lives in its own file and registers itself here.
import { Command, CommanderError } from "commander";
import { exitCodeOf } from "../util/errors.ts";

const program = new Command();
program
  .name("framecost")
  .description(
    "Run a tiny video diffusion model locally and meter what it costs: FLOPs, steps, NFEs, wall-clock, USD per minute of video.",
  )
  .showHelpAfterError(false)
  .exitOverride();

// Commands: one import and one register() call per file in src/cli/.
const registrations: Array<(p: Command) => void> = [];
for (const register of registrations) register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit 0 through here; parse errors are user mistakes (exit 2).
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  if (process.env.FRAMECOST_DEBUG === "1") console.error(err);
  else console.error(`framecost: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(exitCodeOf(err));
}
