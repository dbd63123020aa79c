/**
 * `onnx` as a backend descriptor next to the tfjs ones, and its status line
 * for `doctor` (version, threads, calibrated GEMM).
 *
 * It runs generation only: activating it loads onnxruntime and leaves the
 * tfjs backend as it is (training and host-side tensors stay on tfjs).
 */
import { type BackendDescriptor, defaultBackends, defaultLoader, type ModuleLoader } from "./backend.ts";
import type { BackendStatus } from "./machine.ts";
import {
  calibrateOnnxGemm,
  checkThreads,
  defaultOnnxThreads,
  loadOrt,
  type OnnxDevice,
  probeOnnx,
} from "./onnx.ts";

export interface OnnxBackendOptions {
  /** intra-op threads (--threads); default every usable core */
  threads?: number;
  device?: OnnxDevice;
  load?: ModuleLoader;
}

// the same size generate calibrates with (see calibrateOnnxGemm), so doctor and run records agree
const GEMM_SIZE = 512;

function summaryOf(threads: number, version?: string): string {
  const pkg = version ? `onnxruntime-node ${version}` : "onnxruntime-node";
  return (
    `${pkg} native kernels, ${threads} intra-op thread${threads === 1 ? "" : "s"} (--threads), ` +
    "generation only; CUDA with --device cuda where its provider is installed"
  );
}

export function onnxBackend({
  threads = defaultOnnxThreads(),
  device = "cpu",
  load = defaultLoader,
}: OnnxBackendOptions = {}): BackendDescriptor {
  checkThreads(threads);
  return {
    name: "onnx",
    summary: summaryOf(threads),
    howToGet:
      "npm install onnxruntime-node (a regular dependency; the project's .npmrc skips its CUDA download)",
    gemmSize: GEMM_SIZE,
    async probe() {
      const p = await probeOnnx(load);
      return { available: p.available, reason: p.reason };
    },
    async activate() {
      await loadOrt(load);
      // --device cuda fails here, with how to get the provider, not at the first network call
      if (device === "cuda") await calibrateOnnxGemm({ threads, device, size: 8, runs: 1, load });
    },
  };
}

/** The tfjs backends followed by `onnx`: what `--backend` accepts for generation. */
export function engineBackends(opts: OnnxBackendOptions = {}): BackendDescriptor[] {
  return [...defaultBackends(opts.load), onnxBackend(opts)];
}

export interface OnnxStatus extends BackendStatus {
  /** onnxruntime-node version, when it loaded */
  version?: string;
  /** intra-op threads it was calibrated with */
  threads: number;
}

/** `onnx` as doctor lists it: availability, version, threads and (by default) calibrated GEMM GFLOP/s. */
export async function onnxStatus({
  calibrate = true,
  runs,
  ...opts
}: OnnxBackendOptions & { calibrate?: boolean; runs?: number } = {}): Promise<OnnxStatus> {
  const threads = opts.threads ?? defaultOnnxThreads();
  const backend = onnxBackend({ ...opts, threads });
  const base = { name: backend.name, summary: backend.summary, threads };
  const probe = await probeOnnx(opts.load);
  if (!probe.available)
    return { ...base, available: false, reason: probe.reason, howToGet: backend.howToGet };
  const status: OnnxStatus = {
    ...base,
    summary: summaryOf(threads, probe.version),
    available: true,
    reason: probe.reason,
    version: probe.version,
  };
  if (!calibrate) return status;
  const c = await calibrateOnnxGemm({ threads, size: GEMM_SIZE, runs, device: opts.device, load: opts.load });
  return {
    ...status,
    gemmGflops: c.gflops,
    gemm: {
      size: c.size,
      runs: c.runs,
      flopsPerRun: c.flopsPerRun,
      warmupMs: c.warmupMs,
      medianMs: c.medianMs,
    },
  };
}
