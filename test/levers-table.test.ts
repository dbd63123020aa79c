import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { formatPath } from "../src/cli/path.ts";
import { getGpu, shippedCatalog } from "../src/cost/catalog.ts";
import { type LeversRecord, parseLeversRecord, toyFactor } from "../src/cost/measured.ts";
import { modelShape } from "../src/cost/models.ts";
import { buildPath } from "../src/cost/path.ts";
import type { ScenarioOptions } from "../src/cost/scenarios.ts";
import { writeSweepReport } from "../src/report/html.ts";
import { formatLeversTable, frontierPlot } from "../src/report/levers.ts";
import { renderSvg } from "../src/report/plots.ts";
import { type LeverSpec, measureLevers, TEACHER } from "../src/run/levers.ts";
import { syntheticSweep } from "./fixtures/report-fixtures.ts";

// a real levers record: `measureLevers` on models/tiny, 2 first frames and 1 clip of 2 frames per lever
const FIXTURE = "test/fixtures/levers-tiny.json";
const raw = () => JSON.parse(readFileSync(FIXTURE, "utf8"));
const where = "--levers-measured x.json";
const fix = "regenerate it with `framecost levers --out DIR`";

const TSX = join(process.cwd(), "node_modules", ".bin", "tsx");
const tmp = mkdtempSync(join(tmpdir(), "framecost-levers-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("levers.json", () => {
  it("round-trips through JSON and the schema unchanged", () => {
    const r = parseLeversRecord(raw(), where);
    expect(parseLeversRecord(JSON.parse(JSON.stringify(r)), where)).toEqual(r);
    expect(r.levers.map((l) => `${l.name}:${l.status}`)).toEqual([
      "teacher:measured",
      "ddpm-10:measured",
      "ddpm-5:measured",
      "dpmpp-2m-10:measured",
      "dpmpp-2m-5:measured",
      "guide-off:measured",
      "student-4step:not available",
      "student-2step:not available",
      "student-1step:not available",
      "cache-2:not available",
      "int8:not available",
      "batched:not available",
    ]);
  });

  it("refuses a file that is not a levers record, with one line and the fix", () => {
    expect(() => parseLeversRecord([], where)).toThrow(
      `${where}: not a levers record (a JSON object); ${fix}`,
    );
    expect(() => parseLeversRecord({ ...raw(), kind: "sweep" }, where)).toThrow(
      `${where}: kind is "sweep", not "framecost-levers": this is not a file \`framecost levers\` wrote; ${fix}`,
    );
    expect(() => parseLeversRecord({ ...raw(), schemaVersion: 2 }, where)).toThrow(
      `${where}: schemaVersion 2, this framecost reads 1; ${fix}`,
    );
  });

  it("names the first bad field and the value seen", () => {
    const bad = raw();
    bad.levers[1].figures.nfePerFrame = -3;
    expect(() => parseLeversRecord(bad, where)).toThrow(
      `${where}: field levers[1].figures.nfePerFrame is invalid (must be > 0; value seen: -3); ${fix}`,
    );
    const dup = raw();
    dup.levers[2].name = "ddpm-10";
    expect(() => parseLeversRecord(dup, where)).toThrow(
      `${where}: levers[2].name "ddpm-10" appears twice; ${fix}`,
    );
    const orphan = raw();
    orphan.levers[6].baseline = "nobody";
    expect(() => parseLeversRecord(orphan, where)).toThrow(
      `${where}: levers[6].baseline "nobody" names no lever in the file; ${fix}`,
    );
    const noTeacher = raw();
    noTeacher.teacher = "student-4step";
    expect(() => parseLeversRecord(noTeacher, where)).toThrow(
      `${where}: the teacher "student-4step" is not a measured lever in the file; ${fix}`,
    );
  });
});

describe("path --levers-measured", () => {
  const cat = shippedCatalog();
  const start: ScenarioOptions = {
    shape: modelShape("wan2.1-14b"),
    clip: { width: 1280, height: 720, frames: 81 },
    fps: 16,
    steps: 50,
    cfg: true,
    gpu: getGpu(cat, "h100-sxm"),
    catalog: cat,
  };
  const measured = parseLeversRecord(raw(), FIXTURE);
  const run = (toyTolerance: number) =>
    buildPath({ start, targetUsdPerVideoMinute: 0.01, catalog: cat, steps: null, measured, toyTolerance });

  it("picks the cheapest toy lever within the compactness tolerance", () => {
    // fixture: ddpm-10 x0.5 NFEs at -6.8% compactness; dpmpp-2m-5 x0.267 at -12.0%; guide-off x0.667 at -24.7%
    expect(toyFactor(measured, "fewer-steps", 0.1)).toMatchObject({ factor: 0.5, accepted: true });
    expect(toyFactor(measured, "fewer-steps", 0.1)?.lever.name).toBe("ddpm-10");
    expect(toyFactor(measured, "fewer-steps", 0.3)?.lever.name).toBe("ddpm-5");
    expect(toyFactor(measured, "guidance-distillation", 0.1)).toMatchObject({
      factor: 2 / 3,
      accepted: false,
    });
    expect(toyFactor(measured, "step-distillation", 0.1)).toBeNull();
    expect(toyFactor(measured, "smaller-model", 0.1)).toBeNull();
  });

  it("applies measured factors where they exist and the published ones elsewhere (pinned)", () => {
    const r = run(0.1);
    const by = new Map(r.levers.map((l) => [l.name, l]));
    const steps = by.get("fewer-steps")!;
    expect(steps.applies).toBe("toy");
    expect(steps.source.kind).toBe("measured");
    expect(steps.detail).toBe("NFEs x0.500: 50 -> 25 steps");
    expect(steps.factor).toBeCloseTo(0.500497, 5);
    expect(steps.toy?.publishedChainFactor).toBeCloseTo(0.400596, 5);
    const guidance = by.get("guidance-distillation")!;
    expect(guidance.applies).toBe("own");
    expect(guidance.source.kind).toBe("published");
    expect(guidance.toy).toMatchObject({ lever: "guide-off", accepted: false });
    expect(guidance.factor).toBeCloseTo(0.500978, 5);
    expect(by.get("step-distillation")!.toyAbsent).toMatch(
      /^student-4step: models\/tiny-4step\/model.json not found/,
    );
    expect(by.get("smaller-model")!.toyAbsent).toBeNull();
    expect(r.end.usdPerVideoMinute).toBeCloseTo(0.0131525, 6);
    const text = formatPath(r, false).join("\n");
    expect(text).toContain(
      "toy x0.500 (ddpm-10, NFEs, compactness -6.8%) beside published (fallback) x0.401: applies the toy's",
    );
    expect(text).toContain(
      "toy x0.667 (guide-off, NFEs, compactness -24.7%) beside published x0.501: applies the published one (the toy's costs -24.7% compactness, beyond the tolerance)",
    );
  });

  it("a wider tolerance lets the toy's guidance factor in: CFG off at the toy's call ratio", () => {
    const r = run(0.3);
    const g = r.levers.find((l) => l.name === "guidance-distillation")!;
    expect(g.applies).toBe("toy");
    expect(g.detail).toBe("NFEs x0.667: one call per step, 26.67 -> 17.78 calls");
    expect(g.factor).toBeCloseTo(0.667878, 5);
    expect(r.end.chain.cfg).toBe(false);
  });

  it("a bad file is one line and exit 2", () => {
    const file = join(tmp, "bad.json");
    writeFileSync(file, JSON.stringify({ ...raw(), schemaVersion: 9 }));
    const r = spawnSync(TSX, ["src/cli/main.ts", "path", "--levers-measured", file], {
      encoding: "utf8",
      env: { ...process.env, FRAMECOST_DEBUG: "" },
      timeout: 120_000,
    });
    expect(r.stderr).toBe(
      `framecost: --levers-measured ${file}: schemaVersion 9, this framecost reads 1; ${fix}\n`,
    );
    expect(r.status).toBe(2);
  });
});

describe("the frontier plot", () => {
  const r = parseLeversRecord(raw(), FIXTURE);

  it("has the teacher's curves, a point and a label per measured lever, and the real frames' rule", async () => {
    const p = frontierPlot(r);
    const spec = p.spec as unknown as {
      hconcat: Array<{
        layer: Array<{ mark: { type: string }; data: { values: Array<Record<string, unknown>> } }>;
      }>;
    };
    expect(spec.hconcat).toHaveLength(2);
    for (const panel of spec.hconcat) {
      expect(panel.layer.map((l) => l.mark.type)).toEqual(["rule", "line", "point", "text", "text"]);
      expect(panel.layer[1].data.values.map((v) => `${v.sampler} ${v.steps}`)).toEqual([
        "ddpm 2",
        "ddpm 5",
        "dpmpp-2m 2",
        "dpmpp-2m 5",
      ]);
      expect(panel.layer[2].data.values.map((v) => v.lever)).toEqual([
        "teacher",
        "ddpm-10",
        "ddpm-5",
        "dpmpp-2m-10",
        "dpmpp-2m-5",
        "guide-off",
      ]);
      expect(panel.layer[0].data.values).toEqual([{ compactness: r.real.compactness }]);
      // every measured lever labelled once, above or below its point
      const labels = [...panel.layer[3].data.values, ...panel.layer[4].data.values].map((v) => v.lever);
      expect(labels.sort()).toEqual([
        "ddpm-10",
        "ddpm-5",
        "dpmpp-2m-10",
        "dpmpp-2m-5",
        "guide-off",
        "teacher",
      ]);
    }
    const svg = await renderSvg(p.spec);
    expect(svg).toMatch(/^<svg/);
    for (const name of ["teacher", "dpmpp-2m-5", "guide-off"]) expect(svg).toContain(`>${name}</text>`);
  });
});

describe("the sweep report with --levers-measured", () => {
  it("gains the frontier plot, and only then", async () => {
    const sweep = syntheticSweep({ samplers: ["ddim"], steps: [1, 2] });
    const plain = await writeSweepReport(join(tmp, "plain"), sweep);
    expect(plain.plots.map((p) => p.name)).not.toContain("levers-frontier");
    const withLevers = await writeSweepReport(join(tmp, "levers"), sweep, {
      levers: parseLeversRecord(raw(), FIXTURE),
    });
    expect(withLevers.plots.map((p) => p.name)).toContain("levers-frontier");
    const html = readFileSync(withLevers.html, "utf8");
    expect(html).toContain("Quality against cost per frame: the levers and the teacher&#39;s frontier");
  });
});

describe("measureLevers (a tiny real run)", () => {
  it("measures what runs, reports what does not, and pins the metered cost", async () => {
    const levers: LeverSpec[] = [
      { ...TEACHER, steps: 3 },
      { name: "ddim-2", label: "fewer steps: ddim 2", pathLever: "fewer-steps", sampler: "ddim", steps: 2 },
      {
        name: "guide-off",
        label: "guide off",
        pathLever: "guidance-distillation",
        steps: 3,
        guidance: "off",
      },
      { name: "ghost", label: "a student", pathLever: "step-distillation", model: "no-such-model", steps: 1 },
      { name: "flag", label: "a flag", pathLever: "feature-caching", steps: 3, extra: { noSuchOption: 2 } },
      { name: "late", label: "after a missing one", pathLever: null, baseline: "ghost", steps: 1 },
    ];
    const r: LeversRecord = await measureLevers({
      modelDir: "models/tiny",
      protocol: {
        name: "test",
        clips: 2,
        longClips: 1,
        longFrames: 2,
        referenceClips: 4,
        seed: 7,
        backend: "onnx",
      },
      levers,
      frontier: { samplers: ["ddim"], steps: [1, 2] },
      threads: 1,
    });
    expect(parseLeversRecord(JSON.parse(JSON.stringify(r)), "round trip")).toEqual(r);
    const by = new Map(r.levers.map((l) => [l.name, l]));
    const m = (n: string) => {
      const l = by.get(n)!;
      if (l.status !== "measured") throw new Error(`${n} not measured: ${l.status}`);
      return l;
    };
    // ddpm 3 steps (trailing): 2 of them at t >= 500 call the guide too
    expect(m("teacher").figures.nfePerFrame).toBe(5);
    expect(m("ddim-2").figures.nfePerFrame).toBe(3);
    expect(m("guide-off").figures.nfePerFrame).toBe(3);
    expect(m("ddim-2").vsTeacher.nfe).toBeCloseTo(0.6, 12);
    // 114.9 MFLOP per call (README) plus the sampler's arithmetic
    expect(m("teacher").figures.flopsPerFrame / 5 / 114.9e6).toBeCloseTo(1, 2);
    expect(m("guide-off").vsTeacher.flops).toBeCloseTo(0.6, 3);
    expect(m("teacher").figures.frames).toBe(4);
    expect(by.get("ghost")).toMatchObject({
      status: "not available",
      reason: "models/no-such-model/model.json not found on this build",
    });
    expect(by.get("flag")).toMatchObject({
      status: "not available",
      reason: "generation has no option noSuchOption on this build",
    });
    expect(by.get("late")).toMatchObject({
      status: "not available",
      reason: "its baseline ghost was not measured",
    });
    // the frontier reuses the lever already run at the same configuration
    expect(r.frontier.map((f) => `${f.sampler} ${f.steps} ${f.figures.nfePerFrame}`)).toEqual([
      "ddim 1 2",
      "ddim 2 3",
    ]);
    expect(r.frontier[1].figures).toEqual(m("ddim-2").figures);
    const table = formatLeversTable(r).join("\n");
    expect(table).toContain(
      "ghost (step-distillation): not available: models/no-such-model/model.json not found",
    );
    expect(table).toContain("  ddim      1 steps 2 NFE");
  }, 120_000);
});
