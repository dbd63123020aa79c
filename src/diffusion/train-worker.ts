/**
 * Training worker thread: holds its own engine (a tfjs backend, or one
 * single-threaded onnxruntime session), reads the shared parameters, computes
 * gradients on its share of the batch and writes them into its own shared
 * gradient buffer. The main thread does the optimizer step.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { ModelConfig } from "../model/config.ts";
import { makeSchedule } from "./schedule.ts";
import { type BatchOptions, makeTrainBatch, type TrainBatch } from "./train-batch.ts";

interface Init {
  cfg: ModelConfig;
  /** a tfjs backend name, or "onnx" */
  backend: string;
  params: SharedArrayBuffer;
  grads: SharedArrayBuffer;
  batchOptions: BatchOptions;
  seedLimit: number;
}

export interface StepRequest {
  seed: number;
  batch: number;
}

const init = (workerData as { data: Init }).data;
const params = new Float32Array(init.params);
const grads = new Float32Array(init.grads);
const schedule = makeSchedule("cosine", init.cfg.trainTimesteps);

async function makeStep(): Promise<(batch: TrainBatch) => Promise<number>> {
  if (init.backend === "onnx") {
    const { OnnxTrainStep } = await import("./train-onnx.ts");
    // one intra-op thread: the data-parallel workers are what use the cores
    const step = new OnnxTrainStep(init.cfg, 1);
    return async (batch) => (await step.run(params, batch, grads)).loss;
  }
  const { tf } = await import("../engine/tf-grad.ts");
  const { initBackend } = await import("../engine/backend.ts");
  const { positionTensor } = await import("../model/dit.ts");
  const { lossAndGrads } = await import("./train-grads.ts");
  await initBackend(init.backend);
  tf.env().set("CHECK_COMPUTATION_FOR_ERRORS", false);
  const pos = positionTensor(init.cfg);
  return async (batch) => lossAndGrads(init.cfg, params, batch, pos, grads).loss;
}

const step = await makeStep();
parentPort!.on("message", async (req: StepRequest) => {
  const batch = makeTrainBatch(init.cfg, schedule, req.batch, req.seed, init.seedLimit, init.batchOptions);
  try {
    parentPort!.postMessage({ loss: await step(batch) });
  } catch (err) {
    // an async failure would otherwise be an unhandled rejection the main thread never hears about
    parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
});
parentPort!.postMessage({ ready: true });
