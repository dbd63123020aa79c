import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "../src/engine/backend.ts";
import { Meter } from "../src/meter/meter.ts";
import { countOnnxGraph, foldOrtProfile, onnxKernelCounter } from "../src/meter/onnx-flops.ts";
import { PRESETS, presetNames } from "../src/model/config.ts";
import { prepareInputs, VideoDiT } from "../src/model/dit.ts";
import { exportDiTOnnx, OnnxDiT } from "../src/model/onnx-export.ts";
import { initParams } from "../src/model/params.ts";
import { Rng } from "../src/util/rng.ts";

/** initParams plus noise on every weight: adaLN and the final layer start at zero, which would make the output 0. */
function perturbedWeights(name: string, seed: number): Float32Array {
  const flat = initParams(PRESETS[name], seed);
  const rng = new Rng(seed + 1);
  for (let i = 0; i < flat.length; i++) flat[i] += 0.05 * rng.normal();
  return flat;
}

function maxAbs(a: Float32Array, b?: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - (b ? b[i] : 0)));
  return m;
}

beforeAll(async () => {
  await initBackend("wasm");
});

describe("exportDiTOnnx + OnnxDiT", () => {
  const opened: OnnxDiT[] = [];
  afterAll(async () => {
    for (const d of opened) await d.dispose();
  });

  it.each(presetNames())(
    "%s: ONNX output equals tfjs output within 1e-4 (batch 2, one context frame missing)",
    async (name) => {
      const cfg = PRESETS[name];
      const flat = perturbedWeights(name, 11);
      const B = 2;
      const frame = cfg.imageSize * cfg.imageSize * cfg.channels;
      const rng = new Rng(5);
      const x = rng.normals(B * frame);
      const context = rng.normals(B * cfg.contextFrames * frame);
      const mask = Array.from({ length: B * cfg.contextFrames }, (_, i) => (i === 1 ? 0 : 1));
      const t = [37.5, 912];

      const tfModel = new VideoDiT(cfg, flat);
      const expected = await tfModel.predict(x, t, context, mask);
      tfModel.dispose();
      const onnx = await OnnxDiT.create(cfg, flat, { threads: 1, batches: [B] });
      opened.push(onnx);
      const got = await onnx.predict(x, t, context, mask);

      expect(got.length).toBe(expected.length);
      expect(maxAbs(expected)).toBeGreaterThan(0.1); // the comparison is not between two zero outputs
      expect(maxAbs(got, expected)).toBeLessThan(1e-4);
    },
    120_000,
  );

  it("builds a batch it has not seen on first use, and the same weights give the same key", async () => {
    const cfg = PRESETS.micro;
    const flat = perturbedWeights("micro", 3);
    const onnx = await OnnxDiT.create(cfg, flat, { threads: 1 });
    opened.push(onnx);
    const frame = cfg.imageSize * cfg.imageSize * cfg.channels;
    const rng = new Rng(9);
    const x = rng.normals(3 * frame);
    const y3 = await onnx.predict(x, [10, 20, 30], null, null);
    const y1 = await onnx.predict(x.subarray(frame, 2 * frame), [20], null, null);
    // frames in a batch do not interact: frame 1 of the batch equals the same frame alone
    expect(maxAbs(y3.subarray(frame, 2 * frame), y1)).toBeLessThan(1e-5);
    expect((await onnx.graph(3)).batch).toBe(3);
    expect(exportDiTOnnx(cfg, flat, 3).key).toBe((await onnx.graph(3)).key);
    expect(exportDiTOnnx(cfg, perturbedWeights("micro", 4), 3).key).not.toBe((await onnx.graph(3)).key);
  });

  it("pins the exported tiny graph: 290 nodes, every op type has a FLOP rule", () => {
    const g = exportDiTOnnx(PRESETS.tiny, initParams(PRESETS.tiny, 1), 1);
    expect(g.nodes.length).toBe(290);
    const count = countOnnxGraph(g.nodes);
    expect(count.uncounted).toEqual([]);
    expect(count.flops).toBe(114_871_552);
    expect(Object.keys(count.byOpType).sort()).toEqual([
      "Add",
      "Div",
      "MatMul",
      "Mul",
      "Pow",
      "ReduceMean",
      "Reshape",
      "Sigmoid",
      "Softmax",
      "Split",
      "Sqrt",
      "Sub",
      "Transpose",
    ]);
  });

  it("rejects weights of another config", () => {
    expect(() => exportDiTOnnx(PRESETS.tiny, initParams(PRESETS.micro, 1))).toThrow(
      /exportDiTOnnx: \d+ weights for a "tiny" model with \d+/,
    );
  });

  it("ORT's profile folds onto every graph node, and the meter counts the graph's FLOPs per call", async () => {
    const cfg = PRESETS.micro;
    const onnx = await OnnxDiT.create(cfg, perturbedWeights("micro", 2), { threads: 1 });
    opened.push(onnx);
    const frame = cfg.imageSize * cfg.imageSize * cfg.channels;
    const rng = new Rng(4);
    const x = rng.normals(frame);
    const inputs = prepareInputs(cfg, 1, x, null, null, [500]);
    const { nodes } = await onnx.graph(1);
    const graphFlops = countOnnxGraph(nodes).flops;

    const folded = foldOrtProfile(nodes, await onnx.profile(inputs, 2));
    const covered = folded.flatMap((k) => k.graphNodes).sort();
    expect(covered).toEqual(nodes.map((n) => n.name).sort());
    expect(folded.reduce((s, k) => s + (k.flops ?? 0), 0)).toBe(graphFlops);
    for (const k of folded) expect(k.calls).toBe(2); // the warm-up run is left out

    for (const profile of [false, true]) {
      const meter = new Meter({ countKernels: onnxKernelCounter(onnx, { profile, profileRuns: 1 }) });
      const net = meter.wrap(async (xt: Float32Array, t: number) => onnx.predict(xt, [t], null, null));
      await net(x, 500, null);
      await net(x, 400, null);
      const s = meter.summary();
      expect(s.flopsPerNfe).toBe(graphFlops);
      expect(s.totals.nfe).toBe(2);
      expect(s.uncounted).toEqual([]);
    }
  });
});
