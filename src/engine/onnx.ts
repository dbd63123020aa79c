/**
 * The native engine: onnxruntime-node (ORT). Generation runs the same weights
 * exported to ONNX (model/onnx-export.ts) on ORT's multi-threaded CPU kernels,
 * or on its CUDA execution provider where that was installed; training stays
 * on tfjs.
 *
 * Here: loading ORT (optional at run time: the package may have been dropped
 * by a failed install), the availability probe, session creation with thread
 * count and device, GEMM calibration with a MatMul graph built in code, and
 * reading ORT's per-node profile.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import type * as Ort from "onnxruntime-node";
import { RuntimeFailure, UserError } from "../util/errors.ts";
import { Rng } from "../util/rng.ts";
import { defaultLoader, type ModuleLoader } from "./backend.ts";
import { median } from "./calibrate.ts";
import { GraphBuilder } from "./onnx-graph.ts";

export type OrtModule = typeof Ort;
export type OnnxSession = Ort.InferenceSession;
export type OnnxDevice = "cpu" | "cuda";

export const ORT_PACKAGE = "onnxruntime-node";

/** How to get the CUDA provider: the project's .npmrc skips its download (FACTS.md), this fetches it. */
export const CUDA_HOW_TO =
  "on Linux x64 with an NVIDIA GPU, CUDA 12 and cuDNN 9, fetch the provider (the project's .npmrc skips " +
  "that download) with: ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js " +
  "(needs network access to nuget.org)";

let ortDefault: Promise<OrtModule> | undefined;

/** Loads onnxruntime-node; rejects with a RuntimeFailure that says why it is not there. */
export function loadOrt(load: ModuleLoader = defaultLoader): Promise<OrtModule> {
  const go = async (): Promise<OrtModule> => {
    let mod: unknown;
    try {
      mod = await load(ORT_PACKAGE);
    } catch (err) {
      const code = (err as { code?: string } | null)?.code;
      const message = err instanceof Error ? err.message.split("\n")[0] : String(err);
      const missing =
        (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") && message.includes(ORT_PACKAGE);
      throw new RuntimeFailure(
        missing ? `${ORT_PACKAGE} is not installed` : `${ORT_PACKAGE} failed to load: ${message}`,
      );
    }
    const ort = ((mod as { default?: OrtModule }).default ?? mod) as OrtModule;
    if (typeof ort?.InferenceSession?.create !== "function") {
      throw new RuntimeFailure(`${ORT_PACKAGE} loaded but has no InferenceSession`);
    }
    // One line per user mistake: ORT's own console log would add lines (e.g. for a missing CUDA library).
    ort.env.logLevel = "fatal";
    return ort;
  };
  if (load !== defaultLoader) return go();
  ortDefault ??= go();
  return ortDefault;
}

/** Intra-op threads when --threads is not given: every core this process may use. */
export function defaultOnnxThreads(): number {
  return availableParallelism();
}

export interface OnnxProbe {
  available: boolean;
  /** "onnxruntime-node 1.30.0" or why it is not available */
  reason: string;
  /** package version, when it loaded */
  version?: string;
  /** intra-op threads used when none is asked for */
  defaultThreads: number;
  /** execution providers this build knows; "bundled: false" ones need a separate download */
  providers: Array<{ name: string; bundled: boolean }>;
}

export async function probeOnnx(load: ModuleLoader = defaultLoader): Promise<OnnxProbe> {
  const defaultThreads = defaultOnnxThreads();
  let ort: OrtModule;
  try {
    ort = await loadOrt(load);
  } catch (err) {
    return { available: false, reason: (err as Error).message, defaultThreads, providers: [] };
  }
  const version = ort.env.versions?.node ?? ort.env.versions?.common ?? "unknown";
  const list = (ort as unknown as { listSupportedBackends?: () => Array<{ name: string; bundled: boolean }> })
    .listSupportedBackends;
  const providers = typeof list === "function" ? list() : [{ name: "cpu", bundled: true }];
  return { available: true, reason: `${ORT_PACKAGE} ${version}`, version, defaultThreads, providers };
}

/** The probe of a `--backend onnx` the user asked for: a UserError saying how to get it when it is missing. */
export async function requireOnnx(load: ModuleLoader = defaultLoader): Promise<OnnxProbe> {
  const probe = await probeOnnx(load);
  if (!probe.available) {
    throw new UserError(
      `--backend onnx is not available: ${probe.reason}; reinstall with npm install (onnxruntime-node)`,
    );
  }
  return probe;
}

export function checkThreads(threads: number): number {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new UserError(`--threads must be an integer >= 1, got ${threads}; leave it out to use every core`);
  }
  return threads;
}

export function checkDevice(device: string): OnnxDevice {
  if (device !== "cpu" && device !== "cuda") {
    throw new UserError(`--device must be cpu or cuda, got "${device}"; leave it out to run on the CPU`);
  }
  return device;
}

export interface OnnxSessionOptions {
  /** intra-op threads (CPU); default every usable core */
  threads?: number;
  device?: OnnxDevice;
  /** a folder for ORT's per-node profile (enableProfiling); read it back with endOnnxProfile */
  profileDir?: string;
  /** ORT's CPU memory arena (default off; a training step's big intermediates are faster with it) */
  memArena?: boolean;
  load?: ModuleLoader;
}

/**
 * An ORT session for a serialized model. `device: "cuda"` without the CUDA
 * provider installed is a UserError that says how to get it.
 */
export async function createOnnxSession(
  bytes: Uint8Array,
  opts: OnnxSessionOptions = {},
): Promise<OnnxSession> {
  const threads = checkThreads(opts.threads ?? defaultOnnxThreads());
  const device = checkDevice(opts.device ?? "cpu");
  const ort = await loadOrt(opts.load);
  const options: Ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    executionProviders: device === "cuda" ? ["cuda", "cpu"] : ["cpu"],
    // a small model at batch 1: the arena's pre-grown blocks cost more resident memory than they save time
    enableCpuMemArena: opts.memArena ?? false,
    // Idle intra-op threads sleep instead of spinning. Spinning threads of one session starve the next one
    // (model and guide, full and cached graphs alternate call by call) and any other process on a small
    // machine: on 2 cores, generate --cache-interval 2 went from 171-197 to 101-113 ms per frame and the
    // guided default from 99-127 to 97-107, two runs each, side by side.
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  };
  if (opts.profileDir !== undefined) {
    options.enableProfiling = true;
    options.profileFilePrefix = join(opts.profileDir, "ort-profile");
  }
  try {
    return await ort.InferenceSession.create(bytes, options);
  } catch (err) {
    const message = err instanceof Error ? err.message.split("\n")[0] : String(err);
    if (device === "cuda") {
      throw new UserError(
        `--device cuda: onnxruntime-node has no working CUDA execution provider here (${message}); ${CUDA_HOW_TO}; ` +
          "or leave out --device to run on the CPU",
      );
    }
    throw new RuntimeFailure(`onnxruntime could not load the model: ${message}`);
  }
}

/** One node's time in ORT's profile, summed over the runs the profile covers. */
export interface OrtNodeTiming {
  /** node name after ORT's graph optimizations (fused nodes get new names) */
  name: string;
  /** the kernel ORT ran (e.g. MatMul, FusedMatMul, Gemm, QuickGelu) */
  opType: string;
  provider: string;
  /** times the node ran */
  calls: number;
  totalMs: number;
}

/**
 * ORT's profile JSON (Chrome trace events) -> kernel time per node, in order of
 * first appearance; the first `skipRuns` runs of every node (warm-up) are left out.
 */
export function parseOrtProfile(events: unknown, skipRuns = 0): OrtNodeTiming[] {
  if (!Array.isArray(events)) throw new RuntimeFailure("ORT profile: expected a JSON array of trace events");
  const byName = new Map<string, OrtNodeTiming>();
  const seen = new Map<string, number>();
  for (const e of events as Array<Record<string, unknown>>) {
    if (e?.cat !== "Node" || typeof e.name !== "string" || !e.name.endsWith("_kernel_time")) continue;
    const args = (e.args ?? {}) as Record<string, unknown>;
    const name = e.name.slice(0, -"_kernel_time".length);
    const runs = (seen.get(name) ?? 0) + 1;
    seen.set(name, runs);
    if (runs <= skipRuns) continue;
    let t = byName.get(name);
    if (!t) {
      t = {
        name,
        opType: String(args.op_name ?? "unknown"),
        provider: String(args.provider ?? "unknown"),
        calls: 0,
        totalMs: 0,
      };
      byName.set(name, t);
    }
    t.calls++;
    t.totalMs += Number(e.dur ?? 0) / 1000; // dur is in microseconds
  }
  return [...byName.values()];
}

/** Ends profiling of a session created with `profileDir`, reads the profile (less `skipRuns` warm-up runs), deletes the folder. */
export function endOnnxProfile(session: OnnxSession, profileDir: string, skipRuns = 0): OrtNodeTiming[] {
  session.endProfiling();
  try {
    const file = readdirSync(profileDir).find((f) => f.startsWith("ort-profile") && f.endsWith(".json"));
    if (!file) throw new RuntimeFailure(`ORT wrote no profile into ${profileDir}`);
    return parseOrtProfile(JSON.parse(readFileSync(join(profileDir, file), "utf8")), skipRuns);
  } finally {
    rmSync(profileDir, { recursive: true, force: true });
  }
}

/** A fresh folder for one session's profile. */
export function newProfileDir(): string {
  return mkdtempSync(join(tmpdir(), "framecost-ort-"));
}

export interface OnnxGemmCalibration {
  backend: "onnx";
  device: OnnxDevice;
  threads: number;
  /** n of the n x n x n product */
  size: number;
  /** timed runs (warm-up excluded) */
  runs: number;
  /** 2 n^3 */
  flopsPerRun: number;
  /** first run: ORT allocates and packs the constant operand; reported apart, not in the median */
  warmupMs: number;
  /** median wall time of the timed runs, feeding the input and reading the output included */
  medianMs: number;
  /** flopsPerRun / medianMs, in GFLOP/s (1e9 FLOPs per second) */
  gflops: number;
}

export interface OnnxCalibrateOptions {
  threads?: number;
  device?: OnnxDevice;
  /** square side n (default 512: 1024 reads a few % higher here but adds ~40 MB to peak memory, and generate must stay small) */
  size?: number;
  /** timed runs after the warm-up (default 9) */
  runs?: number;
  load?: ModuleLoader;
}

/**
 * fp32 GEMM throughput of ORT: one MatMul node, A [n, n] fed per run times a
 * constant B [n, n] (like the model's weights, which ORT prepacks once).
 */
export async function calibrateOnnxGemm(opts: OnnxCalibrateOptions = {}): Promise<OnnxGemmCalibration> {
  const size = opts.size ?? 512;
  const runs = opts.runs ?? 9;
  const threads = checkThreads(opts.threads ?? defaultOnnxThreads());
  const device = opts.device ?? "cpu";
  if (!Number.isInteger(size) || size < 1)
    throw new UserError(`GEMM size must be an integer >= 1, got ${size}`);
  if (!Number.isInteger(runs) || runs < 1)
    throw new UserError(`GEMM runs must be an integer >= 1, got ${runs}`);
  const ort = await loadOrt(opts.load);
  // Fixed seed: reruns multiply the same matrices.
  const rng = new Rng(1);
  const fill = () => {
    const m = new Float32Array(size * size);
    for (let i = 0; i < m.length; i++) m[i] = rng.uniform(-1, 1);
    return m;
  };
  const g = new GraphBuilder("gemm");
  const a = g.input("a", [size, size]);
  g.output(g.matMul(a, g.weight("b", fill(), [size, size]), "c")); // [n, n] x [n, n] -> [n, n]
  const session = await createOnnxSession(g.encode(), { threads, device, load: opts.load });
  const feed = { a: new ort.Tensor("float32", fill(), [size, size]) };
  const timeOne = async (): Promise<number> => {
    const t0 = performance.now();
    const out = await session.run(feed);
    void (out.c.data as Float32Array)[0]; // on the host: the run has finished
    const ms = performance.now() - t0;
    out.c.dispose();
    return ms;
  };
  try {
    const warmupMs = await timeOne();
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) samples.push(await timeOne());
    const medianMs = median(samples);
    const flopsPerRun = 2 * size ** 3;
    return {
      backend: "onnx",
      device,
      threads,
      size,
      runs,
      flopsPerRun,
      warmupMs,
      medianMs,
      gflops: flopsPerRun / (medianMs * 1e6),
    };
  } finally {
    await session.release();
  }
}
