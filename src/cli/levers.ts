/**
 * `framecost levers`: every cost lever the shipped model can pull, measured
 * in one run on one protocol (src/run/levers.ts), as a table, levers.json
 * (what `framecost path --levers-measured` reads) and the cost-quality
 * frontier plot.
 */
import type { Command } from "commander";
import { z } from "zod";
import { formatLeversTable, writeLeversOutputs } from "../report/levers.ts";
import { measureLevers, PROTOCOLS } from "../run/levers.ts";
import { backendOpt, intOpt, parseOptions, pathOpt, stringOpt } from "./options.ts";

const Options = z.object({
  model: pathOpt({ mustExist: "dir" }),
  out: stringOpt(),
  quick: z.boolean().default(false),
  backend: backendOpt(),
  threads: intOpt({ min: 1, max: 256 }).optional(),
  seed: intOpt({ min: 0 }),
  frontier: z.boolean().default(true),
});

export function register(program: Command): void {
  program
    .command("levers")
    .description(
      "measure every cost lever on the shipped model in one run (same protocol for all): cost and quality per lever, levers.json for path --levers-measured, the cost-quality frontier plot",
    )
    .option("--model <dir>", "the teacher's model folder; students are looked for beside it", "models/tiny")
    .option("--out <dir>", "where levers.json and levers-frontier.svg/.png go", "out/levers")
    .option(
      "--quick",
      "a quarter of the model card's protocol (8 first frames, 2 clips of 8 frames per lever)",
    )
    .option("--backend <name>", "backend every lever runs on (onnx, wasm, ...)", "onnx")
    .option("--threads <n>", "onnx: intra-op threads (default: all cores)")
    .option("--seed <n>", "seed of the protocol's noise", "12345")
    .option("--no-frontier", "skip the teacher's step counts per sampler (the frontier)")
    .action(async (raw: Record<string, unknown>) => {
      const o = parseOptions(Options, raw);
      const base = PROTOCOLS[o.quick ? "quick" : "full"];
      const record = await measureLevers({
        modelDir: o.model,
        protocol: { ...base, seed: o.seed, backend: o.backend },
        threads: o.threads,
        frontier: o.frontier ? undefined : null,
        onProgress: (line) => process.stderr.write(`levers: ${line}\n`),
      });
      const written = await writeLeversOutputs(o.out, record);
      const lines = formatLeversTable(record);
      lines.push(`wrote ${written.json}, ${written.plots.flatMap((p) => [p.svg, p.png]).join(", ")}`);
      process.stdout.write(`${lines.join("\n")}\n`);
    });
}
