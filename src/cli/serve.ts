/**
 * `framecost serve`: a local page to watch the model denoise step by step
 * and what each step costs (src/serve/). This file parses the options,
 * starts the server, prints where it listens and stops it on Ctrl-C.
 */
import type { Command } from "commander";
import { z } from "zod";
import { loadCatalog } from "../cost/index.ts";
import { ensureWritableDir } from "../media/files.ts";
import { listModels } from "../serve/models.ts";
import { startServer } from "../serve/server.ts";
import { UserError } from "../util/errors.ts";
import { catchStopSignals } from "../util/signals.ts";
import { backendOpt, intOpt, parseOptions, pathOpt, stringOpt } from "./options.ts";

const Options = z.object({
  port: intOpt({ min: 0, max: 65_535 }),
  host: stringOpt(),
  models: pathOpt({ mustExist: "dir" }),
  out: stringOpt(),
  backend: backendOpt().optional(),
  threads: intOpt({ min: 1, max: 256 }).optional(),
  catalog: pathOpt({ mustExist: "file" }).optional(),
});

type Opts = z.output<typeof Options>;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export async function serveCommand(o: Opts): Promise<number> {
  const models = listModels(o.models);
  if (models.length === 0)
    throw new UserError(
      `--models ${o.models} holds no model folder (a subfolder with model.json); pass the folder that holds tiny/`,
    );
  ensureWritableDir(o.out, "--out");
  const catalog = loadCatalog(o.catalog);
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer({
      host: o.host,
      port: o.port,
      modelsDir: o.models,
      outDir: o.out,
      backend: o.backend,
      threads: o.threads,
      catalog,
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOTFOUND" || code === "EAI_AGAIN")
      throw new UserError(
        `--host ${o.host} is not an address of this machine (${code}); pass an IP address such as 127.0.0.1 or a name that resolves here`,
      );
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL")
      throw new UserError(
        `--host ${o.host} --port ${o.port} cannot be listened on (${code}); pass another --port (0 = any free one) or --host`,
      );
    throw err;
  }
  const lines = [
    `framecost serve: ${server.url}`,
    `  models  ${models.map((m) => m.dir).join(", ")}`,
    `  output  ${o.out}/<run-id>/ (run.json, frames/)`,
    ...(LOOPBACK.test(o.host) ? [] : [`  note    --host ${o.host}: other machines can reach this page`]),
    "  Ctrl-C stops the server (a run in progress stops within a step and writes its record)",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  await new Promise<void>((resolve) => {
    const stop = catchStopSignals((signal) => {
      process.stderr.write(`\n${signal}: stopping the server...\n`);
      stop.dispose();
      resolve();
    });
  });
  await server.close();
  return 0;
}

export function register(program: Command): void {
  program
    .command("serve")
    .description(
      "a local page: watch the model denoise step by step (x_t and predicted x0), live counters of NFEs, FLOPs, wall time and USD per video minute, quality against cost",
    )
    .option("--port <n>", "port to listen on (0 = any free one)", "8080")
    .option("--host <addr>", "address to listen on (127.0.0.1: this machine only)", "127.0.0.1")
    .option("--models <dir>", "folder whose model folders (each with model.json) the page may load", "models")
    .option("--out <dir>", "where each run writes its folder (run.json, frames/)", "out/serve")
    .option(
      "--backend <name>",
      "tensorflow | wasm | cpu | onnx (default: fastest available, by GEMM calibration at the first run)",
    )
    .option("--threads <n>", "onnx: intra-op threads (default: all cores)")
    .option("--catalog <file>", "your own GPU catalog JSON, merged over the shipped one")
    .action(async (raw: Record<string, unknown>) => {
      const code = await serveCommand(parseOptions(Options, raw));
      if (code !== 0) process.exitCode = code;
    });
}
