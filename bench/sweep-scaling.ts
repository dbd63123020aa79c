/**
 * Sweep scaling: the same grid with 1 worker and with 2 workers, measured
 * in one run (alternating 1, 2, 1, 2, ...; best of `--reps` each), printing
 * the speed-up of the whole sweep, worker start-up included. The grid is the
 * one `framecost sweep` runs by default (every sampler x 1..50 steps, 4 clips
 * of 4 frames), so the figure is what a user's sweep gains.
 * Run: npx tsx bench/sweep-scaling.ts [--model models/tiny] [--reps 2] [--clips N] [--backend wasm]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runSweep, SWEEP_DEFAULTS, type SweepOptions } from "../src/run/sweep.ts";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "models/tiny" },
    reps: { type: "string", default: "2" },
    clips: { type: "string", default: String(SWEEP_DEFAULTS.clips) },
    backend: { type: "string", default: "wasm" },
  },
});
const reps = Number(values.reps);
const base: Omit<SweepOptions, "workers" | "out"> = {
  steps: [...SWEEP_DEFAULTS.steps],
  samplers: [...SWEEP_DEFAULTS.samplers],
  frames: SWEEP_DEFAULTS.frames,
  clips: Number(values.clips),
  referenceClips: SWEEP_DEFAULTS.referenceClips,
  seed: 0,
  fps: 24,
  model: values.model,
  backend: values.backend,
  resume: false,
  convention: "flops",
  gpus: ["h100-sxm"],
  report: false,
};
interface Run {
  wallMs: number;
  startupMs: number;
}
const runs: Record<number, Run[]> = { 1: [], 2: [] };
for (let r = 0; r < reps; r++) {
  for (const workers of [1, 2]) {
    const out = mkdtempSync(join(tmpdir(), "framecost-scaling-"));
    const res = await runSweep({ ...base, workers, out });
    runs[workers].push({ wallMs: res.wallMs, startupMs: res.startupMs });
    rmSync(out, { recursive: true, force: true });
    process.stderr.write(`  rep ${r + 1}, ${workers} worker(s): ${(res.wallMs / 1000).toFixed(2)} s\n`);
  }
}
const best = (xs: Run[]) => xs.reduce((a, b) => (b.wallMs < a.wallMs ? b : a));
const fmt = (x: Run) => `${(x.wallMs / 1000).toFixed(2)} s (start-up ${(x.startupMs / 1000).toFixed(2)} s)`;
const cells = base.steps.length * base.samplers.length;
const b1 = best(runs[1]);
const b2 = best(runs[2]);
console.log(
  `sweep-scaling bench: ${cells} cells (${base.samplers.join(",")} x ${base.steps.join(",")} steps, ${base.clips} clips x ${base.frames} frames), ${base.backend}, best of ${reps}, load average ${loadavg()[0].toFixed(1)}`,
);
console.log(
  `  1 worker   ${fmt(b1)}  (all: ${runs[1].map((t) => (t.wallMs / 1000).toFixed(2)).join(", ")} s)`,
);
console.log(
  `  2 workers  ${fmt(b2)}  (all: ${runs[2].map((t) => (t.wallMs / 1000).toFixed(2)).join(", ")} s)`,
);
console.log(
  `  speed-up   ${(b1.wallMs / b2.wallMs).toFixed(2)}x whole sweep (target >= 1.8); ` +
    `${((b1.wallMs - b1.startupMs) / (b2.wallMs - b2.startupMs)).toFixed(2)}x after start-up`,
);
