/**
 * `framecost gpus`: the GPU catalog (peaks, bandwidth, memory, power, prices,
 * each with a source and date) with the utilization each GPU defaults to and
 * where that comes from, and hosted video APIs' list prices. `--json` emits it.
 */
import type { Command } from "commander";
import { z } from "zod";
import { defaultMfu, parallelModel } from "../cost/calibration.ts";
import { type Catalog, chosenPrice, loadCatalog } from "../cost/catalog.ts";
import { parseOptions, pathOpt } from "./options.ts";

const GpusOptions = z.object({
  json: z.boolean().default(false),
  catalog: pathOpt({ mustExist: "file" }).optional(),
});

/** The catalog with each GPU's derived defaults (MFU, multi-GPU serial fraction, chosen price). */
export function gpusDocument(catalog: Catalog) {
  return {
    note: catalog.note,
    gpus: catalog.gpus.map((g) => ({
      ...g,
      defaults: {
        price: chosenPrice(g),
        mfu: defaultMfu(catalog, g),
        sequenceParallel: parallelModel(g),
      },
    })),
    hostedApis: catalog.hostedApis.map((a) => ({ ...a, usdPerVideoMinute: a.usdPerSecond * 60 })),
  };
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

export function formatGpus(catalog: Catalog): string {
  const doc = gpusDocument(catalog);
  const head = ["id", "BF16 TFLOPS", "FP32 TFLOPS", "TB/s", "GB", "W", "USD/h (lowest quote)", "MFU"];
  const rows = doc.gpus.map((g) => [
    g.id,
    String(g.bf16DenseTflops.value),
    String(g.fp32Tflops.value),
    String(g.memoryBandwidthTBs.value),
    String(g.memoryGB.value),
    String(g.boardPowerW.value),
    g.defaults.price
      ? `${g.defaults.price.usdPerHour.toFixed(2)} ${g.prices.reduce((a, b) => (b.usdPerHour < a.usdPerHour ? b : a)).provider}`
      : "none (--price)",
    g.defaults.mfu.value.toFixed(3),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => pad(c, widths[i], i > 0 && i < 6))
      .join("  ")
      .trimEnd();
  const out = [line(head), ...rows.map(line), ""];
  out.push(
    "Peaks are dense (no sparsity); FLOP = 2 x multiply-accumulate. Each figure's source and date: --json.",
  );
  out.push("MFU: the default utilization, computed from published run times with framecost's FLOP model:");
  for (const g of doc.gpus)
    out.push(`  ${g.id.padEnd(9)} ${g.defaults.mfu.summary ?? g.defaults.mfu.source}`);
  out.push(
    "  (run times: xDiT's HunyuanVideo report, the CogVideoX and Wan2.1 READMEs; full sources with --json)",
  );
  out.push("");
  out.push("Hosted video APIs, list price:");
  const w = Math.max(...doc.hostedApis.map((a) => a.name.length));
  for (const a of doc.hostedApis) {
    out.push(
      `  ${pad(a.name, w)}  $${a.usdPerSecond.toFixed(2)}/s = $${a.usdPerVideoMinute.toFixed(2)}/min  (${a.source}, ${a.asOf})`,
    );
  }
  return out.join("\n");
}

export function register(program: Command): void {
  program
    .command("gpus")
    .description(
      "list the GPU catalog: peak TFLOPS, bandwidth, memory, power, rental prices, default MFU (all sourced)",
    )
    .option("--json", "print the catalog as JSON (with every figure's source and date)")
    .option(
      "--catalog <file>",
      "merge your own catalog (same schema as src/cost/gpus.json): new GPUs, other prices",
    )
    .action((raw: Record<string, unknown>) => {
      const opts = parseOptions(GpusOptions, raw);
      const catalog = loadCatalog(opts.catalog);
      process.stdout.write(
        opts.json ? `${JSON.stringify(gpusDocument(catalog), null, 2)}\n` : `${formatGpus(catalog)}\n`,
      );
    });
}
