/**
 * FLOP rules keyed by ONNX op type, for the graphs the native engine runs.
 * Same conventions as flops.ts (the tfjs rule table): 1 FLOP = one add or one
 * multiply (a multiply-accumulate is 2), elementwise ops 1 per output element
 * (transcendentals included), reductions 1 per input element, softmax
 * SOFTMAX_FLOPS_PER_ELEMENT per element, data movement 0 on purpose. An op
 * type with no rule is uncounted (null), never zero.
 *
 * Counts come from the exported graph's nodes and their static shapes (the
 * graph as built, before ORT fuses nodes: the math the model defines). ORT's
 * per-node profile is folded onto those nodes by `foldOrtProfile`, which gives
 * each kernel ORT ran the FLOPs of the graph nodes it covers.
 */

import type { OrtNodeTiming } from "../engine/onnx.ts";
import type { OnnxNode, Shape } from "../engine/onnx-graph.ts";
import type { NetworkInputs } from "../model/dit.ts";
import {
  BYTES_PER_ELEMENT,
  type FlopRule,
  type KernelShapes,
  numel,
  SOFTMAX_FLOPS_PER_ELEMENT,
} from "./flops.ts";
import type { KernelCount, KernelCounter } from "./meter.ts";

const out0 = (k: KernelShapes): number => numel(k.outputShapes[0]);
const in0 = (k: KernelShapes): number => numel(k.inputShapes[0]);

/** MatMul (numpy semantics): out [..., M, N] from a [..., M, K]: 2*K per output element. */
function matMulFlops(k: KernelShapes): number {
  const a = k.inputShapes[0];
  if (a == null || a.length < 1) return Number.NaN;
  return 2 * out0(k) * a[a.length - 1];
}

/** Gemm: alpha * A' B' + beta * C, A [M, K] (or [K, M] with transA): 2*M*N*K, plus one add per output for C. */
function gemmFlops(k: KernelShapes): number {
  const a = k.inputShapes[0];
  if (a == null || a.length !== 2) return Number.NaN;
  const inner = k.attrs?.transA === 1 ? a[0] : a[1];
  const bias = k.inputShapes[2] != null ? out0(k) : 0;
  return 2 * out0(k) * inner + bias;
}

/**
 * MatMulInteger (uint8 x int8 -> int32): 2 integer operations per multiply-accumulate, as MatMul, plus
 * one per element of A for subtracting its zero point. Counted in the same total as FLOPs: the record's
 * `model.precision` says they were int8.
 */
function matMulIntegerFlops(k: KernelShapes): number {
  return matMulFlops(k) + in0(k);
}

/**
 * DynamicQuantizeLinear: min and max over the input (1 each per element), then x / scale + zero point,
 * rounded and saturated (2 per element; rounding and saturation, like data movement, 0); the scale and
 * zero point from min and max are a handful of scalar ops, left out.
 */
const DYNAMIC_QUANTIZE_FLOPS_PER_ELEMENT = 4;

/** Ops that move or relabel data: 0 FLOPs on purpose (not uncounted). */
export const ONNX_DATA_MOVEMENT_OPS: readonly string[] = [
  "Reshape",
  "Transpose",
  "Split",
  "Concat",
  "Slice",
  "Gather",
  "Squeeze",
  "Unsqueeze",
  "Flatten",
  "Identity",
  "Cast",
  "Expand",
  "Tile",
  "Pad",
  "Shape",
  "Constant",
];

/** Ops that relabel a tensor without copying it (ORT aliases the buffer): 0 bytes moved. */
const VIEW_OPS = new Set(["Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity"]);

const BINARY = ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Equal", "Greater", "Less", "Where"];
const UNARY = [
  "Sigmoid",
  "Sqrt",
  "Reciprocal",
  "Exp",
  "Log",
  "Tanh",
  "Erf",
  "Relu",
  "Neg",
  "Abs",
  "Sin",
  "Cos",
  "Softplus",
  "Clip",
];
const REDUCTIONS = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd"];

function buildRules(): Record<string, FlopRule> {
  const rules: Record<string, FlopRule> = {
    MatMul: matMulFlops,
    Gemm: gemmFlops,
    Softmax: (k) => SOFTMAX_FLOPS_PER_ELEMENT * out0(k),
    MatMulInteger: matMulIntegerFlops,
    DynamicQuantizeLinear: (k) => DYNAMIC_QUANTIZE_FLOPS_PER_ELEMENT * in0(k),
  };
  for (const op of BINARY) rules[op] = out0;
  for (const op of UNARY) rules[op] = out0;
  for (const op of REDUCTIONS) rules[op] = in0;
  for (const op of ONNX_DATA_MOVEMENT_OPS) rules[op] = () => 0;
  return rules;
}

/** The rule table: ONNX op type -> FLOPs as a pure function of shapes and attributes. */
export const ONNX_FLOP_RULES: Readonly<Record<string, FlopRule>> = Object.freeze(buildRules());

function shapesOf(node: OnnxNode): KernelShapes {
  return {
    name: node.opType,
    inputShapes: node.inputShapes,
    outputShapes: node.outputShapes,
    attrs: node.attrs as Record<string, unknown>,
  };
}

/** FLOPs of one node, or null when no rule knows its op type (uncounted, never 0). */
export function onnxNodeFlops(node: OnnxNode): number | null {
  const rule = ONNX_FLOP_RULES[node.opType];
  if (!Object.hasOwn(ONNX_FLOP_RULES, node.opType) || rule === undefined) return null;
  const flops = rule(shapesOf(node));
  return Number.isFinite(flops) ? flops : null;
}

/** Bytes a node reads and writes (fp32, each tensor once; int8 where quantized); views move nothing. */
export function onnxNodeBytes(node: OnnxNode): number {
  if (VIEW_OPS.has(node.opType)) return 0;
  const [a, b] = node.inputShapes;
  // uint8 x int8 -> int32; fp32 -> uint8 (+ two scalars)
  if (node.opType === "MatMulInteger") return numel(a) + numel(b) + 4 * numel(node.outputShapes[0]);
  if (node.opType === "DynamicQuantizeLinear") return 5 * numel(a) + 5;
  const all = (shapes: readonly Shape[]) => shapes.reduce((s, x) => s + numel(x), 0);
  return BYTES_PER_ELEMENT * (all(node.inputShapes) + all(node.outputShapes));
}

export interface OnnxGraphCount {
  /** FLOPs of one run of the graph (uncounted nodes excluded) */
  flops: number;
  bytes: number;
  /** per op type: nodes and FLOPs */
  byOpType: Record<string, { nodes: number; flops: number }>;
  /** op types with no rule, and how many nodes */
  uncounted: Array<{ opType: string; nodes: number }>;
}

export function countOnnxGraph(nodes: readonly OnnxNode[]): OnnxGraphCount {
  const byOpType: OnnxGraphCount["byOpType"] = {};
  const uncounted = new Map<string, number>();
  let flops = 0;
  let bytes = 0;
  for (const n of nodes) {
    const f = onnxNodeFlops(n);
    bytes += onnxNodeBytes(n);
    if (f === null) {
      uncounted.set(n.opType, (uncounted.get(n.opType) ?? 0) + 1);
      continue;
    }
    flops += f;
    byOpType[n.opType] ??= { nodes: 0, flops: 0 };
    const e = byOpType[n.opType];
    e.nodes++;
    e.flops += f;
  }
  return { flops, bytes, byOpType, uncounted: [...uncounted].map(([opType, n]) => ({ opType, nodes: n })) };
}

/** One row per graph node, as the meter's kernel table takes them; no times (ms 0): see foldOrtProfile. */
export function onnxKernelCounts(nodes: readonly OnnxNode[]): KernelCount[] {
  return nodes.map((n) => ({ name: n.opType, flops: onnxNodeFlops(n), bytes: onnxNodeBytes(n), ms: 0 }));
}

/** A kernel ORT ran, with the graph nodes it covers. */
export interface FoldedKernel {
  /** ORT's node name (fused nodes: the first graph node's name plus the fusion, e.g. ".../MatMulAddFusion") */
  ortName: string;
  /** the kernel ORT ran, e.g. Gemm, FusedMatMul, QuickGelu */
  opType: string;
  /** graph nodes it computes (empty: a node ORT inserted itself) */
  graphNodes: string[];
  /** FLOPs of those graph nodes per run; null when ORT inserted it or a covered node has no rule */
  flops: number | null;
  bytes: number;
  calls: number;
  /** kernel time summed over the profiled runs */
  totalMs: number;
}

/**
 * Maps ORT's profiled kernels onto the graph's nodes. ORT names a kernel
 * after the graph node it started from (a fused one gets "/<Fusion>" appended);
 * a graph node absorbed by a fusion (the bias Add of a Gemm, the Sigmoid of a
 * QuickGelu, the K transpose and the scale of a FusedMatMul) goes to the
 * nearest kernel reachable through the graph's edges, preferring nodes of the
 * same name group (the builder names nodes "<layer>/<op>").
 */
export function foldOrtProfile(
  nodes: readonly OnnxNode[],
  timings: readonly OrtNodeTiming[],
): FoldedKernel[] {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const kernels: FoldedKernel[] = timings.map((t) => ({
    ortName: t.name,
    opType: t.opType,
    graphNodes: [],
    flops: 0,
    bytes: 0,
    calls: t.calls,
    totalMs: t.totalMs,
  }));
  const owner = new Map<string, FoldedKernel>();
  const fused = new Set<FoldedKernel>();
  for (const k of kernels) {
    // the longest graph node name that the ORT name is, or starts with as a path
    let anchor: string | null = null;
    for (let cut = k.ortName.length; cut > 0; cut = k.ortName.lastIndexOf("/", cut - 1)) {
      const candidate = k.ortName.slice(0, cut);
      if (byName.has(candidate) && !owner.has(candidate)) {
        anchor = candidate;
        break;
      }
    }
    if (anchor === null) continue;
    owner.set(anchor, k);
    if (anchor !== k.ortName) fused.add(k);
  }
  const producers = new Map<string, OnnxNode>();
  const consumers = new Map<string, OnnxNode[]>();
  for (const n of nodes) {
    for (const o of n.outputs) producers.set(o, n);
    for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  const neighbours = (n: OnnxNode): OnnxNode[] => [
    ...n.inputs.flatMap((i) => producers.get(i) ?? []),
    ...n.outputs.flatMap((o) => consumers.get(o) ?? []),
  ];
  const group = (name: string) => name.slice(0, name.lastIndexOf("/") + 1);
  // breadth-first; among kernels at the same distance, a fused one (it absorbed nodes) wins
  const nearest = (start: OnnxNode, sameGroup: boolean): FoldedKernel | undefined => {
    const seen = new Set([start.name]);
    let frontier = [start];
    while (frontier.length > 0) {
      const next: OnnxNode[] = [];
      const found: FoldedKernel[] = [];
      for (const n of frontier) {
        for (const m of neighbours(n)) {
          if (seen.has(m.name) || (sameGroup && group(m.name) !== group(start.name))) continue;
          seen.add(m.name);
          const k = owner.get(m.name);
          if (k) found.push(k);
          else next.push(m);
        }
      }
      if (found.length > 0) return found.find((k) => fused.has(k)) ?? found[0];
      frontier = next;
    }
    return undefined;
  };
  const absorbed = nodes.filter((n) => !owner.has(n.name));
  for (const n of absorbed) {
    const k = nearest(n, true) ?? nearest(n, false);
    if (k) owner.set(n.name, k);
  }
  for (const n of nodes) {
    const k = owner.get(n.name);
    if (!k) continue;
    k.graphNodes.push(n.name);
    const f = onnxNodeFlops(n);
    k.flops = k.flops === null || f === null ? null : k.flops + f;
    k.bytes += onnxNodeBytes(n);
  }
  for (const k of kernels) if (k.graphNodes.length === 0) k.flops = null; // inserted by ORT: no rule
  return kernels;
}

/** How a call ran its graph (OnnxDiT's OnnxCall: feature-cache variant, model + guide). */
export interface OnnxCallShape {
  cache?: "full" | "cached";
  pair?: boolean;
}

/** What the counter needs of an ONNX model (OnnxDiT satisfies it). */
export interface ProfilableOnnxModel {
  readonly lastInputs: NetworkInputs | null;
  /** how the latest call was made; absent or null: the plain graph */
  readonly lastCall?: OnnxCallShape | null;
  /** a sequence number of the latest run, comparable across models (the one that ran last is counted) */
  readonly lastRun?: number;
  graph(batch: number, call?: OnnxCallShape): Promise<{ nodes: readonly OnnxNode[] }>;
  profile(inputs: NetworkInputs, runs?: number, call?: OnnxCallShape): Promise<OrtNodeTiming[]>;
}

export interface OnnxCounterOptions {
  /**
   * Also run ORT's profiler (a separate profiling session, `profileRuns` calls
   * after one warm-up) and report its kernels with their times; otherwise one
   * row per graph node with FLOPs and bytes, time 0 (the meter times each call).
   */
  profile?: boolean;
  profileRuns?: number;
}

/**
 * The meter's kernel counter for the native engine: the call runs as usual,
 * then its kernels are read from the graph it ran (the batch and variant of
 * the latest call of whichever model ran last: model, guide, or both in one
 * graph), FLOPs from the rule table, optionally with ORT's per-kernel times
 * folded in.
 */
export function onnxKernelCounter(
  models: ProfilableOnnxModel | readonly ProfilableOnnxModel[],
  opts: OnnxCounterOptions = {},
): KernelCounter {
  const all = Array.isArray(models) ? models : [models as ProfilableOnnxModel];
  return async <R>(call: () => Promise<R>) => {
    const result = await call();
    const model = all.reduce((a, b) => ((b.lastRun ?? 0) > (a.lastRun ?? 0) ? b : a));
    const inputs = model.lastInputs;
    if (inputs === null) return { result, kernels: [] };
    const shape = model.lastCall ?? {};
    const { nodes } = await model.graph(inputs.batch, shape);
    if (!opts.profile) return { result, kernels: onnxKernelCounts(nodes) };
    const folded = foldOrtProfile(nodes, await model.profile(inputs, opts.profileRuns ?? 3, shape));
    const kernels = folded.map((k) => ({
      name: k.opType,
      flops: k.flops,
      bytes: k.bytes,
      ms: k.calls > 0 ? k.totalMs / k.calls : 0, // per call, as tfjs kernels are
    }));
    return { result, kernels };
  };
}
