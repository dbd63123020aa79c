import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { initBackend } from "../src/engine/backend.ts";
import {
  calibrateOnnxGemm,
  createOnnxSession,
  loadOrt,
  parseOrtProfile,
  probeOnnx,
} from "../src/engine/onnx.ts";
import { engineBackends, onnxBackend, onnxStatus } from "../src/engine/onnx-backend.ts";
import { GraphBuilder } from "../src/engine/onnx-graph.ts";
import { UserError } from "../src/util/errors.ts";

const ORT_DIR = join(process.cwd(), "node_modules", "onnxruntime-node");
const ORT_VERSION: string = JSON.parse(readFileSync(join(ORT_DIR, "package.json"), "utf8")).version;
const HAS_CUDA_PROVIDER = existsSync(join(ORT_DIR, "bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so"));

const notInstalled = async (s: string) => {
  throw Object.assign(new Error(`Cannot find package '${s}' imported from /x.ts`), {
    code: "ERR_MODULE_NOT_FOUND",
  });
};

describe("onnx probe and backend descriptor", () => {
  it("reports the installed version and every usable core as the default thread count", async () => {
    const p = await probeOnnx();
    expect(p).toMatchObject({
      available: true,
      reason: `onnxruntime-node ${ORT_VERSION}`,
      version: ORT_VERSION,
      defaultThreads: availableParallelism(),
    });
    expect(p.providers).toContainEqual({ name: "cpu", bundled: true });
  });

  it("says why when the package is missing or broken", async () => {
    expect(await probeOnnx(notInstalled)).toMatchObject({
      available: false,
      reason: "onnxruntime-node is not installed",
    });
    const broken = async () => {
      throw new Error("libonnxruntime.so.1: cannot open shared object file\nmore");
    };
    expect((await probeOnnx(broken)).reason).toBe(
      "onnxruntime-node failed to load: libonnxruntime.so.1: cannot open shared object file",
    );
  });

  it("is selectable with --backend onnx next to the tfjs backends", async () => {
    const backends = engineBackends({ load: notInstalled });
    expect(backends.map((b) => b.name)).toEqual(["tensorflow", "wasm", "cpu", "onnx"]);
    const err = await initBackend("onnx", { backends }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(
      "--backend onnx is not available: onnxruntime-node is not installed; to get it: npm install onnxruntime-node " +
        "(a regular dependency; the project's .npmrc skips its CUDA download), or leave out --backend to choose automatically",
    );
    const choice = await initBackend("onnx", { backends: engineBackends({ threads: 1 }) });
    expect(choice).toEqual({
      name: "onnx",
      reason: `forced by --backend onnx (onnxruntime-node ${ORT_VERSION})`,
    });
  });

  it("rejects a bad thread count with the fix", () => {
    expect(() => onnxBackend({ threads: 0 })).toThrow(
      new UserError("--threads must be an integer >= 1, got 0; leave it out to use every core"),
    );
  });

  it("doctor's status carries version, threads and a calibrated GEMM", async () => {
    const s = await onnxStatus({ threads: 1, runs: 1 });
    expect(s).toMatchObject({ name: "onnx", available: true, version: ORT_VERSION, threads: 1 });
    expect(s.summary).toContain(
      `onnxruntime-node ${ORT_VERSION} native kernels, 1 intra-op thread (--threads)`,
    );
    expect(s.gemm).toMatchObject({ size: 512, runs: 1, flopsPerRun: 2 * 512 ** 3 });
    expect(s.gemmGflops).toBeGreaterThan(0);
    expect(await onnxStatus({ load: notInstalled })).toMatchObject({
      available: false,
      reason: "onnxruntime-node is not installed",
    });
  }, 60_000);
});

describe("calibrateOnnxGemm", () => {
  it("times a MatMul graph built in code: 2 n^3 FLOPs over the median", async () => {
    const c = await calibrateOnnxGemm({ threads: 1, size: 128, runs: 3 });
    expect(c).toMatchObject({ backend: "onnx", device: "cpu", threads: 1, size: 128, runs: 3 });
    expect(c.flopsPerRun).toBe(2 * 128 ** 3);
    expect(c.gflops).toBeCloseTo(c.flopsPerRun / (c.medianMs * 1e6), 9);
    expect(c.warmupMs).toBeGreaterThan(0);
  });

  it("rejects a bad size", async () => {
    await expect(calibrateOnnxGemm({ size: 0 })).rejects.toThrow("GEMM size must be an integer >= 1, got 0");
  });
});

describe("sessions", () => {
  function tinyGraph(): Uint8Array {
    // y = softmax(x W) reshaped, transposed and split: the builder's ops end to end
    const g = new GraphBuilder("t");
    const x = g.input("x", [2, 3]);
    const w = g.weight("w", new Float32Array([1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1]), [3, 4]);
    const s = g.softmax(g.matMul(x, w, "mm"), -1, "sm"); // [2, 4]
    const t = g.transpose(g.reshape(s, [2, 2, 2], "r"), [1, 0, 2], "tr"); // [2, 2, 2]
    const [a, b] = g.split(t, 0, [1, 1], "sp");
    g.output(g.add(a, b, "y")); // [1, 2, 2]
    g.output(g.reduceMean(x, [-1], true, "mean")); // [2, 1]
    return g.encode();
  }

  it("runs a built graph with the expected numbers", async () => {
    const ort = await loadOrt();
    const session = await createOnnxSession(tinyGraph(), { threads: 1 });
    const out = await session.run({
      x: new ort.Tensor("float32", new Float32Array([0, 0, 0, 1, 2, 3]), [2, 3]),
    });
    expect(out.y.dims).toEqual([1, 2, 2]);
    // logits: row 0 all 0 (softmax 0.25 each), row 1 [1, 0, 2, 6]; y[i, j] = s[i, j] + s[i, 2 + j]
    const e = [1, 0, 2, 6].map(Math.exp);
    const z = e.reduce((p, q) => p + q, 0);
    const want = [0.5, 0.5, (e[0] + e[2]) / z, (e[1] + e[3]) / z];
    for (const [i, v] of [...(out.y.data as Float32Array)].entries()) expect(v).toBeCloseTo(want[i], 6);
    expect([...(out.mean.data as Float32Array)]).toEqual([0, 2]);
    await session.release();
  });

  it.skipIf(HAS_CUDA_PROVIDER)(
    "--device cuda without the provider: one line that says how to get it",
    async () => {
      const err = await createOnnxSession(tinyGraph(), { device: "cuda" }).catch((e) => e);
      expect(err).toBeInstanceOf(UserError);
      expect(err.message).toMatch(
        /^--device cuda: onnxruntime-node has no working CUDA execution provider here \(.+\); on Linux x64 with an NVIDIA GPU, CUDA 12 and cuDNN 9, fetch the provider \(the project's \.npmrc skips that download\) with: ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install\.js \(needs network access to nuget\.org\); or leave out --device to run on the CPU$/,
      );
      expect(err.message).not.toContain("\n");
      // the descriptor fails the same way when activated, before any network call
      await expect(onnxBackend({ device: "cuda", threads: 1 }).activate()).rejects.toThrow(
        /^--device cuda: /,
      );
    },
  );

  it("rejects an unknown device", async () => {
    await expect(createOnnxSession(tinyGraph(), { device: "tpu" as "cpu" })).rejects.toThrow(
      new UserError('--device must be cpu or cuda, got "tpu"; leave it out to run on the CPU'),
    );
  });
});

describe("parseOrtProfile", () => {
  const ev = (name: string, dur: number, op = "Gemm") => ({
    cat: "Node",
    name: `${name}_kernel_time`,
    dur,
    args: { op_name: op, provider: "CPUExecutionProvider" },
  });

  it("sums kernel time per node in ms, skipping the warm-up runs and other events", () => {
    const events = [
      { cat: "Session", name: "model_run", dur: 999 },
      ev("a/MatMul/MatMulAddFusion", 500),
      { cat: "Node", name: "a/MatMul/MatMulAddFusion_fence_before", dur: 1 },
      ev("b/Softmax", 300, "Softmax"),
      ev("a/MatMul/MatMulAddFusion", 100),
      ev("b/Softmax", 50, "Softmax"),
      ev("a/MatMul/MatMulAddFusion", 120),
    ];
    expect(parseOrtProfile(events, 1)).toEqual([
      {
        name: "a/MatMul/MatMulAddFusion",
        opType: "Gemm",
        provider: "CPUExecutionProvider",
        calls: 2,
        totalMs: 0.22,
      },
      { name: "b/Softmax", opType: "Softmax", provider: "CPUExecutionProvider", calls: 1, totalMs: 0.05 },
    ]);
    expect(() => parseOrtProfile({})).toThrow("ORT profile: expected a JSON array of trace events");
  });
});
