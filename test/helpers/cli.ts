/**
 * The CLI's own option parsing without running a command: commander with the
 * real registrations, each action replaced by one that only parses (what the
 * job files in examples/ are checked with).
 */
import { Command } from "commander";
import { mergeOptionsFrom, register as registerMerge } from "../../src/cli/merge.ts";
import { register as registerSweep, sweepOptionsFrom } from "../../src/cli/sweep.ts";

export type Parsed =
  | { command: "sweep"; options: ReturnType<typeof sweepOptionsFrom> }
  | { command: "merge"; options: ReturnType<typeof mergeOptionsFrom> };

/** `args` as after `framecost` (e.g. ["sweep", "--shard", "2/4"]); throws what the CLI would print. */
export async function parseCommandLine(args: string[]): Promise<Parsed> {
  const program = new Command().exitOverride();
  registerSweep(program);
  registerMerge(program);
  let parsed: Parsed | undefined;
  for (const cmd of program.commands) {
    cmd.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    if (cmd.name() === "sweep")
      cmd.action((raw: Record<string, unknown>) => {
        parsed = { command: "sweep", options: sweepOptionsFrom(raw) };
      });
    if (cmd.name() === "merge")
      cmd.action((dirs: string[], raw: Record<string, unknown>) => {
        parsed = { command: "merge", options: mergeOptionsFrom(dirs, raw) };
      });
  }
  await program.parseAsync(args, { from: "user" });
  if (!parsed) throw new Error(`no command ran for: ${args.join(" ")}`);
  return parsed;
}
