/**
 * GEMM calibration: the fp32 matMul throughput of the active backend, the peak
 * that utilization figures divide by (as nanoGPT's estimate_mfu names its peak).
 *
 * FLOP convention: 1 FLOP = one add or one multiply, so an n x n x n matMul is
 * 2 n^3 FLOPs. Shape: a plain 2-D matMul without transpose flags, the fast path
 * on wasm (transposed or batched matMuls run ~10x slower there).
 */
import { UserError } from "../util/errors.ts";
import { activeBackendName, defaultBackends, initBackend } from "./backend.ts";
import { tf } from "./tf.ts";

export interface CalibrateOptions {
  /** backend to calibrate; switched to (and left active) when given, else the active one */
  backend?: string;
  /** square matrix side n; default per backend (wasm 512, tensorflow 1024, cpu 256) */
  size?: number;
  /** timed runs after the warm-up; the median is reported */
  runs?: number;
}

export interface GemmCalibration {
  backend: string;
  /** n of the n x n x n product */
  size: number;
  /** timed runs (warm-up excluded) */
  runs: number;
  /** 2 n^3 */
  flopsPerRun: number;
  /** first call: compiles kernels, allocates, packs the weights; reported apart, not in the median */
  warmupMs: number;
  /** median wall time of the timed runs, including reading the result back */
  medianMs: number;
  /** flopsPerRun / medianMs, in GFLOP/s (1e9 FLOPs per second) */
  gflops: number;
}

const DEFAULT_RUNS = 9;

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export async function calibrateGemm(opts: CalibrateOptions = {}): Promise<GemmCalibration> {
  if (opts.backend !== undefined) await initBackend(opts.backend);
  const backend = activeBackendName() ?? (await initBackend()).name;
  const size = opts.size ?? defaultBackends().find((b) => b.name === backend)?.gemmSize ?? 512;
  const runs = opts.runs ?? DEFAULT_RUNS;
  if (!Number.isInteger(size) || size < 1)
    throw new UserError(`GEMM size must be an integer >= 1, got ${size}`);
  if (!Number.isInteger(runs) || runs < 1)
    throw new UserError(`GEMM runs must be an integer >= 1, got ${runs}`);

  // Fixed seed: the timing must not depend on the values, but reruns should multiply the same matrices.
  const a = tf.randomUniform([size, size], -1, 1, "float32", 1); // [n, n]
  const b = tf.randomUniform([size, size], -1, 1, "float32", 2); // [n, n]
  const timeOne = (): number => {
    const t0 = performance.now();
    const c = tf.matMul(a, b); // [n, n] x [n, n] -> [n, n]
    c.dataSync(); // forces the kernel to finish
    const ms = performance.now() - t0;
    c.dispose();
    return ms;
  };
  try {
    const warmupMs = timeOne();
    const samples = Array.from({ length: runs }, timeOne);
    const medianMs = median(samples);
    const flopsPerRun = 2 * size ** 3;
    return { backend, size, runs, flopsPerRun, warmupMs, medianMs, gflops: flopsPerRun / (medianMs * 1e6) };
  } finally {
    a.dispose();
    b.dispose();
  }
}
