/**
 * What watching costs: the same run made by runGeneration alone and from `framecost serve`'s page in
 * headless Chromium (every step streamed and drawn), alternated so both see the same machine. Prints the
 * median ms per NFE and the wall ms per frame of each pair and the ratio of their medians.
 *
 *   npx tsx bench/serve-overhead.ts [--pairs 5] [--steps 20] [--frames 4] [--threads 1]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { shippedCatalog } from "../src/cost/index.ts";
import { quantile } from "../src/meter/meter.ts";
import { loadNetwork, runGeneration } from "../src/run/generation.ts";
import { startServer } from "../src/serve/server.ts";
import { launchChromium } from "../test/helpers/browser.ts";
import { startOnPage, waitForReady, waitForRunEnd } from "../test/helpers/serve-page.ts";

const { values } = parseArgs({
  options: {
    pairs: { type: "string", default: "5" },
    steps: { type: "string", default: "20" },
    frames: { type: "string", default: "4" },
    threads: { type: "string", default: "1" },
  },
});
const pairs = Number(values.pairs);
const steps = Number(values.steps);
const frames = Number(values.frames);
const threads = Number(values.threads);
const model = "models/tiny";

const out = mkdtempSync(join(tmpdir(), "framecost-bench-serve-"));
const server = await startServer({
  host: "127.0.0.1",
  port: 0,
  modelsDir: "models",
  outDir: out,
  backend: "onnx",
  threads,
  catalog: shippedCatalog(),
});
const options = {
  modelDir: model,
  sampler: "ddim",
  steps,
  frames,
  fps: 24,
  seed: 0,
  backend: "onnx",
  threads,
  batchCalls: true,
  convention: "flops" as const,
};
const loaded = await loadNetwork(options);

// the client: the page itself in headless Chromium (test/helpers/browser.ts), drawing every step, on the
// same cores as the run: what watching costs on this machine
const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
await page.goto(server.url);
await waitForReady(page);

/** One run made from the page; its result as the server has it. */
async function served(): Promise<{ msPerNfe: number; wallMs: number }> {
  await startOnPage(page, { model, sampler: "ddim", steps, seed: 0, frames });
  await waitForRunEnd(page);
  const last = server.runner.list().at(-1)!.result!;
  return { msPerNfe: last.msPerNfe!, wallMs: last.wallMs };
}

const rows: Array<{ alone: number; page: number; aloneFrame: number; pageFrame: number }> = [];
await served(); // warm-up: the server loads its network and calibrates once
for (let i = 0; i < pairs; i++) {
  const a = (await runGeneration(options, loaded)).record;
  const b = await served();
  rows.push({
    alone: a.nfeTiming.medianMs!,
    page: b.msPerNfe,
    aloneFrame: a.totals.wallMs / frames,
    pageFrame: b.wallMs / frames,
  });
  console.log(
    `pair ${i + 1}: ms/NFE alone ${a.nfeTiming.medianMs!.toFixed(3)}, served ${b.msPerNfe.toFixed(3)}; ms/frame alone ${(a.totals.wallMs / frames).toFixed(1)}, served ${(b.wallMs / frames).toFixed(1)} `,
  );
}
const median = (xs: number[]) =>
  quantile(
    [...xs].sort((x, y) => x - y),
    0.5,
  );
console.log(
  `median over ${pairs} pairs (ddim ${steps} steps x ${frames} frames, guided, onnx ${threads} thread(s)): served / alone = ${(median(rows.map((r) => r.page)) / median(rows.map((r) => r.alone))).toFixed(3)} per NFE, ${(median(rows.map((r) => r.pageFrame)) / median(rows.map((r) => r.aloneFrame))).toFixed(3)} per frame`,
);
await browser.close();
loaded.net.dispose();
loaded.guide?.net.dispose();
await server.close();
rmSync(out, { recursive: true, force: true });
