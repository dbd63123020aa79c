import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Command } from "commander";
import { describe, expect, it, vi } from "vitest";
import { register } from "../src/cli/report.ts";
import { parseRunRecord, type RunRecord, serializeRunRecord } from "../src/meter/record.ts";
import { formatFlops, kernelsTable, renderReport, si, summaryTable } from "../src/report/tables.ts";
import { UserError } from "../src/util/errors.ts";

/** A fixed record: 2 frames of 3 Heun steps (5 NFE each) at 1e6 FLOPs per NFE. */
function fixture(): RunRecord {
  const frame = (index: number, wallMs: number) => ({
    index,
    wallMs,
    nfe: 5,
    calls: 5,
    steps: 3,
    flops: 5 * 1e6 + 300,
    samplerFlops: 300,
    stepWallMs: [wallMs / 3, wallMs / 3, wallMs / 3],
  });
  return parseRunRecord(
    JSON.stringify({
      schemaVersion: 1,
      complete: true,
      createdAt: "2025-06-01T12:00:00.000Z",
      backend: { name: "wasm", reason: "embedded default" },
      device: { cpuModel: "Test CPU", cores: 2 },
      model: {
        name: "micro",
        params: 123456,
        flopsPerNfe: 1e6,
        flopsPerNfeAnalytic: 1e6,
        config: { width: 32 },
      },
      sampler: { name: "heun", steps: 3, nfePerFrame: 5, schedule: "cosine", spacing: "trailing" },
      video: { frames: 2, fps: 24, width: 16, height: 16 },
      seed: 7,
      flopConvention: "flops",
      calibration: { gemmGflops: 20, backend: "wasm" },
      frames: [frame(0, 60), frame(1, 40)],
      nfeTiming: { warmupMs: 30, meanMs: 8, medianMs: 7.5, p90Ms: 9.5, count: 9 },
      kernels: [
        {
          name: "_FusedMatMul",
          countPerNfe: 4,
          flopsPerNfe: 900_000,
          bytesPerNfe: 40_000,
          msPerNfe: 5,
          counted: true,
        },
        {
          name: "Softmax",
          countPerNfe: 1,
          flopsPerNfe: 100_000,
          bytesPerNfe: 8000,
          msPerNfe: 1,
          counted: true,
        },
        {
          name: "Transpose",
          countPerNfe: 2,
          flopsPerNfe: 0,
          bytesPerNfe: 4000,
          msPerNfe: 1.5,
          counted: true,
        },
        { name: "TopK", countPerNfe: 1, flopsPerNfe: 0, bytesPerNfe: 400, msPerNfe: 0.5, counted: false },
      ],
      uncounted: [{ name: "TopK", count: 10, ms: 5 }],
      samplerFlops: 600,
      totals: { frames: 2, steps: 6, nfe: 10, calls: 10, flops: 10 * 1e6 + 600, wallMs: 100 },
      throughput: { gflops: 0.100006, utilization: 0.100006 / 20 },
      memory: { peakTensorBytes: 3 * 2 ** 20, peakRssBytes: 200 * 2 ** 20 },
    }),
    "fixture.json",
  );
}

describe("report tables", () => {
  it("formats counts with the unit next to the number", () => {
    expect(si(114_945_280)).toBe("114.9 M");
    expect(formatFlops(114_945_280, "flops")).toBe("114.9 MFLOPs");
    expect(formatFlops(114_945_280, "macs")).toBe("57.47 MMACs");
    expect(formatFlops(512, "flops")).toBe("512 FLOPs");
  });

  it("summary names the convention, the totals and the calibrated peak it divides by", () => {
    const text = summaryTable(fixture(), "flops");
    expect(text).toContain("1.000 MFLOPs counted, 1.000 MFLOPs analytic (counted/analytic 1.0000)");
    expect(text).toContain("6 steps, 10 NFE (10 network calls), 100 ms wall");
    expect(text).toContain("10.00 MFLOPs (network 10.00 MFLOPs, sampler 600 FLOPs)");
    expect(text).toContain(
      "0.10 GFLOP/s achieved = 0.5% of 20.00 GFLOP/s, the fp32 GEMM peak calibrated on wasm",
    );
    expect(text).toContain("peak tensors 3.0 MiB, peak process RSS 200.0 MiB");
    const macs = summaryTable(fixture(), "macs");
    expect(macs).toContain("MACs per NFE");
    expect(macs).toContain("500.0 kMACs counted");
    expect(macs).toContain("0.05 GMAC/s achieved = 0.5% of 10.00 GMAC/s");
  });

  it("kernel table: top-N by FLOPs, data movement marked, uncounted always listed as unknown", () => {
    const text = kernelsTable(fixture(), "flops", 1);
    const lines = text.split("\n");
    const fused = lines.find((l) => l.includes("_FusedMatMul"))!;
    expect(fused).toMatch(/900\.0 kFLOPs\s*│\s*90\.0%/);
    expect(fused).toContain("counted");
    const topk = lines.find((l) => l.includes("TopK"))!;
    expect(topk).toContain("unknown");
    expect(topk).toContain("UNCOUNTED: no rule");
    // Softmax and Transpose are summed into one row
    expect(text).toContain("2 more kernels");
    expect(kernelsTable(fixture(), "flops", 10)).toContain("data movement (0 by rule)");
  });

  it("the whole report has every section and the uncounted line", () => {
    const text = renderReport(fixture());
    expect(text).toContain(
      "Counts in FLOPs (PyTorch convention: 1 add or 1 multiply = 1, a multiply-accumulate = 2)",
    );
    expect(text).toContain("first call (warm-up, incl. kernel counting)");
    expect(text).toMatch(/per NFE, steady state\s*│\s*9\s*│\s*8\.0 ms\s*│\s*7\.5 ms\s*│\s*9\.5 ms/);
    expect(text).toMatch(/per frame\s*│\s*2\s*│\s*50\.0 ms\s*│\s*50\.0 ms\s*│\s*58\.0 ms/);
    expect(text).toContain(
      "uncounted kernels (no FLOP rule; their FLOPs are missing from the totals above): TopK x10 (5.0 ms)",
    );
  });
});

const run = promisify(execFile);

/** The report command in this process, its stdout captured. */
async function report(...args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  register(program);
  const spy = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
  try {
    await program.parseAsync(["node", "framecost", "report", ...args]);
    return spy.mock.calls.map((c) => String(c[0])).join("");
  } finally {
    spy.mockRestore();
  }
}

describe("framecost report", () => {
  const dir = mkdtempSync(join(tmpdir(), "framecost-report-"));
  const good = join(dir, "run.json");
  writeFileSync(good, serializeRunRecord(fixture()));
  const bad = join(dir, "bad.json");
  const rec = JSON.parse(serializeRunRecord(fixture()));
  rec.totals.nfe = "ten";
  writeFileSync(bad, JSON.stringify(rec));

  it("prints the tables for a valid record, in the convention asked for", async () => {
    const out = await report(good, "--convention", "macs", "--top", "2");
    expect(out).toContain("Counts in MACs");
    expect(out).toContain("UNCOUNTED: no rule");
    expect(out).toContain("1 more kernel ");
  });

  it("bad input: a UserError naming the file and the first bad field", async () => {
    await expect(report(bad)).rejects.toThrow(UserError);
    await expect(report(bad)).rejects.toThrow(`${bad}: field totals.nfe is invalid`);
    const notJson = join(dir, "broken.json");
    writeFileSync(notJson, "{");
    await expect(report(notJson)).rejects.toThrow(`${notJson}: not valid JSON`);
    await expect(report(join(dir, "missing.json"))).rejects.toThrow(
      "missing.json: cannot read (no such file); pass the run.json that `framecost generate` wrote",
    );
    await expect(report(good, "--convention", "gflops")).rejects.toThrow(
      '--convention must be one of flops, macs, got "gflops"',
    );
  });

  it("the program prints that one line and exits 2", async () => {
    const r = await run("node_modules/.bin/tsx", ["src/cli/main.ts", "report", bad]).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(`framecost: ${bad}: field totals.nfe is invalid`);
    expect(r.stderr).toContain('value seen: "ten"');
  });
});
