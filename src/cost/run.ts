/**
 * Cost of a metered run (a RunRecord): on this machine at a price or an
 * energy rate, and extrapolated to catalog GPUs with a per-kernel roofline.
 *
 * Roofline per kernel, per network call:
 *   time = max(FLOPs / (peak x MFU), bytes / bandwidth) + launches x overhead
 * summed over kernels, times NFEs per frame, times fps x 60 frames per video
 * minute. Kernels the meter could not count (no FLOP rule) cannot be
 * extrapolated: they are listed with their local time, and the estimate is a
 * lower bound by their share.
 */
import type { RunRecord } from "../meter/record.ts";
import { UserError } from "../util/errors.ts";
import { type Derived, defaultMfu } from "./calibration.ts";
import { type Catalog, type ChosenPrice, chosenPrice, type Gpu, getGpu, shippedCatalog } from "./catalog.ts";
import { LAUNCH_OVERHEAD_US } from "./published.ts";

/** What the cost stage reads of a RunRecord. */
export type MeteredRun = Pick<
  RunRecord,
  "totals" | "video" | "kernels" | "model" | "sampler" | "flopConvention"
>;

export interface LocalCostOptions {
  /** what an hour of this machine costs (rent, amortisation) */
  localUsdPerHour?: number;
  /** the machine's power draw while generating */
  watts?: number;
  kwhPriceUsd?: number;
}

export interface LocalCost {
  /** which prices went in: "price", "energy" or both added */
  basis: "price" | "energy" | "price+energy";
  wallSeconds: number;
  frames: number;
  fps: number;
  /** frames per video minute / frames in the run */
  runsPerVideoMinute: number;
  price: { usdPerHour: number; usdPerVideoMinute: number } | null;
  energy: { watts: number; kwhPriceUsd: number; whPerVideoMinute: number; usdPerVideoMinute: number } | null;
  usdPerFrame: number;
  usdPerVideoMinute: number;
}

/** Prices the measured wall clock; null when no local price and no energy rate is given. */
export function localCost(run: MeteredRun, o: LocalCostOptions): LocalCost | null {
  if ((o.watts === undefined) !== (o.kwhPriceUsd === undefined)) {
    throw new UserError(
      o.watts === undefined
        ? "--kwh-price needs --watts (the machine's draw while generating) to price energy"
        : "--watts needs --kwh-price USD (price of a kWh) to price energy",
    );
  }
  if (o.localUsdPerHour === undefined && o.watts === undefined) return null;
  const wallSeconds = run.totals.wallMs / 1000;
  const frames = run.totals.frames;
  if (frames < 1)
    throw new UserError("the record has 0 frames: nothing to price; rerun `framecost generate`");
  const runsPerVideoMinute = (run.video.fps * 60) / frames;
  const price =
    o.localUsdPerHour === undefined
      ? null
      : {
          usdPerHour: o.localUsdPerHour,
          usdPerVideoMinute: (wallSeconds / 3600) * o.localUsdPerHour * runsPerVideoMinute,
        };
  let energy: LocalCost["energy"] = null;
  if (o.watts !== undefined && o.kwhPriceUsd !== undefined) {
    const whPerVideoMinute = ((o.watts * wallSeconds) / 3600) * runsPerVideoMinute;
    energy = {
      watts: o.watts,
      kwhPriceUsd: o.kwhPriceUsd,
      whPerVideoMinute,
      usdPerVideoMinute: (whPerVideoMinute / 1000) * o.kwhPriceUsd,
    };
  }
  const usdPerVideoMinute = (price?.usdPerVideoMinute ?? 0) + (energy?.usdPerVideoMinute ?? 0);
  return {
    basis: price && energy ? "price+energy" : price ? "price" : "energy",
    wallSeconds,
    frames,
    fps: run.video.fps,
    runsPerVideoMinute,
    price,
    energy,
    usdPerFrame: usdPerVideoMinute / (run.video.fps * 60),
    usdPerVideoMinute,
  };
}

export interface ExtrapolationOptions {
  gpu: Gpu;
  catalog: Catalog;
  /** compute efficiency against the peak; default: the GPU's calibrated MFU */
  mfu?: number;
  /** per kernel launch, microseconds */
  launchUs?: number;
  /** the precision it would run at on the GPU: peak and bytes per element follow */
  precision?: "bf16" | "fp32";
  priceUsdPerHour?: number;
}

export interface KernelEstimate {
  name: string;
  countPerNfe: number;
  flopsPerNfe: number;
  bytesPerNfe: number;
  computeMs: number;
  memoryMs: number;
  launchMs: number;
  /** max(compute, memory) + launch */
  ms: number;
  /** which roof binds: compute when FLOPs / delivered rate > bytes / bandwidth; none for zero-work kernels (views) */
  bound: "compute" | "memory" | "none";
  /** launch overhead is more than the roofline time */
  launchDominated: boolean;
}

export interface Extrapolation {
  gpu: { id: string; name: string };
  precision: "bf16" | "fp32";
  peakTflops: number;
  bandwidthTBs: number;
  mfu: Derived;
  launchUs: Derived;
  kernels: KernelEstimate[];
  /** kernels without a FLOP rule: not extrapolated */
  uncounted: Array<{ name: string; localMsPerNfe: number }>;
  /** their share of the local kernel time: the estimate is low by about this share */
  uncountedLocalShare: number;
  msPerNfe: number;
  nfePerFrame: number;
  msPerFrame: number;
  gpuSecondsPerVideoMinute: number;
  price: ChosenPrice | null;
  /** null when the GPU has no price on record and none was given */
  usdPerVideoMinute: number | null;
  /** time shares per NFE */
  share: { compute: number; memory: number; launch: number };
  assumptions: string[];
}

/** Extrapolates a metered run to a catalog GPU. */
export function extrapolateRun(run: MeteredRun, o: ExtrapolationOptions): Extrapolation {
  const precision = o.precision ?? "bf16";
  const peakTflops = precision === "bf16" ? o.gpu.bf16DenseTflops.value : o.gpu.fp32Tflops.value;
  const mfu: Derived =
    o.mfu !== undefined ? { value: o.mfu, source: "--mfu (user)" } : defaultMfu(o.catalog, o.gpu);
  const launchUs: Derived =
    o.launchUs !== undefined
      ? { value: o.launchUs, source: "--launch-us (user)" }
      : {
          value: LAUNCH_OVERHEAD_US.value,
          source: `${LAUNCH_OVERHEAD_US.source}, ${LAUNCH_OVERHEAD_US.asOf}`,
        };
  // the meter counts bytes at fp32 (4 bytes per element); bf16 moves half
  const bytesScale = precision === "bf16" ? 0.5 : 1;
  const delivered = peakTflops * 1e12 * mfu.value;
  const bw = o.gpu.memoryBandwidthTBs.value * 1e12;
  const kernels: KernelEstimate[] = [];
  const uncounted: Extrapolation["uncounted"] = [];
  let localTotal = 0;
  let localUncounted = 0;
  for (const k of run.kernels) {
    localTotal += k.msPerNfe;
    if (!k.counted) {
      uncounted.push({ name: k.name, localMsPerNfe: k.msPerNfe });
      localUncounted += k.msPerNfe;
      continue;
    }
    const bytes = k.bytesPerNfe * bytesScale;
    const computeMs = (k.flopsPerNfe / delivered) * 1000;
    const memoryMs = (bytes / bw) * 1000;
    const roof = Math.max(computeMs, memoryMs);
    // views (reshape and the like) move no data and launch no kernel on a GPU
    const launchMs = roof === 0 ? 0 : (k.countPerNfe * launchUs.value) / 1000;
    kernels.push({
      name: k.name,
      countPerNfe: k.countPerNfe,
      flopsPerNfe: k.flopsPerNfe,
      bytesPerNfe: bytes,
      computeMs,
      memoryMs,
      launchMs,
      ms: roof + launchMs,
      bound: roof === 0 ? "none" : computeMs >= memoryMs ? "compute" : "memory",
      launchDominated: launchMs > roof,
    });
  }
  kernels.sort((a, b) => b.ms - a.ms);
  const msPerNfe = kernels.reduce((a, k) => a + k.ms, 0);
  const computeMs = kernels
    .filter((k) => k.bound === "compute")
    .reduce((a, k) => a + Math.max(k.computeMs, k.memoryMs), 0);
  const memoryMs = kernels
    .filter((k) => k.bound === "memory")
    .reduce((a, k) => a + Math.max(k.computeMs, k.memoryMs), 0);
  const launchMs = kernels.reduce((a, k) => a + k.launchMs, 0);
  const nfePerFrame = run.totals.frames > 0 ? run.totals.nfe / run.totals.frames : run.sampler.nfePerFrame;
  const msPerFrame = msPerNfe * nfePerFrame;
  const gpuSecondsPerVideoMinute = (msPerFrame / 1000) * run.video.fps * 60;
  const price = chosenPrice(o.gpu, o.priceUsdPerHour);
  return {
    gpu: { id: o.gpu.id, name: o.gpu.name },
    precision,
    peakTflops,
    bandwidthTBs: o.gpu.memoryBandwidthTBs.value,
    mfu,
    launchUs,
    kernels,
    uncounted,
    uncountedLocalShare: localTotal > 0 ? localUncounted / localTotal : 0,
    msPerNfe,
    nfePerFrame,
    msPerFrame,
    gpuSecondsPerVideoMinute,
    price,
    usdPerVideoMinute: price ? (gpuSecondsPerVideoMinute / 3600) * price.usdPerHour : null,
    share:
      msPerNfe > 0
        ? { compute: computeMs / msPerNfe, memory: memoryMs / msPerNfe, launch: launchMs / msPerNfe }
        : { compute: 0, memory: 0, launch: 0 },
    assumptions: [
      `compute roof: peak ${peakTflops} TFLOP/s (${precision}${precision === "bf16" ? " dense" : ""}) x MFU ${mfu.value.toFixed(3)}: ${mfu.source}`,
      `memory roof: the GPU's datasheet bandwidth (${o.gpu.memoryBandwidthTBs.value} TB/s for ${o.gpu.id}; an upper bound); bytes as metered at fp32${precision === "bf16" ? ", halved for bf16" : ""}`,
      `launch overhead ${launchUs.value} us per kernel that moves data or computes (views launch nothing): ${launchUs.source}`,
      "one clip at a time (batch 1), as metered; batching would raise utilization of small kernels",
    ],
  };
}

/** GPUs the generate summary prices by default. */
export const DEFAULT_SUMMARY_GPUS = ["h100-sxm", "a100-sxm", "l40s", "rtx-4090"] as const;

export interface RunCostSummary {
  local: LocalCost | null;
  gpus: Array<
    { id: string; ok: true; extrapolation: Extrapolation } | { id: string; ok: false; reason: string }
  >;
  hosted: Array<{ id: string; name: string; usdPerVideoMinute: number; source: string; asOf: string }>;
  /** what to store in the record's `cost` section (report/records.ts reads usdPerVideoMinute) */
  costSection: {
    usdPerVideoMinute: { local: number | null; byGpu: Record<string, number> };
    localBasis: LocalCost["basis"] | null;
    mfuByGpu: Record<string, number>;
    assumptions: string[];
  };
}

export interface SummaryOptions extends LocalCostOptions {
  catalog?: Catalog;
  /** catalog ids; default DEFAULT_SUMMARY_GPUS */
  gpus?: readonly string[];
  mfu?: number;
  launchUs?: number;
}

/**
 * The cost lines `generate` ends with: USD per video minute locally (when a
 * local price or energy rate is given) and on a set of catalog GPUs, with
 * hosted API list prices beside.
 */
export function summarizeRunCost(run: MeteredRun, o: SummaryOptions = {}): RunCostSummary {
  const catalog = o.catalog ?? shippedCatalog();
  const local = localCost(run, o);
  const gpus: RunCostSummary["gpus"] = [];
  const byGpu: Record<string, number> = {};
  const mfuByGpu: Record<string, number> = {};
  for (const id of o.gpus ?? DEFAULT_SUMMARY_GPUS) {
    const gpu = getGpu(catalog, id);
    const x = extrapolateRun(run, { gpu, catalog, mfu: o.mfu, launchUs: o.launchUs });
    gpus.push({ id, ok: true, extrapolation: x });
    if (x.usdPerVideoMinute !== null) byGpu[id] = x.usdPerVideoMinute;
    mfuByGpu[id] = x.mfu.value;
  }
  const hosted = catalog.hostedApis.map((a) => ({
    id: a.id,
    name: a.name,
    usdPerVideoMinute: a.usdPerSecond * 60,
    source: a.source,
    asOf: a.asOf,
  }));
  return {
    local,
    gpus,
    hosted,
    costSection: {
      usdPerVideoMinute: { local: local?.usdPerVideoMinute ?? null, byGpu },
      localBasis: local?.basis ?? null,
      mfuByGpu,
      assumptions: [
        "GPU figures are roofline estimates of the metered kernels at batch 1 (framecost cost --record FILE shows them per kernel)",
        `launch overhead ${o.launchUs ?? LAUNCH_OVERHEAD_US.value} us per kernel`,
      ],
    },
  };
}

/** USD with enough digits to read small and large amounts alike. */
export function usd(x: number): string {
  if (x === 0) return "$0";
  if (Math.abs(x) >= 100) return `$${x.toFixed(0)}`;
  if (Math.abs(x) >= 1) return `$${x.toFixed(2)}`;
  return `$${Number(x.toPrecision(3))}`;
}

/** A number to 3 significant digits, without exponents between 1e-4 and 1e6 (1676 -> "1,676"). */
export function g3(x: number): string {
  const a = Math.abs(x);
  if (a !== 0 && (a >= 1e6 || a < 1e-4)) return x.toExponential(2).replace("e+", "e");
  if (a >= 100) return Math.round(x).toLocaleString("en-US");
  return String(Number(x.toPrecision(3)));
}

/** The summary as printable lines (no trailing newline). */
export function formatRunCostSummary(s: RunCostSummary): string[] {
  const lines: string[] = ["USD per minute of video (a minute = fps x 60 frames):"];
  if (s.local) {
    const parts = [
      s.local.price ? `${usd(s.local.price.usdPerVideoMinute)} at $${s.local.price.usdPerHour}/h` : null,
      s.local.energy
        ? `${usd(s.local.energy.usdPerVideoMinute)} energy (${s.local.energy.watts} W, ${s.local.energy.whPerVideoMinute.toPrecision(3)} Wh at $${s.local.energy.kwhPriceUsd}/kWh)`
        : null,
    ].filter(Boolean);
    lines.push(
      `  this machine        ${usd(s.local.usdPerVideoMinute)}  (${s.local.basis}: ${parts.join(" + ")}; measured wall clock)`,
    );
  } else {
    lines.push(
      "  this machine        not priced (pass --local-price USD_PER_HOUR, or --watts W with --kwh-price USD)",
    );
  }
  for (const g of s.gpus) {
    if (!g.ok) {
      lines.push(`  ${g.id.padEnd(18)}  ${g.reason}`);
      continue;
    }
    const x = g.extrapolation;
    const price = x.price ? `$${x.price.usdPerHour}/h` : "no price on record";
    const cost = x.usdPerVideoMinute === null ? "n/a" : usd(x.usdPerVideoMinute);
    lines.push(
      `  ${g.id.padEnd(18)}  ${cost}  (estimate: ${price}, MFU ${x.mfu.value.toFixed(2)}, ${x.msPerFrame.toPrecision(3)} ms/frame; ${(x.share.launch * 100).toFixed(0)}% kernel launches)`,
    );
  }
  const hosted = s.hosted.map((h) => `${h.name} ${usd(h.usdPerVideoMinute)}`).join(", ");
  lines.push(`  hosted APIs (list price, ${s.hosted[0]?.asOf ?? ""}): ${hosted}`);
  return lines;
}
