/**
 * `framecost report run.json`: a RunRecord as terminal tables. The record is
 * read with the same zod schema the program wrote it with; a file that is
 * not JSON, has another schemaVersion or fails the schema gets one line
 * naming the first bad field.
 */

import { dirname, join } from "node:path";
import type { Command } from "commander";
import { z } from "zod";
import { parseRunRecord, type RunRecord } from "../meter/record.ts";
import { renderReport } from "../report/tables.ts";
import { readUserFile } from "../util/files.ts";
import { choiceOpt, intOpt, parseOptions, pathOpt, stringOpt } from "./options.ts";

const ReportOptions = z.object({
  record: pathOpt(),
  convention: choiceOpt(["flops", "macs"]).optional(),
  top: intOpt({ min: 1, max: 100_000 }).default(12),
  // --html alone: report.html beside the record; --html FILE: there (an empty name is refused)
  html: z.union([z.boolean(), stringOpt()]).optional(),
});

/** Reads and validates a RunRecord file; every failure is a UserError naming the file. */
export async function readRunRecord(path: string): Promise<RunRecord> {
  return parseRunRecord(await readUserFile(path, "pass the run.json that `framecost generate` wrote"), path);
}

export function register(program: Command): void {
  program
    .command("report")
    .description("print a run record (run.json) as tables: summary, timing, frames, kernels")
    .argument("<record>", "the run.json a generation wrote")
    .option(
      "--convention <unit>",
      "count in flops (1 multiply-accumulate = 2) or macs (= 1); default: the record's",
    )
    .option(
      "--top <n>",
      "kernels listed by FLOPs before the rest are summed (uncounted ones are always listed)",
      "12",
    )
    .option(
      "--html [file]",
      "also write a self-contained HTML report (default: report.html beside the record)",
    )
    .action(async (record: string, raw: Record<string, unknown>) => {
      const opts = parseOptions(ReportOptions, { ...raw, record }, { names: { record: "<record>" } });
      const run = await readRunRecord(opts.record);
      process.stdout.write(renderReport(run, { convention: opts.convention, top: opts.top }));
      if (opts.html !== undefined && opts.html !== false) {
        const htmlPath =
          typeof opts.html === "string" ? opts.html : join(dirname(opts.record), "report.html");
        // loaded here: vega and sharp take a moment, and the tables should not wait for them
        const { writeRunReport } = await import("../report/html.ts");
        const { doctorData } = await import("../media/machine.ts");
        const machine = await doctorData({ calibrate: false });
        const written = await writeRunReport(htmlPath, run, { machine, source: opts.record });
        process.stdout.write(`wrote ${written.html}\n`);
      }
    });
}
