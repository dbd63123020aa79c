import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { getGpu, shippedCatalog } from "../src/cost/catalog.ts";
import { modelShape } from "../src/cost/models.ts";
import { evaluateScenario } from "../src/cost/scenarios.ts";

// tsx directly, not npx: npm prints its own warnings on stderr
const TSX = join(process.cwd(), "node_modules", ".bin", "tsx");
const tmp = mkdtempSync(join(tmpdir(), "framecost-cost-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function framecost(args: string[]) {
  const r = spawnSync(TSX, ["src/cli/main.ts", ...args], {
    encoding: "utf8",
    env: { ...process.env, FRAMECOST_DEBUG: "" },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("framecost cost / gpus / path (end to end)", () => {
  it("cost --json emits the scenario's figures", () => {
    const r = framecost(
      "cost --model wan2.1-14b --width 1280 --height 720 --frames 81 --steps 50 --cfg --gpu h100-sxm --json".split(
        " ",
      ),
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    const cat = shippedCatalog();
    const s = evaluateScenario({
      shape: modelShape("wan2.1-14b"),
      clip: { width: 1280, height: 720, frames: 81 },
      fps: 16,
      steps: 50,
      cfg: true,
      gpu: getGpu(cat, "h100-sxm"),
      catalog: cat,
    });
    for (const k of [
      "flopsPerNfe",
      "nfe",
      "totalFlops",
      "gpuSeconds",
      "usdPerClip",
      "usdPerVideoMinute",
    ] as const) {
      expect(j[k], k).toBe(s[k]);
    }
    expect(j.assumptions.length).toBeGreaterThan(0);
    expect(j.convention).toBe("flops");
  }, 120_000);

  it("an unknown GPU is one line listing the known ones, exit 2", () => {
    const r = framecost(["cost", "--model", "wan2.1-14b", "--gpu", "b200"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      'framecost: --gpu: unknown GPU "b200"; known GPUs: h100-sxm, h100-pcie, h200, a100-sxm, l40s, rtx-4090, h20 (add your own with --catalog FILE)\n',
    );
  }, 120_000);

  it("a GPU with no price on record (h20) still gets time, energy and FLOPs, and says how to price it", () => {
    const missing =
      "no rental price on record for h20; pass --price USD_PER_HOUR or add prices with --catalog FILE";
    const text = framecost(["cost", "--model", "wan2.1-14b", "--gpu", "h20"]);
    expect(text.stderr).toBe("");
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/FLOPs per clip +6\.53e17/);
    expect(text.stdout).toMatch(/GPU time per clip +[\d,.]+ GPU-s .* at MFU 0\.616 of 148 TFLOP\/s/);
    expect(text.stdout).toMatch(/energy +[\d,.]+ Wh per clip, [\d,]+ Wh per video minute at 400 W/);
    expect(text.stdout).toContain(`USD per clip          not priced: ${missing}`);
    expect(text.stdout).not.toMatch(/NaN|undefined|\$null/);

    const j = JSON.parse(framecost(["cost", "--model", "wan2.1-14b", "--gpu", "h20", "--json"]).stdout);
    const priced = JSON.parse(
      framecost(["cost", "--model", "wan2.1-14b", "--gpu", "h20", "--price", "1", "--json"]).stdout,
    );
    expect(j.price).toBeNull();
    expect(j.priceMissing).toBe(missing);
    expect([j.usdPerClip, j.usdPerVideoMinute, j.oncePerClip.usd]).toEqual([null, null, null]);
    // everything but the USD figures is what a priced run says
    for (const k of ["flopsPerNfe", "nfe", "totalFlops", "gpuSeconds", "wallSeconds"])
      expect(j[k], k).toBe(priced[k]);
    expect(j.energy.whPerVideoMinute).toBe(priced.energy.whPerVideoMinute);
    expect(priced.priceMissing).toBeNull();
    expect(priced.usdPerClip).toBeCloseTo(priced.gpuSeconds / 3600, 9);

    const target = framecost([
      "cost",
      "--model",
      "wan2.1-14b",
      "--gpu",
      "h20",
      "--target-usd-per-minute",
      "1",
    ]);
    expect(target.code).toBe(2);
    expect(target.stderr).toBe(`framecost: --target-usd-per-minute needs a price: ${missing}\n`);
  }, 120_000);
  it("a bad catalog file is one line naming the field and the entry, exit 2", () => {
    const file = join(tmp, "bad.json");
    writeFileSync(
      file,
      JSON.stringify({
        gpus: [{ id: "h100-sxm", prices: [{ usdPerHour: -3, provider: "x", source: "y", asOf: "z" }] }],
      }),
    );
    const r = framecost(["gpus", "--catalog", file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `framecost: catalog ${file}: gpus[0] ("h100-sxm").prices[0].usdPerHour must be >= 0, got -3\n`,
    );
  }, 120_000);

  it("path --out writes path.json and the waterfall as SVG and PNG", () => {
    const out = join(tmp, "path");
    const r = framecost(["path", "--model", "wan2.1-14b", "--out", out, "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j)).toEqual(expect.arrayContaining(["start", "levers", "end", "gapToTarget"]));
    expect(j.levers[0]).toEqual(expect.objectContaining({ name: "fewer-steps", enabled: true }));
    expect(JSON.parse(readFileSync(join(out, "path.json"), "utf8")).gapToTarget).toBe(j.gapToTarget);
    expect(readFileSync(join(out, "path-waterfall.svg"), "utf8")).toMatch(/^<svg/);
    const png = readFileSync(join(out, "path-waterfall.png"));
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    expect(existsSync(join(out, "path-waterfall.svg"))).toBe(true);
  }, 120_000);

  it("a bad --levers file names the field, exit 2", () => {
    const file = join(tmp, "levers.json");
    writeFileSync(file, JSON.stringify({ levers: [{ name: "lower-price", factor: 0, source: "x" }] }));
    const r = framecost(["path", "--levers", file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`framecost: --levers ${file}: levers[0].factor must be > 0, got 0\n`);
  }, 120_000);
});
