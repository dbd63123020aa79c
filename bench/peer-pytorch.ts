/**
 * A peer: the same DiT shape, weights and inputs in PyTorch on the CPU
 * (bench/peer_pytorch.py), against framecost's engines on the same machine.
 * Prints framecost's frames/s over PyTorch's, PyTorch's own FLOP count over
 * framecost's analytic count, and how far the outputs are apart.
 *
 * Frames/s here is the network alone: 1000 / (median ms per call x NFEs per
 * frame), for `--steps` DDIM steps (1 NFE each); sampler arithmetic is left
 * out on both sides. framecost is timed before and after PyTorch (the two
 * medians are averaged), so a change in load shows in both.
 *
 * Needs Debian's python3-torch and libopenblas0-pthread (Debian's torch calls
 * whatever libblas.so.3 is installed; without OpenBLAS that is the slow
 * reference BLAS): installed here with apt-get if missing (as root, or with
 * sudo), never on CI (CI set: the bench stops and says so).
 *
 * Run: npx tsx bench/peer-pytorch.ts [--preset tiny] [--threads 2] [--runs 20] [--steps 20] [--model models/tiny]
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { initBackend } from "../src/engine/backend.ts";
import { median } from "../src/engine/calibrate.ts";
import { analyticFlopsPerCall } from "../src/meter/analytic.ts";
import { type ModelConfig, PRESETS } from "../src/model/config.ts";
import { type NetworkInputs, positionEmbedding, prepareInputs, VideoDiT } from "../src/model/dit.ts";
import { loadWeights } from "../src/model/io.ts";
import { OnnxDiT } from "../src/model/onnx-export.ts";
import { initParams, paramSlots } from "../src/model/params.ts";
import { Rng } from "../src/util/rng.ts";

const PYTHON = "/usr/bin/python3"; // Debian's python, where python3-torch installs

const { values: args } = parseArgs({
  options: {
    preset: { type: "string", default: "tiny" },
    threads: { type: "string", default: "2" },
    runs: { type: "string", default: "20" },
    steps: { type: "string", default: "20" },
    model: { type: "string", default: "models/tiny" },
    seed: { type: "string", default: "1" },
  },
});
const threads = Number(args.threads);
const runs = Number(args.runs);
const steps = Number(args.steps);
const seed = Number(args.seed);

/** PyTorch, and OpenBLAS under it: Debian's torch calls whatever libblas.so.3 is, the slow reference BLAS otherwise. */
const PACKAGES = ["python3-torch", "libopenblas0-pthread"];

function installed(pkg: string): boolean {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax, not a JS template
  const r = spawnSync("dpkg-query", ["-W", "-f=${Status}", pkg], { encoding: "utf8" });
  return r.status === 0 && r.stdout.includes("install ok installed");
}

function hasTorch(): boolean {
  return spawnSync(PYTHON, ["-c", "import torch, numpy"], { stdio: "ignore" }).status === 0;
}

function ensureTorch(): void {
  const missing = PACKAGES.filter((p) => !installed(p));
  if (missing.length === 0 && hasTorch()) return;
  if (process.env.CI) {
    console.error(
      `${missing.join(", ")} not installed, and this bench does not install packages on CI (CI is set)`,
    );
    process.exit(2);
  }
  for (const pkg of missing) {
    const policy = spawnSync("apt-cache", ["policy", pkg], { encoding: "utf8" });
    if (policy.status !== 0 || !/Candidate: \d/.test(policy.stdout)) {
      console.error(`${pkg} is not installed and apt has no candidate for it (a Debian package)`);
      process.exit(2);
    }
  }
  const root = process.getuid?.() === 0;
  const cmd = [...(root ? [] : ["sudo"]), "apt-get", "install", "-y", "--no-install-recommends", ...missing];
  console.log(`installing the PyTorch peer: ${cmd.join(" ")} (python3-torch pulls ~170 packages, once)`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const r = spawnSync(cmd[0], cmd.slice(1), { stdio: "inherit", env });
  if (r.status !== 0 || !hasTorch()) {
    console.error(`apt-get did not install a working PyTorch (exit ${r.status}); run: ${cmd.join(" ")}`);
    process.exit(2);
  }
}

function weights(): { cfg: ModelConfig; flat: Float32Array; source: string } {
  const preset = PRESETS[args.preset];
  if (!preset) throw new Error(`--preset must be one of ${Object.keys(PRESETS).join(", ")}`);
  if (existsSync(`${args.model}/model.json`)) {
    const w = loadWeights(args.model, preset);
    return { cfg: w.config, flat: w.flat, source: `${args.model} (shipped weights)` };
  }
  const flat = initParams(preset, seed);
  const rng = new Rng(seed + 1);
  for (let i = 0; i < flat.length; i++) flat[i] += 0.02 * rng.normal(); // adaLN-Zero starts at 0
  return { cfg: preset, flat, source: `random weights (no ${args.model}/model.json)` };
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Median ms of `runs` calls after one warm-up call. */
async function timeCalls(call: () => Promise<unknown>): Promise<number> {
  await call();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await call();
    samples.push(performance.now() - t0);
  }
  return median(samples);
}

ensureTorch();
const { cfg, flat, source } = weights();
const frame = cfg.imageSize * cfg.imageSize * cfg.channels;
const rng = new Rng(seed);
const mask = new Array(cfg.contextFrames).fill(1);
const inputs: NetworkInputs = prepareInputs(
  cfg,
  1,
  rng.normals(frame),
  rng.normals(cfg.contextFrames * frame),
  mask,
  [437],
);

await initBackend("wasm");
const onnx = await OnnxDiT.create(cfg, flat, { threads });
const tfModel = new VideoDiT(cfg, flat);
const expected = await onnx.forwardPrepared(inputs);
const onnxCall = () => onnx.forwardPrepared(inputs);
const wasmCall = async () => {
  const y = tfModel.forwardPrepared(inputs);
  await y.data();
  y.dispose();
};

console.log(
  `preset ${cfg.name}, batch 1, ${source}; ${threads} threads for onnx and PyTorch, median of ${runs} calls`,
);
const before = { onnx: await timeCalls(onnxCall), wasm: await timeCalls(wasmCall) };

const dir = mkdtempSync(join(tmpdir(), "framecost-peer-"));
let torchResult: {
  torch: string;
  threads: number;
  medianMs: number;
  warmupMs: number;
  flopsPerCall: number;
  flopCounter: string;
  maxAbsDiff: number;
  blas: string;
};
try {
  const meta = {
    config: cfg,
    batch: 1,
    params: paramSlots(cfg).map((s) => ({ name: s.name, shape: s.shape, offset: s.offset, size: s.size })),
  };
  writeFileSync(join(dir, "meta.json"), JSON.stringify(meta));
  writeFileSync(join(dir, "weights.bin"), bytesOf(flat));
  writeFileSync(join(dir, "pos.bin"), bytesOf(positionEmbedding(cfg)));
  writeFileSync(join(dir, "tokens.bin"), bytesOf(inputs.tokens));
  writeFileSync(join(dir, "missing.bin"), bytesOf(inputs.missing));
  writeFileSync(join(dir, "tfeat.bin"), bytesOf(inputs.tFeat));
  writeFileSync(join(dir, "expected.bin"), bytesOf(expected));
  const script = join(import.meta.dirname, "peer_pytorch.py");
  // OpenBLAS sizes its own thread pool apart from torch.set_num_threads
  const env = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  const r = spawnSync(PYTHON, [script, dir, "--threads", String(threads), "--runs", String(runs)], {
    encoding: "utf8",
    env,
  });
  if (r.status !== 0) {
    console.error(`PyTorch run failed (exit ${r.status}):\n${r.stderr}`);
    process.exit(1);
  }
  torchResult = JSON.parse(r.stdout.trim().split("\n").pop() ?? "");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const after = { onnx: await timeCalls(onnxCall), wasm: await timeCalls(wasmCall) };
await onnx.dispose();
tfModel.dispose();

const fps = (ms: number) => 1000 / (ms * steps); // DDIM: 1 NFE per step
const onnxMs = (before.onnx + after.onnx) / 2;
const wasmMs = (before.wasm + after.wasm) / 2;
const analytic = analyticFlopsPerCall(cfg, "flops", 1);
const row = (name: string, ms: number, note: string) =>
  console.log(
    `${name.padEnd(16)} ${ms.toFixed(2).padStart(9)} ms/call ${fps(ms).toFixed(3).padStart(8)} frames/s ` +
      `${(analytic / ms / 1e6).toFixed(2).padStart(8)} GFLOP/s  ${note}`,
  );
console.log(`frames/s for ${steps} DDIM steps (network only); GFLOP/s from framecost's analytic count`);
row(`onnx ${threads}t`, onnxMs, `(before ${before.onnx.toFixed(2)}, after ${after.onnx.toFixed(2)})`);
row("wasm", wasmMs, `(before ${before.wasm.toFixed(2)}, after ${after.wasm.toFixed(2)})`);
row(
  `pytorch ${torchResult.threads}t`,
  torchResult.medianMs,
  `(torch ${torchResult.torch}, BLAS ${torchResult.blas}, warm-up ${torchResult.warmupMs.toFixed(1)} ms)`,
);
console.log(`framecost onnx / PyTorch frames/s: ${(torchResult.medianMs / onnxMs).toFixed(2)}x`);
console.log(`framecost wasm / PyTorch frames/s: ${(torchResult.medianMs / wasmMs).toFixed(2)}x`);
console.log(
  `PyTorch FLOPs / framecost analytic FLOPs per call: ${torchResult.flopsPerCall} / ${analytic} = ` +
    `${(torchResult.flopsPerCall / analytic).toFixed(4)} (${torchResult.flopCounter}: matrix products only)`,
);
console.log(`max |PyTorch - framecost onnx| over the output: ${torchResult.maxAbsDiff.toExponential(2)}`);
