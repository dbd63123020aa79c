/**
 * The video DiT: a diffusion transformer over one frame's patches, conditioned
 * on the noise level (adaLN-Zero) and on K clean previous frames (their patches
 * concatenated to the noisy frame's along channels, so the sequence stays at
 * (imageSize / patch)^2 tokens and attention does not grow with K).
 *
 * Activations are token-major: row (token, batch) of a [T*B, D] matrix, so
 * dense layers are plain 2-D matMuls and attention needs few transposes.
 * Patchify/unpatchify are pure data movement and run on the host.
 *
 * The network maps (x_t, t, context) to a prediction (v or eps, per config);
 * it never sees the noise schedule or the sampler.
 */
import { tf } from "../engine/tf.ts";
import {
  inputSlots,
  type ModelConfig,
  patchInputDim,
  patchOutputDim,
  tokensOf,
  validateConfig,
} from "./config.ts";
import { attention, dense, gatedResidual, gelu, layerNorm, modulate, silu } from "./layers.ts";
import { paramSlots } from "./params.ts";

export type Params = Record<string, tf.Tensor>;

/** The blocks a feature-cached call skips: all but the first and the last (DeepCache's shallow ends), [from, to). */
export function cacheBlocks(cfg: ModelConfig): [number, number] {
  return [cfg.depth >= 2 ? 1 : 0, cfg.depth >= 3 ? cfg.depth - 1 : cfg.depth];
}

/** Host-side inputs of one network call for a batch of B frames. */
export interface NetworkInputs {
  batch: number;
  /** [T*B, P]: noisy-frame patch then K context patches per token (zeros where a context frame is missing) */
  tokens: Float32Array;
  /** [T*B, P]: 1 where a context frame is missing (the learned empty context is used), else 0 */
  missing: Float32Array;
  /** [B, freqDim] sinusoidal timestep features */
  tFeat: Float32Array;
}

/** DiT's 2-D sin-cos position embedding, [T, D]. */
export function positionEmbedding(cfg: ModelConfig): Float32Array {
  const grid = cfg.imageSize / cfg.patch;
  const D = cfg.width;
  const out = new Float32Array(grid * grid * D);
  const quarter = D / 4;
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      const row = (gy * grid + gx) * D;
      for (let i = 0; i < quarter; i++) {
        const omega = 1 / 10000 ** (i / quarter);
        out[row + i] = Math.sin(gy * omega);
        out[row + quarter + i] = Math.cos(gy * omega);
        out[row + 2 * quarter + i] = Math.sin(gx * omega);
        out[row + 3 * quarter + i] = Math.cos(gx * omega);
      }
    }
  }
  return out;
}

/** Sinusoidal timestep features [B, F] (DiT's TimestepEmbedder, max period 10000). */
export function timestepFeatures(t: ArrayLike<number>, freqDim: number): Float32Array {
  const half = freqDim / 2;
  const out = new Float32Array(t.length * freqDim);
  for (let b = 0; b < t.length; b++) {
    for (let i = 0; i < half; i++) {
      const arg = t[b] * Math.exp((-Math.log(10000) * i) / half);
      out[b * freqDim + i] = Math.cos(arg);
      out[b * freqDim + half + i] = Math.sin(arg);
    }
  }
  return out;
}

/**
 * Patchify a batch into token-major rows.
 * x [B, H, W, C]; context [B, K, H, W, C] (slot K-1 = the most recent frame) or null;
 * contextMask [B, K] (1 = present); selfCond [B, H, W, C] (self-conditioned models: the previous
 * clean-frame estimate; null = missing). -> tokens, missing: [T*B, P].
 */
export function prepareInputs(
  cfg: ModelConfig,
  batch: number,
  x: Float32Array,
  context: Float32Array | null,
  contextMask: ArrayLike<number> | null,
  t: ArrayLike<number>,
  selfCond: Float32Array | null = null,
): NetworkInputs {
  const { imageSize: S, patch: p, channels: C, contextFrames: K } = cfg;
  const grid = S / p;
  const T = grid * grid;
  const P = patchInputDim(cfg);
  const cin = C * inputSlots(cfg);
  const frame = S * S * C;
  const tokens = new Float32Array(T * batch * P);
  const missing = new Float32Array(T * batch * P);
  for (let b = 0; b < batch; b++) {
    for (let gy = 0; gy < grid; gy++) {
      for (let gx = 0; gx < grid; gx++) {
        const row = ((gy * grid + gx) * batch + b) * P;
        for (let dy = 0; dy < p; dy++) {
          for (let dx = 0; dx < p; dx++) {
            const pix = ((gy * p + dy) * S + (gx * p + dx)) * C;
            const f = row + (dy * p + dx) * cin;
            for (let c = 0; c < C; c++) tokens[f + c] = x[b * frame + pix + c];
            for (let k = 0; k < K; k++) {
              const present = contextMask ? contextMask[b * K + k] > 0.5 : false;
              for (let c = 0; c < C; c++) {
                const at = f + C * (k + 1) + c;
                if (present && context) tokens[at] = context[(b * K + k) * frame + pix + c];
                else missing[at] = 1;
              }
            }
            if (cfg.selfCond) {
              for (let c = 0; c < C; c++) {
                const at = f + C * (K + 1) + c;
                if (selfCond) tokens[at] = selfCond[b * frame + pix + c];
                else missing[at] = 1;
              }
            }
          }
        }
      }
    }
  }
  return { batch, tokens, missing, tFeat: timestepFeatures(t, cfg.freqDim) };
}

const patchOrders = new Map<string, Int32Array>();

/**
 * For each position of the token-major patch layout [T*B, p*p*C], the index of
 * the same value in [B, H, W, C]; built once per shape (it is used every call).
 */
function patchOrder(cfg: ModelConfig, batch: number): Int32Array {
  const { imageSize: S, patch: p, channels: C } = cfg;
  const key = `${S}/${p}/${C}/${batch}`;
  let order = patchOrders.get(key);
  if (order) return order;
  const grid = S / p;
  const Q = patchOutputDim(cfg);
  order = new Int32Array(grid * grid * batch * Q);
  for (let b = 0; b < batch; b++)
    for (let gy = 0; gy < grid; gy++)
      for (let gx = 0; gx < grid; gx++) {
        const row = ((gy * grid + gx) * batch + b) * Q;
        for (let dy = 0; dy < p; dy++)
          for (let dx = 0; dx < p; dx++) {
            const pix = b * S * S * C + ((gy * p + dy) * S + (gx * p + dx)) * C;
            for (let c = 0; c < C; c++) order[row + (dy * p + dx) * C + c] = pix + c;
          }
      }
  patchOrders.set(key, order);
  return order;
}

/** Frame patches of x [B, H, W, C] in the network's output layout [T*B, p*p*C]. */
export function patchifyFrames(cfg: ModelConfig, batch: number, x: Float32Array): Float32Array {
  const order = patchOrder(cfg, batch);
  const out = new Float32Array(order.length);
  for (let i = 0; i < order.length; i++) out[i] = x[order[i]];
  return out;
}

/** Inverse of patchifyFrames: [T*B, p*p*C] -> [B, H, W, C]. */
export function unpatchify(cfg: ModelConfig, batch: number, y: Float32Array): Float32Array {
  const order = patchOrder(cfg, batch);
  const out = new Float32Array(order.length);
  for (let i = 0; i < order.length; i++) out[order[i]] = y[i];
  return out;
}

/**
 * Feature caching (onnx-export.ts's CacheVariant, DeepCache / FORA): a "full" call sets `delta` to what
 * blocks [from, to) added to the token stream [T*B, D]; a "cached" call skips those blocks and adds `delta`.
 */
export interface TensorCache {
  from: number;
  to: number;
  mode: "full" | "cached";
  delta?: tf.Tensor;
}

/**
 * The network on tensors: params + inputs -> prediction [T*B, p*p*C].
 * A pure function of its arguments so the trainer can differentiate it.
 */
export function forwardTokens(
  cfg: ModelConfig,
  params: Params,
  pos: tf.Tensor,
  tokens: tf.Tensor,
  missing: tf.Tensor,
  tFeat: tf.Tensor,
  batch: number,
  cache?: TensorCache,
): tf.Tensor2D {
  const T = tokensOf(cfg);
  const D = cfg.width;
  const P = patchInputDim(cfg);
  // learned empty context where previous frames are missing: [T, B, P] + [T, 1, P]
  const empty = tf.reshape(params.empty, [T, 1, P]);
  const input = tf.add(tokens, tf.reshape(tf.mul(tf.reshape(missing, [T, batch, P]), empty), [T * batch, P]));
  let h: tf.Tensor = dense(input, params["patch.w"], params["patch.b"]); // [T*B, P] -> [T*B, D]
  h = tf.reshape(tf.add(tf.reshape(h, [T, batch, D]), pos), [T * batch, D]); // pos [T, 1, D]
  // timestep embedding c [B, D]
  const c = dense(
    silu(dense(tFeat, params["temb.w1"], params["temb.b1"])),
    params["temb.w2"],
    params["temb.b2"],
  );
  const sc = silu(c);
  let cacheIn: tf.Tensor | null = null;
  for (let i = 0; i < cfg.depth; i++) {
    if (cache && i === cache.from) {
      if (cache.mode === "cached") {
        if (!cache.delta) throw new Error("forwardTokens: a cached call needs the cached residual");
        h = tf.add(h, cache.delta); // the skipped blocks' residual from the last full call
        i = cache.to - 1;
        continue;
      }
      cacheIn = h;
    }
    const p = (n: string) => params[`block${i}.${n}`];
    // adaLN-Zero: one 6-way split of the conditioning vector, [B, 6D] -> 6 x [B, D]
    const [shift1, scale1, gate1, shift2, scale2, gate2] = tf.split(dense(sc, p("ada.w"), p("ada.b")), 6, 1);
    const n1 = modulate(layerNorm(h), shift1, scale1, batch);
    const q = dense(n1, p("q.w"), p("q.b"));
    const k = dense(n1, p("k.w"), p("k.b"));
    const v = dense(n1, p("v.w"), p("v.b"));
    const a = attention(q, k, v, T, cfg.heads); // [T*B, D]
    h = gatedResidual(h, dense(a, p("o.w"), p("o.b")), gate1, batch);
    const n2 = modulate(layerNorm(h), shift2, scale2, batch);
    const m = dense(gelu(dense(n2, p("mlp.w1"), p("mlp.b1"))), p("mlp.w2"), p("mlp.b2")); // D -> 4D -> D
    h = gatedResidual(h, m, gate2, batch);
    if (cache?.mode === "full" && cacheIn && i === cache.to - 1) cache.delta = tf.sub(h, cacheIn);
  }
  const [shift, scale] = tf.split(dense(sc, params["final.ada.w"], params["final.ada.b"]), 2, 1);
  return dense(modulate(layerNorm(h), shift, scale, batch), params["final.w"], params["final.b"]); // [T*B, p*p*C]
}

/** Tensors for every parameter, views of one flat buffer. */
export function paramsFromFlat(cfg: ModelConfig, flat: Float32Array): Params {
  const out: Params = {};
  for (const s of paramSlots(cfg))
    out[s.name] = tf.tensor(flat.subarray(s.offset, s.offset + s.size), s.shape);
  return out;
}

/** Position embedding as the [T, 1, D] tensor forwardTokens adds. */
export function positionTensor(cfg: ModelConfig): tf.Tensor {
  return tf.tensor(positionEmbedding(cfg), [tokensOf(cfg), 1, cfg.width]);
}

/** A ready-to-run model: weights resident on the backend, host arrays in and out. */
export class VideoDiT {
  readonly cfg: ModelConfig;
  readonly params: Params;
  private readonly pos: tf.Tensor;

  constructor(cfg: ModelConfig, flat: Float32Array) {
    validateConfig(cfg);
    this.cfg = cfg;
    this.params = paramsFromFlat(cfg, flat);
    this.pos = positionTensor(cfg);
  }

  /** The network on prepared inputs, as a tensor [T*B, p*p*C] (caller disposes). */
  forwardPrepared(inputs: NetworkInputs): tf.Tensor2D {
    return this.forwardCached(inputs)[0];
  }

  /** forwardPrepared as a feature-cache call: [prediction, residual of a full call] (caller disposes both). */
  private forwardCached(
    inputs: NetworkInputs,
    cache?: { mode: "full" | "cached"; delta?: Float32Array },
  ): [tf.Tensor2D, tf.Tensor | null] {
    const T = tokensOf(this.cfg);
    const P = patchInputDim(this.cfg);
    const [from, to] = cacheBlocks(this.cfg);
    const out = tf.tidy(() => {
      const c: TensorCache | undefined = cache && {
        from,
        to,
        mode: cache.mode,
        delta: cache.delta && tf.tensor2d(cache.delta, [T * inputs.batch, this.cfg.width]),
      };
      const y = forwardTokens(
        this.cfg,
        this.params,
        this.pos,
        tf.tensor2d(inputs.tokens, [T * inputs.batch, P]),
        tf.tensor2d(inputs.missing, [T * inputs.batch, P]),
        tf.tensor2d(inputs.tFeat, [inputs.batch, this.cfg.freqDim]),
        inputs.batch,
        c,
      );
      return c?.mode === "full" && c.delta ? [y, c.delta] : [y];
    }) as tf.Tensor[];
    return [out[0] as tf.Tensor2D, out[1] ?? null];
  }

  /** `predict` as a feature-cache full or cached call (as OnnxDiT.predictWith; no guide pairing here). */
  async predictWith(
    x: Float32Array,
    t: ArrayLike<number>,
    context: Float32Array | null,
    contextMask: ArrayLike<number> | null,
    selfCond: Float32Array | null,
    call: { cache?: "full" | "cached"; deltas?: Float32Array[] },
  ): Promise<{ predictions: Float32Array[]; deltas: Float32Array[] }> {
    const batch = t.length;
    const inputs = prepareInputs(this.cfg, batch, x, context, contextMask, t, selfCond);
    if (call.cache === "cached" && call.deltas?.length !== 1)
      throw new Error("VideoDiT: a cached call needs the cached residual");
    const [y, delta] = this.forwardCached(
      inputs,
      call.cache ? { mode: call.cache, delta: call.deltas?.[0] } : undefined,
    );
    const data = (await y.data()) as Float32Array;
    const d = delta ? ((await delta.data()) as Float32Array) : null;
    y.dispose();
    delta?.dispose();
    return { predictions: [unpatchify(this.cfg, batch, data)], deltas: d ? [d] : [] };
  }

  /**
   * One network evaluation. x [B, H, W, C], t [B] (training timesteps, may be fractional),
   * context [B, K, H, W, C] or null, contextMask [B, K], selfCond [B, H, W, C] (the previous estimate of the
   * clean frame, for a self-conditioned model) or null -> prediction [B, H, W, C] on the host.
   */
  async predict(
    x: Float32Array,
    t: ArrayLike<number>,
    context: Float32Array | null,
    contextMask: ArrayLike<number> | null,
    selfCond: Float32Array | null = null,
  ): Promise<Float32Array> {
    const batch = t.length;
    const inputs = prepareInputs(this.cfg, batch, x, context, contextMask, t, selfCond);
    const y = this.forwardPrepared(inputs);
    const data = (await y.data()) as Float32Array;
    y.dispose();
    return unpatchify(this.cfg, batch, data);
  }

  dispose(): void {
    for (const t of Object.values(this.params)) t.dispose();
    this.pos.dispose();
  }
}
