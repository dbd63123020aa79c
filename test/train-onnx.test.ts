import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeSchedule } from "../src/diffusion/schedule.ts";
import { makeTrainBatch } from "../src/diffusion/train-batch.ts";
import { lossAndGrads } from "../src/diffusion/train-grads.ts";
import { OnnxTrainStep } from "../src/diffusion/train-onnx.ts";
import { resolveTrainBackend } from "../src/diffusion/trainer.ts";
import type { ModuleLoader } from "../src/engine/backend.ts";
import { tf } from "../src/engine/tf-grad.ts";
import { type ModelConfig, PRESETS } from "../src/model/config.ts";
import { positionTensor, VideoDiT } from "../src/model/dit.ts";
import { initParams, paramCount, paramSlots } from "../src/model/params.ts";
import { Rng } from "../src/util/rng.ts";

beforeAll(async () => {
  await tf.setBackend("wasm");
});

const steps: OnnxTrainStep[] = [];
afterAll(async () => {
  for (const s of steps) await s.dispose();
});

/** Random weights everywhere (fresh init zeroes adaLN and the final layer, which would hide bugs). */
function randomWeights(cfg: ModelConfig, seed: number): Float32Array {
  const rng = new Rng(seed);
  return initParams(cfg, seed).map((v) => v + 0.05 * rng.normal());
}

function bothEngines(cfg: ModelConfig, batch: number, seed: number) {
  const flat = randomWeights(cfg, seed);
  const data = makeTrainBatch(cfg, makeSchedule("cosine"), batch, seed, 1000);
  const gTf = new Float32Array(paramCount(cfg));
  const pos = positionTensor(cfg);
  const tfLoss = lossAndGrads(cfg, flat, data, pos, gTf).loss;
  pos.dispose();
  const step = new OnnxTrainStep(cfg, 1);
  steps.push(step);
  return { flat, data, gTf, tfLoss, step };
}

describe("the training step on onnxruntime", () => {
  it("gives tfjs's loss and every parameter's gradient, for any shape of model and batch", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 1, max: 2 }),
        // makeTrainBatch draws K >= 1 previous frames (the presets have 2)
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.boolean(),
        async (depth, heads, contextFrames, batch, seed, selfCond) => {
          const cfg: ModelConfig = {
            ...PRESETS.micro,
            depth,
            heads,
            width: 16 * heads,
            contextFrames,
            selfCond,
          };
          const { flat, data, gTf, tfLoss, step } = bothEngines(cfg, batch, seed);
          const gOnnx = new Float32Array(paramCount(cfg));
          const { loss } = await step.run(flat, data, gOnnx);
          expect(Math.abs(loss - tfLoss)).toBeLessThan(1e-5 * tfLoss);
          let total = 0;
          for (const g of gTf) total += g * g;
          for (const s of paramSlots(cfg)) {
            let err = 0;
            let norm = 0;
            for (let i = s.offset; i < s.offset + s.size; i++) {
              err += (gOnnx[i] - gTf[i]) ** 2;
              norm += gTf[i] ** 2;
            }
            // relative per parameter; the key bias's gradient is zero in exact arithmetic (softmax
            // ignores a constant per query), so it is held to a bound relative to the whole gradient
            expect(Math.sqrt(err), s.name).toBeLessThan(1e-4 * Math.sqrt(norm) + 1e-6 * Math.sqrt(total));
          }
        },
      ),
      { numRuns: 6 },
    );
  }, 60_000);

  it("predicts what tfjs predicts, from the same weights (self-conditioning's first pass)", async () => {
    const cfg: ModelConfig = { ...PRESETS.micro, selfCond: true };
    const { flat, data, step } = bothEngines(cfg, 3, 11);
    const got = await step.predict(flat, data.inputs);
    const net = new VideoDiT(cfg, flat);
    const want = (await net.forwardPrepared(data.inputs).data()) as Float32Array;
    net.dispose();
    expect(got.length).toBe(want.length);
    let err = 0;
    for (let i = 0; i < got.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
    expect(err).toBeLessThan(1e-4);
  });

  it("has a gradient that matches the loss's own slope (central differences)", async () => {
    const cfg = PRESETS.micro;
    const { flat, data, step } = bothEngines(cfg, 2, 5);
    const g = new Float32Array(paramCount(cfg));
    await step.run(flat, data, g);
    const scratch = new Float32Array(g.length);
    const rng = new Rng(9);
    for (let trial = 0; trial < 3; trial++) {
      // a random direction, and the loss along it at +-eps
      const d = rng.normals(g.length);
      let norm = 0;
      for (const x of d) norm += x * x;
      for (let i = 0; i < d.length; i++) d[i] /= Math.sqrt(norm);
      const eps = 1e-2;
      const at = async (k: number) => {
        const p = flat.map((v, i) => v + k * eps * d[i]);
        return (await step.run(p, data, scratch)).loss;
      };
      const slope = ((await at(1)) - (await at(-1))) / (2 * eps);
      let dot = 0;
      for (let i = 0; i < g.length; i++) dot += g[i] * d[i];
      expect(Math.abs(slope - dot)).toBeLessThan(0.02 * Math.abs(dot) + 1e-5);
    }
  }, 30_000);

  it("refuses weights of another size with a clear line", async () => {
    const step = new OnnxTrainStep(PRESETS.micro, 1);
    steps.push(step);
    const data = makeTrainBatch(PRESETS.micro, makeSchedule("cosine"), 1, 1, 1000);
    await expect(step.run(new Float32Array(10), data, new Float32Array(10))).rejects.toThrow(
      `OnnxTrainStep: 10 weights / 10 gradients for ${paramCount(PRESETS.micro)} parameters`,
    );
  });
});

describe("the training engine choice", () => {
  const noOrt: ModuleLoader = async (s) => {
    if (s === "onnxruntime-node") throw new Error("Cannot find package 'onnxruntime-node'");
    return import(s);
  };

  it("auto takes onnx where installed and falls back to wasm without it", async () => {
    expect(await resolveTrainBackend("auto")).toBe("onnx");
    expect(await resolveTrainBackend("auto", noOrt)).toBe("wasm");
    expect(await resolveTrainBackend("wasm")).toBe("wasm");
  });

  it("says what is wrong with an unknown or missing engine", async () => {
    await expect(resolveTrainBackend("gpu")).rejects.toThrow(
      '--backend must be one of auto, onnx, tensorflow, wasm, cpu, got "gpu"',
    );
    await expect(resolveTrainBackend("onnx", noOrt)).rejects.toThrow(/^--backend onnx is not available: /);
  });
});
