import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { tf } from "../src/engine/tf-grad.ts";
import { type ModelConfig, PRESETS, patchInputDim, patchOutputDim, tokensOf } from "../src/model/config.ts";
import { patchifyFrames, prepareInputs, unpatchify, VideoDiT } from "../src/model/dit.ts";
import { attention, dense } from "../src/model/layers.ts";
import { initParams, paramCount } from "../src/model/params.ts";
import { Rng } from "../src/util/rng.ts";

beforeAll(async () => {
  await tf.setBackend("wasm");
});

/** Random weights everywhere (fresh init zeroes adaLN and the final layer, which would hide bugs). */
function randomWeights(cfg: ModelConfig, seed: number): Float32Array {
  const rng = new Rng(seed);
  return initParams(cfg, seed).map((v) => v + 0.05 * rng.normal());
}

describe("parameter count", () => {
  it("is pinned for the presets", () => {
    expect(paramCount(PRESETS.micro)).toBe(50_576);
    expect(paramCount(PRESETS.tiny)).toBe(1_279_152);
    expect(paramCount(PRESETS.small)).toBe(4_168_560);
  });

  it("follows the closed form for any shape", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom(2, 4, 8),
        fc.integer({ min: 0, max: 3 }),
        (depth, headsMul, heads, patch, K) => {
          const D = heads * headsMul * 4;
          const cfg: ModelConfig = { ...PRESETS.tiny, depth, width: D, heads, patch, contextFrames: K };
          const P = patchInputDim(cfg);
          const Q = patchOutputDim(cfg);
          const T = tokensOf(cfg);
          const F = cfg.freqDim;
          const perBlock = D * 6 * D + 6 * D + 4 * (D * D + D) + (D * 4 * D + 4 * D) + (4 * D * D + D);
          const expected =
            P * D + D + T * P + F * D + D + D * D + D + depth * perBlock + D * 2 * D + 2 * D + D * Q + Q;
          expect(paramCount(cfg)).toBe(expected);
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe("patchify", () => {
  it("unpatchify inverts patchifyFrames", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 1000 }), (batch, seed) => {
        const cfg = PRESETS.micro;
        const n = batch * cfg.imageSize * cfg.imageSize * cfg.channels;
        const x = new Rng(seed).normals(n);
        expect(unpatchify(cfg, batch, patchifyFrames(cfg, batch, x))).toEqual(x);
      }),
      { numRuns: 20 },
    );
  });

  it("marks missing context frames and copies present ones", () => {
    const cfg = PRESETS.micro;
    const n = cfg.imageSize * cfg.imageSize * cfg.channels;
    const x = new Float32Array(n).fill(0.5);
    const ctx = new Float32Array(2 * n).fill(-0.25);
    const { tokens, missing } = prepareInputs(cfg, 1, x, ctx, [0, 1], [10]);
    const P = patchInputDim(cfg);
    // per pixel: 3 noisy-frame channels, 3 of context slot 0 (missing), 3 of slot 1 (present)
    expect(Array.from(tokens.slice(0, 9))).toEqual([0.5, 0.5, 0.5, 0, 0, 0, -0.25, -0.25, -0.25]);
    expect(Array.from(missing.slice(0, 9))).toEqual([0, 0, 0, 1, 1, 1, 0, 0, 0]);
    expect(tokens.length).toBe(tokensOf(cfg) * P);
  });
});

describe("VideoDiT", () => {
  it("starts as zero output (adaLN-Zero and a zero final layer)", async () => {
    const cfg = PRESETS.micro;
    const m = new VideoDiT(cfg, initParams(cfg, 1));
    const n = cfg.imageSize * cfg.imageSize * cfg.channels;
    const y = await m.predict(new Rng(1).normals(n), [500], null, null);
    expect(Math.max(...y.map(Math.abs))).toBe(0);
    m.dispose();
  });

  it("is deterministic, leaks no tensors, and its output is pinned", async () => {
    const cfg = PRESETS.micro;
    const before = tf.memory().numTensors;
    const m = new VideoDiT(cfg, randomWeights(cfg, 3));
    const n = cfg.imageSize * cfg.imageSize * cfg.channels;
    const rng = new Rng(9);
    const x = rng.normals(2 * n);
    const ctx = rng.normals(2 * 2 * n);
    const a = await m.predict(x, [10, 900], ctx, [1, 1, 0, 1]);
    const b = await m.predict(x, [10, 900], ctx, [1, 1, 0, 1]);
    expect(a).toEqual(b);
    expect(a.length).toBe(2 * n);
    const sum = a.reduce((s, v) => s + v, 0);
    expect(sum).toBeCloseTo(17.2822, 2);
    // batch rows are independent: sample 1 alone gives the same prediction
    const one = await m.predict(x.subarray(n), [900], ctx.subarray(2 * n), [0, 1]);
    for (let i = 0; i < n; i++) expect(one[i]).toBeCloseTo(a[n + i], 4);
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe("fast-path layers", () => {
  it("dense's hand-written gradient equals autodiff of matMul", () => {
    const rng = new Rng(2);
    const x = tf.tensor2d(rng.normals(12 * 8), [12, 8]);
    const w = tf.tensor2d(rng.normals(8 * 5), [8, 5]);
    const b = tf.tensor1d(rng.normals(5));
    const f1 = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(dense(x, w, b))) as tf.Scalar;
    const f2 = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.square(tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b))) as tf.Scalar;
    const g1 = tf.grads(f1)([x, w, b]);
    const g2 = tf.grads(f2)([x, w, b]);
    g1.forEach((g, i) => {
      expect(tf.max(tf.abs(tf.sub(g, g2[i]))).dataSync()[0]).toBeLessThan(1e-4);
    });
  });

  it("attention as grouped convolutions equals the textbook batched version, forward and backward", () => {
    const [T, B, H, D] = [6, 2, 2, 8];
    const rng = new Rng(4);
    const q = tf.tensor2d(rng.normals(T * B * D), [T * B, D]);
    const k = tf.tensor2d(rng.normals(T * B * D), [T * B, D]);
    const v = tf.tensor2d(rng.normals(T * B * D), [T * B, D]);
    const w = tf.tensor2d(rng.normals(T * B * D), [T * B, D]);
    const naive = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => {
      const split = (z: tf.Tensor) =>
        tf.transpose(tf.reshape(z, [T, B, H, D / H]), [1, 2, 0, 3]) as tf.Tensor4D;
      const s = tf.mul(tf.matMul(split(q), split(k), false, true), 1 / Math.sqrt(D / H));
      const o = tf.matMul(tf.softmax(s) as tf.Tensor4D, split(v));
      return tf.reshape(tf.transpose(o, [2, 0, 1, 3]), [T * B, D]);
    };
    const fwdErr = tf.max(tf.abs(tf.sub(naive(q, k, v), attention(q, k, v, T, H)))).dataSync()[0];
    expect(fwdErr).toBeLessThan(1e-5);
    const ga = tf.grads((q, k, v) => tf.sum(tf.mul(attention(q, k, v, T, H), w)) as tf.Scalar)([q, k, v]);
    const gn = tf.grads((q, k, v) => tf.sum(tf.mul(naive(q, k, v), w)) as tf.Scalar)([q, k, v]);
    ga.forEach((g, i) => {
      expect(tf.max(tf.abs(tf.sub(g, gn[i]))).dataSync()[0]).toBeLessThan(1e-5);
    });
  });
});
