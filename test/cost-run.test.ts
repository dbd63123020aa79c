import { describe, expect, it } from "vitest";
import { defaultMfu } from "../src/cost/calibration.ts";
import { getGpu, shippedCatalog } from "../src/cost/catalog.ts";
import {
  DEFAULT_SUMMARY_GPUS,
  extrapolateRun,
  formatRunCostSummary,
  localCost,
  type MeteredRun,
  summarizeRunCost,
} from "../src/cost/run.ts";
import { usdFromCost } from "../src/report/records.ts";

const cat = shippedCatalog();

/** A small metered run built by hand (not a measurement): 10 frames, 20 NFEs each, 4 kernels. */
function run(): MeteredRun {
  return {
    totals: { frames: 10, steps: 200, nfe: 200, calls: 200, flops: 200 * 2.2e9, wallMs: 36_000 },
    video: { frames: 10, fps: 24, width: 32, height: 32 },
    kernels: [
      // big GEMM: 2e9 FLOPs over 4e6 bytes -> compute-bound on every catalog GPU
      {
        name: "_FusedMatMul",
        countPerNfe: 10,
        flopsPerNfe: 2e9,
        bytesPerNfe: 4e6,
        msPerNfe: 100,
        counted: true,
      },
      // elementwise: few FLOPs, many bytes -> memory-bound
      { name: "Add", countPerNfe: 4, flopsPerNfe: 2e5, bytesPerNfe: 4e8, msPerNfe: 50, counted: true },
      { name: "Reshape", countPerNfe: 6, flopsPerNfe: 0, bytesPerNfe: 0, msPerNfe: 1, counted: true },
      { name: "Erf", countPerNfe: 2, flopsPerNfe: 0, bytesPerNfe: 1e5, msPerNfe: 49, counted: false },
    ],
    model: { name: "tiny", params: 1_300_000, flopsPerNfe: 2.2e9, flopsPerNfeAnalytic: null, config: {} },
    sampler: { name: "ddim", steps: 20, nfePerFrame: 20, schedule: "cosine", spacing: "trailing" },
    flopConvention: "flops",
  };
}

describe("local cost of a metered run", () => {
  it("prices the wall clock: 36 s for 10 frames at 24 fps, at $0.10/h", () => {
    const l = localCost(run(), { localUsdPerHour: 0.1 })!;
    expect(l.basis).toBe("price");
    // a video minute is 1440 frames = 144 runs of 10 frames
    expect(l.runsPerVideoMinute).toBe(144);
    expect(l.usdPerVideoMinute).toBeCloseTo((36 / 3600) * 0.1 * 144, 12);
    expect(l.energy).toBeNull();
  });

  it("prices energy, and both added, and says which", () => {
    const e = localCost(run(), { watts: 65, kwhPriceUsd: 0.3 })!;
    expect(e.basis).toBe("energy");
    expect(e.energy!.whPerVideoMinute).toBeCloseTo(((65 * 36) / 3600) * 144, 9);
    expect(e.usdPerVideoMinute).toBeCloseTo((e.energy!.whPerVideoMinute / 1000) * 0.3, 12);
    const both = localCost(run(), { localUsdPerHour: 0.1, watts: 65, kwhPriceUsd: 0.3 })!;
    expect(both.basis).toBe("price+energy");
    expect(both.usdPerVideoMinute).toBeCloseTo(
      both.price!.usdPerVideoMinute + both.energy!.usdPerVideoMinute,
      12,
    );
  });

  it("is null without a price, and energy needs both flags", () => {
    expect(localCost(run(), {})).toBeNull();
    expect(() => localCost(run(), { watts: 65 })).toThrow(
      "--watts needs --kwh-price USD (price of a kWh) to price energy",
    );
    expect(() => localCost(run(), { kwhPriceUsd: 0.3 })).toThrow(
      "--kwh-price needs --watts (the machine's draw while generating) to price energy",
    );
  });
});

describe("roofline extrapolation to a catalog GPU", () => {
  const gpu = getGpu(cat, "h100-sxm");
  const x = extrapolateRun(run(), { gpu, catalog: cat, launchUs: 5 });
  const mfu = defaultMfu(cat, gpu).value;

  it("classifies kernels as compute- or memory-bound", () => {
    const by = Object.fromEntries(x.kernels.map((k) => [k.name, k]));
    expect(by._FusedMatMul.bound).toBe("compute");
    expect(by.Add.bound).toBe("memory");
    expect(by.Reshape.bound).toBe("none");
    // views move no data and launch nothing on a GPU
    expect(by.Reshape.launchMs).toBe(0);
  });

  it("time per kernel = max(FLOPs / (peak x MFU), bytes / bandwidth) + launches x overhead", () => {
    const mm = x.kernels.find((k) => k.name === "_FusedMatMul")!;
    expect(mm.computeMs).toBeCloseTo((2e9 / (989e12 * mfu)) * 1000, 12);
    // bf16 moves half the metered fp32 bytes
    expect(mm.memoryMs).toBeCloseTo((2e6 / 3.35e12) * 1000, 12);
    expect(mm.launchMs).toBeCloseTo(0.05, 12);
    expect(mm.ms).toBeCloseTo(mm.computeMs + mm.launchMs, 12);
    const add = x.kernels.find((k) => k.name === "Add")!;
    expect(add.ms).toBeCloseTo(add.memoryMs + 0.02, 12);
  });

  it("sums per NFE, then per frame and per video minute", () => {
    expect(x.msPerNfe).toBeCloseTo(
      x.kernels.reduce((a, k) => a + k.ms, 0),
      12,
    );
    expect(x.nfePerFrame).toBe(20);
    expect(x.msPerFrame).toBeCloseTo(20 * x.msPerNfe, 12);
    expect(x.gpuSecondsPerVideoMinute).toBeCloseTo((x.msPerFrame / 1000) * 24 * 60, 12);
    expect(x.usdPerVideoMinute).toBeCloseTo((x.gpuSecondsPerVideoMinute / 3600) * 2.69, 12);
    expect(x.share.compute + x.share.memory + x.share.launch).toBeCloseTo(1, 12);
  });

  it("lists kernels without a FLOP rule instead of dropping them", () => {
    expect(x.uncounted).toEqual([{ name: "Erf", localMsPerNfe: 49 }]);
    expect(x.uncountedLocalShare).toBeCloseTo(49 / 200, 12);
  });

  it("uses fp32 peaks and bytes when asked, and the user's MFU and price", () => {
    const f = extrapolateRun(run(), { gpu, catalog: cat, precision: "fp32", mfu: 0.5, priceUsdPerHour: 1 });
    const mm = f.kernels.find((k) => k.name === "_FusedMatMul")!;
    expect(mm.computeMs).toBeCloseTo((2e9 / (67e12 * 0.5)) * 1000, 12);
    expect(mm.memoryMs).toBeCloseTo((4e6 / 3.35e12) * 1000, 12);
    expect(f.price).toEqual({ usdPerHour: 1, source: "--price (user)", asOf: "given" });
  });
});

describe("the summary generate ends with", () => {
  const s = summarizeRunCost(run(), { localUsdPerHour: 0.1 });

  it("prices the run locally and on H100, A100, L40S, RTX 4090, with hosted APIs beside", () => {
    expect(s.gpus.map((g) => g.id)).toEqual([...DEFAULT_SUMMARY_GPUS]);
    expect(s.local?.basis).toBe("price");
    expect(s.hosted.find((h) => h.id === "sora-2")?.usdPerVideoMinute).toBeCloseTo(6, 12);
    const lines = formatRunCostSummary(s);
    expect(lines[0]).toBe("USD per minute of video (a minute = fps x 60 frames):");
    expect(lines.some((l) => l.startsWith("  this machine"))).toBe(true);
    for (const id of DEFAULT_SUMMARY_GPUS) expect(lines.some((l) => l.includes(id))).toBe(true);
    expect(lines[lines.length - 1]).toMatch(
      /^ {2}hosted APIs \(list price, 2025\): OpenAI Sora 2 \(API\) \$6\.00/,
    );
  });

  it("fills a cost section the report stage reads", () => {
    const read = usdFromCost(s.costSection);
    expect(read.local).toBeCloseTo(s.local!.usdPerVideoMinute, 12);
    for (const id of DEFAULT_SUMMARY_GPUS) expect(read[id]).toBeGreaterThan(0);
  });

  it("says when this machine is not priced", () => {
    const lines = formatRunCostSummary(summarizeRunCost(run()));
    expect(lines[1]).toBe(
      "  this machine        not priced (pass --local-price USD_PER_HOUR, or --watts W with --kwh-price USD)",
    );
  });
});
