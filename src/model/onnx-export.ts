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
import { GraphBuilder, ONNX_DTYPE, type OnnxNode } from "../engine/onnx-graph.ts";
import { type ModelConfig, patchInputDim, patchOutputDim, tokensOf, validateConfig } from "./config.ts";
import { cacheBlocks, type NetworkInputs, positionEmbedding, prepareInputs, unpatchify } from "./dit.ts";
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
 * Feature caching (DeepCache, Ma et al. 2023, carried over to a DiT as in FORA, Selvaraju et al. 2024):
 * adjacent sampler steps change the deep features little, so a "full" call also returns the residual
 * that blocks [from, to) added to the token stream, and a "cached" call skips those blocks and adds that
 * residual instead. The shallow first and the last blocks always run: they see this step's input and noise
 * level.
 */
export type CacheVariant =
  | { from: number; to: number; mode: "full" }
  | { from: number; to: number; mode: "cached"; delta: string };

export interface ForwardOptions {
  cache?: CacheVariant;
  /**
   * replaces x W of a dense layer (the int8 export) where it returns a value, null keeps it fp32; the bias
   * add stays. Asked for every dense layer: `kind` "token" for the blocks' token-row layers, "cond" for the
   * adaLN and timestep layers on [B, *] rows, "io" for the patch embedding and the final layer.
   */
  weightMatMul?: (x: string, w: string, name: string, kind: DenseKind) => string | null;
}

/**
 * The model's dense layers by what they read: "token" the blocks' token-row layers (q, k, v, o, MLP:
 * most of the FLOPs), "cond" the timestep embedding and the adaLN layers on [B, *] conditioning rows
 * (few FLOPs but [D, 6D] weights per block: at batch 1 a matrix-vector product bound by reading them),
 * "io" the patch embedding and the final layer.
 */
export type DenseKind = "token" | "cond" | "io";

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
  opts: ForwardOptions = {},
): { prediction: string; trace: DiTTrace; cacheDelta?: string } {
  const B = batch;
  const T = tokensOf(cfg);
  const R = T * B;
  const D = cfg.width;
  const P = patchInputDim(cfg);
  const H = cfg.heads;
  const dh = D / H;
  // [N, in] -> [N, out]; an int8 graph may replace x W
  const product = (x: string, w: string, name: string, kind: DenseKind) =>
    opts.weightMatMul?.(x, w, name, kind) ?? g.matMul(x, param(w), `${name}/MatMul`);
  const dense = (x: string, w: string, b: string, name: string, kind: "cond" | "io" = "cond") =>
    g.add(product(x, w, name, kind), param(b), `${name}/Add`);
  // a block's dense layers over token rows: where most FLOPs are
  const tokenDense = (x: string, w: string, b: string, name: string) =>
    g.add(product(x, w, name, "token"), param(b), `${name}/Add`);
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
  let h = dense(input, "patch.w", "patch.b", "patch", "io"); // [R, P] -> [R, D]
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
  const cache = opts.cache;
  if (cache && !(cache.from >= 0 && cache.from < cache.to && cache.to <= cfg.depth))
    throw new Error(`buildDiTForward: cached blocks [${cache.from}, ${cache.to}) of ${cfg.depth}`);
  let cacheIn = "";
  let cacheDelta: string | undefined;
  for (let i = 0; i < cfg.depth; i++) {
    if (cache && i === cache.from) {
      if (cache.mode === "cached") {
        // the skipped blocks' residual from the last full call: h + (h_out - h_in) of that call
        h = g.add(h, cache.delta, "cache/Add");
        i = cache.to - 1;
        continue;
      }
      cacheIn = h;
    }
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
    const q = tokenDense(mod1.y, `${p}q.w`, `${p}q.b`, `${n}/q`);
    const k = tokenDense(mod1.y, `${p}k.w`, `${p}k.b`, `${n}/k`);
    const v = tokenDense(mod1.y, `${p}v.w`, `${p}v.b`, `${n}/v`);
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
    const o = tokenDense(attn, `${p}o.w`, `${p}o.b`, `${n}/o`);
    h = gatedResidual(h, o, gate1, `${n}/res1`);
    const ln2 = layerNorm(h, `${n}/ln2`);
    const mod2 = modulate(ln2.y, shift2, scale2, `${n}/mod2`);
    // GELU as x * sigmoid(1.702 x): [R, D] -> [R, 4D]
    const u = tokenDense(mod2.y, `${p}mlp.w1`, `${p}mlp.b1`, `${n}/mlp1`);
    const geluSig = g.unary("Sigmoid", g.mul(u, g.scalar(1.702), `${n}/gelu/Scale`), `${n}/gelu/Sigmoid`);
    const m1 = g.mul(u, geluSig, `${n}/gelu/Mul`);
    const m = tokenDense(m1, `${p}mlp.w2`, `${p}mlp.b2`, `${n}/mlp2`); // [R, 4D] -> [R, D]
    h = gatedResidual(h, m, gate2, `${n}/res2`);
    if (cache?.mode === "full" && i === cache.to - 1) cacheDelta = g.binary("Sub", h, cacheIn, "cache/Delta");
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
  const prediction = g.add(product(modF.y, "final.w", "final", "io"), param("final.b"), outputName);
  if (g.shapeOf(prediction)[1] !== patchOutputDim(cfg)) throw new Error("buildDiTForward: output width");
  return {
    prediction,
    trace: { input, missing3, a1, sigA1, s1, c, sigC, sc, blocks, finalShift, finalScale, lnF, modF },
    cacheDelta,
  };
}

/** Names of the feature cache's graph values: a full call's extra output, a cached call's extra input. */
export const ONNX_CACHE = { out: "cache_delta", in: "cache_delta_in" } as const;
/** Prefix of the guide's values in a graph holding the model and its guide. */
export const GUIDE_SCOPE = "guide/";

export type Precision = "fp32" | "int8";

/**
 * The dense layers an int8 graph quantizes by default: the token-row and the conditioning layers. The
 * patch embedding and the final layer stay fp32 (measured on the shipped model: quantizing them too gained
 * ~2% per call and added the most error, as they touch the output directly).
 */
export const INT8_LAYERS: readonly DenseKind[] = ["token", "cond"];

export interface ExportOptions {
  /** feature caching: "full" also outputs the skipped blocks' residual, "cached" takes it and skips them */
  cache?: "full" | "cached";
  precision?: Precision;
  /** a second network's weights (the autoguidance guide, same config) on the same inputs, in the same graph */
  guide?: Float32Array;
  /** int8: which dense layers are quantized (default INT8_LAYERS) */
  int8Layers?: readonly DenseKind[];
}

/**
 * Per-column symmetric int8 weights: w[k, n] ~ q[k, n] * scale[n], scale[n] = max_k |w[k, n]| / 127
 * (what onnxruntime's quantize_dynamic writes with per_channel; zero point 0).
 */
export function quantizeColumns(
  w: Float32Array,
  rows: number,
  cols: number,
): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(cols);
  for (let k = 0; k < rows; k++)
    for (let n = 0; n < cols; n++) scale[n] = Math.max(scale[n], Math.abs(w[k * cols + n]));
  for (let n = 0; n < cols; n++) scale[n] = scale[n] > 0 ? scale[n] / 127 : 1;
  const q = new Int8Array(rows * cols);
  for (let k = 0; k < rows; k++)
    for (let n = 0; n < cols; n++) q[k * cols + n] = Math.round(w[k * cols + n] / scale[n]);
  return { q, scale };
}

/**
 * forwardTokens as ONNX for `batch` frames per call.
 * Inputs tokens, missing [T*B, P] and t_feat [B, freqDim] (and cache_delta_in [T*B, D] for a cached call);
 * output prediction [T*B, p*p*C] (and cache_delta for a full one; guide/... for the guide where given).
 * int8: the dense layers of `int8Layers` (default the blocks' token-row layers, the timestep embedding and
 * adaLN) as dynamic quantization (DynamicQuantizeLinear on the activations, one per activation however many
 * layers read it; MatMulInteger against per-column int8 weights, then the fp32 rescale), as onnxruntime's
 * quantize_dynamic does. ORT fuses each into its DynamicQuantizeMatMul / MatMulIntegerToFloat kernels (bias
 * included) at graphOptimizationLevel "all"; the FLOP rules count the standard ops as built. The patch
 * embedding, attention's batched products and the final layer stay fp32.
 */
export function exportDiTOnnx(
  cfg: ModelConfig,
  flat: Float32Array,
  batch = 1,
  opts: ExportOptions = {},
): OnnxDiTGraph {
  validateConfig(cfg);
  for (const w of [flat, ...(opts.guide ? [opts.guide] : [])]) {
    if (w.length !== paramCount(cfg)) {
      throw new Error(`exportDiTOnnx: ${w.length} weights for a "${cfg.name}" model with ${paramCount(cfg)}`);
    }
  }
  if (!Number.isInteger(batch) || batch < 1)
    throw new Error(`exportDiTOnnx: batch must be >= 1, got ${batch}`);
  const B = batch;
  const T = tokensOf(cfg);
  const R = T * B;
  const P = patchInputDim(cfg);
  const precision = opts.precision ?? "fp32";
  const int8Kinds = new Set(precision === "int8" ? (opts.int8Layers ?? INT8_LAYERS) : []);
  const layers = precision === "int8" ? `(${[...int8Kinds].sort().join("+")})` : "";
  const variant = `${opts.cache ?? "plain"}-${precision}${layers}${opts.guide ? "-pair" : ""}`;
  const g = new GraphBuilder(`framecost-${cfg.name}-b${B}-${variant}`);
  const slots = new Map(paramSlots(cfg).map((s) => [s.name, s]));
  const inputs = {
    tokens: g.input(ONNX_INPUTS.tokens, [R, P]),
    missing: g.input(ONNX_INPUTS.missing, [R, P]),
    tFeat: g.input(ONNX_INPUTS.tFeat, [B, cfg.freqDim]),
  };
  const [from, to] = cacheBlocks(cfg);
  const networks = [
    { weights: flat, scope: "" },
    ...(opts.guide ? [{ weights: opts.guide, scope: GUIDE_SCOPE }] : []),
  ];
  for (const { weights, scope } of networks) {
    g.scope = scope;
    const slice = (name: string) => {
      const s = slots.get(name);
      if (!s) throw new Error(`exportDiTOnnx: no parameter "${name}"`);
      return { s, data: weights.subarray(s.offset, s.offset + s.size) };
    };
    // `shape` overrides the stored shape where forwardTokens reshapes a parameter before use (same data)
    const param = (name: string, shape?: number[]) => {
      const { s, data } = slice(name);
      return g.weight(name, data, shape ?? s.shape);
    };
    // one DynamicQuantizeLinear per activation, shared by the layers that read it (q, k and v; the adaLN
    // layers of every block and the final one all read the same conditioning)
    const quantized = new Map<string, [string, string, string]>();
    const int8MatMul = (x: string, w: string, name: string, kind: DenseKind) => {
      if (!int8Kinds.has(kind)) return null;
      const { s, data } = slice(w);
      const [rows, cols] = s.shape;
      const { q, scale } = quantizeColumns(data, rows, cols);
      let xq = quantized.get(x);
      if (!xq) {
        xq = g.dynamicQuantizeLinear(x, `${name}/Quantize`);
        quantized.set(x, xq);
      }
      const [xInt, xScale, xZero] = xq;
      const yInt = g.matMulInteger(
        xInt,
        g.typedWeight(`${w}.int8`, q, [rows, cols]),
        xZero,
        `${name}/MatMulInteger`,
      );
      const rescale = g.mul(xScale, g.weight(`${w}.scale`, scale, [cols]), `${name}/Scale`); // [cols]
      return g.mul(g.cast(yInt, ONNX_DTYPE.FLOAT, `${name}/Cast`), rescale, `${name}/Dequantize`);
    };
    const cache: CacheVariant | undefined =
      opts.cache === "full"
        ? { from, to, mode: "full" }
        : opts.cache === "cached"
          ? { from, to, mode: "cached", delta: g.input(scope + ONNX_CACHE.in, [R, cfg.width]) }
          : undefined;
    const out = buildDiTForward(g, cfg, B, param, inputs, ONNX_OUTPUT, {
      cache,
      weightMatMul: precision === "int8" ? int8MatMul : undefined,
    });
    g.output(out.prediction);
    if (out.cacheDelta) {
      const named = g.node("Identity", [out.cacheDelta], [g.shapeOf(out.cacheDelta)], {}, ONNX_CACHE.out)[0];
      g.output(named);
    }
  }
  g.scope = "";

  const hash = createHash("sha256").update(JSON.stringify({ cfg, batch: B, variant }));
  for (const { weights } of networks)
    hash.update(new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength));
  const key = hash.digest("hex");
  const bytes = g.encode(`framecost video DiT "${cfg.name}", batch ${B}, ${variant}, weights sha256 ${key}`);
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
  /** fp32 (default) or int8 (dynamic quantization of the dense layers of `int8Layers`) */
  precision?: Precision;
  /** the guide's weights: calls with `pair` run model and guide in one session run */
  guide?: Float32Array;
  /** int8: which dense layers are quantized (default INT8_LAYERS) */
  int8Layers?: readonly DenseKind[];
}

/** How one session run is made: plain, or a feature-cache full / cached call; alone or with the guide. */
export interface OnnxCall {
  cache?: "full" | "cached";
  /** the guide too, on the same inputs, in the same run (needs OnnxDiTOptions.guide) */
  pair?: boolean;
  /** cached calls: the residuals the last full call returned, [model] or [model, guide] */
  deltas?: Float32Array[];
}

/** A session run's outputs: predictions [B, H, W, C] ([model] or [model, guide]) and, for a full call, the residuals. */
export interface OnnxCallResult {
  predictions: Float32Array[];
  deltas: Float32Array[];
}

interface Loaded {
  graph: OnnxDiTGraph;
  session: OnnxSession;
}

/** Orders the runs of every OnnxDiT, so a kernel counter serving several models can tell which ran last. */
let runSequence = 0;

const callKey = (batch: number, call: OnnxCall) =>
  `${batch}|${call.cache ?? "plain"}|${call.pair ? "pair" : "one"}`;

/** The video DiT on onnxruntime: same weights, same `predict` as `VideoDiT`, host arrays in and out. */
export class OnnxDiT {
  readonly cfg: ModelConfig;
  readonly threads: number;
  readonly device: OnnxDevice;
  readonly precision: Precision;
  private readonly int8Layers?: readonly DenseKind[];
  private readonly flat: Float32Array;
  private readonly guide?: Float32Array;
  private readonly load?: ModuleLoader;
  private readonly loaded = new Map<string, Promise<Loaded>>();
  private last: { inputs: NetworkInputs; call: OnnxCall } | null = null;
  /** runSequence at this model's latest run (0: never ran) */
  lastRun = 0;

  private constructor(cfg: ModelConfig, flat: Float32Array, opts: OnnxDiTOptions) {
    validateConfig(cfg);
    this.cfg = cfg;
    this.flat = flat;
    this.guide = opts.guide;
    this.precision = opts.precision ?? "fp32";
    this.int8Layers = opts.int8Layers;
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

  /** Whether calls can run the guide in the same session run. */
  get hasGuide(): boolean {
    return this.guide !== undefined;
  }

  /** The exported graph for `batch` frames per call (exported and loaded on first use). */
  async graph(batch = 1, call: OnnxCall = {}): Promise<OnnxDiTGraph> {
    return (await this.session(batch, call)).graph;
  }

  private session(batch: number, call: OnnxCall = {}): Promise<Loaded> {
    const key = callKey(batch, call);
    let p = this.loaded.get(key);
    if (!p) {
      if (call.pair && !this.guide)
        throw new Error("OnnxDiT: a paired call needs the guide's weights (OnnxDiTOptions.guide)");
      p = (async () => {
        const graph = exportDiTOnnx(this.cfg, this.flat, batch, {
          cache: call.cache,
          precision: this.precision,
          int8Layers: this.int8Layers,
          guide: call.pair ? this.guide : undefined,
        });
        const session = await createOnnxSession(graph.bytes, {
          threads: this.threads,
          device: this.device,
          load: this.load,
        });
        return { graph, session };
      })();
      this.loaded.set(key, p);
      p.catch(() => this.loaded.delete(key)); // a failed load is retried on the next call
    }
    return p;
  }

  private async feeds(inputs: NetworkInputs, call: OnnxCall = {}) {
    const ort = await loadOrt(this.load);
    const feeds: Record<string, unknown> = networkFeeds(ort, this.cfg, inputs);
    if (call.cache === "cached") {
      const rows = tokensOf(this.cfg) * inputs.batch;
      const n = call.pair ? 2 : 1;
      if (call.deltas?.length !== n) throw new Error(`OnnxDiT: a cached call needs ${n} cached residual(s)`);
      call.deltas.forEach((d, i) => {
        feeds[(i === 0 ? "" : GUIDE_SCOPE) + ONNX_CACHE.in] = new ort.Tensor("float32", d, [
          rows,
          this.cfg.width,
        ]);
      });
    }
    return feeds as ReturnType<typeof networkFeeds>;
  }

  /** The network on prepared inputs -> prediction [T*B, p*p*C] on the host. */
  async forwardPrepared(inputs: NetworkInputs): Promise<Float32Array> {
    return (await this.runPrepared(inputs, {})).predictions[0];
  }

  /** One session run on prepared inputs: predictions in the token layout [T*B, p*p*C]. */
  async runPrepared(inputs: NetworkInputs, call: OnnxCall): Promise<OnnxCallResult> {
    const { session } = await this.session(inputs.batch, call);
    this.last = { inputs, call };
    this.lastRun = ++runSequence;
    const out = await session.run(await this.feeds(inputs, call));
    const scopes = call.pair ? ["", GUIDE_SCOPE] : [""];
    return {
      predictions: scopes.map((s) => out[s + ONNX_OUTPUT].data as Float32Array),
      deltas: call.cache === "full" ? scopes.map((s) => out[s + ONNX_CACHE.out].data as Float32Array) : [],
    };
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
    return (await this.predictWith(x, t, context, contextMask, selfCond, {})).predictions[0];
  }

  /** `predict` as a feature-cache full or cached call, and/or with the guide in the same run. */
  async predictWith(
    x: Float32Array,
    t: ArrayLike<number>,
    context: Float32Array | null,
    contextMask: ArrayLike<number> | null,
    selfCond: Float32Array | null,
    call: OnnxCall,
  ): Promise<OnnxCallResult> {
    const batch = t.length;
    const inputs = prepareInputs(this.cfg, batch, x, context, contextMask, t, selfCond);
    const r = await this.runPrepared(inputs, call);
    return { predictions: r.predictions.map((y) => unpatchify(this.cfg, batch, y)), deltas: r.deltas };
  }

  /** Inputs of the latest call (what a kernel counter profiles again), or null before the first. */
  get lastInputs(): NetworkInputs | null {
    return this.last?.inputs ?? null;
  }

  /** How the latest call was made (its graph variant), or null before the first. */
  get lastCall(): OnnxCall | null {
    return this.last?.call ?? null;
  }

  /**
   * ORT's per-node profile of `runs` calls on these inputs, from a separate
   * profiling session (the regular one stays unprofiled); the first
   * (warm-up) call of that session is left out.
   */
  async profile(inputs: NetworkInputs, runs = 5, call: OnnxCall = {}): Promise<OrtNodeTiming[]> {
    const { graph } = await this.session(inputs.batch, call);
    const dir = newProfileDir();
    const session = await createOnnxSession(graph.bytes, {
      threads: this.threads,
      device: this.device,
      profileDir: dir,
      load: this.load,
    });
    try {
      const feeds = await this.feeds(inputs, call);
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
