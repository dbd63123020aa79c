/**
 * A sweep worker thread: its own tensor backend, runs the cells it is sent
 * one at a time and returns each cell's RunRecord and quality figures.
 */
import { parentPort } from "node:worker_threads";
import type { RunRecord } from "../meter/record.ts";
import { qualityFigures } from "../quality/metrics.ts";
import { heldOutFrames } from "../quality/reference.ts";
import { type GenerationOptions, runGeneration } from "./generation.ts";

export interface CellRequest {
  id: string;
  options: Omit<GenerationOptions, "onProgress" | "shouldStop">;
  referenceClips: number;
}

export type CellReply =
  | { id: string; kind: "progress"; nfe: number }
  | { id: string; kind: "done"; record: RunRecord; quality: Record<string, number> | null }
  | { id: string; kind: "error"; message: string; exitCode: number };

let stop = false;
let calibration: { gemmGflops: number; backend: string } | undefined;
parentPort!.on("message", async (msg: CellRequest | { stop: true }) => {
  if ("stop" in msg) {
    stop = true;
    return;
  }
  try {
    const res = await runGeneration({
      ...msg.options,
      // calibrate the backend once per worker, not once per cell
      calibration: msg.options.calibration ?? calibration,
      shouldStop: () => stop,
      // the loop reports after every network call
      onProgress: () => parentPort!.postMessage({ id: msg.id, kind: "progress", nfe: 1 } satisfies CellReply),
    });
    calibration ??= res.record.calibration;
    const size = res.config.imageSize;
    const generated = res.clips.flat();
    const quality =
      res.record.complete && generated.length > 0
        ? {
            ...qualityFigures(generated, heldOutFrames(msg.referenceClips, msg.options.frames, size), {
              height: size,
              width: size,
            }),
          }
        : null;
    parentPort!.postMessage({ id: msg.id, kind: "done", record: res.record, quality } satisfies CellReply);
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
