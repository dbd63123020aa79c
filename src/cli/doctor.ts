/**
 * `framecost doctor`: what this machine can run and how fast, and which ffmpeg
 * will encode video. `--json` prints only the JSON document on stdout.
 */
import type { Command } from "commander";
import { z } from "zod";
import type { DoctorData } from "../media/machine.ts";
import { parseOptions, pathOpt } from "./options.ts";

const DoctorOptions = z.object({
  json: z.boolean().default(false),
  ffmpeg: pathOpt().optional(),
});

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/** The human-readable summary. */
export function formatDoctor(d: DoctorData): string {
  const lines = [
    `node      ${d.node} (${d.platform}-${d.arch}), tfjs ${d.tfjsVersion}`,
    `cpu       ${d.cpu.model}, ${d.cpu.cores} logical cores (${d.cpu.available} usable), ${gib(d.memoryBytes)} memory`,
    "backends  fp32 GEMM measured here (n x n matMul, median after a warm-up; 1 FLOP = 1 add or 1 multiply)",
  ];
  const width = Math.max(...d.backends.map((b) => b.name.length));
  for (const b of d.backends) {
    const name = `  ${b.name.padEnd(width)}`;
    if (!b.available) {
      lines.push(`${name}  not available: ${b.reason}`);
      if (b.howToGet) lines.push(`  ${" ".repeat(width)}  to get it: ${b.howToGet}`);
    } else if (b.gemmGflops !== undefined && b.gemm) {
      lines.push(
        `${name}  ${b.gemmGflops.toFixed(2).padStart(7)} GFLOP/s  (${b.gemm.size}x${b.gemm.size}, ` +
          `median of ${b.gemm.runs}: ${b.gemm.medianMs.toFixed(2)} ms)  ${b.summary}`,
      );
    } else {
      lines.push(`${name}  available (not calibrated)  ${b.summary}`);
    }
  }
  lines.push(
    `auto      ${d.autoBackend ?? "none"} (what generate runs when --backend is not given: the fastest GEMM above)`,
  );
  lines.push(
    d.ffmpeg.path !== null
      ? `ffmpeg    ${d.ffmpeg.path} (version ${d.ffmpeg.version}, found via ${d.ffmpeg.source})`
      : `ffmpeg    none: ${d.ffmpeg.reason}`,
  );
  return lines.join("\n");
}

export function register(program: Command): void {
  program
    .command("doctor")
    .description("show this machine: Node, CPU, tensor backends with measured GEMM GFLOP/s, ffmpeg")
    .option("--json", "print the description as JSON on stdout (nothing else)")
    .option("--ffmpeg <path>", "ffmpeg binary to check instead of searching for one")
    .action(async (raw: Record<string, unknown>) => {
      const opts = parseOptions(DoctorOptions, raw);
      // Loaded here, not at the top: tfjs takes a second to load, and --help should not wait for it.
      const { doctorData } = await import("../media/machine.ts");
      const data = await doctorData({ ffmpeg: { explicitPath: opts.ffmpeg } });
      // the native engine (generation only), listed after the tfjs backends with its version, threads, GEMM
      const { onnxStatus } = await import("../engine/onnx-backend.ts");
      data.backends.push(await onnxStatus());
      // generate's default: the available backend with the fastest calibrated GEMM (see run/generation.ts)
      const fastest = data.backends
        .filter((b) => b.available && b.gemmGflops !== undefined)
        .sort((a, b) => (b.gemmGflops ?? 0) - (a.gemmGflops ?? 0))[0];
      data.autoBackend = fastest?.name ?? data.autoBackend;
      process.stdout.write(opts.json ? `${JSON.stringify(data, null, 2)}\n` : `${formatDoctor(data)}\n`);
    });
}
