/**
 * Training worker thread: holds its own tfjs backend, reads the shared
 * parameters, computes gradients on its share of the batch and writes them
 * into its own shared gradient buffer. The main thread does the optimizer step.
 */
import { parentPort, workerData } from "node:worker_threads";
import { tf } from "../engine/tf-grad.ts";
import type { ModelConfig } from "../model/config.ts";
import { positionTensor } from "../model/dit.ts";
import { makeSchedule } from "./schedule.ts";
import { type BatchOptions, makeTrainBatch } from "./train-batch.ts";
import { lossAndGrads } from "./train-grads.ts";

interface Init {
  cfg: ModelConfig;
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
await tf.setBackend(init.backend);
tf.env().set("CHECK_COMPUTATION_FOR_ERRORS", false);
const params = new Float32Array(init.params);
const grads = new Float32Array(init.grads);
const schedule = makeSchedule("cosine", init.cfg.trainTimesteps);
const pos = positionTensor(init.cfg);

parentPort!.on("message", (req: StepRequest) => {
  const batch = makeTrainBatch(init.cfg, schedule, req.batch, req.seed, init.seedLimit, init.batchOptions);
  const { loss } = lossAndGrads(init.cfg, params, batch, pos, grads);
  parentPort!.postMessage({ loss });
});
parentPort!.postMessage({ ready: true });
