/**
 * The video DiT as an ONNX graph, and `OnnxDiT`, the model on the native
 * engine with the same host-array API as `VideoDiT`.
 *
 * The graph is exactly `forwardTokens` (dit.ts): the same ops in the same
 * order with the same math (token-major rows (token, batch), GELU as
 * x*sigmoid(1.702x), LayerNorm without affine and eps 1e-6, adaLN-Zero as one
 * 6-way split, attention per (batch, head)), for a fixed batch. Attention's
 * batched products are MatMuls on 4-D tensors [B, H, T, dh], ORT's fast path.
 * Patchify and the timestep features stay on the host (`prepareInputs`).
 *
 * Built in memory from the config and the flat weights when a batch size is
 * first used; building the shipped model takes milliseconds, so no file cache.
 */
import { createHash } from "node:crypto";
import type { ModuleLoader } from "../engine/backend.ts";
import {
  createOnnxSession,
  defaultOnnxThreads,
  endOnnxProfile,
  loadOrt,
  newProfileDir,
  type OnnxDevice,
  type OnnxSession,
  type OrtNodeTiming,
} from "../engine/onnx.ts";
import { GraphBuilder, type OnnxNode } from "../engine/onnx-graph.ts";
import { type ModelConfig, patchInputDim, patchOutputDim, tokensOf, validateConfig } from "./config.ts";
import { type NetworkInputs, positionEmbedding, prepareInputs, unpatchify } from "./dit.ts";
import { paramCount, paramSlots } from "./params.ts";

/** Names of the graph's inputs and output. */
export const ONNX_INPUTS = { tokens: "tokens", missing: "missing", tFeat: "t_feat" } as const;
export const ONNX_OUTPUT = "prediction";

export interface OnnxDiTGraph {
  cfg: ModelConfig;
  /** frames per call the graph was built for */
  batch: number;
  /** serialized ModelProto */
  bytes: Uint8Array;
  /** every node with static input/output shapes (for the FLOP rules) */
  nodes: readonly OnnxNode[];
  /** sha256 of config, batch and weights: the same key means the same graph */
  key: string;
}

/**
 * forwardTokens as ONNX for `batch` frames per call.
 * Inputs tokens, missing [T*B, P] and t_feat [B, freqDim]; output prediction [T*B, p*p*C].
 */
export function exportDiTOnnx(cfg: ModelConfig, flat: Float32Array, batch = 1): OnnxDiTGraph {
  validateConfig(cfg);
  if (flat.length !== paramCount(cfg)) {
    throw new Error(
      `exportDiTOnnx: ${flat.length} weights for a "${cfg.name}" model with ${paramCount(cfg)}`,
    );
  }
  if (!Number.isInteger(batch) || batch < 1)
    throw new Error(`exportDiTOnnx: batch must be >= 1, got ${batch}`);
  const B = batch;
  const T = tokensOf(cfg);
  const R = T * B;
  const D = cfg.width;
  const P = patchInputDim(cfg);
  const H = cfg.heads;
  const dh = D / H;
  const g = new GraphBuilder(`framecost-${cfg.name}-b${B}`);

  const slots = new Map(paramSlots(cfg).map((s) => [s.name, s]));
  // `shape` overrides the stored shape where forwardTokens reshapes a parameter before use (same data)
  const param = (name: string, shape?: number[]) => {
    const s = slots.get(name);
    if (!s) throw new Error(`exportDiTOnnx: no parameter "${name}"`);
    return g.weight(name, flat.subarray(s.offset, s.offset + s.size), shape ?? s.shape);
  };
  const dense = (x: string, w: string, b: string, name: string) =>
    g.add(g.matMul(x, param(w), `${name}/MatMul`), param(b), `${name}/Add`); // [N, in] -> [N, out]
  const silu = (x: string, name: string) => g.mul(x, g.unary("Sigmoid", x, `${name}/Sigmoid`), `${name}/Mul`);
  const gelu = (x: string, name: string) =>
    g.mul(
      x,
      g.unary("Sigmoid", g.mul(x, g.scalar(1.702), `${name}/Scale`), `${name}/Sigmoid`),
      `${name}/Mul`,
    );
  const layerNorm = (x: string, name: string) => {
    const mean = g.reduceMean(x, [-1], true, `${name}/Mean`); // [R, D] -> [R, 1]
    const d = g.binary("Sub", x, mean, `${name}/Sub`);
    const variance = g.reduceMean(g.binary("Pow", d, g.scalar(2), `${name}/Pow`), [-1], true, `${name}/Var`);
    const std = g.unary("Sqrt", g.add(variance, g.scalar(1e-6), `${name}/AddEps`), `${name}/Sqrt`);
    return g.binary("Div", d, std, `${name}/Div`);
  };
  // x * (1 + scale) + shift, scale and shift [B, D] broadcast over tokens: [R, D] -> [T, B, D] -> [R, D]
  const modulate = (x: string, shift: string, scale: string, name: string) => {
    const x3 = g.reshape(x, [T, B, D], `${name}/Reshape`);
    const scaled = g.mul(x3, g.add(scale, g.scalar(1), `${name}/OnePlus`), `${name}/Mul`);
    return g.reshape(g.add(scaled, shift, `${name}/Add`), [R, D], `${name}/Flatten`);
  };
  // x + gate * y, gate [B, D] broadcast over tokens
  const gatedResidual = (x: string, y: string, gate: string, name: string) => {
    const gated = g.mul(g.reshape(y, [T, B, D], `${name}/ReshapeY`), gate, `${name}/Gate`);
    const sum = g.add(g.reshape(x, [T, B, D], `${name}/ReshapeX`), gated, `${name}/Add`);
    return g.reshape(sum, [R, D], `${name}/Flatten`);
  };
  // softmax(q k^T / sqrt(dh)) v per (batch, head)
  const attention = (q: string, k: string, v: string, name: string) => {
    const heads = (x: string, perm: number[], n: string) =>
      g.transpose(g.reshape(x, [T, B, H, dh], `${name}/Reshape${n}`), perm, `${name}/Transpose${n}`);
    const q4 = heads(q, [1, 2, 0, 3], "Q"); // [T, B, H, dh] -> [B, H, T, dh]
    const kT = heads(k, [1, 2, 3, 0], "K"); // [T, B, H, dh] -> [B, H, dh, T]
    const v4 = heads(v, [1, 2, 0, 3], "V"); // [B, H, T, dh]
    const scores = g.matMul(q4, kT, `${name}/Scores`); // [B, H, T, T]
    const p = g.softmax(g.mul(scores, g.scalar(1 / Math.sqrt(dh)), `${name}/Scale`), -1, `${name}/Softmax`);
    const o = g.matMul(p, v4, `${name}/Values`); // [B, H, T, dh]
    const tokenMajor = g.transpose(o, [2, 0, 1, 3], `${name}/TransposeO`); // [T, B, H, dh]
    return g.reshape(tokenMajor, [R, D], `${name}/Flatten`);
  };

  const tokens = g.input(ONNX_INPUTS.tokens, [R, P]);
  const missing = g.input(ONNX_INPUTS.missing, [R, P]);
  const tFeat = g.input(ONNX_INPUTS.tFeat, [B, cfg.freqDim]);

  // learned empty context where previous frames are missing: [T, B, P] * [T, 1, P]
  const masked = g.mul(
    g.reshape(missing, [T, B, P], "empty/Reshape"),
    param("empty", [T, 1, P]),
    "empty/Mul",
  );
  const input = g.add(tokens, g.reshape(masked, [R, P], "empty/Flatten"), "empty/Add");
  let h = dense(input, "patch.w", "patch.b", "patch"); // [R, P] -> [R, D]
  const pos = g.weight("pos", positionEmbedding(cfg), [T, 1, D]);
  h = g.reshape(g.add(g.reshape(h, [T, B, D], "pos/Reshape"), pos, "pos/Add"), [R, D], "pos/Flatten");
  // timestep embedding c [B, D]
  const c = dense(
    silu(dense(tFeat, "temb.w1", "temb.b1", "temb/fc1"), "temb/silu"),
    "temb.w2",
    "temb.b2",
    "temb/fc2",
  );
  const sc = silu(c, "cond/silu");
  for (let i = 0; i < cfg.depth; i++) {
    const p = `block${i}.`;
    const n = `block${i}`;
    // adaLN-Zero: [B, 6D] -> 6 x [B, D]
    const [shift1, scale1, gate1, shift2, scale2, gate2] = g.split(
      dense(sc, `${p}ada.w`, `${p}ada.b`, `${n}/ada`),
      1,
      [D, D, D, D, D, D],
      `${n}/ada/Split`,
    );
    const n1 = modulate(layerNorm(h, `${n}/ln1`), shift1, scale1, `${n}/mod1`);
    const q = dense(n1, `${p}q.w`, `${p}q.b`, `${n}/q`);
    const k = dense(n1, `${p}k.w`, `${p}k.b`, `${n}/k`);
    const v = dense(n1, `${p}v.w`, `${p}v.b`, `${n}/v`);
    const a = attention(q, k, v, `${n}/attn`); // [R, D]
    h = gatedResidual(h, dense(a, `${p}o.w`, `${p}o.b`, `${n}/o`), gate1, `${n}/res1`);
    const n2 = modulate(layerNorm(h, `${n}/ln2`), shift2, scale2, `${n}/mod2`);
    const m1 = gelu(dense(n2, `${p}mlp.w1`, `${p}mlp.b1`, `${n}/mlp1`), `${n}/gelu`); // [R, D] -> [R, 4D]
    const m = dense(m1, `${p}mlp.w2`, `${p}mlp.b2`, `${n}/mlp2`); // [R, 4D] -> [R, D]
    h = gatedResidual(h, m, gate2, `${n}/res2`);
  }
  const [shift, scale] = g.split(
    dense(sc, "final.ada.w", "final.ada.b", "final/ada"),
    1,
    [D, D],
    "final/ada/Split",
  );
  const normed = modulate(layerNorm(h, "final/ln"), shift, scale, "final/mod");
  // [R, D] -> [R, p*p*C]; the bias add names the graph output
  const prediction = g.add(g.matMul(normed, param("final.w"), "final/MatMul"), param("final.b"), ONNX_OUTPUT);
  if (g.shapeOf(prediction)[1] !== patchOutputDim(cfg)) throw new Error("exportDiTOnnx: output width");
  g.output(prediction);

  const key = createHash("sha256")
    .update(JSON.stringify({ cfg, batch: B }))
    .update(new Uint8Array(flat.buffer, flat.byteOffset, flat.byteLength))
    .digest("hex");
  const bytes = g.encode(`framecost video DiT "${cfg.name}", batch ${B}, weights sha256 ${key}`);
  return { cfg, batch: B, bytes, nodes: g.nodes, key };
}

export interface OnnxDiTOptions {
  /** ORT intra-op threads; default every usable core */
  threads?: number;
  device?: OnnxDevice;
  /** batch sizes to build and load now (default [1], what generation uses); others are built on first use */
  batches?: number[];
  load?: ModuleLoader;
}

interface Loaded {
  graph: OnnxDiTGraph;
  session: OnnxSession;
}

/** The video DiT on onnxruntime: same weights, same `predict` as `VideoDiT`, host arrays in and out. */
export class OnnxDiT {
  readonly cfg: ModelConfig;
  readonly threads: number;
  readonly device: OnnxDevice;
  private readonly flat: Float32Array;
  private readonly load?: ModuleLoader;
  private readonly loaded = new Map<number, Promise<Loaded>>();
  private last: NetworkInputs | null = null;

  private constructor(cfg: ModelConfig, flat: Float32Array, opts: OnnxDiTOptions) {
    validateConfig(cfg);
    this.cfg = cfg;
    this.flat = flat;
    this.threads = opts.threads ?? defaultOnnxThreads();
    this.device = opts.device ?? "cpu";
    this.load = opts.load;
  }

  /** Exports and loads the graph for each of `opts.batches` (default [1]). */
  static async create(cfg: ModelConfig, flat: Float32Array, opts: OnnxDiTOptions = {}): Promise<OnnxDiT> {
    const dit = new OnnxDiT(cfg, flat, opts);
    for (const b of opts.batches ?? [1]) await dit.session(b);
    return dit;
  }

  /** The exported graph for `batch` frames per call (exported and loaded on first use). */
  async graph(batch = 1): Promise<OnnxDiTGraph> {
    return (await this.session(batch)).graph;
  }

  private session(batch: number): Promise<Loaded> {
    let p = this.loaded.get(batch);
    if (!p) {
      p = (async () => {
        const graph = exportDiTOnnx(this.cfg, this.flat, batch);
        const session = await createOnnxSession(graph.bytes, {
          threads: this.threads,
          device: this.device,
          load: this.load,
        });
        return { graph, session };
      })();
      this.loaded.set(batch, p);
      p.catch(() => this.loaded.delete(batch)); // a failed load is retried on the next call
    }
    return p;
  }

  private async feeds(inputs: NetworkInputs) {
    const ort = await loadOrt(this.load);
    const R = tokensOf(this.cfg) * inputs.batch;
    const P = patchInputDim(this.cfg);
    return {
      [ONNX_INPUTS.tokens]: new ort.Tensor("float32", inputs.tokens, [R, P]),
      [ONNX_INPUTS.missing]: new ort.Tensor("float32", inputs.missing, [R, P]),
      [ONNX_INPUTS.tFeat]: new ort.Tensor("float32", inputs.tFeat, [inputs.batch, this.cfg.freqDim]),
    };
  }

  /** The network on prepared inputs -> prediction [T*B, p*p*C] on the host. */
  async forwardPrepared(inputs: NetworkInputs): Promise<Float32Array> {
    const { session } = await this.session(inputs.batch);
    this.last = inputs;
    const out = await session.run(await this.feeds(inputs));
    return out[ONNX_OUTPUT].data as Float32Array;
  }

  /**
   * One network evaluation. x [B, H, W, C], t [B] (training timesteps, may be fractional),
   * context [B, K, H, W, C] or null, contextMask [B, K] -> prediction [B, H, W, C].
   */
  async predict(
    x: Float32Array,
    t: ArrayLike<number>,
    context: Float32Array | null,
    contextMask: ArrayLike<number> | null,
  ): Promise<Float32Array> {
    const batch = t.length;
    const inputs = prepareInputs(this.cfg, batch, x, context, contextMask, t);
    return unpatchify(this.cfg, batch, await this.forwardPrepared(inputs));
  }

  /** Inputs of the latest call (what a kernel counter profiles again), or null before the first. */
  get lastInputs(): NetworkInputs | null {
    return this.last;
  }

  /**
   * ORT's per-node profile of `runs` calls on these inputs, from a separate
   * profiling session (the regular one stays unprofiled); the first
   * (warm-up) call of that session is left out.
   */
  async profile(inputs: NetworkInputs, runs = 5): Promise<OrtNodeTiming[]> {
    const { graph } = await this.session(inputs.batch);
    const dir = newProfileDir();
    const session = await createOnnxSession(graph.bytes, {
      threads: this.threads,
      device: this.device,
      profileDir: dir,
      load: this.load,
    });
    try {
      const feeds = await this.feeds(inputs);
      for (let i = 0; i < runs + 1; i++) await session.run(feeds);
      return endOnnxProfile(session, dir, 1);
    } finally {
      await session.release();
    }
  }

  async dispose(): Promise<void> {
    const all = [...this.loaded.values()];
    this.loaded.clear();
    for (const p of all) await (await p.catch(() => null))?.session.release();
  }
}
