/**
 * ONNX graphs built in code: the subset of onnx.proto this project writes
 * (proto2, field numbers as in onnx/onnx.proto, IR version 8, opset 17), and
 * a small builder that tracks the static shape of every value as nodes are
 * added. Those shapes are what the FLOP rules (meter/onnx-flops.ts) read, so
 * counting needs no shape inference pass over the encoded model.
 *
 * Everything is fp32 except the int64 shape/split constants and the int8
 * weights of a quantized graph (`typedWeight`).
 */
import protobuf from "protobufjs";

export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;

/** Field names and numbers from onnx/onnx.proto (keepCase: snake_case names are the wire names). */
const ONNX_PROTO = `
syntax = "proto2";
package onnx;
message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; FLOATS = 6; INTS = 7; STRINGS = 8; }
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  repeated float floats = 7;
  repeated int64 ints = 8;
  optional AttributeType type = 20;
}
message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
}
message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
  optional string domain = 7;
}
message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
}
message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}
message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional string name = 8;
  optional bytes raw_data = 9;
}
message TensorShapeProto {
  message Dimension {
    oneof value { int64 dim_value = 1; string dim_param = 2; }
  }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value { Tensor tensor_type = 1; }
}
message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
`;

/** TensorProto.DataType values used here. */
export const ONNX_DTYPE = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;
const FLOAT = ONNX_DTYPE.FLOAT;
const INT64 = ONNX_DTYPE.INT64;
/** AttributeProto.AttributeType values used here. */
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

let modelType: protobuf.Type | undefined;
function modelProto(): protobuf.Type {
  modelType ??= protobuf.parse(ONNX_PROTO, { keepCase: true }).root.lookupType("onnx.ModelProto");
  return modelType;
}

export type Shape = readonly number[];

/** Attribute values: integers as INT, integer arrays as INTS, `{ float }` as FLOAT. */
export type AttrValue = number | readonly number[] | { float: number };

/** One node of a built graph with the static shapes of its inputs and outputs. */
export interface OnnxNode {
  name: string;
  opType: string;
  inputs: string[];
  outputs: string[];
  attrs: Readonly<Record<string, AttrValue>>;
  inputShapes: Shape[];
  outputShapes: Shape[];
}

interface Initializer {
  name: string;
  shape: Shape;
  dataType: number;
  raw: Uint8Array;
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Numpy broadcasting of two shapes; throws on a mismatch (a builder bug, caught at build time). */
export function broadcastShapes(a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`cannot broadcast [${a}] with [${b}]`);
    out.push(Math.max(x, y));
  }
  return out;
}

function float32Bytes(data: Float32Array): Uint8Array {
  // the wire format is little-endian; so is every platform Node runs on
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Builds one graph. Every method returns the name of the value it creates;
 * shapes are checked as nodes are added.
 */
export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  private readonly shapes = new Map<string, Shape>();
  private readonly initializers: Initializer[] = [];
  private readonly inputs: string[] = [];
  private readonly outputs: string[] = [];
  private readonly constants = new Map<string, string>();
  private counter = 0;
  /**
   * Prepended to the names of nodes and weights added from now on (not inputs, nor the shared constants):
   * a second network in the same graph (model + guide) gets its own names.
   */
  scope = "";

  constructor(readonly graphName: string) {}

  shapeOf(value: string): Shape {
    const s = this.shapes.get(value);
    if (s === undefined) throw new Error(`onnx graph: no value named "${value}"`);
    return s;
  }

  /** A graph input (fp32) of fixed shape. */
  input(name: string, shape: Shape): string {
    this.define(name, shape);
    this.inputs.push(name);
    return name;
  }

  /** Marks a value as a graph output. */
  output(name: string): void {
    this.shapeOf(name);
    this.outputs.push(name);
  }

  /** A constant fp32 tensor stored in the model (weights). */
  weight(name: string, data: Float32Array, shape: Shape): string {
    if (data.length !== numel(shape)) throw new Error(`weight ${name}: ${data.length} values for [${shape}]`);
    const scoped = this.scope + name;
    this.define(scoped, shape);
    this.initializers.push({ name: scoped, shape, dataType: FLOAT, raw: float32Bytes(data) });
    return scoped;
  }

  /** A constant int8 / uint8 / int32 tensor (a quantized weight), raw little-endian bytes. */
  typedWeight(name: string, data: Int8Array | Uint8Array | Int32Array, shape: Shape): string {
    if (data.length !== numel(shape)) throw new Error(`weight ${name}: ${data.length} values for [${shape}]`);
    const dataType =
      data instanceof Int8Array
        ? ONNX_DTYPE.INT8
        : data instanceof Uint8Array
          ? ONNX_DTYPE.UINT8
          : ONNX_DTYPE.INT32;
    const scoped = this.scope + name;
    this.define(scoped, shape);
    const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.initializers.push({ name: scoped, shape, dataType, raw });
    return scoped;
  }

  /** A scalar fp32 constant, shared by every node that uses the same value. */
  scalar(value: number): string {
    const key = `f:${value}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = `const_${this.constants.size}`;
    this.define(name, []);
    this.initializers.push({
      name,
      shape: [],
      dataType: FLOAT,
      raw: float32Bytes(new Float32Array([value])),
    });
    this.constants.set(key, name);
    return name;
  }

  /** A 1-D int64 constant (Reshape's shape, Split's sizes), shared by equal values. */
  int64s(values: readonly number[]): string {
    const key = `i:${values.join(",")}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = `const_${this.constants.size}`;
    const raw = new Uint8Array(8 * values.length);
    const view = new DataView(raw.buffer);
    for (const [i, v] of values.entries()) view.setBigInt64(8 * i, BigInt(v), true);
    this.define(name, [values.length]);
    this.initializers.push({ name, shape: [values.length], dataType: INT64, raw });
    this.constants.set(key, name);
    return name;
  }

  /** Adds a node whose output shapes the caller computed; returns the output names. */
  node(
    opType: string,
    inputs: string[],
    outputShapes: Shape[],
    attrs: Record<string, AttrValue> = {},
    name?: string,
  ): string[] {
    const nodeName = this.scope + (name ?? `${opType}_${this.counter}`);
    this.counter++;
    const outputs = outputShapes.map((s, i) => {
      const out = outputShapes.length === 1 ? nodeName : `${nodeName}:${i}`;
      this.define(out, s);
      return out;
    });
    this.nodes.push({
      name: nodeName,
      opType,
      inputs,
      outputs,
      attrs,
      inputShapes: inputs.map((v) => this.shapeOf(v)),
      outputShapes,
    });
    return outputs;
  }

  // ---- ops with shape inference -------------------------------------------------

  /** Numpy-style matmul: [..., M, K] x [..., K, N] -> [..., M, N]. */
  matMul(a: string, b: string, name?: string): string {
    const sa = this.shapeOf(a);
    const sb = this.shapeOf(b);
    const k = sa[sa.length - 1];
    if (sa.length < 2 || sb.length < 2 || sb[sb.length - 2] !== k) {
      throw new Error(`MatMul ${name ?? ""}: [${sa}] x [${sb}]`);
    }
    const batch = broadcastShapes(sa.slice(0, -2), sb.slice(0, -2));
    return this.node("MatMul", [a, b], [[...batch, sa[sa.length - 2], sb[sb.length - 1]]], {}, name)[0];
  }

  /** Elementwise binary op with broadcasting (Add, Sub, Mul, Div, Pow). */
  binary(opType: "Add" | "Sub" | "Mul" | "Div" | "Pow", a: string, b: string, name?: string): string {
    return this.node(opType, [a, b], [broadcastShapes(this.shapeOf(a), this.shapeOf(b))], {}, name)[0];
  }

  add(a: string, b: string, name?: string): string {
    return this.binary("Add", a, b, name);
  }

  mul(a: string, b: string, name?: string): string {
    return this.binary("Mul", a, b, name);
  }

  /** Elementwise unary op (Sigmoid, Sqrt, ...). */
  unary(opType: string, x: string, name?: string): string {
    return this.node(opType, [x], [this.shapeOf(x)], {}, name)[0];
  }

  reshape(x: string, shape: Shape, name?: string): string {
    if (numel(shape) !== numel(this.shapeOf(x))) {
      throw new Error(`Reshape ${name ?? ""}: [${this.shapeOf(x)}] -> [${shape}]`);
    }
    return this.node("Reshape", [x, this.int64s(shape)], [shape], {}, name)[0];
  }

  transpose(x: string, perm: readonly number[], name?: string): string {
    const s = this.shapeOf(x);
    return this.node("Transpose", [x], [perm.map((p) => s[p])], { perm }, name)[0];
  }

  /** Split along `axis` into pieces of the given sizes (opset 13+: sizes as an input). */
  split(x: string, axis: number, sizes: readonly number[], name?: string): string[] {
    const s = this.shapeOf(x);
    const ax = axis < 0 ? s.length + axis : axis;
    if (sizes.reduce((a, b) => a + b, 0) !== s[ax])
      throw new Error(`Split ${name ?? ""}: [${s}] into ${sizes}`);
    const shapes = sizes.map((n) => s.map((d, i) => (i === ax ? n : d)));
    return this.node("Split", [x, this.int64s(sizes)], shapes, { axis: ax }, name);
  }

  /** Mean over `axes` (opset 17: axes as an attribute). */
  reduceMean(x: string, axes: readonly number[], keepdims: boolean, name?: string): string {
    const { norm, out } = this.reduced(x, axes, keepdims);
    return this.node("ReduceMean", [x], [out], { axes: norm, keepdims: keepdims ? 1 : 0 }, name)[0];
  }

  /** Sum over `axes` (opset 13+: axes as an input). */
  reduceSum(x: string, axes: readonly number[], keepdims: boolean, name?: string): string {
    const { norm, out } = this.reduced(x, axes, keepdims);
    return this.node("ReduceSum", [x, this.int64s(norm)], [out], { keepdims: keepdims ? 1 : 0 }, name)[0];
  }

  /** 2-D product op(a) x op(b), op = transpose where asked: MLAS reads the transposed operand in place. */
  gemm(a: string, b: string, transA: boolean, transB: boolean, name?: string): string {
    const sa = this.shapeOf(a);
    const sb = this.shapeOf(b);
    if (sa.length !== 2 || sb.length !== 2) throw new Error(`Gemm ${name ?? ""}: [${sa}] x [${sb}]`);
    const [m, k] = transA ? [sa[1], sa[0]] : [sa[0], sa[1]];
    const [k2, n] = transB ? [sb[1], sb[0]] : [sb[0], sb[1]];
    if (k !== k2)
      throw new Error(`Gemm ${name ?? ""}: [${sa}]${transA ? "^T" : ""} x [${sb}]${transB ? "^T" : ""}`);
    return this.node("Gemm", [a, b], [[m, n]], { transA: transA ? 1 : 0, transB: transB ? 1 : 0 }, name)[0];
  }

  concat(xs: readonly string[], axis: number, name?: string): string {
    const shapes = xs.map((x) => this.shapeOf(x));
    const ax = axis < 0 ? shapes[0].length + axis : axis;
    const out = [...shapes[0]];
    out[ax] = shapes.reduce((a, s) => a + s[ax], 0);
    return this.node("Concat", [...xs], [out], { axis: ax }, name)[0];
  }

  /** x (fp32) -> [x quantized to uint8, its scale [], its zero point []] (ONNX DynamicQuantizeLinear). */
  dynamicQuantizeLinear(x: string, name?: string): [string, string, string] {
    const [q, scale, zero] = this.node("DynamicQuantizeLinear", [x], [this.shapeOf(x), [], []], {}, name);
    return [q, scale, zero];
  }

  /** uint8 a [M, K] (zero point aZero) x int8 b [K, N] -> int32 [M, N] (ONNX MatMulInteger, b's zero point 0). */
  matMulInteger(a: string, b: string, aZero: string, name?: string): string {
    const sa = this.shapeOf(a);
    const sb = this.shapeOf(b);
    if (sa.length !== 2 || sb.length !== 2 || sa[1] !== sb[0])
      throw new Error(`MatMulInteger ${name ?? ""}: [${sa}] x [${sb}]`);
    return this.node("MatMulInteger", [a, b, aZero], [[sa[0], sb[1]]], {}, name)[0];
  }

  /** Cast to another element type (ONNX_DTYPE). */
  cast(x: string, to: number, name?: string): string {
    return this.node("Cast", [x], [this.shapeOf(x)], { to }, name)[0];
  }

  softmax(x: string, axis: number, name?: string): string {
    return this.node("Softmax", [x], [this.shapeOf(x)], { axis }, name)[0];
  }

  // ---- encoding -----------------------------------------------------------------

  /** The serialized ModelProto (what InferenceSession.create takes). */
  encode(docString = ""): Uint8Array {
    const valueInfo = (name: string) => ({
      name,
      type: {
        tensor_type: { elem_type: FLOAT, shape: { dim: this.shapeOf(name).map((d) => ({ dim_value: d })) } },
      },
    });
    const attribute = (name: string, v: AttrValue) =>
      typeof v === "number"
        ? { name, type: ATTR_INT, i: v }
        : Array.isArray(v)
          ? { name, type: ATTR_INTS, ints: v }
          : { name, type: ATTR_FLOAT, f: (v as { float: number }).float };
    const model = {
      ir_version: ONNX_IR_VERSION,
      producer_name: "framecost",
      doc_string: docString,
      opset_import: [{ domain: "", version: ONNX_OPSET }],
      graph: {
        name: this.graphName,
        node: this.nodes.map((n) => ({
          name: n.name,
          op_type: n.opType,
          input: n.inputs,
          output: n.outputs,
          attribute: Object.entries(n.attrs).map(([k, v]) => attribute(k, v)),
        })),
        initializer: this.initializers.map((t) => ({
          name: t.name,
          dims: t.shape,
          data_type: t.dataType,
          raw_data: t.raw,
        })),
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
    };
    const type = modelProto();
    return type.encode(type.fromObject(model)).finish();
  }

  /** A reduction's axes made non-negative, and its output shape. */
  private reduced(x: string, axes: readonly number[], keepdims: boolean): { norm: number[]; out: number[] } {
    const s = this.shapeOf(x);
    const norm = axes.map((a) => (a < 0 ? s.length + a : a));
    const out = keepdims
      ? s.map((d, i) => (norm.includes(i) ? 1 : d))
      : s.filter((_, i) => !norm.includes(i));
    return { norm, out };
  }

  private define(name: string, shape: Shape): void {
    if (this.shapes.has(name)) throw new Error(`onnx graph: "${name}" defined twice`);
    this.shapes.set(name, [...shape]);
  }
}
