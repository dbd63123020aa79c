/**
 * The meter: wraps the network function the samplers call and records what
 * every call costs.
 *
 * Count once, time always (DESIGN.md): the first call with a given input
 * shape runs under a kernel counter (by default a tap on tfjs's kernel
 * dispatch; `tf.profile` as an option), and its FLOPs
 * and bytes are cached for that shape; every call is timed by wall clock until
 * its result is on the host. The first call of the run (compilation,
 * allocation, and that one-time profiling) is the warm-up and is reported
 * apart from the steady state; so is any later call that was profiled.
 *
 * Steps are not NFEs: the sampler reports its steps through `onStep`, the
 * meter counts network calls itself, so Heun's 2 calls per step and
 * guidance's doubled calls are seen as they happen. A call that batches
 * several evaluations (conditional + unconditional in one batch) is wrapped
 * with `nfePerCall`.
 */
import os from "node:os";
import { tf } from "../engine/tf.ts";
import { RuntimeFailure } from "../util/errors.ts";
import { type KernelShapes, kernelBytes, kernelFlops } from "./flops.ts";
import {
  type FrameRecord,
  type KernelRecord,
  type RunRecord,
  SCHEMA_VERSION,
  serializeRunRecord,
  type UncountedRecord,
} from "./record.ts";

/** What samplers call: x is the noisy frame, t the timestep, context the conditioning. Returns host data. */
export type NetworkFn<C> = (x: Float32Array, t: number, context: C) => Promise<Float32Array>;

/** One kernel invocation of a counted call. */
export interface KernelCount {
  name: string;
  /** null: no FLOP rule knows this kernel (uncounted, not zero) */
  flops: number | null;
  bytes: number;
  ms: number;
}

export interface CountedCall<R> {
  result: R;
  kernels: KernelCount[];
  /** most bytes held by tensors during the call, where the counter can tell */
  peakBytes?: number;
}

/** A FLOP counting strategy: runs the call once and says which kernels ran. tfjs profiling is the default. */
export type KernelCounter = <R>(call: () => Promise<R>) => Promise<CountedCall<R>>;

/** A kernel entry of `tf.profile()`'s result, the fields the meter reads. */
export interface ProfiledKernel {
  name: string;
  inputShapes: (number[] | null)[];
  outputShapes: number[][];
  kernelTimeMs: number | { error: string } | Promise<number | { error: string }>;
}

/** A registered kernel invocation seen at `engine.runKernel`, with the attributes the profile omits. */
export interface SeenKernel {
  name: string;
  attrs: Record<string, unknown>;
}

/** Keeps primitive attributes only (never hold on to tensors). */
function plainAttrs(attrs: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (attrs == null || typeof attrs !== "object") return out;
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || typeof v !== "object") out[k] = v;
    else if (Array.isArray(v) && v.every((e) => typeof e !== "object")) out[k] = v;
  }
  return out;
}

type RunKernel = ReturnType<typeof tf.engine>["runKernel"];

/**
 * Runs `call` with tfjs's kernel dispatch (`engine.runKernel`, every kernel passes there) replaced by
 * `wrap(original)`, then puts the original back.
 */
async function withRunKernel<R>(
  wrap: (original: RunKernel) => RunKernel,
  call: () => Promise<R>,
): Promise<R> {
  const engine = tf.engine();
  const original = engine.runKernel;
  engine.runKernel = wrap(original);
  try {
    return await call();
  } finally {
    // assign back rather than delete: deleting a property drops the engine object into V8's slow dictionary mode
    engine.runKernel = original;
  }
}

/**
 * Turns `tf.profile()` kernels into counts. Entries that are not registered
 * kernels are composite scopes (a `tf.customGrad` op, e.g. `fusedMatMul__op`)
 * whose inner kernels were recorded on their own: they are skipped so nothing
 * is counted or timed twice. Attributes are matched to kernels in order of
 * invocation, by name.
 */
export function countsFromProfile(
  kernels: readonly ProfiledKernel[],
  seen: readonly SeenKernel[],
  isRegisteredKernel: (name: string) => boolean,
): KernelCount[] {
  const out: KernelCount[] = [];
  let next = 0;
  for (const k of kernels) {
    if (!isRegisteredKernel(k.name)) continue;
    let attrs: Record<string, unknown> | undefined;
    for (let j = next; j < Math.min(seen.length, next + 8); j++) {
      if (seen[j].name === k.name) {
        attrs = seen[j].attrs;
        next = j + 1;
        break;
      }
    }
    const shapes: KernelShapes = {
      name: k.name,
      inputShapes: k.inputShapes,
      outputShapes: k.outputShapes,
      attrs,
    };
    const ms = typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
    out.push({ name: k.name, flops: kernelFlops(shapes), bytes: kernelBytes(shapes), ms });
  }
  return out;
}

/**
 * The default counter: sees every kernel that actually ran as tfjs dispatches
 * it (`engine.runKernel`, where tf.profile gets its records too), with input
 * and output shapes, attributes and wall time, for the duration of this one
 * call. Only top-level dispatches are kept (a kernel that dispatched others
 * would otherwise count twice); `tf.customGrad` scopes are not dispatched
 * here, only their inner kernels are, so nothing is counted twice. Kernels
 * run synchronously on the wasm and cpu backends, so the time around the
 * dispatch is the kernel's time. Costs next to nothing per kernel, unlike
 * `tf.profile()`.
 */
export const tfjsKernelCounter: KernelCounter = async <R>(call: () => Promise<R>) => {
  const engine = tf.engine();
  // raw records only while the call runs (shapes are read afterwards) to keep the counted call close to a plain one
  const seen: { name: string; inputs: object; attrs: unknown; out: unknown; ms: number }[] = [];
  let depth = 0;
  let peakBytes = 0;
  const result = await withRunKernel(
    (original) =>
      function (this: typeof engine, name, inputs, attrs) {
        depth++;
        const start = performance.now();
        let out: unknown;
        try {
          out = original.call(this, name, inputs, attrs);
        } finally {
          depth--;
        }
        if (depth === 0) {
          seen.push({ name, inputs, attrs, out, ms: performance.now() - start });
          if (engine.state.numBytes > peakBytes) peakBytes = engine.state.numBytes;
        }
        return out;
      } as RunKernel,
    call,
  );
  const shapeOf = (t: unknown) => (t == null ? null : (t as { shape: number[] }).shape);
  const kernels = seen.map(({ name, inputs, attrs, out, ms }) => {
    const outs = Array.isArray(out) ? out : [out];
    const shapes: KernelShapes = {
      name,
      inputShapes: Object.values(inputs).map(shapeOf),
      outputShapes: outs.map((o) => shapeOf(o) ?? []),
      attrs: plainAttrs(attrs),
    };
    return { name, flops: kernelFlops(shapes), bytes: kernelBytes(shapes), ms };
  });
  return { result, kernels, peakBytes };
};

/**
 * The same count through `tf.profile()`: the kernels that actually ran, with
 * the profiler's kernel times. `engine.runKernel` is tapped for the duration
 * of this one call to see attributes (transposeA, fused activation) that the
 * profile does not keep. It gives the same kernels and FLOPs as
 * `tfjsKernelCounter` (tested) but costs more: the profiler wraps every
 * kernel in promises: on the micro model (wasm, 2-core EPYC) a profiled call
 * took 8.5 ms of CPU against 3.7 ms plain and 3.0 ms under the tap (medians
 * of 30), enough to show in a short generation's wall time.
 */
export const tfjsProfileCounter: KernelCounter = async <R>(call: () => Promise<R>) => {
  const env = tf.env();
  const checkWas = env.getBool("CHECK_COMPUTATION_FOR_ERRORS");
  // FACTS.md 7: with this flag on, kernel times read up to 2x high
  env.set("CHECK_COMPUTATION_FOR_ERRORS", false);
  const seen: SeenKernel[] = [];
  let result: R | undefined;
  let profile: Awaited<ReturnType<typeof tf.profile>>;
  try {
    profile = await withRunKernel(
      (original) =>
        function (this: ReturnType<typeof tf.engine>, name, inputs, attrs) {
          seen.push({ name, attrs: plainAttrs(attrs) });
          return original.call(this, name, inputs, attrs);
        } as RunKernel,
      () =>
        tf.profile(async () => {
          result = await call();
          return [];
        }),
    );
  } finally {
    env.set("CHECK_COMPUTATION_FOR_ERRORS", checkWas);
  }
  const backend = tf.getBackend();
  const kernels = countsFromProfile(
    profile.kernels as unknown as ProfiledKernel[],
    seen,
    (name) => tf.getKernel(name, backend) != null,
  );
  const peakBytes = Number.isFinite(profile.peakBytes) ? profile.peakBytes : undefined;
  return { result: result as R, kernels, peakBytes };
};

export interface MeterOptions {
  /** how a call's kernels are counted; default `tfjsKernelCounter` (tfjsProfileCounter gives the same counts, slower) */
  countKernels?: KernelCounter;
  /** tensor bytes in use now, sampled after every call; default `tf.memory().numBytes` */
  tensorBytes?: () => number;
}

export interface WrapOptions<C> {
  /** network evaluations per call: 2 for one call that batches the conditional and unconditional passes */
  nfePerCall?: number;
  /** what decides the kernels that run; default: x's length and the shapes found in context */
  shapeKey?: (x: Float32Array, context: C) => string;
  /**
   * a feature-cached call (it skips blocks and reuses their last residual): its NFEs still count as NFEs,
   * and also as `cachedNfe`; its FLOPs are those of the kernels it ran
   */
  cached?: boolean;
}

/** Describes a value by its shapes, not its numbers: typed arrays by length, tensors by shape. */
export function describeShapes(v: unknown, depth = 0): string {
  if (v == null) return "-";
  if (depth > 6) return "…";
  if (ArrayBuffer.isView(v)) return `#${(v as unknown as { length?: number }).length ?? v.byteLength}`;
  if (typeof v === "number") return "n";
  if (typeof v === "string" || typeof v === "boolean") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((e) => describeShapes(e, depth + 1)).join(",")}]`;
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (Array.isArray(o.shape) && typeof o.dtype === "string") return `T${(o.shape as number[]).join("x")}`;
    const keys = Object.keys(o).sort();
    return `{${keys.map((k) => `${k}:${describeShapes(o[k], depth + 1)}`).join(",")}}`;
  }
  return typeof v;
}

interface ShapeEntry {
  /** FLOPs of one call from counted kernels (uncounted kernels excluded) */
  flops: number;
  kernels: KernelCount[];
  nfePerCall: number;
  cached: boolean;
  calls: number;
}

interface OpenFrame {
  index: number;
  start: number;
  lastStep: number;
  nfe: number;
  cachedNfe: number;
  calls: number;
  steps: number;
  flops: number;
  samplerFlops: number;
  stepWallMs: number[];
}

/** Everything the meter measured; the caller adds what it knows (backend, model, sampler...). */
export interface MeterSummary {
  frames: FrameRecord[];
  nfeTiming: RunRecord["nfeTiming"];
  kernels: KernelRecord[];
  uncounted: UncountedRecord[];
  samplerFlops: number;
  totals: RunRecord["totals"];
  memory: RunRecord["memory"];
  /** network FLOPs per NFE, counted (weighted by calls when shapes vary) */
  flopsPerNfe: number;
}

/** What the caller knows about the run; `toRecord` adds the meter's measurements. */
export interface RunInfo {
  complete: boolean;
  createdAt?: string;
  backend: RunRecord["backend"];
  device: RunRecord["device"];
  model: Omit<RunRecord["model"], "flopsPerNfe">;
  sampler: RunRecord["sampler"];
  video: RunRecord["video"];
  seed: number;
  flopConvention: RunRecord["flopConvention"];
  calibration: RunRecord["calibration"];
  batching?: RunRecord["batching"];
  cost?: RunRecord["cost"];
}

/** Value at fraction q of sorted data, linear interpolation between ranks (numpy's default). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export class Meter {
  private readonly countKernels: KernelCounter;
  private readonly tensorBytes: () => number;
  private readonly shapes = new Map<string, ShapeEntry>();
  private readonly frames: FrameRecord[] = [];
  private frame: OpenFrame | null = null;
  private wrappers = 0;
  private inFlight = false;
  private warmupMs: number | null = null;
  /** per-NFE wall ms of steady-state calls (not the first, not profiled) */
  private readonly steadyMs: number[] = [];
  private peakTensorBytes = 0;
  private readonly totals = { frames: 0, steps: 0, nfe: 0, calls: 0, flops: 0, wallMs: 0, cachedNfe: 0 };
  private samplerFlops = 0;
  /** wall ms of calls made outside any frame (frames carry their own) */
  private outsideFrameMs = 0;

  constructor(opts: MeterOptions = {}) {
    this.countKernels = opts.countKernels ?? tfjsKernelCounter;
    this.tensorBytes = opts.tensorBytes ?? (() => tf.memory().numBytes);
  }

  /** The metered network: same signature, same results; samplers call this. */
  wrap<C>(fn: NetworkFn<C>, opts: WrapOptions<C> = {}): NetworkFn<C> {
    const nfePerCall = opts.nfePerCall ?? 1;
    const cached = opts.cached ?? false;
    if (!Number.isInteger(nfePerCall) || nfePerCall < 1) {
      throw new RuntimeFailure(`meter: nfePerCall must be a positive integer, got ${nfePerCall}`);
    }
    const id = this.wrappers++;
    const keyOf =
      opts.shapeKey ?? ((x: Float32Array, context: C) => `#${x.length}|${describeShapes(context)}`);
    return async (x, t, context) => {
      if (this.inFlight) {
        throw new RuntimeFailure(
          "meter: network calls overlapped; call the metered network one call at a time",
        );
      }
      const key = `${id}:${keyOf(x, context)}`;
      let entry = this.shapes.get(key);
      const profiled = entry === undefined;
      let result: Float32Array;
      this.inFlight = true;
      const start = performance.now();
      try {
        if (entry === undefined) {
          const counted = await this.countKernels(() => fn(x, t, context));
          result = counted.result;
          const flops = counted.kernels.reduce((s, k) => s + (k.flops ?? 0), 0);
          entry = { flops, kernels: counted.kernels, nfePerCall, cached, calls: 0 };
          this.shapes.set(key, entry);
          if (counted.peakBytes !== undefined)
            this.peakTensorBytes = Math.max(this.peakTensorBytes, counted.peakBytes);
        } else {
          result = await fn(x, t, context);
        }
      } finally {
        this.inFlight = false;
      }
      const wallMs = performance.now() - start;
      this.record(entry, wallMs, profiled);
      return result;
    };
  }

  private record(entry: ShapeEntry, wallMs: number, profiled: boolean): void {
    entry.calls++;
    const nfe = entry.nfePerCall;
    const first = this.totals.calls === 0;
    if (first) this.warmupMs = wallMs;
    else if (!profiled) this.steadyMs.push(wallMs / nfe);
    this.totals.calls++;
    this.totals.nfe += nfe;
    if (entry.cached) this.totals.cachedNfe += nfe;
    this.totals.flops += entry.flops;
    this.peakTensorBytes = Math.max(this.peakTensorBytes, this.tensorBytes());
    const f = this.frame;
    if (f) {
      f.calls++;
      f.nfe += nfe;
      if (entry.cached) f.cachedNfe += nfe;
      f.flops += entry.flops;
    } else {
      this.outsideFrameMs += wallMs;
    }
  }

  beginFrame(index: number): void {
    if (this.frame)
      throw new RuntimeFailure(`meter: beginFrame(${index}) while frame ${this.frame.index} is open`);
    const now = performance.now();
    this.frame = {
      index,
      start: now,
      lastStep: now,
      nfe: 0,
      cachedNfe: 0,
      calls: 0,
      steps: 0,
      flops: 0,
      samplerFlops: 0,
      stepWallMs: [],
    };
  }

  /** One sampler step finished; `samplerFlops` is its arithmetic outside the network (sampler.flopsPerStep(numel)). */
  onStep(samplerFlops = 0): void {
    const now = performance.now();
    this.totals.steps++;
    this.totals.flops += samplerFlops;
    this.samplerFlops += samplerFlops;
    const f = this.frame;
    if (!f) return;
    f.steps++;
    f.flops += samplerFlops;
    f.samplerFlops += samplerFlops;
    f.stepWallMs.push(now - f.lastStep);
    f.lastStep = now;
  }

  /** Adds sampler arithmetic known per frame rather than per step (e.g. sampleFrame's `samplerFlops`). */
  addSamplerFlops(flops: number): void {
    this.totals.flops += flops;
    this.samplerFlops += flops;
    if (this.frame) {
      this.frame.flops += flops;
      this.frame.samplerFlops += flops;
    }
  }

  /**
   * An `onStep` callback for diffusion/sample.ts's sampleFrame, which reports
   * after every network call with the number of steps completed so far: this
   * calls `onStep()` once per completed step of the open frame.
   */
  stepHook(): (info: { step: number }) => void {
    return (info) => {
      const f = this.frame;
      if (!f) throw new RuntimeFailure("meter: stepHook called outside a frame; call beginFrame(i) first");
      while (f.steps < info.step) this.onStep();
    };
  }

  endFrame(): FrameRecord {
    return this.endFrames(1)[0];
  }

  /**
   * Closes the open frame as `n` frames made together (one batched call per step for n clips, frame indices
   * index..index+n-1): each gets 1/n of the wall time, NFEs and FLOPs and every step; `calls` and `batch`
   * say the launches were shared. n = 1 is endFrame.
   */
  endFrames(n: number): FrameRecord[] {
    const f = this.frame;
    if (!f) throw new RuntimeFailure("meter: endFrame() without beginFrame()");
    if (!Number.isInteger(n) || n < 1 || f.nfe % n !== 0 || f.cachedNfe % n !== 0)
      throw new RuntimeFailure(`meter: a frame of ${f.nfe} NFEs cannot be ${n} frames made together`);
    const wallMs = performance.now() - f.start;
    const recs: FrameRecord[] = [];
    for (let j = 0; j < n; j++) {
      const rec: FrameRecord = {
        index: f.index + j,
        wallMs: wallMs / n,
        nfe: f.nfe / n,
        calls: f.calls,
        steps: f.steps,
        flops: f.flops / n,
        samplerFlops: f.samplerFlops / n,
        stepWallMs: n === 1 ? f.stepWallMs : f.stepWallMs.map((ms) => ms / n),
      };
      if (f.cachedNfe > 0) rec.cachedNfe = f.cachedNfe / n;
      if (n > 1) rec.batch = n;
      recs.push(rec);
      this.frames.push(rec);
    }
    this.frame = null;
    this.totals.frames += n;
    // each of the n frames took every step (one step moved them all)
    this.totals.steps += (n - 1) * f.steps;
    return recs;
  }

  /** The meter's measurements so far. */
  summary(): MeterSummary {
    const byName = new Map<
      string,
      { count: number; flops: number; bytes: number; ms: number; counted: boolean }
    >();
    let networkFlops = 0;
    for (const e of this.shapes.values()) {
      networkFlops += e.flops * e.calls;
      for (const k of e.kernels) {
        const a = byName.get(k.name) ?? { count: 0, flops: 0, bytes: 0, ms: 0, counted: k.flops !== null };
        a.count += e.calls;
        a.flops += (k.flops ?? 0) * e.calls;
        a.bytes += k.bytes * e.calls;
        a.ms += k.ms * e.calls;
        a.counted &&= k.flops !== null;
        byName.set(k.name, a);
      }
    }
    const nfe = this.totals.nfe;
    const perNfe = (v: number) => (nfe > 0 ? v / nfe : 0);
    const kernels: KernelRecord[] = [...byName.entries()]
      .map(([name, a]) => ({
        name,
        countPerNfe: perNfe(a.count),
        flopsPerNfe: perNfe(a.flops),
        bytesPerNfe: perNfe(a.bytes),
        msPerNfe: perNfe(a.ms),
        counted: a.counted,
      }))
      .sort(
        (a, b) => b.flopsPerNfe - a.flopsPerNfe || b.msPerNfe - a.msPerNfe || a.name.localeCompare(b.name),
      );
    const uncounted: UncountedRecord[] = [...byName.entries()]
      .filter(([, a]) => !a.counted)
      .map(([name, a]) => ({ name, count: a.count, ms: a.ms }))
      .sort((a, b) => b.ms - a.ms || a.name.localeCompare(b.name));
    const sorted = [...this.steadyMs].sort((a, b) => a - b);
    const steady = sorted.length > 0;
    const frameMs = this.frames.reduce((s, f) => s + f.wallMs, 0);
    return {
      frames: this.frames.map((f) => ({ ...f, stepWallMs: [...f.stepWallMs] })),
      nfeTiming: {
        warmupMs: this.warmupMs,
        meanMs: steady ? sorted.reduce((s, v) => s + v, 0) / sorted.length : null,
        medianMs: steady ? quantile(sorted, 0.5) : null,
        p90Ms: steady ? quantile(sorted, 0.9) : null,
        count: sorted.length,
      },
      kernels,
      uncounted,
      samplerFlops: this.samplerFlops,
      totals: this.totalsRecord(frameMs + this.outsideFrameMs),
      memory: {
        peakTensorBytes: this.peakTensorBytes,
        peakRssBytes: process.resourceUsage().maxRSS * 1024, // maxRSS is in kilobytes
      },
      flopsPerNfe: perNfe(networkFlops),
    };
  }

  /**
   * The running totals as summary() has them, without building the kernel table: cheap enough to read after
   * every call (a live display); summary() costs a few hundred microseconds.
   */
  totalsNow(): RunRecord["totals"] {
    return this.totalsRecord(this.frames.reduce((s, f) => s + f.wallMs, 0) + this.outsideFrameMs);
  }

  /** Totals as the record has them: cachedNfe only where some call was cached (records stay as they were). */
  private totalsRecord(wallMs: number): RunRecord["totals"] {
    const { cachedNfe, ...rest } = this.totals;
    return { ...rest, wallMs, ...(cachedNfe > 0 ? { cachedNfe } : {}) };
  }

  /** The full RunRecord: the caller's facts plus the meter's measurements, checked against the schema. */
  toRecord(info: RunInfo): RunRecord {
    const s = this.summary();
    const gflops = s.totals.wallMs > 0 ? s.totals.flops / (s.totals.wallMs * 1e6) : 0;
    const record: RunRecord = {
      schemaVersion: SCHEMA_VERSION,
      complete: info.complete,
      createdAt: info.createdAt ?? new Date().toISOString(),
      backend: info.backend,
      device: info.device,
      model: { ...info.model, flopsPerNfe: s.flopsPerNfe },
      sampler: info.sampler,
      video: info.video,
      seed: info.seed,
      flopConvention: info.flopConvention,
      calibration: info.calibration,
      frames: s.frames,
      nfeTiming: s.nfeTiming,
      kernels: s.kernels,
      uncounted: s.uncounted,
      samplerFlops: s.samplerFlops,
      totals: s.totals,
      throughput: { gflops, utilization: gflops / info.calibration.gemmGflops },
      memory: s.memory,
      ...(info.batching ? { batching: info.batching } : {}),
      ...(info.cost ? { cost: info.cost } : {}),
    };
    // round trip through the schema the reader uses: a record the program cannot read back is never written
    return JSON.parse(serializeRunRecord(record)) as RunRecord;
  }
}

/** CPU model and logical cores of this machine, for `RunRecord.device`. */
export function describeDevice(): RunRecord["device"] {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model?.trim() || "unknown",
    cores: os.availableParallelism?.() ?? Math.max(1, cpus.length),
  };
}
