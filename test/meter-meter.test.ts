import { beforeAll, describe, expect, it } from "vitest";
import { sampleFrame } from "../src/diffusion/sample.ts";
import { makeSampler } from "../src/diffusion/samplers/index.ts";
import { makeSchedule } from "../src/diffusion/schedule.ts";
import { tf } from "../src/engine/tf.ts";
import {
  type KernelCounter,
  Meter,
  type NetworkFn,
  tfjsKernelCounter,
  tfjsProfileCounter,
} from "../src/meter/meter.ts";
import { Rng } from "../src/util/rng.ts";

// x [N*D] -> [N, D]; dense D->H (+bias), sigmoid, multiply, softmax, dense H->D; FLOPs by hand below.
const N = 8;
const D = 16;
const H = 32;
let w1: tf.Tensor2D;
let b1: tf.Tensor1D;
let w2: tf.Tensor2D;

beforeAll(async () => {
  await tf.setBackend("wasm");
  await tf.ready();
  w1 = tf.randomNormal([D, H], 0, 0.1, "float32", 1);
  b1 = tf.randomNormal([H], 0, 0.1, "float32", 2);
  w2 = tf.randomNormal([H, D], 0, 0.1, "float32", 3);
});

function makeNet(rows = N): NetworkFn<null> {
  return async (x) => {
    const y = tf.tidy(() => {
      const xt = tf.tensor2d(x, [rows, D]);
      const h = tf.fused.matMul({ a: xt, b: w1, bias: b1 }); // [rows, H]
      const g = tf.mul(h, tf.sigmoid(h));
      const p = tf.softmax(g);
      return tf.matMul(p, w2); // [rows, D]
    });
    const out = (await y.data()) as Float32Array;
    y.dispose();
    return out;
  };
}

/** By hand: 2*rows*H*D + rows*H (bias) + 2*rows*H (sigmoid, mul) + 5*rows*H (softmax) + 2*rows*D*H. */
function handFlops(rows: number): number {
  return 2 * rows * H * D + rows * H + 2 * rows * H + 5 * rows * H + 2 * rows * D * H;
}

const input = (rows = N) => new Float32Array(rows * D).fill(0.5);

/** A counter that records how many times profiling ran. */
function spyCounter(): { counter: KernelCounter; runs: () => number } {
  let n = 0;
  return {
    counter: async (call) => {
      n++;
      return tfjsKernelCounter(call);
    },
    runs: () => n,
  };
}

describe("Meter with tfjs profiling", () => {
  it("counts a call's FLOPs from the kernels that ran, once per shape, and times every call", async () => {
    const before = tf.memory().numTensors;
    const spy = spyCounter();
    const meter = new Meter({ countKernels: spy.counter });
    const net = meter.wrap(makeNet());
    const plain = await makeNet()(input(), 0, null);
    for (let i = 0; i < 5; i++) {
      const out = await net(input(), 999 - i, null);
      expect(out).toEqual(plain); // metering does not change results
    }
    const s = meter.summary();
    expect(spy.runs()).toBe(1);
    expect(s.flopsPerNfe).toBe(handFlops(N)); // 8192+256+512+1280+8192 = 18432
    expect(s.flopsPerNfe).toBe(18432);
    expect(s.totals).toMatchObject({ calls: 5, nfe: 5, flops: 5 * 18432, frames: 0, steps: 0 });
    expect(s.nfeTiming.warmupMs).toBeGreaterThan(0);
    expect(s.nfeTiming.count).toBe(4); // steady state: calls 2..5
    expect(s.nfeTiming.medianMs).toBeGreaterThan(0);
    expect(s.uncounted).toEqual([]);
    // the customGrad scope of tf.fused.matMul is not a kernel: its inner kernels are counted, it is not
    const names = s.kernels.map((k) => k.name);
    expect(names).toContain("_FusedMatMul");
    expect(names).not.toContain("fusedMatMul__op");
    const fused = s.kernels.find((k) => k.name === "_FusedMatMul")!;
    expect(fused).toMatchObject({ countPerNfe: 1, flopsPerNfe: 2 * N * H * D + N * H, counted: true });
    expect(fused.bytesPerNfe).toBe(4 * (N * D + D * H + H + N * H));
    expect(s.kernels.find((k) => k.name === "Reshape")?.flopsPerNfe).toBe(0);
    expect(s.memory.peakTensorBytes).toBeGreaterThan(0);
    expect(s.memory.peakRssBytes).toBeGreaterThan(10 * 2 ** 20);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("profiles again for a new input shape and weights per-NFE figures by calls", async () => {
    const spy = spyCounter();
    const meter = new Meter({ countKernels: spy.counter });
    const small = meter.wrap(makeNet(N));
    const big = meter.wrap(makeNet(2 * N));
    for (let i = 0; i < 3; i++) await small(input(N), i, null);
    await big(input(2 * N), 0, null);
    expect(spy.runs()).toBe(2);
    const s = meter.summary();
    expect(s.totals.flops).toBe(3 * handFlops(N) + handFlops(2 * N));
    expect(s.flopsPerNfe).toBe((3 * handFlops(N) + handFlops(2 * N)) / 4);
    // the profiled call of the new shape is kept out of the steady-state statistics
    expect(s.nfeTiming.count).toBe(2);
  });

  it("shows a kernel with no FLOP rule as uncounted, with its count and time, never as zero", async () => {
    const before = tf.memory().numTensors;
    const meter = new Meter();
    const net = meter.wrap<null>(async (x) => {
      const y = tf.tidy(() => {
        const t = tf.tensor2d(x, [N, D]);
        const { values } = tf.topk(tf.add(t, 1), 3); // TopK has no rule
        return values;
      });
      const out = (await y.data()) as Float32Array;
      y.dispose();
      return out;
    });
    for (let i = 0; i < 4; i++) await net(input(), i, null);
    const s = meter.summary();
    expect(s.uncounted).toHaveLength(1);
    expect(s.uncounted[0].name).toBe("TopK");
    expect(s.uncounted[0].count).toBe(4);
    expect(s.uncounted[0].ms).toBeGreaterThanOrEqual(0);
    const topk = s.kernels.find((k) => k.name === "TopK")!;
    expect(topk.counted).toBe(false);
    expect(topk.countPerNfe).toBe(1);
    // only the Add is counted
    expect(s.flopsPerNfe).toBe(N * D);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("the tf.profile counter sees the same kernels, shapes and FLOPs as the default dispatch tap", async () => {
    const before = tf.memory().numTensors;
    const a = await tfjsKernelCounter(() => makeNet()(input(), 0, null));
    const b = await tfjsProfileCounter(() => makeNet()(input(), 0, null));
    expect(a.result).toEqual(b.result);
    const strip = (ks: typeof a.kernels) => ks.map(({ name, flops, bytes }) => ({ name, flops, bytes }));
    expect(strip(a.kernels)).toEqual(strip(b.kernels));
    expect(a.kernels.map((k) => k.name)).toEqual([
      "Reshape",
      "Reshape",
      "_FusedMatMul",
      "Reshape",
      "Sigmoid",
      "Multiply",
      "Softmax",
      "BatchMatMul",
    ]);
    expect(a.peakBytes).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("sees the fused activation through the attribute tap", async () => {
    const meter = new Meter();
    const net = meter.wrap<null>(async (x) => {
      const y = tf.tidy(() =>
        tf.fused.matMul({ a: tf.tensor2d(x, [N, D]), b: w1, bias: b1, activation: "relu" }),
      );
      const out = (await y.data()) as Float32Array;
      y.dispose();
      return out;
    });
    await net(input(), 0, null);
    expect(meter.summary().flopsPerNfe).toBe(2 * N * D * H + N * H + N * H);
  });
});

/** A counter that never touches tfjs (as an ONNX engine's would): fixed kernels per call. */
const fakeCounter: KernelCounter = async (call) => ({
  result: await call(),
  kernels: [
    { name: "MatMul", flops: 1000, bytes: 64, ms: 0.5 },
    { name: "Mystery", flops: null, bytes: 8, ms: 0.25 },
  ],
});
const fakeNet: NetworkFn<unknown> = async (x) => x;

describe("Meter hooks: steps, NFEs, frames", () => {
  it("Heun-like sampler: n steps cost 2n-1 NFEs per frame", async () => {
    const meter = new Meter({ countKernels: fakeCounter, tensorBytes: () => 0 });
    const net = meter.wrap(fakeNet);
    const steps = 10;
    const frames = 3;
    for (let f = 0; f < frames; f++) {
      meter.beginFrame(f);
      for (let i = 0; i < steps; i++) {
        await net(input(), i, null);
        if (i < steps - 1) await net(input(), i, null); // the corrector, skipped on the last step
        meter.onStep(7);
      }
      const rec = meter.endFrame();
      expect(rec).toMatchObject({ index: f, steps, nfe: 2 * steps - 1, calls: 2 * steps - 1 });
      expect(rec.stepWallMs).toHaveLength(steps);
      expect(rec.flops).toBe((2 * steps - 1) * 1000 + steps * 7);
      expect(rec.samplerFlops).toBe(steps * 7);
    }
    const s = meter.summary();
    expect(s.totals).toMatchObject({ frames, steps: frames * steps, nfe: frames * (2 * steps - 1) });
    expect(s.samplerFlops).toBe(frames * steps * 7);
  });

  it("guidance-style doubled calls count 2 NFEs per step, as two calls or one batched call", async () => {
    const meter = new Meter({ countKernels: fakeCounter, tensorBytes: () => 0 });
    const net = meter.wrap(fakeNet);
    meter.beginFrame(0);
    for (let i = 0; i < 5; i++) {
      await net(input(), i, "cond");
      await net(input(), i, "uncond");
      meter.onStep();
    }
    expect(meter.endFrame()).toMatchObject({ steps: 5, nfe: 10, calls: 10 });

    const batched = meter.wrap(fakeNet, { nfePerCall: 2 });
    meter.beginFrame(1);
    for (let i = 0; i < 5; i++) {
      await batched(input(), i, null);
      meter.onStep();
    }
    expect(meter.endFrame()).toMatchObject({ steps: 5, nfe: 10, calls: 5 });
  });

  it("the real sampling loop with Heun: steps via stepHook, 2n-1 NFEs, sampler FLOPs per frame", async () => {
    const meter = new Meter({ countKernels: fakeCounter, tensorBytes: () => 0 });
    const model = meter.wrap<null>(async (x) => new Float32Array(x.length).fill(0.1));
    const sampler = makeSampler("heun", makeSchedule("cosine"), { predictionType: "v" });
    const steps = 6;
    for (let f = 0; f < 2; f++) {
      meter.beginFrame(f);
      const hook = meter.stepHook();
      const r = await sampleFrame({
        model,
        context: null,
        sampler,
        steps,
        shape: 48,
        rng: new Rng(f + 1),
        onStep: (info) => {
          hook(info);
          // mid-frame, the cheap totals are the summary's: this frame's NFEs in, its wall time not yet
          expect(meter.totalsNow()).toEqual(meter.summary().totals);
        },
      });
      meter.addSamplerFlops(r.samplerFlops);
      const rec = meter.endFrame();
      expect(rec).toMatchObject({
        steps,
        nfe: 2 * steps - 1,
        calls: 2 * steps - 1,
        samplerFlops: r.samplerFlops,
      });
      expect(r.samplerFlops).toBeGreaterThan(0);
      expect(rec.flops).toBe((2 * steps - 1) * 1000 + r.samplerFlops);
    }
    expect(meter.summary().totals).toMatchObject({ frames: 2, steps: 12, nfe: 22 });
    expect(meter.totalsNow()).toEqual(meter.summary().totals);
    expect(() => meter.stepHook()({ step: 1 })).toThrow("meter: stepHook called outside a frame");
  });

  it("totals add up across frames", async () => {
    const meter = new Meter({ countKernels: fakeCounter, tensorBytes: () => 0 });
    const net = meter.wrap(fakeNet);
    for (let f = 0; f < 4; f++) {
      meter.beginFrame(f);
      for (let i = 0; i <= f; i++) {
        await net(input(), i, null);
        meter.onStep(3);
      }
      meter.endFrame();
    }
    const s = meter.summary();
    const sum = (pick: (fr: (typeof s.frames)[number]) => number) =>
      s.frames.reduce((a, fr) => a + pick(fr), 0);
    expect(s.totals.frames).toBe(4);
    expect(s.totals.steps).toBe(sum((fr) => fr.steps));
    expect(s.totals.nfe).toBe(sum((fr) => fr.nfe));
    expect(s.totals.flops).toBe(sum((fr) => fr.flops));
    expect(s.totals.wallMs).toBeCloseTo(
      sum((fr) => fr.wallMs),
      9,
    );
    expect(s.totals.nfe).toBe(10);
    expect(s.totals.flops).toBe(10 * 1000 + 10 * 3);
    // the pluggable counter's kernels: an uncounted one stays uncounted
    expect(s.uncounted).toEqual([{ name: "Mystery", count: 10, ms: 2.5 }]);
    expect(s.kernels.find((k) => k.name === "MatMul")).toMatchObject({ flopsPerNfe: 1000, counted: true });
  });

  it("rejects misuse with a clear message", async () => {
    const meter = new Meter({ countKernels: fakeCounter, tensorBytes: () => 0 });
    expect(() => meter.endFrame()).toThrow("meter: endFrame() without beginFrame()");
    meter.beginFrame(0);
    expect(() => meter.beginFrame(1)).toThrow("meter: beginFrame(1) while frame 0 is open");
    expect(() => meter.wrap(fakeNet, { nfePerCall: 0 })).toThrow(
      "meter: nfePerCall must be a positive integer, got 0",
    );
    const net = meter.wrap(fakeNet);
    await expect(Promise.all([net(input(), 0, null), net(input(), 1, null)])).rejects.toThrow(
      "meter: network calls overlapped",
    );
  });
});
