/**
 * `framecost compare A.json B.json`: two run records or two sweep records
 * side by side with ratios B / A (two backends, two machines, two samplers).
 * `--json` prints the comparison as JSON instead of tables.
 */
import type { Command } from "commander";
import { z } from "zod";
import { compare, formatComparison, loadRecordFile } from "../report/compare.ts";
import { choiceOpt, parseOptions, pathOpt, stringOpt } from "./options.ts";

const CompareOptions = z.object({
  a: pathOpt(),
  b: pathOpt(),
  json: z.boolean().default(false),
  convention: choiceOpt(["flops", "macs"]).optional(),
  price: stringOpt().optional(),
  metric: stringOpt().optional(),
});

export function register(program: Command): void {
  program
    .command("compare")
    .description("put two run records or two sweep records side by side, with ratios B/A")
    .argument("<A>", "the first record (run.json or sweep.json)")
    .argument("<B>", "the second record, of the same kind")
    .option("--json", "print the comparison as JSON on stdout (nothing else)")
    .option("--convention <unit>", "count in flops (1 multiply-accumulate = 2) or macs (= 1); default: A's")
    .option(
      "--price <key>",
      "sweeps: the USD column to compare, local or a GPU id; default: the first both have",
    )
    .option("--metric <name>", "sweeps: the quality metric to compare; default: swdPatches when both have it")
    .action(async (a: string, b: string, raw: Record<string, unknown>) => {
      const opts = parseOptions(CompareOptions, { ...raw, a, b }, { names: { a: "<A>", b: "<B>" } });
      const [la, lb] = await Promise.all([loadRecordFile(opts.a), loadRecordFile(opts.b)]);
      const c = compare(la, lb, { convention: opts.convention, priceKey: opts.price, metric: opts.metric });
      process.stdout.write(opts.json ? `${JSON.stringify(c, null, 2)}\n` : formatComparison(c));
    });
}
