/**
 * The runs a `serve` process makes: one at a time, in the order asked (on two
 * cores a second run beside the first would only slow both and blur their
 * timings), each metered exactly as `generate` meters (run/generation.ts,
 * batched calls on, the same cost functions), each streaming its own events
 * to the one connection that asked for it, each writing its own folder
 * out/serve/<id>/ (frames/, run.json last, every file via a temporary name).
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import {
  type Catalog,
  DEFAULT_SUMMARY_GPUS,
  extrapolateRun,
  getGpu,
  localCost,
  type MeteredRun,
  mergeCatalog,
  type RunCostSummary,
  summarizeRunCost,
} from "../cost/index.ts";
import { writeFileAtomic } from "../media/files.ts";
import { frameToPng, toByte } from "../media/frames.ts";
import type { MeterSummary } from "../meter/meter.ts";
import { type RunRecord, serializeRunRecord } from "../meter/record.ts";
import { heldOutFrames } from "../quality/reference.ts";
import { shapeFigures } from "../quality/shapes.ts";
import {
  type GenerationProgress,
  type LoadedNetwork,
  loadNetwork,
  runGeneration,
} from "../run/generation.ts";
import type { RunRequest } from "./request.ts";

export interface RunnerOptions {
  /** where each run's folder goes */
  outDir: string;
  /** tensorflow | wasm | cpu | onnx; undefined = the fastest by GEMM calibration (once, at the first run) */
  backend?: string;
  /** onnx intra-op threads */
  threads?: number;
  catalog: Catalog;
  /** frames per second of the video a video minute is made of; default 24 */
  fps?: number;
}

/** Where one connection's events go: `send` one server-sent event, `end` the stream. */
export interface RunSink {
  send(event: string, data: unknown): void;
  end(): void;
}

export type RunStatus = "queued" | "running" | "done" | "stopped" | "failed";
/** why a run stopped early: the page's Stop, its connection closed, the server shutting down */
export type StopReason = "stop" | "closed" | "shutdown";

/** What the page shows of a finished run: every number read from its run record. */
export interface RunResult {
  id: string;
  status: RunStatus;
  request: RunRequest;
  complete: boolean;
  stopped: StopReason | null;
  /** record.totals */
  frames: number;
  steps: number;
  nfe: number;
  flops: number;
  wallMs: number;
  /** record.sampler.nfePerFrame */
  nfePerFrame: number;
  /** record.nfeTiming.medianMs */
  msPerNfe: number | null;
  /** record.cost.usdPerVideoMinute: local (null = not priced) and on the requested GPU */
  usdPerVideoMinute: { local: number | null; gpu: number | null };
  /** record.quality: how clean the first frame's shapes are; null when no frame was finished */
  quality: RunQuality | null;
  /** where its run.json is served */
  runJson: string;
}

/**
 * How clean one run's first frame is: quality/shapes.ts's figures of that frame. Compactness tracks steps
 * where one frame's SWD to real frames cannot (a single real frame scores 0.30-0.49 SWD against the others,
 * a 1-step blur 0.40): 0 for a blur with no shape, about 0.6 from 8 ddim steps of the teacher up.
 */
export interface RunQuality {
  /** area-weighted 4 pi A / P^2 of the frame's shapes; 0 = none */
  compactness: number;
  shapes: number;
  specks: number;
  /** the same figure over REFERENCE_FIRST_FRAMES held-out real first frames */
  realCompactness: number;
  figure: string;
}

export const REFERENCE_FIRST_FRAMES = 64;

/** The run record `serve` writes: generate's, with the cost on the page's prices, the quality and the request. */
export type ServedRecord = RunRecord & {
  cost: RunCostSummary["costSection"];
  quality: RunQuality | null;
  serve: { runId: string; request: RunRequest; stopped: StopReason | null };
};

interface Run {
  id: string;
  request: RunRequest;
  status: RunStatus;
  stop: StopReason | null;
  sink: RunSink;
  result: RunResult | null;
}

/** A run id: when it was asked for and 4 random bytes, e.g. 20261207-103300-1a2b3c4d. */
function newRunId(): string {
  const d = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `${d}-${randomBytes(4).toString("hex")}`;
}

export const RUN_ID = /^\d{8}-\d{6}-[0-9a-f]{8}$/;

/** The catalog with the page's price for `gpu` (absent: as shipped, the lowest quote). */
export function pricedCatalog(catalog: Catalog, gpu: string, usdPerHour: number | null): Catalog {
  if (usdPerHour === null) return catalog;
  const quote = {
    usdPerHour,
    provider: "you",
    source: "the price entered on the framecost serve page",
    asOf: new Date().toISOString().slice(0, 10),
  };
  return mergeCatalog(catalog, { gpus: [{ id: gpu, prices: [quote] }] }, "the page's GPU price");
}

/** How often the live counters read the meter's timings and kernels (summary() costs ~0.3 ms). */
const SUMMARY_EVERY_MS = 100;
/**
 * Pictures go out at most as often as a screen shows them (and always at a frame's last step): at 2 ms a
 * step more would never be seen, and drawing every one slowed the run's NFEs by ~30% here (2 cores).
 */
const IMAGE_EVERY_MS = 1000 / 60;

/**
 * One frame of the run as if it ended now, for the live counters: the wall clock since the run began over
 * the frames done so far (the open one by its share of steps), with the kernels of the latest summary. The
 * cost functions read only totals, kernels, video and sampler.nfePerFrame of it; null before a step is
 * done (Heun's first call).
 */
function liveFrame(
  p: GenerationProgress,
  m: Pick<MeterSummary, "kernels" | "flopsPerNfe">,
  wallMs: number,
  fps: number,
  size: number,
): MeteredRun | null {
  const framesDone = p.totals.frames + p.step / p.steps;
  if (framesDone <= 0) return null;
  return {
    totals: { ...p.totals, frames: 1, nfe: p.nfePerFrame, wallMs: wallMs / framesDone },
    kernels: m.kernels,
    video: { frames: p.frames, fps, width: size, height: size },
    model: { name: "live", params: 0, flopsPerNfe: m.flopsPerNfe, flopsPerNfeAnalytic: null, config: {} },
    sampler: { name: "live", steps: p.steps, nfePerFrame: p.nfePerFrame, schedule: "", spacing: "" },
    flopConvention: "flops",
  };
}

/** [H, W, 3] in [-1, 1] -> its bytes (as the PNGs have them: media/frames.ts toByte), base64. */
function rgbBase64(frame: Float32Array): string {
  const out = Buffer.allocUnsafe(frame.length);
  for (let i = 0; i < frame.length; i++) out[i] = toByte(frame[i]);
  return out.toString("base64");
}

export class Runner {
  private readonly runs = new Map<string, Run>();
  private readonly queue: Run[] = [];
  private active: Run | null = null;
  private idle: Promise<void> = Promise.resolve();
  private network: { key: string; loaded: LoadedNetwork } | null = null;
  /** the backend the first run chose (and its calibration): every later run uses it */
  private backend: LoadedNetwork["backend"] | null = null;
  private readonly reference = new Map<number, number>();
  private closed = false;

  constructor(private readonly o: RunnerOptions) {}

  /** Queues a run; its events go to `sink` from now on. */
  submit(request: RunRequest, sink: RunSink): string {
    if (this.closed) throw new Error("the server is shutting down");
    const run: Run = { id: newRunId(), request, status: "queued", stop: null, sink, result: null };
    this.runs.set(run.id, run);
    this.queue.push(run);
    sink.send("queued", { id: run.id, ahead: this.queue.length - 1 + (this.active ? 1 : 0) });
    this.pump();
    return run.id;
  }

  /** Asks a run to stop (within a step); false when no such run is queued or running. */
  stop(id: string, reason: StopReason): boolean {
    const run = this.runs.get(id);
    if (!run || (run.status !== "queued" && run.status !== "running")) return false;
    run.stop ??= reason;
    const i = this.queue.indexOf(run);
    if (i >= 0) {
      // never started: nothing metered, nothing written
      this.queue.splice(i, 1);
      run.status = "stopped";
      if (reason !== "closed") run.sink.send("stopped", { id, before: "start" });
      run.sink.end();
      this.announceQueue();
    }
    return true;
  }

  /** Every run this server has been asked for, oldest first, with results where finished. */
  list(): Array<{ id: string; status: RunStatus; request: RunRequest; result: RunResult | null }> {
    return [...this.runs.values()].map((r) => ({
      id: r.id,
      status: r.status,
      request: r.request,
      result: r.result,
    }));
  }

  /** Where run `id` writes (only ids this server made). */
  folderOf(id: string): string | null {
    return RUN_ID.test(id) && this.runs.has(id) ? join(this.o.outDir, id) : null;
  }

  /** Stops every run (the one running writes its record) and frees the network. */
  async close(): Promise<void> {
    this.closed = true;
    for (const r of [...this.queue]) this.stop(r.id, "shutdown");
    if (this.active) this.stop(this.active.id, "shutdown");
    await this.idle;
    this.dispose();
  }

  private dispose(): void {
    this.network?.loaded.net.dispose();
    this.network?.loaded.guide?.net.dispose();
    this.network = null;
  }

  private announceQueue(): void {
    this.queue.forEach((r, i) => {
      r.sink.send("queued", { id: r.id, ahead: i + (this.active ? 1 : 0) });
    });
  }

  private pump(): void {
    if (this.active || this.queue.length === 0) return;
    const run = this.queue.shift()!;
    this.active = run;
    this.announceQueue();
    this.idle = this.execute(run).finally(() => {
      this.active = null;
      this.pump();
    });
  }

  /** The network for a request, loaded once and kept while requests ask for the same model and guidance. */
  private async networkFor(r: RunRequest): Promise<LoadedNetwork> {
    const key = JSON.stringify([r.model, r.guidance]);
    if (this.network?.key === key) return this.network.loaded;
    this.dispose();
    const loaded = await loadNetwork({
      ...this.generationOptions(r),
      backend: this.backend?.name ?? this.o.backend,
      calibration: this.backend?.calibration,
    });
    // later loads reuse the first choice and calibration: say why that backend was chosen, not "forced"
    if (this.backend) loaded.backend = this.backend;
    else this.backend = loaded.backend;
    this.network = { key, loaded };
    return loaded;
  }

  private generationOptions(r: RunRequest) {
    return {
      modelDir: r.model,
      sampler: r.sampler,
      steps: r.steps,
      frames: r.frames,
      fps: this.o.fps ?? 24,
      seed: r.seed,
      threads: this.o.threads,
      // generate's default: model and guide in one call where both run
      batchCalls: true,
      guidance: r.guidance === null ? undefined : { weight: r.guidance },
      convention: "flops" as const,
    };
  }

  /** The figure over held-out real first frames of this size (computed once per size). */
  private realCompactness(size: number): number {
    let c = this.reference.get(size);
    if (c === undefined) {
      c = shapeFigures(heldOutFrames(REFERENCE_FIRST_FRAMES, 1, size), {
        height: size,
        width: size,
      }).compactness;
      this.reference.set(size, c);
    }
    return c;
  }

  /** quality/shapes.ts's figures of the first frame (null when none was finished). */
  private quality(frames: Float32Array[], size: number): RunQuality | null {
    if (frames.length === 0) return null;
    const f = shapeFigures([frames[0]], { height: size, width: size });
    return {
      compactness: f.compactness,
      shapes: f.shapesPerFrame,
      specks: f.specksPerFrame,
      realCompactness: this.realCompactness(size),
      figure: `first frame: shape compactness 4 pi A / P^2 (quality/shapes.ts); realCompactness over ${REFERENCE_FIRST_FRAMES} held-out real first frames`,
    };
  }

  private async execute(run: Run): Promise<void> {
    run.status = "running";
    const { request: r, sink } = run;
    try {
      const loaded = await this.networkFor(r);
      const size = loaded.config.imageSize;
      const fps = this.o.fps ?? 24;
      const catalog = pricedCatalog(this.o.catalog, r.gpu, r.gpuUsdPerHour);
      const gpu = getGpu(catalog, r.gpu);
      sink.send("start", {
        id: run.id,
        backend: loaded.backend.name,
        imageSize: size,
        frames: r.frames,
        steps: r.steps,
      });
      let summary: MeterSummary | null = null;
      let summaryAt = 0;
      let onGpu: number | null | undefined;
      let imagesAt = Number.NEGATIVE_INFINITY;
      const t0 = performance.now();
      const res = await runGeneration(
        {
          ...this.generationOptions(r),
          shouldStop: () => run.stop !== null,
          onProgress: (p) => {
            // only what moves on is taken now (the clock, the meter's totals; the arrays are the sampler's
            // own, never written again); the event is built and sent once the next call is under way, off
            // the timed path. Timings and kernels (a summary) are read at most every SUMMARY_EVERY_MS, the
            // pictures sent at most every IMAGE_EVERY_MS; the counters go with every step.
            const now = performance.now();
            if (summary === null || now - summaryAt >= SUMMARY_EVERY_MS) {
              summary = p.metered();
              summaryAt = now;
              onGpu = undefined;
            }
            const m = summary;
            const last = p.step === p.steps;
            const images = last || now - imagesAt >= IMAGE_EVERY_MS;
            if (images) imagesAt = now;
            setImmediate(() => {
              const live = liveFrame(p, m, now - t0, fps, size);
              const local =
                live && r.localUsdPerHour !== null
                  ? localCost(live, { localUsdPerHour: r.localUsdPerHour })!.usdPerVideoMinute
                  : null;
              // the GPU's figure follows the kernels and NFEs per frame only: once per summary
              if (live && onGpu === undefined)
                onGpu = extrapolateRun(live, { gpu, catalog }).usdPerVideoMinute;
              sink.send("step", {
                id: run.id,
                frame: p.frame,
                frames: p.frames,
                step: p.step,
                steps: p.steps,
                t: p.t,
                nfe: p.totals.nfe,
                nfeTotal: p.nfePerFrame * p.frames,
                flops: p.totals.flops,
                msPerNfe: m.nfeTiming.medianMs,
                usdPerVideoMinute: { local, gpu: onGpu ?? null },
                ...(images ? { xt: rgbBase64(p.xt), x0: rgbBase64(p.predX0) } : {}),
              });
              if (last) sink.send("frame", { id: run.id, frame: p.frame, rgb: rgbBase64(p.sample) });
            });
          },
        },
        loaded,
      );
      const cost = summarizeRunCost(res.record, {
        localUsdPerHour: r.localUsdPerHour ?? undefined,
        catalog,
        gpus: [...new Set([r.gpu, ...DEFAULT_SUMMARY_GPUS])],
      });
      const record: ServedRecord = {
        ...res.record,
        cost: cost.costSection,
        quality: this.quality(res.frames, size),
        serve: { runId: run.id, request: r, stopped: run.stop },
      };
      const dir = join(this.o.outDir, run.id);
      for (let i = 0; i < res.frames.length; i++)
        await frameToPng(
          res.frames[i],
          size,
          size,
          join(dir, "frames", `frame-${String(i).padStart(3, "0")}.png`),
          {
            scale: 8,
          },
        );
      await writeFileAtomic(join(dir, "run.json"), serializeRunRecord(record));
      // the last step's event is queued behind an setImmediate: let it go first
      await new Promise((resolve) => setImmediate(resolve));
      run.status = res.stopped ? "stopped" : "done";
      run.result = {
        id: run.id,
        status: run.status,
        request: r,
        complete: record.complete,
        stopped: run.stop,
        frames: record.totals.frames,
        steps: record.totals.steps,
        nfe: record.totals.nfe,
        flops: record.totals.flops,
        wallMs: record.totals.wallMs,
        nfePerFrame: record.sampler.nfePerFrame,
        msPerNfe: record.nfeTiming.medianMs,
        usdPerVideoMinute: {
          local: cost.costSection.usdPerVideoMinute.local,
          gpu: cost.costSection.usdPerVideoMinute.byGpu[r.gpu] ?? null,
        },
        quality: record.quality,
        runJson: `/runs/${run.id}/run.json`,
      };
      sink.send("done", {
        ...run.result,
        frameRgb: res.frames.map(rgbBase64),
      });
    } catch (err) {
      run.status = "failed";
      sink.send("failed", { id: run.id, message: err instanceof Error ? err.message : String(err) });
    } finally {
      sink.end();
    }
  }
}
