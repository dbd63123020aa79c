/**
 * Training worker thread: holds its own engine (a tfjs backend, or one
 * single-threaded onnxruntime session), reads the shared parameters, computes
 * gradients on its share of the batch and writes them into its own shared
 * gradient buffer. The main thread does the optimizer step.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { ModelConfig } from "../model/config.ts";
import type { NetworkInputs } from "../model/dit.ts";
import {
  type DistillSpec,
  distillSteps,
  guidedTeacher,
  pickStudentT,
  setDistillTarget,
  setGuidedTarget,
} from "./distill.ts";
import { makeSchedule } from "./schedule.ts";
import { applySelfCond, type BatchOptions, makeTrainBatch, type TrainBatch } from "./train-batch.ts";

interface Init {
  cfg: ModelConfig;
  /** a tfjs backend name, or "onnx" */
  backend: string;
  params: SharedArrayBuffer;
  grads: SharedArrayBuffer;
  batchOptions: BatchOptions;
  seedLimit: number;
  /** progressive distillation: targets come from the teacher (distill.ts) instead of the clip's noise */
  distill?: DistillSpec;
}

export interface StepRequest {
  seed: number;
  batch: number;
}

const init = (workerData as { data: Init }).data;
const params = new Float32Array(init.params);
const grads = new Float32Array(init.grads);
const schedule = makeSchedule("cosine", init.cfg.trainTimesteps);

interface Engine {
  /** loss of the batch; writes the gradients into `grads` */
  step(batch: TrainBatch): Promise<number>;
  /** the network's prediction [T*B, p*p*C] at the current weights, no gradient (self-conditioning) */
  predict(inputs: NetworkInputs): Promise<Float32Array>;
  /** the same network at other weights (a distillation teacher or its guide), no gradient */
  predictWith(flat: Float32Array, inputs: NetworkInputs): Promise<Float32Array>;
}

async function makeEngine(): Promise<Engine> {
  if (init.backend === "onnx") {
    const { OnnxTrainStep } = await import("./train-onnx.ts");
    // one intra-op thread: the data-parallel workers are what use the cores
    const onnx = new OnnxTrainStep(init.cfg, 1);
    return {
      step: async (batch) => (await onnx.run(params, batch, grads)).loss,
      predict: (inputs) => onnx.predict(params, inputs),
      predictWith: (flat, inputs) => onnx.predict(flat, inputs),
    };
  }
  const { tf } = await import("../engine/tf-grad.ts");
  const { initBackend } = await import("../engine/backend.ts");
  const { positionTensor, VideoDiT } = await import("../model/dit.ts");
  const { lossAndGrads } = await import("./train-grads.ts");
  await initBackend(init.backend);
  tf.env().set("CHECK_COMPUTATION_FOR_ERRORS", false);
  const pos = positionTensor(init.cfg);
  // fixed weights (teacher, guide) keep their network; the student's change every step
  const fixed = new Map<Float32Array, InstanceType<typeof VideoDiT>>();
  const run = async (net: InstanceType<typeof VideoDiT>, inputs: NetworkInputs) => {
    const y = net.forwardPrepared(inputs);
    const data = (await y.data()) as Float32Array;
    y.dispose();
    return data;
  };
  return {
    predictWith: (flat, inputs) => {
      let net = fixed.get(flat);
      if (!net) {
        net = new VideoDiT(init.cfg, flat);
        fixed.set(flat, net);
      }
      return run(net, inputs);
    },
    step: async (batch) => lossAndGrads(init.cfg, params, batch, pos, grads).loss,
    predict: async (inputs) => {
      // the network at this step's weights (a copy: the optimizer writes the shared buffer between steps)
      const net = new VideoDiT(init.cfg, params.slice());
      try {
        const y = net.forwardPrepared(inputs);
        const data = (await y.data()) as Float32Array;
        y.dispose();
        return data;
      } finally {
        net.dispose();
      }
    },
  };
}

const engine = await makeEngine();
const distill = init.distill
  ? (() => {
      const d = init.distill;
      // studentSteps 0: guidance distillation alone, at every timestep (makeTrainBatch's uniform draw)
      const steps = d.studentSteps > 0 ? distillSteps(schedule.T, d.studentSteps) : null;
      const teacher = guidedTeacher(
        init.cfg,
        engine.predictWith,
        new Float32Array(d.teacher),
        d.guide ? new Float32Array(d.guide) : null,
        d.guidance,
      );
      return { steps, teacher, pickT: steps ? pickStudentT(steps) : undefined };
    })()
  : null;
parentPort!.on("message", async (req: StepRequest) => {
  const batch = makeTrainBatch(
    init.cfg,
    schedule,
    req.batch,
    req.seed,
    init.seedLimit,
    init.batchOptions,
    distill?.pickT,
  );
  try {
    if (distill?.steps)
      await setDistillTarget(init.cfg, schedule.alphasCumprod, batch, distill.steps, distill.teacher);
    else if (distill) await setGuidedTarget(batch, distill.teacher);
    // self-conditioning: a first pass without the estimate gives the estimate some samples see in the second
    if (init.cfg.selfCond && batch.selfCond.some((x) => x === 1))
      applySelfCond(init.cfg, batch, await engine.predict(batch.inputs));
    parentPort!.postMessage({ loss: await engine.step(batch) });
  } catch (err) {
    // an async failure would otherwise be an unhandled rejection the main thread never hears about
    parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
});
parentPort!.postMessage({ ready: true });
