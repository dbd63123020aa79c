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
  type OrtModule,
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

/** A LayerNorm's output and the [R, 1] standard deviation it divided by. */
export interface NormTrace {
  y: string;
  std: string;
}

/** x * (1 + scale) + shift: the output and the (1 + scale) factor. */
export interface ModulateTrace {
  y: string;
  onePlus: string;
}

/** One block's values that its backward pass reads (diffusion/train-onnx.ts). */
export interface BlockTrace {
  /** the six adaLN outputs, [B, D] each */
  ada: { shift1: string; scale1: string; gate1: string; shift2: string; scale2: string; gate2: string };
  ln1: NormTrace;
  mod1: ModulateTrace;
  /** per-head q [B, H, T, dh], k transposed [B, H, dh, T], v [B, H, T, dh], softmax [B, H, T, T] */
  q4: string;
  kT: string;
  v4: string;
  probs: string;
  /** attention output before the out projection [R, D], and after it */
  attn: string;
  o: string;
  ln2: NormTrace;
  mod2: ModulateTrace;
  /** the MLP's GELU: its sigmoid(1.702 u) and its output [R, 4D], then the second dense's output */
  geluSig: string;
  m1: string;
  m: string;
}

/** The forward graph's values, by name, for a backward pass built on top of it. */
export interface DiTTrace {
  /** the network input after the learned empty context [R, P], and `missing` as [T, B, P] */
  input: string;
  missing3: string;
  /** timestep embedder: a1 = t_feat W1 + b1, s1 = silu(a1), c = s1 W2 + b2, sc = silu(c) (sigmoids kept) */
  a1: string;
  sigA1: string;
  s1: string;
  c: string;
  sigC: string;
  sc: string;
  blocks: BlockTrace[];
  finalShift: string;
  finalScale: string;
  lnF: NormTrace;
  modF: ModulateTrace;
}

/**
 * Adds forwardTokens (dit.ts) to `g`: inputs tokens, missing [T*B, P] and
 * t_feat [B, freqDim] -> `outputName` [T*B, p*p*C]. `param(name, shape)`
 * supplies each parameter (a weight for inference, a graph input for
 * training), reshaped to `shape` where given.
 */
export function buildDiTForward(
  g: GraphBuilder,
  cfg: ModelConfig,
  batch: number,
  param: (name: string, shape?: number[]) => string,
  inputs: { tokens: string; missing: string; tFeat: string },
  outputName: string,
): { prediction: string; trace: DiTTrace } {
  const B = batch;
  const T = tokensOf(cfg);
  const R = T * B;
  const D = cfg.width;
  const P = patchInputDim(cfg);
  const H = cfg.heads;
  const dh = D / H;
  const dense = (x: string, w: string, b: string, name: string) =>
    g.add(g.matMul(x, param(w), `${name}/MatMul`), param(b), `${name}/Add`); // [N, in] -> [N, out]
  const layerNorm = (x: string, name: string): NormTrace => {
    const mean = g.reduceMean(x, [-1], true, `${name}/Mean`); // [R, D] -> [R, 1]
    const d = g.binary("Sub", x, mean, `${name}/Sub`);
    const variance = g.reduceMean(g.binary("Pow", d, g.scalar(2), `${name}/Pow`), [-1], true, `${name}/Var`);
    const std = g.unary("Sqrt", g.add(variance, g.scalar(1e-6), `${name}/AddEps`), `${name}/Sqrt`);
    return { y: g.binary("Div", d, std, `${name}/Div`), std };
  };
  // x * (1 + scale) + shift, scale and shift [B, D] broadcast over tokens: [R, D] -> [T, B, D] -> [R, D]
  const modulate = (x: string, shift: string, scale: string, name: string): ModulateTrace => {
    const x3 = g.reshape(x, [T, B, D], `${name}/Reshape`);
    const onePlus = g.add(scale, g.scalar(1), `${name}/OnePlus`);
    const scaled = g.mul(x3, onePlus, `${name}/Mul`);
    return { y: g.reshape(g.add(scaled, shift, `${name}/Add`), [R, D], `${name}/Flatten`), onePlus };
  };
  // x + gate * y, gate [B, D] broadcast over tokens
  const gatedResidual = (x: string, y: string, gate: string, name: string) => {
    const gated = g.mul(g.reshape(y, [T, B, D], `${name}/ReshapeY`), gate, `${name}/Gate`);
    const sum = g.add(g.reshape(x, [T, B, D], `${name}/ReshapeX`), gated, `${name}/Add`);
    return g.reshape(sum, [R, D], `${name}/Flatten`);
  };
  const heads = (x: string, perm: number[], name: string, n: string) =>
    g.transpose(g.reshape(x, [T, B, H, dh], `${name}/Reshape${n}`), perm, `${name}/Transpose${n}`);

  // learned empty context where previous frames are missing: [T, B, P] * [T, 1, P]
  const missing3 = g.reshape(inputs.missing, [T, B, P], "empty/Reshape");
  const masked = g.mul(missing3, param("empty", [T, 1, P]), "empty/Mul");
  const input = g.add(inputs.tokens, g.reshape(masked, [R, P], "empty/Flatten"), "empty/Add");
  let h = dense(input, "patch.w", "patch.b", "patch"); // [R, P] -> [R, D]
  const pos = g.weight("pos", positionEmbedding(cfg), [T, 1, D]);
  h = g.reshape(g.add(g.reshape(h, [T, B, D], "pos/Reshape"), pos, "pos/Add"), [R, D], "pos/Flatten");
  // timestep embedding c [B, D]
  const a1 = dense(inputs.tFeat, "temb.w1", "temb.b1", "temb/fc1");
  const sigA1 = g.unary("Sigmoid", a1, "temb/silu/Sigmoid");
  const s1 = g.mul(a1, sigA1, "temb/silu/Mul");
  const c = dense(s1, "temb.w2", "temb.b2", "temb/fc2");
  const sigC = g.unary("Sigmoid", c, "cond/silu/Sigmoid");
  const sc = g.mul(c, sigC, "cond/silu/Mul");
  const blocks: BlockTrace[] = [];
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
    const ln1 = layerNorm(h, `${n}/ln1`);
    const mod1 = modulate(ln1.y, shift1, scale1, `${n}/mod1`);
    const q = dense(mod1.y, `${p}q.w`, `${p}q.b`, `${n}/q`);
    const k = dense(mod1.y, `${p}k.w`, `${p}k.b`, `${n}/k`);
    const v = dense(mod1.y, `${p}v.w`, `${p}v.b`, `${n}/v`);
    // softmax(q k^T / sqrt(dh)) v per (batch, head)
    const a = `${n}/attn`;
    const q4 = heads(q, [1, 2, 0, 3], a, "Q"); // [T, B, H, dh] -> [B, H, T, dh]
    const kT = heads(k, [1, 2, 3, 0], a, "K"); // [T, B, H, dh] -> [B, H, dh, T]
    const v4 = heads(v, [1, 2, 0, 3], a, "V"); // [B, H, T, dh]
    const scores = g.matMul(q4, kT, `${a}/Scores`); // [B, H, T, T]
    const probs = g.softmax(g.mul(scores, g.scalar(1 / Math.sqrt(dh)), `${a}/Scale`), -1, `${a}/Softmax`);
    const o4 = g.matMul(probs, v4, `${a}/Values`); // [B, H, T, dh]
    const tokenMajor = g.transpose(o4, [2, 0, 1, 3], `${a}/TransposeO`); // [T, B, H, dh]
    const attn = g.reshape(tokenMajor, [R, D], `${a}/Flatten`);
    const o = dense(attn, `${p}o.w`, `${p}o.b`, `${n}/o`);
    h = gatedResidual(h, o, gate1, `${n}/res1`);
    const ln2 = layerNorm(h, `${n}/ln2`);
    const mod2 = modulate(ln2.y, shift2, scale2, `${n}/mod2`);
    // GELU as x * sigmoid(1.702 x): [R, D] -> [R, 4D]
    const u = dense(mod2.y, `${p}mlp.w1`, `${p}mlp.b1`, `${n}/mlp1`);
    const geluSig = g.unary("Sigmoid", g.mul(u, g.scalar(1.702), `${n}/gelu/Scale`), `${n}/gelu/Sigmoid`);
    const m1 = g.mul(u, geluSig, `${n}/gelu/Mul`);
    const m = dense(m1, `${p}mlp.w2`, `${p}mlp.b2`, `${n}/mlp2`); // [R, 4D] -> [R, D]
    h = gatedResidual(h, m, gate2, `${n}/res2`);
    blocks.push({
      ada: { shift1, scale1, gate1, shift2, scale2, gate2 },
      ln1,
      mod1,
      q4,
      kT,
      v4,
      probs,
      attn,
      o,
      ln2,
      mod2,
      geluSig,
      m1,
      m,
    });
  }
  const [finalShift, finalScale] = g.split(
    dense(sc, "final.ada.w", "final.ada.b", "final/ada"),
    1,
    [D, D],
    "final/ada/Split",
  );
  const lnF = layerNorm(h, "final/ln");
  const modF = modulate(lnF.y, finalShift, finalScale, "final/mod");
  // [R, D] -> [R, p*p*C]; the bias add is named by the caller
  const prediction = g.add(g.matMul(modF.y, param("final.w"), "final/MatMul"), param("final.b"), outputName);
  if (g.shapeOf(prediction)[1] !== patchOutputDim(cfg)) throw new Error("buildDiTForward: output width");
  return {
    prediction,
    trace: { input, missing3, a1, sigA1, s1, c, sigC, sc, blocks, finalShift, finalScale, lnF, modF },
  };
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
  const P = patchInputDim(cfg);
  const g = new GraphBuilder(`framecost-${cfg.name}-b${B}`);
  const slots = new Map(paramSlots(cfg).map((s) => [s.name, s]));
  // `shape` overrides the stored shape where forwardTokens reshapes a parameter before use (same data)
  const param = (name: string, shape?: number[]) => {
    const s = slots.get(name);
    if (!s) throw new Error(`exportDiTOnnx: no parameter "${name}"`);
    return g.weight(name, flat.subarray(s.offset, s.offset + s.size), shape ?? s.shape);
  };
  const inputs = {
    tokens: g.input(ONNX_INPUTS.tokens, [R, P]),
    missing: g.input(ONNX_INPUTS.missing, [R, P]),
    tFeat: g.input(ONNX_INPUTS.tFeat, [B, cfg.freqDim]),
  };
  g.output(buildDiTForward(g, cfg, B, param, inputs, ONNX_OUTPUT).prediction);

  const key = createHash("sha256")
    .update(JSON.stringify({ cfg, batch: B }))
    .update(new Uint8Array(flat.buffer, flat.byteOffset, flat.byteLength))
    .digest("hex");
  const bytes = g.encode(`framecost video DiT "${cfg.name}", batch ${B}, weights sha256 ${key}`);
  return { cfg, batch: B, bytes, nodes: g.nodes, key };
}

/** The graph's three network inputs as ORT tensors (the training graph takes the same three first). */
export function networkFeeds(ort: OrtModule, cfg: ModelConfig, inputs: NetworkInputs) {
  const R = tokensOf(cfg) * inputs.batch;
  const P = patchInputDim(cfg);
  return {
    [ONNX_INPUTS.tokens]: new ort.Tensor("float32", inputs.tokens, [R, P]),
    [ONNX_INPUTS.missing]: new ort.Tensor("float32", inputs.missing, [R, P]),
    [ONNX_INPUTS.tFeat]: new ort.Tensor("float32", inputs.tFeat, [inputs.batch, cfg.freqDim]),
  };
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
    return networkFeeds(await loadOrt(this.load), this.cfg, inputs);
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
   * context [B, K, H, W, C] or null, contextMask [B, K], selfCond [B, H, W, C] (the previous estimate of the
   * clean frame, for a self-conditioned model) or null -> prediction [B, H, W, C].
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
