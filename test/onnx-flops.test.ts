import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { OrtNodeTiming } from "../src/engine/onnx.ts";
import type { OnnxNode } from "../src/engine/onnx-graph.ts";
import { analyticFlopsPerCall } from "../src/meter/analytic.ts";
import {
  countOnnxGraph,
  foldOrtProfile,
  ONNX_DATA_MOVEMENT_OPS,
  onnxNodeBytes,
  onnxNodeFlops,
} from "../src/meter/onnx-flops.ts";
import { type ModelConfig, PRESETS, presetNames, tokensOf } from "../src/model/config.ts";
import { exportDiTOnnx } from "../src/model/onnx-export.ts";
import { paramCount } from "../src/model/params.ts";

function node(
  opType: string,
  inputShapes: number[][],
  outputShapes: number[][],
  attrs: OnnxNode["attrs"] = {},
  name = opType,
): OnnxNode {
  return {
    name,
    opType,
    inputs: inputShapes.map((_, i) => `${name}:in${i}`),
    outputs: outputShapes.map((_, i) => `${name}:out${i}`),
    attrs,
    inputShapes,
    outputShapes,
  };
}

describe("ONNX FLOP rules", () => {
  it("MatMul: 2 per multiply-accumulate, 2-D and batched 4-D", () => {
    expect(
      onnxNodeFlops(
        node(
          "MatMul",
          [
            [64, 128],
            [128, 512],
          ],
          [[64, 512]],
        ),
      ),
    ).toBe(2 * 64 * 128 * 512);
    // attention scores [B, H, T, dh] x [B, H, dh, T]
    expect(
      onnxNodeFlops(
        node(
          "MatMul",
          [
            [2, 4, 64, 32],
            [2, 4, 32, 64],
          ],
          [[2, 4, 64, 64]],
        ),
      ),
    ).toBe(2 * 2 * 4 * 64 * 64 * 32);
  });

  it("Gemm: transA picks K, a C input adds one per output", () => {
    expect(onnxNodeFlops(node("Gemm", [[8, 16], [16, 4], [4]], [[8, 4]]))).toBe(2 * 8 * 4 * 16 + 8 * 4);
    expect(
      onnxNodeFlops(
        node(
          "Gemm",
          [
            [16, 8],
            [16, 4],
          ],
          [[8, 4]],
          { transA: 1 },
        ),
      ),
    ).toBe(2 * 8 * 4 * 16);
  });

  it("elementwise 1 per output (after broadcasting), reductions 1 per input, softmax 5 per element", () => {
    expect(
      onnxNodeFlops(
        node(
          "Add",
          [
            [64, 1, 8],
            [64, 2, 8],
          ],
          [[64, 2, 8]],
        ),
      ),
    ).toBe(64 * 2 * 8);
    expect(onnxNodeFlops(node("Sigmoid", [[3, 5]], [[3, 5]]))).toBe(15);
    expect(onnxNodeFlops(node("Pow", [[3, 5], []], [[3, 5]]))).toBe(15);
    expect(onnxNodeFlops(node("ReduceMean", [[64, 128]], [[64, 1]], { axes: [1], keepdims: 1 }))).toBe(8192);
    expect(onnxNodeFlops(node("Softmax", [[1, 4, 64, 64]], [[1, 4, 64, 64]], { axis: -1 }))).toBe(5 * 16384);
  });

  it("data movement is 0 FLOPs on purpose; an unknown op is uncounted (null), never 0", () => {
    for (const op of ONNX_DATA_MOVEMENT_OPS) expect(onnxNodeFlops(node(op, [[4, 4]], [[4, 4]]))).toBe(0);
    expect(onnxNodeFlops(node("Conv", [[1, 3, 8, 8]], [[1, 4, 8, 8]]))).toBeNull();
    const count = countOnnxGraph([
      node("Conv", [[1]], [[1]]),
      node("Conv", [[1]], [[1]]),
      node("Relu", [[9]], [[9]]),
    ]);
    expect(count).toMatchObject({ flops: 9, uncounted: [{ opType: "Conv", nodes: 2 }] });
  });

  it("bytes: fp32 inputs + outputs, reshapes move nothing", () => {
    expect(onnxNodeBytes(node("Add", [[4, 4], [4]], [[4, 4]]))).toBe(4 * (16 + 4 + 16));
    expect(onnxNodeBytes(node("Reshape", [[4, 4], [2]], [[16]]))).toBe(0);
    expect(onnxNodeBytes(node("Transpose", [[4, 4]], [[4, 4]]))).toBe(4 * 32);
  });
});

describe("graph FLOPs against the analytic formula", () => {
  // The one difference, by construction: tfjs's moments() subtracts the mean twice per LayerNorm,
  // the ONNX graph once (2 per block + the final one), so the graph has (2L+1)*T*B*D fewer FLOPs.
  const layerNormGap = (cfg: ModelConfig, batch: number) =>
    (2 * cfg.depth + 1) * tokensOf(cfg) * batch * cfg.width;

  it.each(presetNames())("%s: within 1%, and exactly analytic minus the LayerNorm gap", (name) => {
    const cfg = PRESETS[name];
    for (const batch of [1, 2]) {
      const onnx = countOnnxGraph(exportDiTOnnx(cfg, new Float32Array(paramCount(cfg)), batch).nodes).flops;
      const analytic = analyticFlopsPerCall(cfg, "flops", batch);
      expect(Math.abs(onnx - analytic) / analytic).toBeLessThan(0.01);
      expect(onnx).toBe(analytic - layerNormGap(cfg, batch));
    }
  });

  it("holds for any small config (fast-check)", () => {
    fc.assert(
      fc.property(
        fc.record({
          grid: fc.integer({ min: 1, max: 4 }),
          patch: fc.integer({ min: 1, max: 3 }),
          heads: fc.integer({ min: 1, max: 3 }),
          headDim: fc.constantFrom(4, 8),
          depth: fc.integer({ min: 1, max: 3 }),
          contextFrames: fc.integer({ min: 0, max: 2 }),
          batch: fc.integer({ min: 1, max: 3 }),
        }),
        (r) => {
          const width = 4 * r.heads * r.headDim; // position embedding needs width % 4 == 0
          const cfg: ModelConfig = {
            ...PRESETS.micro,
            name: "prop",
            imageSize: r.grid * r.patch,
            patch: r.patch,
            width,
            heads: r.heads,
            depth: r.depth,
            contextFrames: r.contextFrames,
            freqDim: 8,
          };
          const nodes = exportDiTOnnx(cfg, new Float32Array(paramCount(cfg)), r.batch).nodes;
          const onnx = countOnnxGraph(nodes).flops;
          expect(onnx).toBe(analyticFlopsPerCall(cfg, "flops", r.batch) - layerNormGap(cfg, r.batch));
        },
      ),
      { numRuns: 40, seed: 17 },
    );
  });
});

describe("foldOrtProfile", () => {
  // A Gemm fused from MatMul + bias Add, then a QuickGelu fused from Mul, Sigmoid, Mul (names as ORT writes them).
  const nodes: OnnxNode[] = [
    {
      ...node(
        "MatMul",
        [
          [4, 8],
          [8, 16],
        ],
        [[4, 16]],
        {},
        "fc/MatMul",
      ),
      inputs: ["x", "w"],
      outputs: ["m"],
    },
    { ...node("Add", [[4, 16], [16]], [[4, 16]], {}, "fc/Add"), inputs: ["m", "b"], outputs: ["h"] },
    { ...node("Mul", [[4, 16], []], [[4, 16]], {}, "gelu/Scale"), inputs: ["h", "k"], outputs: ["s"] },
    { ...node("Sigmoid", [[4, 16]], [[4, 16]], {}, "gelu/Sigmoid"), inputs: ["s"], outputs: ["g"] },
    {
      ...node(
        "Mul",
        [
          [4, 16],
          [4, 16],
        ],
        [[4, 16]],
        {},
        "gelu/Mul",
      ),
      inputs: ["h", "g"],
      outputs: ["y"],
    },
  ];
  const timing = (name: string, opType: string, totalMs: number): OrtNodeTiming => ({
    name,
    opType,
    provider: "CPUExecutionProvider",
    calls: 2,
    totalMs,
  });

  it("gives each ORT kernel the FLOPs of the graph nodes it computes", () => {
    const folded = foldOrtProfile(nodes, [
      timing("fc/MatMul/MatMulAddFusion", "Gemm", 0.5),
      timing("gelu/Mul/QuickGeluFusion/", "QuickGelu", 0.25),
      timing("inserted_by_ort", "MemcpyToHost", 0.1),
    ]);
    expect(folded.map((k) => [k.opType, k.graphNodes, k.flops, k.totalMs])).toEqual([
      ["Gemm", ["fc/MatMul", "fc/Add"], 2 * 4 * 16 * 8 + 64, 0.5],
      ["QuickGelu", ["gelu/Scale", "gelu/Sigmoid", "gelu/Mul"], 3 * 64, 0.25],
      ["MemcpyToHost", [], null, 0.1],
    ]);
  });
});
