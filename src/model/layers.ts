/**
 * Building blocks that keep the wasm backend on its fast path (FACTS.md):
 * dense layers as plain 2-D matMuls inside a customGrad (no transpose flags
 * in the backward pass), and attention's batched products as depthwise
 * convolutions (XNNPACK's grouped GEMM), forward and backward by hand.
 */
import { tf } from "../engine/tf.ts";

type T = tf.Tensor;
type Save = (tensors: T[]) => void;

/** [N, C] -> [C, N]; a 4-D permute is faster than a 2-D transpose on wasm for tall matrices. */
export function transpose2d(x: T): T {
  const [n, c] = x.shape as number[];
  const a = largestDivisorAtMost(n, Math.floor(Math.sqrt(n)));
  const d = largestDivisorAtMost(c, Math.floor(Math.sqrt(c)));
  if (a <= 1 || d <= 1) return tf.transpose(x);
  // [a, b, c', d] -> [c', d, a, b] equals the transpose when n = a*b and c = c'*d
  return tf.reshape(tf.transpose(tf.reshape(x, [a, n / a, c / d, d]), [2, 3, 0, 1]), [c, n]);
}

function largestDivisorAtMost(n: number, k: number): number {
  for (let d = Math.max(1, k); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

/** x [N, in] @ w [in, out] + b [out] -> [N, out]. */
export const dense = tf.customGrad(((x: T, w: T, b: T, save: Save) => {
  save([x, w]);
  const value = tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: b });
  const gradFunc = (dy: T, saved: T[]) => {
    const [xs, ws] = saved;
    const n = dy.shape[0]!;
    const dx = tf.matMul(dy as tf.Tensor2D, transpose2d(ws) as tf.Tensor2D); // [N, out] @ [out, in]
    // transpose the narrower of x and dy explicitly (FACTS.md: faster than transpose flags)
    const dw =
      xs.shape[1]! <= dy.shape[1]!
        ? tf.matMul(transpose2d(xs) as tf.Tensor2D, dy as tf.Tensor2D) // [in, N] @ [N, out]
        : transpose2d(tf.matMul(transpose2d(dy) as tf.Tensor2D, xs as tf.Tensor2D)); // ([out, N] @ [N, in])^T
    const db = tf.reshape(tf.matMul(tf.ones([1, n]), dy as tf.Tensor2D), [dy.shape[1]!]); // column sums
    return [dx, dw, db];
  };
  return { value, gradFunc };
  // biome-ignore lint/suspicious/noExplicitAny: tfjs types customGrad's variadic signature loosely
}) as any) as (x: T, w: T, b: T) => tf.Tensor2D;

/**
 * Batched matmul over groups C: a [M, K, C], b [K, C, N] -> [M, C, N],
 * as depthwiseConv2d(input [1, M, K, C], filter [1, K, C, N], 'valid').
 */
export function groupedMatMul(a: T, b: T): T {
  const [m, k, c] = a.shape as number[];
  const n = b.shape[2]!;
  const out = tf.depthwiseConv2d(
    tf.reshape(a, [1, m, k, c]) as tf.Tensor4D,
    tf.reshape(b, [1, k, c, n]) as tf.Tensor4D,
    1,
    "valid",
  ); // [1, M, 1, C*N]
  return tf.reshape(out, [m, c, n]);
}

/**
 * Multi-head self-attention core on token-major tensors.
 * q, k, v: [T*B, D] with rows (token, batch) and D = heads * dh -> output [T*B, D].
 * Viewed as [T, G, dh] with G = B * heads groups.
 */
export function attention(q: T, k: T, v: T, tokens: number, heads: number): tf.Tensor2D {
  const [rows, d] = q.shape as number[];
  const g = (rows / tokens) * heads;
  const dh = d / heads;
  const scale = 1 / Math.sqrt(dh);
  const f = tf.customGrad(((qi: T, ki: T, vi: T, save: Save) => {
    const q3 = tf.reshape(qi, [tokens, g, dh]);
    const k3 = tf.reshape(ki, [tokens, g, dh]);
    const v3 = tf.reshape(vi, [tokens, g, dh]);
    const s = groupedMatMul(tf.transpose(q3, [0, 2, 1]), tf.transpose(k3, [2, 1, 0])); // [T, G, S]
    const p = tf.softmax(tf.mul(s, scale)); // over S
    const o = groupedMatMul(tf.transpose(p, [0, 2, 1]), v3); // [T, S, G] x [S, G, dh] -> [T, G, dh]
    save([q3, k3, v3, p]);
    const gradFunc = (dy: T, saved: T[]) => {
      const [qs, ks, vs, ps] = saved;
      const dO = tf.reshape(dy, [tokens, g, dh]);
      const dP = groupedMatMul(tf.transpose(dO, [0, 2, 1]), tf.transpose(vs, [2, 1, 0])); // [T, G, S]
      const dV = groupedMatMul(tf.transpose(ps, [2, 0, 1]), dO); // [S, T, G] x [T, G, dh] -> [S, G, dh]
      // softmax backward, then the scale
      const dS = tf.mul(tf.mul(ps, tf.sub(dP, tf.sum(tf.mul(dP, ps), -1, true))), scale);
      const dQ = groupedMatMul(tf.transpose(dS, [0, 2, 1]), ks); // [T, S, G] x [S, G, dh]
      const dK = groupedMatMul(tf.transpose(dS, [2, 0, 1]), qs); // [S, T, G] x [T, G, dh]
      return [tf.reshape(dQ, [rows, d]), tf.reshape(dK, [rows, d]), tf.reshape(dV, [rows, d])];
    };
    return { value: tf.reshape(o, [rows, d]), gradFunc };
    // biome-ignore lint/suspicious/noExplicitAny: see dense
  }) as any) as (a: T, b: T, c: T) => tf.Tensor2D;
  return f(q, k, v);
}

/** LayerNorm over the last axis, no affine parameters (adaLN supplies scale and shift). */
export function layerNorm(x: T, eps = 1e-6): T {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
}

/** GELU as x * sigmoid(1.702 x): cheaper than tanh/erf on wasm, same shape of curve. */
export function gelu(x: T): T {
  return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
}

export function silu(x: T): T {
  return tf.mul(x, tf.sigmoid(x));
}

/**
 * adaLN modulation of token-major x [T*B, D] by per-sample shift, scale [B, D]:
 * x * (1 + scale) + shift, broadcast over tokens.
 */
export function modulate(x: T, shift: T, scale: T, batch: number): T {
  const d = x.shape[1]!;
  const x3 = tf.reshape(x, [-1, batch, d]); // [T, B, D]
  return tf.reshape(tf.add(tf.mul(x3, tf.add(scale, 1)), shift), [-1, d]);
}

/** Gated residual: x + gate * y, gate [B, D] broadcast over tokens. */
export function gatedResidual(x: T, y: T, gate: T, batch: number): T {
  const d = x.shape[1]!;
  return tf.reshape(tf.add(tf.reshape(x, [-1, batch, d]), tf.mul(tf.reshape(y, [-1, batch, d]), gate)), [
    -1,
    d,
  ]);
}
