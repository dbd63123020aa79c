/**
 * What this machine is and what each backend does on it: Node, CPU, and per
 * backend whether it runs (and why not) and its calibrated GEMM GFLOP/s.
 * Run records and the HTML report embed it; `framecost doctor` prints it.
 */
import { availableParallelism, cpus, totalmem } from "node:os";
import { activeBackendName, type BackendDescriptor, defaultBackends } from "./backend.ts";
import { calibrateGemm, type GemmCalibration } from "./calibrate.ts";
import { tf } from "./tf.ts";

export interface BackendStatus {
  name: string;
  summary: string;
  available: boolean;
  /** why it is available, or why not */
  reason: string;
  /** what to do to get it (set when not available) */
  howToGet?: string;
  /** fp32 matMul GFLOP/s (1 FLOP = 1 add or 1 multiply); set when available and calibrated */
  gemmGflops?: number;
  /** how gemmGflops was measured */
  gemm?: Omit<GemmCalibration, "backend" | "gflops">;
}

export interface MachineDescription {
  /** process.version, e.g. "v20.20.2" */
  node: string;
  platform: string;
  arch: string;
  cpu: {
    model: string;
    /** logical cores the OS reports */
    cores: number;
    /** cores this process may use (affinity, cgroups) */
    available: number;
  };
  memoryBytes: number;
  tfjsVersion: string;
  backends: BackendStatus[];
  /** the backend `initBackend()` would choose: the first available one */
  autoBackend: string | null;
}

export interface DescribeOptions {
  /** calibrate each available backend (default true); costs ~0.2 s on wasm, ~0.5 s on cpu */
  calibrate?: boolean;
  /** timed GEMM runs per backend */
  runs?: number;
  backends?: BackendDescriptor[];
}

async function statusOf(
  backend: BackendDescriptor,
  calibrate: boolean,
  runs?: number,
): Promise<BackendStatus> {
  const base = { name: backend.name, summary: backend.summary };
  const probe = await backend.probe();
  if (!probe.available)
    return { ...base, available: false, reason: probe.reason, howToGet: backend.howToGet };
  try {
    await backend.activate();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return { ...base, available: false, reason, howToGet: backend.howToGet };
  }
  if (!calibrate) return { ...base, available: true, reason: probe.reason };
  const { backend: _b, gflops, ...gemm } = await calibrateGemm({ size: backend.gemmSize, runs });
  return { ...base, available: true, reason: probe.reason, gemmGflops: gflops, gemm };
}

/**
 * Probes (and, by default, calibrates) every backend. Leaves the backend that
 * was active before active again, so a running job can call it.
 */
export async function describeMachine({
  calibrate = true,
  runs,
  backends = defaultBackends(),
}: DescribeOptions = {}): Promise<MachineDescription> {
  tf.env().set("PROD", true); // no tfjs console notes in the middle of our output
  const before = activeBackendName();
  const statuses: BackendStatus[] = [];
  try {
    for (const backend of backends) statuses.push(await statusOf(backend, calibrate, runs));
  } finally {
    if (before !== null && activeBackendName() !== before) await tf.setBackend(before);
  }
  const info = cpus();
  return {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cpu: { model: info[0]?.model.trim() ?? "unknown", cores: info.length, available: availableParallelism() },
    memoryBytes: totalmem(),
    tfjsVersion: tf.version_core,
    backends: statuses,
    autoBackend: statuses.find((s) => s.available)?.name ?? null,
  };
}
