/**
 * `framecost merge DIR...`: the folders of `framecost sweep --shard I/N` runs
 * (any machines) into one sweep: sweep.json, sweep.csv, plots, report.html
 * (src/run/merge.ts). Shards of other grids, weights or framecost versions
 * are refused; missing cells are named with their shard.
 */
import type { Command } from "commander";
import { z } from "zod";
import { mergeSweeps } from "../run/merge.ts";
import { parseOptions, stringOpt } from "./options.ts";

const MergeOptions = z.object({
  dirs: z.array(z.string().min(1)).min(1),
  out: stringOpt(),
  partial: z.boolean().default(false),
});

/** commander's arguments -> merge's options (one UserError line for the first bad one). */
export function mergeOptionsFrom(
  dirs: string[],
  raw: Record<string, unknown>,
): z.output<typeof MergeOptions> {
  return parseOptions(MergeOptions, { ...raw, dirs }, { names: { dirs: "<dir...>" } });
}

export function register(program: Command): void {
  program
    .command("merge")
    .description(
      "combine the folders of `sweep --shard I/N` runs into one sweep.json/csv, plots, report.html",
    )
    .argument("<dir...>", "shard folders (each holds shard.json and cells/)")
    .option("--out <dir>", "output folder", "out/sweep-merged")
    .option("--partial", "merge even when cells are missing (they are listed in the record and the output)")
    .action(async (dirs: string[], raw: Record<string, unknown>) => {
      const o = mergeOptionsFrom(dirs, raw);
      const res = await mergeSweeps(o.dirs, o.out, { partial: o.partial });
      const m = res.sweep.merged!;
      const machines = new Set(
        m.shards.map((s) => (s.machine ? `${s.machine.cpu.model} (${s.machine.cpu.cores} cores)` : "?")),
      );
      process.stdout.write(
        `merge: ${res.sweep.cells.length} cells from ${m.shards.length} of ${m.count} shards (${[...machines].join("; ")}); wrote ${res.files.join(", ")}\n`,
      );
      if (res.missing !== "")
        process.stderr.write(`framecost: merged without ${m.missing.length} cells: ${res.missing}\n`);
    });
}
