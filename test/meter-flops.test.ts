import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DATA_MOVEMENT_KERNELS,
  FLOP_RULES,
  type KernelShapes,
  kernelBytes,
  kernelFlops,
  SOFTMAX_FLOPS_PER_ELEMENT,
  toConvention,
} from "../src/meter/flops.ts";

const k = (
  name: string,
  inputShapes: (number[] | null)[],
  outputShapes: number[][],
  attrs?: Record<string, unknown>,
): KernelShapes => ({ name, inputShapes, outputShapes, attrs });

describe("FLOP rules against hand-computed shapes", () => {
  it("BatchMatMul 2-D [8,16]x[16,32]: 2*8*32*16 = 8192", () => {
    expect(
      kernelFlops(
        k(
          "BatchMatMul",
          [
            [8, 16],
            [16, 32],
          ],
          [[8, 32]],
        ),
      ),
    ).toBe(8192);
  });

  it("BatchMatMul batched with transposeB [2,4,32]x[2,4,32]^T -> [2,4,4]: 2*2*4*4*32 = 2048", () => {
    const shapes = k(
      "BatchMatMul",
      [
        [2, 4, 32],
        [2, 4, 32],
      ],
      [[2, 4, 4]],
    );
    expect(kernelFlops(shapes)).toBe(2048);
    expect(kernelFlops({ ...shapes, attrs: { transposeA: false, transposeB: true } })).toBe(2048);
  });

  it("BatchMatMul with transposeA: a [3,5] is [K=3, M=5] -> out [5,7]: 2*5*7*3 = 210", () => {
    expect(
      kernelFlops(
        k(
          "BatchMatMul",
          [
            [3, 5],
            [3, 7],
          ],
          [[5, 7]],
          { transposeA: true },
        ),
      ),
    ).toBe(210);
    // without attrs, inferred from shapes: a's second-last (3) is not M (5), so a is transposed
    expect(
      kernelFlops(
        k(
          "BatchMatMul",
          [
            [3, 5],
            [3, 7],
          ],
          [[5, 7]],
        ),
      ),
    ).toBe(210);
  });

  it("_FusedMatMul adds bias (1/elem) and activation (relu 1/elem, linear 0)", () => {
    const ins = [[1, 8, 16], [1, 16, 32], [32], null];
    // 2*8*32*16 = 8192 GEMM + 256 bias
    expect(kernelFlops(k("_FusedMatMul", ins, [[1, 8, 32]], { activation: "linear" }))).toBe(8448);
    expect(kernelFlops(k("_FusedMatMul", ins, [[1, 8, 32]], { activation: "relu" }))).toBe(8704);
    expect(kernelFlops(k("_FusedMatMul", [[1, 8, 16], [1, 16, 32], null, null], [[1, 8, 32]]))).toBe(8192);
  });

  it("Conv2D: x [1,8,8,3], filter [3,3,3,16], out [1,8,8,16]: 2*1024*27 = 55296", () => {
    expect(
      kernelFlops(
        k(
          "Conv2D",
          [
            [1, 8, 8, 3],
            [3, 3, 3, 16],
          ],
          [[1, 8, 8, 16]],
        ),
      ),
    ).toBe(55296);
  });

  it("DepthwiseConv2dNative as batched matmul: [1,M,K,C] x [1,K,C,N] 'valid' = 2*M*K*C*N", () => {
    const [m, kk, c, n] = [6, 5, 4, 7];
    expect(
      kernelFlops(
        k(
          "DepthwiseConv2dNative",
          [
            [1, m, kk, c],
            [1, kk, c, n],
          ],
          [[1, m, 1, c * n]],
        ),
      ),
    ).toBe(2 * m * kk * c * n);
  });

  it("elementwise binary ops: one FLOP per output element after broadcasting", () => {
    for (const name of ["Add", "Sub", "Multiply", "RealDiv", "Maximum", "Minimum"]) {
      expect(
        kernelFlops(
          k(
            name,
            [
              [8, 32],
              [8, 1],
            ],
            [[8, 32]],
          ),
        ),
      ).toBe(256);
      expect(kernelFlops(k(name, [[8, 32], []], [[8, 32]]))).toBe(256);
    }
    expect(
      kernelFlops(
        k(
          "SquaredDifference",
          [
            [8, 32],
            [8, 1],
          ],
          [[8, 32]],
        ),
      ),
    ).toBe(512);
    expect(
      kernelFlops(
        k(
          "AddN",
          [
            [4, 4],
            [4, 4],
            [4, 4],
          ],
          [[4, 4]],
        ),
      ),
    ).toBe(32);
  });

  it("unary ops: one FLOP per element, transcendental or not", () => {
    for (const name of ["Exp", "Sigmoid", "Tanh", "Sqrt", "Rsqrt", "Neg", "Square", "Relu", "Log"]) {
      expect(kernelFlops(k(name, [[3, 7]], [[3, 7]]))).toBe(21);
    }
  });

  it("Softmax: 5 FLOPs per element (max, subtract, exp, sum, divide)", () => {
    expect(SOFTMAX_FLOPS_PER_ELEMENT).toBe(5);
    expect(kernelFlops(k("Softmax", [[4, 10]], [[4, 10]]))).toBe(200);
  });

  it("reductions: one FLOP per input element", () => {
    for (const name of ["Sum", "Mean", "Max", "Min"])
      expect(kernelFlops(k(name, [[8, 32]], [[8, 1]]))).toBe(256);
  });

  it("FusedBatchNorm: 2/elem + scale + offset, and var+eps, rsqrt per channel", () => {
    // x [2,4,4,3]=96 elems, mean/var [3]: 96*(2+1+1) + 2*3
    expect(kernelFlops(k("FusedBatchNorm", [[2, 4, 4, 3], [3], [3], [3], [3]], [[2, 4, 4, 3]]))).toBe(390);
  });

  it("data movement is 0 FLOPs on purpose, with bytes moved", () => {
    for (const name of [
      "Cast",
      "Transpose",
      "Slice",
      "Concat",
      "Pack",
      "Tile",
      "GatherV2",
      "Identity",
      "Reshape",
    ]) {
      expect(DATA_MOVEMENT_KERNELS).toContain(name);
      expect(kernelFlops(k(name, [[8, 32]], [[8, 32]]))).toBe(0);
    }
    expect(kernelBytes(k("Transpose", [[8, 32]], [[32, 8]]))).toBe(4 * 512);
    expect(
      kernelBytes(
        k(
          "Concat",
          [
            [8, 32],
            [8, 32],
          ],
          [[8, 64]],
        ),
      ),
    ).toBe(4 * 1024);
    // a reshape relabels the same buffer: nothing moves
    expect(kernelBytes(k("Reshape", [[8, 32]], [[256]]))).toBe(0);
  });

  it("bytes: inputs + outputs at 4 bytes, absent optional inputs skipped", () => {
    expect(kernelBytes(k("_FusedMatMul", [[1, 8, 16], [1, 16, 32], [32], null], [[1, 8, 32]]))).toBe(
      4 * (128 + 512 + 32 + 256),
    );
  });

  it("kernels without a rule are uncounted (null), never zero", () => {
    expect(kernelFlops(k("NonMaxSuppressionV5", [[10, 4]], [[3]]))).toBeNull();
    expect(
      kernelFlops(
        k(
          "Einsum",
          [
            [2, 3],
            [3, 4],
          ],
          [[2, 4]],
        ),
      ),
    ).toBeNull();
    // a rule that cannot read the shapes leaves the kernel uncounted too
    expect(kernelFlops(k("Conv2D", [[1, 8, 8, 3], null], [[1, 8, 8, 16]]))).toBeNull();
  });

  it("MACs convention: FLOPs / 2 for every kernel", () => {
    expect(toConvention(8192, "macs")).toBe(4096);
    expect(toConvention(8192, "flops")).toBe(8192);
  });

  it("property: GEMM FLOPs = 2*B*M*N*K for any shape and either transpose", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 64 }),
        fc.boolean(),
        (b, m, n, kk, ta) => {
          const a = ta ? [b, kk, m] : [b, m, kk];
          const want = 2 * b * m * n * kk;
          const withAttrs = kernelFlops(k("BatchMatMul", [a, [b, kk, n]], [[b, m, n]], { transposeA: ta }));
          const fromShapes = kernelFlops(k("BatchMatMul", [a, [b, kk, n]], [[b, m, n]]));
          return withAttrs === want && fromShapes === want;
        },
      ),
    );
  });

  it("every rule is a pure function: same shapes, same answer", () => {
    for (const [name, rule] of Object.entries(FLOP_RULES)) {
      const shapes = k(
        name,
        [
          [2, 3, 4, 5],
          [1, 3, 4, 2],
        ],
        [[2, 3, 4, 5]],
      );
      expect(rule(shapes)).toBe(rule(shapes));
    }
  });
});
