import { describe, expect, it } from "vitest";
import { Meter, type RunInfo } from "../src/meter/meter.ts";
import { parseRunRecord, type RunRecord, serializeRunRecord } from "../src/meter/record.ts";
import { RuntimeFailure, UserError } from "../src/util/errors.ts";

const info: RunInfo = {
  complete: true,
  createdAt: "2025-06-01T12:00:00.000Z",
  backend: { name: "wasm", reason: "embedded default" },
  device: { cpuModel: "test cpu", cores: 2 },
  model: { name: "micro", params: 12345, flopsPerNfeAnalytic: 2000, config: { width: 32, depth: 2 } },
  sampler: { name: "heun", steps: 3, nfePerFrame: 5, schedule: "cosine", spacing: "trailing" },
  video: { frames: 2, fps: 24, width: 16, height: 16 },
  seed: 7,
  flopConvention: "flops",
  calibration: { gemmGflops: 20, backend: "wasm" },
};

async function sampleRecord(): Promise<RunRecord> {
  const meter = new Meter({
    countKernels: async (call) => ({
      result: await call(),
      kernels: [
        { name: "BatchMatMul", flops: 2000, bytes: 100, ms: 0.1 },
        { name: "TopK", flops: null, bytes: 10, ms: 0.05 },
      ],
      peakBytes: 4096,
    }),
    tensorBytes: () => 1024,
  });
  const net = meter.wrap<null>(async (x) => x);
  for (let f = 0; f < 2; f++) {
    meter.beginFrame(f);
    for (let s = 0; s < 3; s++) {
      await net(new Float32Array(4), s, null);
      if (s < 2) await net(new Float32Array(4), s, null);
      meter.onStep(12);
    }
    meter.endFrame();
  }
  return meter.toRecord(info);
}

describe("RunRecord", () => {
  it("round-trips through the schema: what the program writes it reads back unchanged", async () => {
    const rec = await sampleRecord();
    expect(rec.schemaVersion).toBe(1);
    expect(rec.totals).toMatchObject({ frames: 2, steps: 6, nfe: 10, calls: 10, flops: 10 * 2000 + 6 * 12 });
    expect(rec.model.flopsPerNfe).toBe(2000);
    expect(rec.uncounted).toEqual([{ name: "TopK", count: 10, ms: expect.closeTo(0.5, 9) }]);
    expect(rec.memory.peakTensorBytes).toBe(4096);
    expect(rec.throughput.utilization).toBeCloseTo(rec.throughput.gflops / 20, 12);
    const text = serializeRunRecord(rec);
    expect(parseRunRecord(text, "run.json")).toEqual(rec);
  });

  it("keeps sections that later stages add (cost, quality)", async () => {
    const rec = { ...(await sampleRecord()), cost: { usdPerVideoMinute: 1.5 }, quality: { psnr: 20 } };
    const back = parseRunRecord(JSON.stringify(rec), "run.json");
    expect(back.cost).toEqual({ usdPerVideoMinute: 1.5 });
    expect((back as Record<string, unknown>).quality).toEqual({ psnr: 20 });
  });

  it("not JSON: one UserError line", () => {
    expect(() => parseRunRecord("{oops", "run.json")).toThrow(UserError);
    expect(() => parseRunRecord("{oops", "run.json")).toThrow(
      /^run\.json: not valid JSON \(.+\); pass the run\.json/,
    );
    expect(() => parseRunRecord("[1,2]", "run.json")).toThrow(
      "run.json: expected a JSON object (a RunRecord), got an array; pass the run.json that `framecost generate` wrote",
    );
  });

  it("wrong or missing schemaVersion names the field and the version read", async () => {
    const rec = await sampleRecord();
    expect(() => parseRunRecord(JSON.stringify({ ...rec, schemaVersion: 2 }), "old.json")).toThrow(
      "old.json: field schemaVersion is 2, this framecost reads schemaVersion 1; regenerate the record with this version of framecost",
    );
    const { schemaVersion: _, ...noVersion } = rec;
    expect(() => parseRunRecord(JSON.stringify(noVersion), "x.json")).toThrow(
      "x.json: field schemaVersion is missing, this framecost reads schemaVersion 1",
    );
  });

  it("a schema failure names the first bad field and the value seen", async () => {
    const rec = await sampleRecord();
    const bad = structuredClone(rec) as unknown as {
      frames: { wallMs: unknown }[];
      totals: { nfe: unknown };
    };
    bad.frames[1].wallMs = "fast";
    bad.totals.nfe = -1;
    expect(() => parseRunRecord(JSON.stringify(bad), "run.json")).toThrow(
      /^run\.json: field frames\[1\]\.wallMs is invalid \(.*; value seen: "fast"\); this is not a RunRecord/,
    );
    const missing = structuredClone(rec) as unknown as { model: Record<string, unknown> };
    delete missing.model.name;
    expect(() => parseRunRecord(JSON.stringify(missing), "run.json")).toThrow(
      /^run\.json: field model\.name is invalid \(.*; value seen: missing\)/,
    );
    const conv = { ...rec, flopConvention: "gflops" };
    expect(() => parseRunRecord(JSON.stringify(conv), "r.json")).toThrow(/field flopConvention is invalid/);
  });

  it("refuses to write a record that would not read back (a bug, not a user mistake)", async () => {
    const rec = await sampleRecord();
    expect(() => serializeRunRecord({ ...rec, seed: 1.5 })).toThrow(RuntimeFailure);
    expect(() => serializeRunRecord({ ...rec, seed: 1.5 })).toThrow(
      "internal error: the run record to be written has field seed is invalid",
    );
  });
});
