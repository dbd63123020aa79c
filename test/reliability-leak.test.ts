/**
 * Reliability battery: 1000 network calls leave the tensor count and the
 * resident memory flat, on both engines (tfjs-wasm and onnxruntime), through
 * the meter as generation calls them. Measured here: onnxruntime's RSS grows
 * ~10 MiB over its first 2000 calls (its allocator arena and V8 settling)
 * and then stays within 1 MiB over 6000 more; tfjs-wasm is flat after ~100.
 * So RSS is read after a warm-up of 2000 calls and must grow less than 4 MiB
 * over the next 1000, which a leak of even 4 KiB per call (a micro frame's
 * input alone is 3 KiB) would exceed. Garbage is collected every 100 calls, so
 * what RSS measures is memory that survives a collection (a leak), not a
 * heap V8 grew because a busy machine delayed its collector.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tf } from "../src/engine/tf.ts";
import { loadNetwork } from "../src/run/generation.ts";
import { Rng } from "../src/util/rng.ts";
import { saveMicroModel } from "./helpers/outputs.ts";

const root = mkdtempSync(join(tmpdir(), "framecost-rel-leak-"));
const model = join(root, "micro");
beforeAll(() => saveMicroModel(model));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// a collector to call from the test (vitest's workers are not started with --expose-gc)
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const WARMUP = 2000;
const CALLS = WARMUP + 1000;
const RSS_BOUND = 4 * 2 ** 20;

describe("1000 network calls", () => {
  for (const backend of ["wasm", "onnx"] as const) {
    it(`${backend}: tensor count unchanged, RSS growth over 1000 calls after warm-up under 4 MiB`, async () => {
      const l = await loadNetwork({
        modelDir: model,
        sampler: "ddim",
        steps: 1,
        frames: 1,
        fps: 24,
        seed: 0,
        backend,
        threads: 1,
        convention: "flops",
        calibration: { gemmGflops: 20, backend },
        guidance: { weight: 0 },
      });
      const cfg = l.config;
      const n = cfg.imageSize * cfg.imageSize * cfg.channels;
      const rng = new Rng(3);
      const x = Float32Array.from({ length: n }, () => rng.normal());
      const ctx = Float32Array.from({ length: cfg.contextFrames * n }, () => rng.normal());
      const meter = l.meter();
      const call = meter.wrap<{ mask: number[] }>((xx, t, c) =>
        l.net.predictWith(xx, [t], ctx, c.mask, null, {}).then((r) => r.predictions[0]),
      );
      meter.beginFrame(0);
      const tensors0 = tf.memory().numTensors;
      let rssWarm = 0;
      let sum = 0;
      for (let i = 0; i < CALLS; i++) {
        const y = await call(x, (i * 37) % 1000, { mask: i % 2 ? [1, 1] : [0, 1] });
        sum += y[0];
        if (i % 100 === 99) gc();
        if (i === WARMUP - 1) rssWarm = process.memoryUsage().rss;
      }
      meter.endFrame();
      const rssEnd = process.memoryUsage().rss;
      const tensors1 = tf.memory().numTensors;
      l.net.dispose();
      expect(Number.isFinite(sum)).toBe(true);
      expect(tensors1).toBe(tensors0);
      const grown = rssEnd - rssWarm;
      console.log(
        `${backend}: ${CALLS} calls, tensors ${tensors0} -> ${tensors1}; RSS over the ${CALLS - WARMUP} calls after ${WARMUP} of warm-up ${(rssWarm / 2 ** 20).toFixed(1)} -> ${(rssEnd / 2 ** 20).toFixed(1)} MiB (${(grown / 2 ** 20).toFixed(2)} MiB)`,
      );
      expect(grown).toBeLessThan(RSS_BOUND);
    }, 120_000);
  }
});
