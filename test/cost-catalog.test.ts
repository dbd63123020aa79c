import { describe, expect, it } from "vitest";
import { formatGpus, gpusDocument } from "../src/cli/gpus.ts";
import { defaultMfu } from "../src/cost/calibration.ts";
import { chosenPrice, getGpu, mergeCatalog, requirePrice, shippedCatalog } from "../src/cost/catalog.ts";
import { UserError } from "../src/util/errors.ts";

const REFERENCE_IDS = ["h100-sxm", "h100-pcie", "h200", "a100-sxm", "l40s", "rtx-4090", "h20"];
const FIGURES = ["bf16DenseTflops", "fp32Tflops", "memoryBandwidthTBs", "memoryGB", "boardPowerW"] as const;

function newGpu(id: string) {
  const s = (value: number) => ({ value, source: "test sheet", asOf: "2026" });
  return {
    id,
    name: "Test GPU",
    bf16DenseTflops: s(100),
    fp32Tflops: s(10),
    memoryBandwidthTBs: s(1),
    memoryGB: s(32),
    boardPowerW: s(300),
    prices: [{ usdPerHour: 0.5, provider: "test", source: "test quote", asOf: "2026" }],
  };
}

describe("shipped catalog", () => {
  const cat = shippedCatalog();

  it("has the reference GPUs, every figure with a source and a date", () => {
    expect(cat.gpus.map((g) => g.id)).toEqual(expect.arrayContaining(REFERENCE_IDS));
    for (const g of cat.gpus) {
      for (const f of FIGURES) {
        expect(g[f].value, `${g.id}.${f}`).toBeGreaterThan(0);
        expect(g[f].source.length, `${g.id}.${f}.source`).toBeGreaterThan(0);
        expect(g[f].asOf.length, `${g.id}.${f}.asOf`).toBeGreaterThan(0);
      }
      for (const p of g.prices) {
        expect(p.source.length).toBeGreaterThan(0);
        expect(p.asOf.length).toBeGreaterThan(0);
      }
    }
  });

  it("holds the reference datasheet figures", () => {
    const h100 = getGpu(cat, "h100-sxm");
    expect([h100.bf16DenseTflops.value, h100.memoryBandwidthTBs.value, h100.boardPowerW.value]).toEqual([
      989, 3.35, 700,
    ]);
    expect(getGpu(cat, "rtx-4090").bf16DenseTflops.value).toBe(165);
    expect(getGpu(cat, "h20").memoryBandwidthTBs.value).toBe(4.0);
  });

  it("lists hosted APIs with sources", () => {
    expect(cat.hostedApis.map((a) => a.id)).toEqual(
      expect.arrayContaining(["sora-2", "veo-3", "runway-gen4-turbo", "luma"]),
    );
    for (const a of cat.hostedApis) expect(a.source.length).toBeGreaterThan(0);
  });

  it("prices at the lowest quote, or the override", () => {
    const h100 = getGpu(cat, "h100-sxm");
    expect(chosenPrice(h100)?.usdPerHour).toBe(2.69);
    expect(chosenPrice(h100, 1.5)).toEqual({ usdPerHour: 1.5, source: "--price (user)", asOf: "given" });
    expect(chosenPrice(getGpu(cat, "h20"))).toBeNull();
    expect(() => requirePrice(getGpu(cat, "h20"))).toThrow(
      "no rental price on record for h20; pass --price USD_PER_HOUR or add prices with --catalog FILE",
    );
  });

  it("names the known GPUs when an id is unknown", () => {
    expect(() => getGpu(cat, "b200")).toThrow(UserError);
    expect(() => getGpu(cat, "b200")).toThrow(
      'unknown GPU "b200"; known GPUs: h100-sxm, h100-pcie, h200, a100-sxm, l40s, rtx-4090, h20 (add your own with --catalog FILE)',
    );
  });

  it("derives each GPU's default MFU from published run times, within (0, 1)", () => {
    for (const g of cat.gpus) {
      const m = defaultMfu(cat, g);
      expect(m.value).toBeGreaterThan(0);
      expect(m.value).toBeLessThan(1);
      expect(m.source.length).toBeGreaterThan(0);
    }
    expect(defaultMfu(cat, getGpu(cat, "h200")).value).toBe(defaultMfu(cat, getGpu(cat, "h100-sxm")).value);
  });
});

describe("user catalog merge", () => {
  const base = shippedCatalog();

  it("adds a new GPU and replaces a known GPU's prices", () => {
    const merged = mergeCatalog(
      base,
      {
        gpus: [
          newGpu("my-gpu"),
          {
            id: "h100-sxm",
            prices: [{ usdPerHour: 1.99, provider: "me", source: "my contract", asOf: "2026-11" }],
          },
        ],
      },
      "catalog mine.json",
    );
    expect(getGpu(merged, "my-gpu").name).toBe("Test GPU");
    expect(chosenPrice(getGpu(merged, "h100-sxm"))?.usdPerHour).toBe(1.99);
    expect(getGpu(merged, "h100-sxm").bf16DenseTflops.value).toBe(989);
    // the shipped catalog is untouched
    expect(chosenPrice(getGpu(base, "h100-sxm"))?.usdPerHour).toBe(2.69);
  });

  it("a figure without a source is one line naming the field and the entry", () => {
    const g = newGpu("my-gpu") as Record<string, unknown>;
    g.memoryGB = { value: 32, asOf: "2026" };
    expect(() => mergeCatalog(base, { gpus: [g] }, "catalog mine.json")).toThrow(
      'catalog mine.json: gpus[0] ("my-gpu").memoryGB.source is missing; every figure needs a source and an asOf date',
    );
  });

  it("a negative price is one line naming the field, the entry and the value", () => {
    const g = newGpu("my-gpu");
    g.prices[0].usdPerHour = -1;
    expect(() => mergeCatalog(base, { gpus: [g] }, "catalog mine.json")).toThrow(
      'catalog mine.json: gpus[0] ("my-gpu").prices[0].usdPerHour must be >= 0, got -1',
    );
    expect(() =>
      mergeCatalog(
        base,
        { gpus: [{ id: "h100-sxm", prices: [{ usdPerHour: -2, provider: "x", source: "y", asOf: "z" }] }] },
        "c.json",
      ),
    ).toThrow('c.json: gpus[0] ("h100-sxm").prices[0].usdPerHour must be >= 0, got -2');
  });

  it("rejects unknown fields and a dangling mfuFrom", () => {
    expect(() => mergeCatalog(base, { gpus: [{ ...newGpu("x"), tflops: 3 }] }, "c.json")).toThrow(
      'c.json: gpus[0] ("x") has unknown field(s) "tflops"; remove them (fields: see src/cost/gpus.json)',
    );
    expect(() => mergeCatalog(base, { gpus: [{ ...newGpu("x"), mfuFrom: "nope" }] }, "c.json")).toThrow(
      'c.json: gpus ("x").mfuFrom names "nope", which is not in the catalog',
    );
  });
});

describe("framecost gpus", () => {
  const cat = shippedCatalog();
  it("--json carries every figure's source and each GPU's derived defaults", () => {
    const doc = gpusDocument(cat);
    const h100 = doc.gpus.find((g) => g.id === "h100-sxm")!;
    expect(h100.bf16DenseTflops.source.length).toBeGreaterThan(0);
    expect(h100.defaults.price?.usdPerHour).toBe(2.69);
    expect(h100.defaults.mfu.value).toBe(defaultMfu(cat, getGpu(cat, "h100-sxm")).value);
    expect(h100.defaults.sequenceParallel.serialFraction).toBeGreaterThan(0);
    expect(doc.hostedApis.find((a) => a.id === "veo-3")?.usdPerVideoMinute).toBeCloseTo(24, 12);
  });
  it("prints one row per GPU, a price or how to give one", () => {
    const text = formatGpus(cat);
    expect(text.split("\n")[0]).toMatch(
      /^id\s+BF16 TFLOPS\s+FP32 TFLOPS\s+TB\/s\s+GB\s+W\s+USD\/h \(lowest quote\)\s+MFU$/,
    );
    expect(text).toMatch(/\nh20 .* none \(--price\) /);
    expect(text).toMatch(/\nh100-sxm\s+989\s+67\s+3\.35\s+80\s+700\s+2\.69 RunPod\s+0\.349\n/);
  });
});
