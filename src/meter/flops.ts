/**
 * FLOP rules keyed by tfjs kernel name (the `name` that `tf.profile()` reports),
 * in the manner of PyTorch's `flop_counter.py` and fvcore's `jit_handles.py`:
 * each rule is a small pure function of the kernel's input and output shapes
 * (plus the attributes the op was called with, where the meter could see them).
 *
 * Convention: 1 FLOP = one add or one multiply, so a multiply-accumulate is
 * 2 FLOPs (PyTorch's FlopCounterMode). Counts outside GEMMs follow DeepSpeed's
 * flops profiler: one FLOP per output element for an elementwise op, whether it
 * is an add or a transcendental (exp, sigmoid, rsqrt: each counts as 1, not as
 * its instruction count). `--convention macs` divides every count by 2 (see
 * `toConvention`), so MACs are exact for GEMMs and convolutions and are "half
 * FLOPs" for everything else.
 *
 * Kernels that only move data (reshape, transpose, slice, concat, cast,
 * gather...) are counted with 0 FLOPs on purpose: they are data movement, and
 * their bytes still feed the roofline. A kernel with no entry here is
 * *uncounted* (`kernelFlops` returns null) and the meter reports it as such,
 * never as zero.
 */

export type Shape = readonly number[];

/** One kernel invocation as the profiler saw it. */
export interface KernelShapes {
  name: string;
  /** one entry per input; null where an optional input was absent (e.g. no bias) */
  inputShapes: readonly (Shape | null)[];
  outputShapes: readonly Shape[];
  /** the op's attributes (transposeA, activation...), when the meter could see them */
  attrs?: Readonly<Record<string, unknown>>;
}

export type FlopRule = (k: KernelShapes) => number;

export type FlopConvention = "flops" | "macs";

/** Bytes per element assumed for bytes moved: the project runs fp32 throughout. */
export const BYTES_PER_ELEMENT = 4;

export function numel(shape: Shape | null | undefined): number {
  if (shape == null) return 0;
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

const out0 = (k: KernelShapes): number => numel(k.outputShapes[0]);
const in0 = (k: KernelShapes): number => numel(k.inputShapes[0]);
const allOutputs = (k: KernelShapes): number => k.outputShapes.reduce((s, o) => s + numel(o), 0);

/**
 * GEMM core: out [..., M, N] from a [..., M, K] (or [..., K, M] transposed).
 * K comes from transposeA when the attribute was seen; otherwise from shapes:
 * a's second-last dim equals M unless a is transposed, and when both of a's
 * last dims equal M, K = M either way.
 */
function gemmFlops(k: KernelShapes): number {
  const a = k.inputShapes[0];
  const out = k.outputShapes[0];
  if (a == null || a.length < 2 || out.length < 2) return Number.NaN;
  const m = out[out.length - 2];
  const lastA = a[a.length - 1];
  const secondA = a[a.length - 2];
  const transposeA = k.attrs?.transposeA;
  const inner =
    typeof transposeA === "boolean" ? (transposeA ? secondA : lastA) : secondA === m ? lastA : secondA;
  return 2 * numel(out) * inner; // one multiply and one add per (output, inner) pair
}

/** FLOPs per output element of a fused activation (tfjs `Activation`); unseen attrs count as linear. */
function activationFlopsPerElement(activation: unknown): number {
  switch (activation) {
    case undefined:
    case null:
    case "linear":
      return 0;
    case "relu":
    case "sigmoid":
    case "elu":
      return 1;
    case "relu6": // min(max(x, 0), 6)
    case "leakyrelu": // max(x, alpha x)
    case "prelu":
      return 2;
    default:
      return 1;
  }
}

/** Bias (optional input 2) and activation of the fused kernels: per output element. */
function fusedEpilogue(k: KernelShapes): number {
  const n = out0(k);
  const bias = k.inputShapes[2] != null ? n : 0;
  return bias + n * activationFlopsPerElement(k.attrs?.activation);
}

/** Conv2D: x [B, H, W, Cin], filter [kh, kw, Cin, Cout], out [B, OH, OW, Cout] (NHWC). */
function conv2dFlops(k: KernelShapes): number {
  const f = k.inputShapes[1];
  if (f == null || f.length !== 4) return Number.NaN;
  return 2 * out0(k) * f[0] * f[1] * f[2];
}

/**
 * DepthwiseConv2dNative: filter [kh, kw, C, mult], out [B, OH, OW, C*mult].
 * The model uses it as a batched matmul (input [1, M, K, C], filter [1, K, C, N],
 * 'valid' -> out [1, M, 1, C*N]): 2*M*K*C*N.
 */
function depthwiseFlops(k: KernelShapes): number {
  const f = k.inputShapes[1];
  if (f == null || f.length !== 4) return Number.NaN;
  return 2 * out0(k) * f[0] * f[1];
}

/** FusedBatchNorm: (x - mean) * rsqrt(var + eps) [* scale] [+ offset]; inputs x, mean, variance, offset?, scale?. */
function batchNormFlops(k: KernelShapes): number {
  const n = in0(k);
  const hasOffset = k.inputShapes[3] != null ? 1 : 0;
  const hasScale = k.inputShapes[4] != null ? 1 : 0;
  return n * (2 + hasOffset + hasScale) + 2 * numel(k.inputShapes[2]); // + (var + eps), rsqrt per channel
}

/** AvgPool / MaxPool: one add or compare per window element per output; the window is an attribute. */
function poolFlops(k: KernelShapes): number {
  const size = k.attrs?.filterSize;
  const window =
    typeof size === "number" ? size * size : Array.isArray(size) ? numel(size as number[]) : Number.NaN;
  return out0(k) * window;
}

const zero: FlopRule = () => 0;
const perOutput: FlopRule = out0;
const perInput: FlopRule = in0;

/** Kernels that move or relabel data: 0 FLOPs on purpose (not "uncounted"). */
export const DATA_MOVEMENT_KERNELS: readonly string[] = [
  "Cast",
  "Reshape",
  "Identity",
  "ExpandDims",
  "Transpose",
  "Slice",
  "StridedSlice",
  "Concat",
  "Pack",
  "Unpack",
  "SplitV",
  "Tile",
  "GatherV2",
  "GatherNd",
  "Reverse",
  "PadV2",
  "MirrorPad",
  "BroadcastTo",
  "Fill",
  "ZerosLike",
  "OnesLike",
  "Select",
  "Range",
  "OneHot",
  "DepthToSpace",
  "SpaceToBatchND",
  "BatchToSpaceND",
  "ScatterNd",
  "TensorScatterUpdate",
];

/** Kernels that relabel a tensor without copying its data (tfjs shares the buffer): 0 bytes moved. */
const VIEW_KERNELS = new Set(["Reshape", "Identity", "ExpandDims"]);

/** Binary elementwise arithmetic and comparisons: 1 FLOP per output element (after broadcasting). */
const ELEMENTWISE = [
  "Add",
  "Sub",
  "Multiply",
  "RealDiv",
  "FloorDiv",
  "Mod",
  "Maximum",
  "Minimum",
  "Pow",
  "Atan2",
  "Prelu",
  "Equal",
  "NotEqual",
  "Greater",
  "GreaterEqual",
  "Less",
  "LessEqual",
  "LogicalAnd",
  "LogicalOr",
  "DivNoNan",
];

/** Unary elementwise ops: 1 FLOP per output element, transcendental or not (DeepSpeed's convention). */
const UNARY = [
  "Abs",
  "Neg",
  "Square",
  "Sqrt",
  "Rsqrt",
  "Reciprocal",
  "Exp",
  "Expm1",
  "Log",
  "Log1p",
  "Sigmoid",
  "Tanh",
  "Erf",
  "Sin",
  "Cos",
  "Tan",
  "Asin",
  "Acos",
  "Atan",
  "Sinh",
  "Cosh",
  "Asinh",
  "Acosh",
  "Atanh",
  "Sign",
  "Floor",
  "Ceil",
  "Round",
  "Relu",
  "Relu6",
  "Elu",
  "Selu",
  "LeakyRelu",
  "Softplus",
  "ClipByValue",
  "Step",
  "LogicalNot",
  "IsNan",
  "IsInf",
  "IsFinite",
];

/** Reductions: 1 FLOP per input element (Mean's final divide per output is folded in). */
const REDUCTIONS = [
  "Sum",
  "Mean",
  "Max",
  "Min",
  "Prod",
  "All",
  "Any",
  "ArgMax",
  "ArgMin",
  "Cumsum",
  "Cumprod",
];

/** Softmax over the last axis: max, subtract, exp, sum, divide = 5 FLOPs per element. */
export const SOFTMAX_FLOPS_PER_ELEMENT = 5;

function buildRules(): Record<string, FlopRule> {
  const rules: Record<string, FlopRule> = {
    BatchMatMul: gemmFlops,
    // bias add and activation run in the same kernel: counted per output element
    _FusedMatMul: (k) => gemmFlops(k) + fusedEpilogue(k),
    Conv2D: conv2dFlops,
    FusedConv2D: (k) => conv2dFlops(k) + fusedEpilogue(k),
    DepthwiseConv2dNative: depthwiseFlops,
    FusedDepthwiseConv2D: (k) => depthwiseFlops(k) + fusedEpilogue(k),
    Softmax: (k) => SOFTMAX_FLOPS_PER_ELEMENT * out0(k),
    LogSoftmax: (k) => SOFTMAX_FLOPS_PER_ELEMENT * out0(k),
    // (a - b)^2: a subtract and a multiply
    SquaredDifference: (k) => 2 * out0(k),
    // n inputs summed: n - 1 adds per element
    AddN: (k) => (k.inputShapes.length - 1) * out0(k),
    FusedBatchNorm: batchNormFlops,
    AvgPool: poolFlops,
    MaxPool: poolFlops,
    // sqrt(sum(x^2)): square and add per input element
    EuclideanNorm: (k) => 2 * in0(k),
  };
  for (const name of ELEMENTWISE) rules[name] = perOutput;
  for (const name of UNARY) rules[name] = perOutput;
  for (const name of REDUCTIONS) rules[name] = perInput;
  for (const name of DATA_MOVEMENT_KERNELS) rules[name] = zero;
  // "MatMul" is not a tfjs kernel (tfjs runs every matMul as BatchMatMul); kept for other engines' names
  rules.MatMul = gemmFlops;
  return rules;
}

/** The rule table: kernel name -> FLOPs as a pure function of shapes. */
export const FLOP_RULES: Readonly<Record<string, FlopRule>> = Object.freeze(buildRules());

export function hasFlopRule(name: string): boolean {
  return Object.hasOwn(FLOP_RULES, name);
}

/** FLOPs of one kernel invocation, or null when no rule knows the kernel (uncounted, never 0). */
export function kernelFlops(k: KernelShapes): number | null {
  if (!hasFlopRule(k.name)) return null;
  const flops = FLOP_RULES[k.name](k);
  return Number.isFinite(flops) ? flops : null; // a rule that cannot read the shapes leaves it uncounted
}

/**
 * Bytes a kernel reads and writes (inputs + outputs, fp32), the memory side of
 * the roofline. A lower bound on traffic (each tensor touched once); views
 * that share their input's buffer move nothing.
 */
export function kernelBytes(k: KernelShapes): number {
  if (VIEW_KERNELS.has(k.name)) return 0;
  const inputs = k.inputShapes.reduce((s: number, shape) => s + numel(shape), 0);
  return BYTES_PER_ELEMENT * (inputs + allOutputs(k));
}

/** A FLOP count in the requested convention: MACs = FLOPs / 2 for every kernel. */
export function toConvention(flops: number, convention: FlopConvention): number {
  return convention === "macs" ? flops / 2 : flops;
}

/** The unit to print next to a count in this convention (STYLE.md 9). */
export function conventionUnit(convention: FlopConvention): "FLOPs" | "MACs" {
  return convention === "macs" ? "MACs" : "FLOPs";
}

/** One line that says what the unit means, for tables and reports. */
export function conventionNote(convention: FlopConvention): string {
  return convention === "macs"
    ? "MACs (fvcore/DiT convention: 1 multiply-accumulate = 1; every count here is FLOPs / 2)"
    : "FLOPs (PyTorch convention: 1 add or 1 multiply = 1, a multiply-accumulate = 2)";
}
