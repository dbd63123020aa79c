/**
 * A sweep worker thread: its own tensor backend, runs the cells it is sent
 * one at a time and returns each cell's RunRecord and quality figures. The
 * model stays loaded (and the backend calibrated) from one cell to the next,
 * so a cell costs its generation and its scoring, not a reload.
 */
import { parentPort } from "node:worker_threads";
import { writeFileAtomic } from "../media/files.ts";
import { type RunRecord, serializeRunRecord } from "../meter/record.ts";
import { qualityFigures } from "../quality/metrics.ts";
import { heldOutFrames } from "../quality/reference.ts";
import { type GenerationOptions, type LoadedNetwork, loadNetwork, runGeneration } from "./generation.ts";

export interface CellRequest {
  id: string;
  /** where the worker writes the finished cell's record (the sweep's thread stays free) */
  file: string;
  /** what --resume checks before keeping a cell */
  sweepCell: { frames: number; clips: number; seed: number; model: string };
  options: Omit<GenerationOptions, "onProgress" | "shouldStop" | "calibration">;
  referenceClips: number;
}

export type CellReply =
  | { id: string; kind: "progress"; nfe: number }
  | { id: string; kind: "done"; record: RunRecord; quality: Record<string, number> | null }
  | { id: string; kind: "error"; message: string; exitCode: number };

/** progress goes to the main thread at most this often: a message per network call would cost more than the call */
const PROGRESS_EVERY_MS = 100;

let stop = false;
let loaded: { key: string; network: LoadedNetwork } | undefined;
let reference: { key: string; frames: Float32Array[] } | undefined;

async function network(o: CellRequest["options"]): Promise<LoadedNetwork> {
  const key = JSON.stringify([o.modelDir, o.preset, o.backend, o.threads, o.device, o.guidance]);
  if (loaded?.key !== key) {
    loaded?.network.net.dispose();
    loaded?.network.guide?.net.dispose();
    loaded = undefined;
    loaded = { key, network: await loadNetwork(o) };
  }
  return loaded.network;
}

function referenceFrames(clips: number, frames: number, size: number): Float32Array[] {
  const key = `${clips}/${frames}/${size}`;
  if (reference?.key !== key) reference = { key, frames: heldOutFrames(clips, frames, size) };
  return reference.frames;
}

parentPort!.on("message", async (msg: CellRequest | { stop: true }) => {
  if ("stop" in msg) {
    stop = true;
    return;
  }
  let pending = 0;
  let lastPost = performance.now();
  let lastNfe = 0;
  let lastFrame = -1;
  const flush = () => {
    if (pending > 0)
      parentPort!.postMessage({ id: msg.id, kind: "progress", nfe: pending } satisfies CellReply);
    pending = 0;
    lastPost = performance.now();
  };
  try {
    const res = await runGeneration(
      {
        ...msg.options,
        shouldStop: () => stop,
        onProgress: (p) => {
          // p.nfe counts this frame's network calls so far
          if (p.frame !== lastFrame) lastNfe = 0;
          pending += p.nfe - lastNfe;
          lastNfe = p.nfe;
          lastFrame = p.frame;
          if (performance.now() - lastPost >= PROGRESS_EVERY_MS) flush();
        },
      },
      await network(msg.options),
    );
    flush();
    const size = res.config.imageSize;
    const generated = res.clips.flat();
    const quality =
      res.record.complete && generated.length > 0
        ? {
            ...qualityFigures(generated, referenceFrames(msg.referenceClips, msg.options.frames, size), {
              height: size,
              width: size,
            }),
          }
        : null;
    const record = { ...res.record, quality, sweepCell: msg.sweepCell } as RunRecord;
    if (record.complete) await writeFileAtomic(msg.file, serializeRunRecord(record));
    parentPort!.postMessage({ id: msg.id, kind: "done", record, quality } satisfies CellReply);
  } catch (err) {
    const e = err as Error & { exitCode?: number };
    parentPort!.postMessage({
      id: msg.id,
      kind: "error",
      message: e.message,
      exitCode: e.exitCode ?? 1,
    } satisfies CellReply);
  }
});
parentPort!.postMessage({ ready: true });
