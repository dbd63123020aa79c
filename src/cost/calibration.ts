/**
 * Defaults that are computed, not typed in: each GPU's utilization (MFU) is
 * the one implied by published wall-clock times of real models on that GPU,
 * FLOPs counted by framecost's own model of those shapes; the multi-GPU
 * overhead is a serial fraction fitted to a published scaling series.
 */
import type { Catalog, Gpu } from "./catalog.ts";
import { modelShape } from "./models.ts";
import {
  INTERCONNECT,
  MEASUREMENTS,
  type Measurement,
  SCALING_SERIES,
  type ScalingSeries,
} from "./published.ts";
import {
  callsPerStep,
  nfeFlops,
  promptsPerClip,
  textEncoderFlops,
  tokenGrid,
  vaeDecoderFlops,
} from "./shapes.ts";

/** Everything one clip costs in FLOPs: the network over all NFEs, and what runs once per clip. */
export interface ClipFlops {
  nfe: number;
  flopsPerNfe: number;
  networkFlops: number;
  textEncoderFlops: number;
  vaeDecoderFlops: number;
  oncePerClipFlops: number;
  totalFlops: number;
}

/** FLOPs of one measured workload (same accounting as scenarios). */
export function measurementFlops(m: Measurement): ClipFlops {
  const shape = modelShape(m.model);
  const clip = { width: m.width, height: m.height, frames: m.frames };
  const per = nfeFlops(shape, clip).total;
  const calls = shape.generation === "frame" ? m.frames : 1;
  const nfe = calls * m.steps * callsPerStep(shape, m.cfg);
  const grid = tokenGrid(shape, clip);
  const text = shape.textEncoder ? textEncoderFlops(shape.textEncoder) * promptsPerClip(m.cfg) : 0;
  const vae = shape.vae
    ? vaeDecoderFlops(shape.vae, grid.latentFrames * calls, grid.latentHeight, grid.latentWidth)
    : 0;
  return {
    nfe,
    flopsPerNfe: per,
    networkFlops: per * nfe,
    textEncoderFlops: text,
    vaeDecoderFlops: vae,
    oncePerClipFlops: text + vae,
    totalFlops: per * nfe + text + vae,
  };
}

export interface ImpliedMfu {
  measurement: Measurement;
  totalFlops: number;
  /** totalFlops / (seconds x peak) */
  mfu: number;
}

export function impliedMfu(m: Measurement, gpu: Gpu): ImpliedMfu {
  const f = measurementFlops(m);
  return {
    measurement: m,
    totalFlops: f.totalFlops,
    mfu: f.totalFlops / (m.seconds * gpu.bf16DenseTflops.value * 1e12),
  };
}

/** A default with where it comes from. */
export interface Derived {
  value: number;
  source: string;
  /** a short form of `source` for tables */
  summary?: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const calibrationCache = new WeakMap<Catalog, Map<string, ImpliedMfu[]>>();

/** Implied MFU of every published measurement whose GPU is in the catalog, by GPU id (cached per catalog). */
export function calibrationsByGpu(catalog: Catalog): Map<string, ImpliedMfu[]> {
  const cached = calibrationCache.get(catalog);
  if (cached) return cached;
  const out = new Map<string, ImpliedMfu[]>();
  for (const m of MEASUREMENTS) {
    const gpu = catalog.gpus.find((g) => g.id === m.gpu);
    if (!gpu) continue;
    const list = out.get(gpu.id) ?? [];
    list.push(impliedMfu(m, gpu));
    out.set(gpu.id, list);
  }
  calibrationCache.set(catalog, out);
  return out;
}

function describe(list: ImpliedMfu[]): string {
  return list
    .map(
      (c) =>
        `${c.measurement.model} ${c.measurement.width}x${c.measurement.height}x${c.measurement.frames}, ${c.measurement.steps} steps${c.measurement.cfg ? " + CFG" : ""} in ${c.measurement.seconds} s -> ${c.mfu.toFixed(3)} (${c.measurement.source}, ${c.measurement.asOf})`,
    )
    .join("; ");
}

/**
 * Default MFU of a GPU: the mean implied MFU of its own measurements; else
 * the GPU named by its `mfuFrom`; else the median over the GPUs that have
 * measurements (stated as an assumption, not a measurement).
 */
export function defaultMfu(catalog: Catalog, gpu: Gpu): Derived {
  const byGpu = calibrationsByGpu(catalog);
  const own = byGpu.get(gpu.id);
  if (own && own.length > 0) {
    const v = own.reduce((a, c) => a + c.mfu, 0) / own.length;
    const short = own
      .map((c) => `${c.measurement.model} ${c.measurement.seconds} s -> ${c.mfu.toFixed(3)}`)
      .join(", ");
    return {
      value: v,
      source: `implied by published run time(s) on ${gpu.id}, FLOPs by framecost's model: ${describe(own)}${own.length > 1 ? "; mean" : ""}`,
      summary: `implied by ${short}${own.length > 1 ? " (mean)" : ""}`,
    };
  }
  if (gpu.mfuFrom !== undefined) {
    const from = catalog.gpus.find((g) => g.id === gpu.mfuFrom);
    if (from && from.id !== gpu.id) {
      const d = defaultMfu(catalog, { ...from, mfuFrom: undefined });
      return {
        value: d.value,
        source: `assumed equal to ${from.id} (same compute die; no published run on ${gpu.id}): ${d.source}`,
        summary: `assumed equal to ${from.id} (same compute die; no published run)`,
      };
    }
  }
  const means = [...byGpu.values()].map((l) => l.reduce((a, c) => a + c.mfu, 0) / l.length);
  return {
    value: median(means),
    source: `no published run on ${gpu.id}: assumed the median of the calibrated GPUs' implied MFU (${[...byGpu.keys()].join(", ")})`,
    summary: `assumed: median of ${[...byGpu.keys()].join(", ")} (no published run)`,
  };
}

/** Least-squares serial fraction s of T(N)/T(1) = s + (1 - s)/N (Amdahl) over a series. */
export function fitSerialFraction(series: ScalingSeries): number {
  const t1 = series.points.find((p) => p.gpus === 1)?.seconds;
  if (t1 === undefined) throw new Error(`scaling series ${series.id} has no 1-GPU point`);
  let num = 0;
  let den = 0;
  for (const p of series.points) {
    if (p.gpus === 1) continue;
    const f = 1 - 1 / p.gpus;
    num += f * (p.seconds / t1 - 1 / p.gpus);
    den += f * f;
  }
  return Math.max(0, num / den);
}

export interface ParallelModel {
  serialFraction: number;
  source: string;
}

/**
 * Sequence-parallel overhead model for a GPU: Amdahl's law with a serial
 * fraction s that stands for everything that does not shrink with N
 * (all-to-all communication, load imbalance, text encoding and VAE decoding
 * on one GPU). Fitted to the GPU's own series when there is one, else to the
 * series of its interconnect class.
 */
export function parallelModel(gpu: Gpu): ParallelModel {
  const own = SCALING_SERIES.find((s) => s.gpu === gpu.id);
  const interconnect = INTERCONNECT[gpu.id] ?? "pcie";
  const series =
    own ?? SCALING_SERIES.find((s) => s.gpu === null && s.interconnect === interconnect) ?? SCALING_SERIES[0];
  const s = fitSerialFraction(series);
  const pts = series.points.map((p) => `${p.gpus}: ${p.seconds} s`).join(", ");
  return {
    serialFraction: s,
    source: `${own ? "" : `${gpu.id} is a${interconnect === "nvlink" ? "n NVLink" : " PCIe"} part with no series of its own: `}least-squares fit of T(N)/T(1) = s + (1-s)/N to ${series.workload} (${pts}), ${series.source}, ${series.asOf}`,
  };
}

/** Speed-up on N GPUs under the model. */
export function speedup(model: ParallelModel, n: number): number {
  return 1 / (model.serialFraction + (1 - model.serialFraction) / n);
}
