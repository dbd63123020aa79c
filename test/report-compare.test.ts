import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { register } from "../src/cli/compare.ts";
import {
  compare,
  compareRuns,
  compareSweeps,
  formatComparison,
  loadRecordFile,
} from "../src/report/compare.ts";
import { buildSweepRecord } from "../src/report/sweep.ts";
import {
  fixtureCellMachine,
  syntheticMachine,
  syntheticRunRecord,
  syntheticSweep,
} from "./fixtures/report-fixtures.ts";

const TSX = join(process.cwd(), "node_modules", ".bin", "tsx");

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "framecost-report-compare-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function put(name: string, data: unknown): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, typeof data === "string" ? data : JSON.stringify(data));
  return p;
}

const byFigure = (rows: Array<{ figure: string; ratio: number | null }>) =>
  Object.fromEntries(rows.map((r) => [r.figure, r.ratio]));

describe("compare two runs", () => {
  // Same sampler, steps and frames, so both share the fixture's wobble: ratios follow the formula a + b x NFE.
  const A = syntheticRunRecord({ sampler: "ddim", steps: 4, aMs: 40, bMsPerNfe: 12, backend: "wasm" });
  const B = syntheticRunRecord({
    sampler: "ddim",
    steps: 4,
    aMs: 40,
    bMsPerNfe: 6,
    backend: "onnx",
    gemmGflops: 120,
  });

  it("gives B/A for the key figures", () => {
    const c = compareRuns({ path: "a.json", record: A }, { path: "b.json", record: B });
    const r = byFigure(c.rows);
    expect(r["wall ms per frame"]).toBeCloseTo((40 + 6 * 4) / (40 + 12 * 4), 12);
    expect(r["frames per second"]).toBeCloseTo((40 + 12 * 4) / (40 + 6 * 4), 12);
    expect(r["wall ms per NFE"]).toBeCloseTo((40 + 6 * 4) / (40 + 12 * 4), 12);
    expect(r["NFE per frame"]).toBe(1);
    expect(r["FLOPs per NFE"]).toBe(1);
    expect(r["achieved GFLOP/s"]).toBeCloseTo((40 + 12 * 4) / (40 + 6 * 4), 12);
    expect(r["calibrated GEMM peak, GFLOP/s"]).toBe(5);
    expect(r["utilization of the GEMM peak"]).toBeCloseTo((40 + 12 * 4) / (40 + 6 * 4) / 5, 12);
    expect(c.context[0]).toEqual({ label: "backend", a: "wasm", b: "onnx" });
    expect(c.notes).toEqual(["counts in FLOPs (1 multiply-add = 2)"]);
  });

  it("counts in MACs when asked, with the same ratios", () => {
    const c = compareRuns({ path: "a", record: A }, { path: "b", record: B }, { convention: "macs" });
    const row = c.rows.find((x) => x.figure === "MACs per NFE")!;
    expect(row).toEqual({ figure: "MACs per NFE", a: 1.3e8, b: 1.3e8, ratio: 1 });
    expect(c.rows.find((x) => x.figure === "achieved GMAC/s")!.a).toBeCloseTo(A.throughput.gflops / 2, 12);
  });

  it("adds USD per video-minute and quality where a record has them, '-' where the other lacks them", () => {
    const a = syntheticRunRecord({
      sampler: "ddim",
      steps: 4,
      usdPerVideoMinute: { local: 0.002, "h100-sxm": 0.0004 },
    });
    const b = syntheticRunRecord({
      sampler: "heun",
      steps: 4,
      usdPerVideoMinute: { local: 0.003 },
      quality: { swdPatches: 0.1 },
    });
    const c = compareRuns({ path: "a", record: a }, { path: "b", record: b });
    expect(c.rows.slice(-3)).toEqual([
      { figure: "USD per video-minute, this machine", a: 0.002, b: 0.003, ratio: 1.5 },
      { figure: "USD per video-minute, h100-sxm (extrapolated)", a: 0.0004, b: null, ratio: null },
      { figure: "sliced Wasserstein distance on patches (lower is better)", a: null, b: 0.1, ratio: null },
    ]);
    expect(formatComparison(c)).toMatch(/^USD per video-minute, h100-sxm \(extrapolated\) +0\.0004 +- +-$/m);
    expect(formatComparison(c)).toMatch(/^FLOPs per NFE +260 M +260 M +1x$/m);
  });

  it("reads the cost stage's LocalCost and Extrapolation shapes", () => {
    const a = syntheticRunRecord({ sampler: "ddim", steps: 4 });
    a.cost = {
      local: { usdPerVideoMinute: 0.01 },
      extrapolations: [
        { gpu: { id: "h100-sxm", name: "H100" }, usdPerVideoMinute: 0.002 },
        { gpu: { id: "x" }, usdPerVideoMinute: null },
      ],
    };
    const c = compareRuns({ path: "a", record: a }, { path: "b", record: a });
    expect(byFigure(c.rows)).toMatchObject({
      "USD per video-minute, this machine": 1,
      "USD per video-minute, h100-sxm (extrapolated)": 1,
    });
  });
});

describe("compare two sweeps", () => {
  it("matches cells by sampler and steps and lists the rest", () => {
    const a = syntheticSweep({ samplers: ["ddim", "heun"], steps: [1, 2, 4] });
    const slow = syntheticSweep({ samplers: ["ddim"], steps: [2, 4, 8] });
    const b = buildSweepRecord({
      grid: slow.grid,
      cells: slow.cells.map((c) => ({ ...c, wallMsPerFrame: c.wallMsPerFrame * 2 })),
    });
    const c = compareSweeps({ path: "a", sweep: a }, { path: "b", sweep: b });
    expect(c.cells.map((x) => `${x.sampler}/${x.steps}`)).toEqual(["ddim/2", "ddim/4"]);
    for (const x of c.cells) {
      expect(x.wallMsPerFrame.ratio).toBeCloseTo(2, 12);
      expect(x.quality!.ratio).toBe(1);
    }
    expect(c.onlyInA).toEqual(["ddim/1", "heun/1", "heun/2", "heun/4"]);
    expect(c.onlyInB).toEqual(["ddim/8"]);
    expect(c.fits.map((f) => f.figure)).toEqual(["ddim: a, ms per frame", "ddim: b, ms per NFE", "ddim: R²"]);
    expect(c.priceKey).toBe("local");
    expect(c.metric).toBe("swdPatches");
    const text = formatComparison(c);
    expect(text).toContain("only in B: ddim/8");
    const lines = text.split("\n");
    // context: machine, backend, samplers, steps, cells
    expect(lines.slice(3, 6)).toEqual([
      "          A                                  B",
      "machine   Fixture CPU (synthetic) (2 cores)  not recorded",
      "backend   not recorded                       not recorded",
    ]);
    expect(lines.slice(10, 15)).toEqual([
      "fit: wall ms per frame = a + b × NFE",
      "                          A      B    B/A",
      "ddim: a, ms per frame  39.4   82.5   2.1x",
      "ddim: b, ms per NFE    12.5     23  1.84x",
      "ddim: R²               0.99  0.995     1x",
    ]);
    expect(lines.slice(16, 19)).toEqual([
      "sampler  steps  NFE A  NFE B  wall ms/frame A    B  B/A  USD/video-min (local) A        B  B/A  swdPatches A      B  B/A",
      "ddim         2      2      2             62.3  125   2x                  0.00125  0.00125   1x         0.443  0.443   1x",
      "ddim         4      4      4             90.3  181   2x                  0.00181  0.00181   1x         0.314  0.314   1x",
    ]);
  });

  it("puts the machines side by side: CPU, backend, GEMM peak, frames/s and utilization, on the cells both ran", () => {
    const grid = { samplers: ["ddim", "heun"], steps: [1, 2, 4, 8] };
    const laptop = fixtureCellMachine({
      cpu: "Fixture laptop CPU",
      cores: 2,
      backend: "wasm",
      gemmGflops: 24,
    });
    const server = fixtureCellMachine({
      cpu: "Fixture server CPU",
      cores: 16,
      backend: "onnx",
      gemmGflops: 120,
    });
    const a = syntheticSweep({
      ...grid,
      machineFor: () => laptop,
      machine: syntheticMachine({ model: "Fixture laptop CPU", cores: 2 }),
    });
    // B: every cell 4x faster on the server, plus a cell A lacks (not in the throughput ratio)
    const b = syntheticSweep({
      samplers: grid.samplers,
      steps: [...grid.steps, 16],
      machineFor: () => server,
      speed: () => 0.25,
      machine: syntheticMachine({ model: "Fixture server CPU", cores: 16 }),
    });
    const c = compareSweeps({ path: "a", sweep: a }, { path: "b", sweep: b });
    expect(c.context.slice(0, 2)).toEqual([
      { label: "machine", a: "Fixture laptop CPU (2 cores)", b: "Fixture server CPU (16 cores)" },
      { label: "backend", a: "wasm", b: "onnx" },
    ]);
    expect(c.machines.a.map((m) => [m.label, m.cells, m.gemmGflops])).toEqual([
      ["Fixture laptop CPU (2 cores), wasm", 8, 24],
    ]);
    expect(c.machines.b.map((m) => [m.label, m.cells, m.gemmGflops])).toEqual([
      ["Fixture server CPU (16 cores), onnx", 10, 120],
    ]);
    // the same 8 cells: 4x the frames/s and GFLOP/s on a 5x peak, so 0.8x the utilization
    const r = byFigure(c.throughput);
    expect(r["frames per second"]).toBeCloseTo(4, 12);
    expect(r["achieved GFLOP/s"]).toBeCloseTo(4, 12);
    expect(r["calibrated GEMM peak, GFLOP/s (median of cells)"]).toBe(5);
    expect(r["utilization of the GEMM peak"]).toBeCloseTo(0.8, 12);
    // frames/s is frames over wall time: 8 frames per cell at wallMsPerFrame each
    const ms = a.cells.reduce((t, x) => t + x.wallMsPerFrame * 8, 0);
    expect(c.throughput[0].a).toBeCloseTo((8 * 8 * 1000) / ms, 9);
    const text = formatComparison(c);
    expect(text).toMatch(
      /^machines \(each over its own cells\)\n +machine +cells +GEMM peak GFLOP\/s +frames\/s +GFLOP\/s +utilization\nA +Fixture laptop CPU \(2 cores\), wasm +8 +24 +[\d.]+ +[\d.]+ +[\d.]+%\nB +Fixture server CPU \(16 cores\), onnx +10 +120 /m,
    );
    expect(text).toMatch(/^throughput over the 8 cells in both$/m);
    expect(text).toMatch(/^utilization of the GEMM peak +[\d.]+ +[\d.]+ +0\.8x$/m);
  });

  it("lists every machine of a merged sweep, each over its own cells", () => {
    const m1 = fixtureCellMachine({ cpu: "Fixture CPU one", backend: "wasm", gemmGflops: 20 });
    const m2 = fixtureCellMachine({ cpu: "Fixture CPU two", cores: 4, backend: "onnx", gemmGflops: 60 });
    const merged = syntheticSweep({
      samplers: ["ddim", "heun"],
      steps: [1, 2, 4],
      machineFor: (sampler) => (sampler === "ddim" ? m1 : m2),
      speed: (sampler) => (sampler === "ddim" ? 1 : 0.5),
      machine: null,
    });
    const one = syntheticSweep({ samplers: ["ddim", "heun"], steps: [1, 2, 4], machineFor: () => m1 });
    const c = compareSweeps({ path: "one", sweep: one }, { path: "merged", sweep: merged });
    expect(c.context[0]).toEqual({
      label: "machine",
      a: "Fixture CPU one (2 cores)",
      b: "Fixture CPU one (2 cores); Fixture CPU two (4 cores)",
    });
    expect(c.context[1]).toEqual({ label: "backend", a: "wasm", b: "wasm, onnx" });
    expect(c.machines.b.map((m) => [m.label, m.cells])).toEqual([
      ["Fixture CPU one (2 cores), wasm", 3],
      ["Fixture CPU two (4 cores), onnx", 3],
    ]);
    // median of 3 peaks of 20 and 3 of 60
    expect(c.throughput.find((x) => x.figure.startsWith("calibrated"))!.b).toBe(40);
  });

  it("refuses a price or metric one sweep lacks, naming what both have", () => {
    const a = syntheticSweep({ samplers: ["ddim"], steps: [1, 2] });
    expect(() =>
      compareSweeps({ path: "a", sweep: a }, { path: "b", sweep: a }, { priceKey: "a100" }),
    ).toThrow("--price a100 is not priced in both sweeps; both have: local, h100-sxm, rtx-4090");
    expect(() => compareSweeps({ path: "a", sweep: a }, { path: "b", sweep: a }, { metric: "fid" })).toThrow(
      "--metric fid is not measured in both sweeps; both have: swdPixels, swdPatches, paletteError",
    );
  });
});

describe("reading the files", () => {
  it("tells runs from sweeps", async () => {
    const run = await put("run.json", syntheticRunRecord({ sampler: "ddim", steps: 2 }));
    const sweep = await put("sweep.json", syntheticSweep({ samplers: ["ddim"], steps: [1, 2] }));
    expect((await loadRecordFile(run)).kind).toBe("run");
    expect((await loadRecordFile(sweep)).kind).toBe("sweep");
    await expect(
      (async () => compare(await loadRecordFile(run), await loadRecordFile(sweep)))(),
    ).rejects.toThrow(
      `cannot compare ${run} (a run record) with ${sweep} (a sweep record): give two run records or two sweep records`,
    );
  });

  it("names the file and the problem in one line", async () => {
    const missing = join(dir, "nope.json");
    await expect(loadRecordFile(missing)).rejects.toThrow(
      `${missing}: cannot read (no such file); pass a run.json or sweep.json that framecost wrote`,
    );
    const bad = await put("bad.json", "{ not json");
    await expect(loadRecordFile(bad)).rejects.toThrow(new RegExp(`^${bad}: not valid JSON \\(`));
    const oldRun = await put("old.json", {
      ...syntheticRunRecord({ sampler: "ddim", steps: 2 }),
      schemaVersion: 0,
    });
    await expect(loadRecordFile(oldRun)).rejects.toThrow(
      `${oldRun}: field schemaVersion is 0, this framecost reads schemaVersion 1; regenerate the record with this version of framecost`,
    );
    const s = syntheticSweep({ samplers: ["ddim"], steps: [1, 2] }) as unknown as {
      cells: Array<{ wallMsPerFrame: unknown }>;
    };
    s.cells[1].wallMsPerFrame = "fast";
    const badSweep = await put("bad-sweep.json", s);
    await expect(loadRecordFile(badSweep)).rejects.toThrow(
      `${badSweep}: field cells[1].wallMsPerFrame is invalid (Invalid input: expected number, received string; value seen: "fast"); ` +
        "this is not a sweep record that framecost wrote: rerun `framecost sweep`",
    );
  });
});

describe("framecost compare (end to end)", () => {
  function framecost(args: string[]) {
    const r = spawnSync(TSX, ["src/cli/main.ts", ...args], {
      encoding: "utf8",
      env: { ...process.env, FRAMECOST_DEBUG: "" },
      timeout: 110_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it("prints the side-by-side table (in process: spawning the whole CLI twice is slow on a loaded machine)", async () => {
    const a = await put("cli-a.json", syntheticRunRecord({ sampler: "ddim", steps: 4, backend: "wasm" }));
    const b = await put(
      "cli-b.json",
      syntheticRunRecord({ sampler: "ddim", steps: 4, backend: "onnx", bMsPerNfe: 6 }),
    );
    const program = new Command().exitOverride();
    register(program);
    const written: string[] = [];
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    try {
      await program.parseAsync(["compare", a, b], { from: "user" });
    } finally {
      spy.mockRestore();
    }
    const out = written.join("");
    expect(out).toContain(`A: ${a}\nB: ${b}\n`);
    expect(out).toMatch(/^backend {2,}wasm {2,}onnx$/m);
    expect(out).toMatch(/^wall ms per frame +\d+(\.\d+)? +\d+(\.\d+)? +0\.727x$/m);
  });

  it("exits 2 with one line naming the bad file", async () => {
    const a = await put("cli-ok.json", syntheticRunRecord({ sampler: "ddim", steps: 2 }));
    const bad = await put("cli-bad.json", "[1,2]");
    const r = framecost(["compare", a, bad]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      `framecost: ${bad}: expected a JSON object (a RunRecord), got an array; pass the run.json that \`framecost generate\` wrote\n`,
    );
  });
});
