/**
 * Sweep scaling: the same grid with 1 worker and with 2 workers, measured
 * in one run (alternating, best of `reps` each), printing the speed-up.
 * Run: npx tsx bench/sweep-scaling.ts [modelDir]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSweep, type SweepOptions } from "../src/cli/sweep.ts";

const model = process.argv[2] ?? "models/tiny";
const reps = 2;
const base: Omit<SweepOptions, "workers" | "out"> = {
  steps: [4, 8, 16, 32],
  samplers: ["ddim", "euler", "dpmpp-2m"],
  frames: 4,
  clips: 1,
  referenceClips: 4,
  seed: 0,
  fps: 24,
  model,
  backend: "wasm",
  resume: false,
  convention: "flops",
  gpus: ["h100-sxm"],
  report: false,
  quiet: true,
};
const times: Record<number, number[]> = { 1: [], 2: [] };
for (let r = 0; r < reps; r++) {
  for (const workers of [1, 2]) {
    const out = mkdtempSync(join(tmpdir(), "framecost-scaling-"));
    const res = await runSweep({ ...base, workers, out });
    times[workers].push(res.wallMs);
    rmSync(out, { recursive: true, force: true });
  }
}
const best = (xs: number[]) => Math.min(...xs);
const cells = base.steps.length * base.samplers.length;
console.log(
  `sweep-scaling bench: ${cells} cells (${base.samplers.join(",")} x ${base.steps.join(",")} steps, ${base.frames} frames), wasm, best of ${reps}`,
);
console.log(
  `  1 worker   ${(best(times[1]) / 1000).toFixed(2)} s  (all: ${times[1].map((t) => (t / 1000).toFixed(2)).join(", ")})`,
);
console.log(
  `  2 workers  ${(best(times[2]) / 1000).toFixed(2)} s  (all: ${times[2].map((t) => (t / 1000).toFixed(2)).join(", ")})`,
);
console.log(`  speed-up   ${(best(times[1]) / best(times[2])).toFixed(2)}x (target >= 1.8)`);
