/**
 * Loss and gradients of one batch for a flat parameter buffer: the unit of
 * work each training worker does. Weighted MSE between the network's output
 * and the v (or eps) target.
 */
import { tf } from "../engine/tf-grad.ts";
import { type ModelConfig, patchInputDim, patchOutputDim, tokensOf } from "../model/config.ts";
import { forwardTokens, type Params } from "../model/dit.ts";
import { paramSlots } from "../model/params.ts";
import { meanLossWeights, type TrainBatch } from "./train-batch.ts";

export interface LossAndGrads {
  loss: number;
}

/**
 * Computes loss and writes d(loss)/d(params) into `gradsOut` (same layout as `flat`).
 * `pos` is the [T, 1, D] position tensor (constant, kept by the caller).
 */
export function lossAndGrads(
  cfg: ModelConfig,
  flat: Float32Array,
  batch: TrainBatch,
  pos: tf.Tensor,
  gradsOut: Float32Array,
): LossAndGrads {
  const slots = paramSlots(cfg);
  const T = tokensOf(cfg);
  const B = batch.inputs.batch;
  const Q = patchOutputDim(cfg);
  const paramTensors = slots.map((s) => tf.tensor(flat.subarray(s.offset, s.offset + s.size), s.shape));
  let loss = 0;
  tf.tidy(() => {
    const tokens = tf.tensor2d(batch.inputs.tokens, [T * B, patchInputDim(cfg)]);
    const missing = tf.tensor2d(batch.inputs.missing, [T * B, patchInputDim(cfg)]);
    const tFeat = tf.tensor2d(batch.inputs.tFeat, [B, cfg.freqDim]);
    const target = tf.tensor2d(batch.target, [T * B, Q]);
    const w = tf.tensor2d(meanLossWeights(batch), [T * B, 1]);
    const f = (...ps: tf.Tensor[]) => {
      const params: Params = {};
      slots.forEach((s, i) => {
        params[s.name] = ps[i];
      });
      const out = forwardTokens(cfg, params, pos, tokens, missing, tFeat, B);
      return tf.sum(tf.mul(tf.square(tf.sub(out, target)), w)) as tf.Scalar;
    };
    const { value, grads } = tf.valueAndGrads(f)(paramTensors);
    loss = value.dataSync()[0];
    grads.forEach((g, i) => {
      gradsOut.set(g.dataSync() as Float32Array, slots[i].offset);
    });
  });
  for (const t of paramTensors) t.dispose();
  return { loss };
}
