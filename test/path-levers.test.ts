import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { getGpu, shippedCatalog } from "../src/cost/catalog.ts";
import { waterfallPlot } from "../src/cost/chart.ts";
import { modelShape } from "../src/cost/models.ts";
import {
  buildPath,
  LEVER_NAMES,
  type LeverOverride,
  measureStepsLever,
  parseLeversFile,
  type StepsMeasurement,
} from "../src/cost/path.ts";
import type { ScenarioOptions } from "../src/cost/scenarios.ts";
import { parseSweepRecord } from "../src/report/sweep.ts";
import { syntheticSweep } from "./fixtures/report-fixtures.ts";

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

function path(overrides: LeverOverride[] = [], steps: StepsMeasurement | null = null) {
  return buildPath({ start, targetUsdPerVideoMinute: 0.01, catalog: cat, steps, overrides });
}

describe("the waterfall", () => {
  const r = path();

  it("lists every lever in order, each with a source", () => {
    expect(r.levers.map((l) => l.name)).toEqual([...LEVER_NAMES]);
    for (const l of r.levers) {
      expect(l.source.text.length, l.name).toBeGreaterThan(0);
      expect(l.source.kind.length, l.name).toBeGreaterThan(0);
      expect(l.factor, l.name).toBeGreaterThan(0);
    }
  });

  it("end = start x the product of the enabled factors, and gap = end / target", () => {
    const product = r.levers.filter((l) => l.enabled).reduce((a, l) => a * l.factor, 1);
    expect(r.end.usdPerVideoMinute).toBeCloseTo(r.start.usdPerVideoMinute * product, 12);
    expect(r.gapToTarget).toBeCloseTo(r.end.usdPerVideoMinute / 0.01, 9);
  });

  it("the running cost changes only at enabled levers", () => {
    let before = r.start.usdPerVideoMinute;
    for (const l of r.levers) {
      expect(l.usdPerVideoMinuteAfter).toBeCloseTo(l.enabled ? before * l.factor : before, 12);
      before = l.usdPerVideoMinuteAfter;
    }
  });

  it("with every lever on, the product is exactly the fully changed scenario", () => {
    const all = path(LEVER_NAMES.map((name) => ({ name, enabled: true })));
    expect(all.end.usdPerVideoMinute).toBeCloseTo(all.end.chain.usdPerVideoMinute, 9);
    expect(all.end.recomputedUsdPerVideoMinute).toBeCloseTo(all.end.chain.usdPerVideoMinute, 9);
  });

  it("feature caching is off by default (published speed-ups were not stacked on few-step models)", () => {
    expect(r.levers.find((l) => l.name === "feature-caching")?.enabled).toBe(false);
  });

  it("puts the essay's figures beside it", () => {
    expect(r.essay.videoMinutesPerDay.start).toBeCloseTo(15e6 / r.start.usdPerVideoMinute, 6);
    expect(r.essay.videoMinutesPerDay.end).toBeCloseTo(15e6 / r.end.usdPerVideoMinute, 3);
    expect(r.essay.cheaperLabBand.fromUsdPerVideoMinute).toBeCloseTo(r.start.usdPerVideoMinute / 6, 12);
    expect(r.essay.cheaperLabBand.toUsdPerVideoMinute).toBeCloseTo(r.start.usdPerVideoMinute / 10, 12);
  });
});

describe("switching levers", () => {
  const base = path();

  it("switching a lever off changes only its factor", () => {
    for (const name of LEVER_NAMES) {
      const off = path([{ name, enabled: false }]);
      for (const [i, l] of off.levers.entries()) {
        expect(l.factor, `${name}: ${l.name}`).toBe(base.levers[i].factor);
        expect(l.enabled).toBe(l.name === name ? false : base.levers[i].enabled);
      }
    }
  });

  it("end = start x product of enabled factors for any choice of levers (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { minLength: LEVER_NAMES.length, maxLength: LEVER_NAMES.length }),
        (flags) => {
          const r = path(LEVER_NAMES.map((name, i) => ({ name, enabled: flags[i] })));
          const product = r.levers.filter((l) => l.enabled).reduce((a, l) => a * l.factor, 1);
          expect(r.end.usdPerVideoMinute).toBeCloseTo(r.start.usdPerVideoMinute * product, 12);
          expect(r.levers.map((l) => l.enabled)).toEqual(flags);
        },
      ),
      { numRuns: 25 },
    );
  });

  it("a factor from a file replaces only that lever's factor and carries its source", () => {
    const r = path([{ name: "lower-price", factor: 0.5, source: "my reserved contract" }]);
    const l = r.levers.find((x) => x.name === "lower-price")!;
    expect(l.factor).toBe(0.5);
    expect(l.source).toEqual({ kind: "user", text: "--levers file: my reserved contract" });
    for (const [i, x] of r.levers.entries())
      if (x.name !== "lower-price") expect(x.factor).toBe(base.levers[i].factor);
  });
});

describe("the fewer-steps lever", () => {
  it("without a sweep it is the published fallback, marked not measured", () => {
    const l = path().levers[0];
    expect(l.source.kind).toBe("not measured (published fallback)");
    expect(l.source.text.startsWith("NOT MEASURED (no --sweep given):")).toBe(true);
    expect(l.detail).toBe("NFEs x0.400: 50 -> 20 steps");
  });

  it("reads a real sweep record: the cheapest cell within the tolerance of the 50-step reference", () => {
    // a sweep record built and validated by the sweep module, read back through its schema
    const sweep = parseSweepRecord(JSON.parse(JSON.stringify(syntheticSweep())), "sweep.json");
    const m = measureStepsLever(sweep, 0.5);
    // reference: the best one-call-per-step sampler at 50 steps (dpmpp-2m; heun spends 2 calls per step)
    expect(m.reference).toEqual({ sampler: "dpmpp-2m", steps: 50, nfePerFrame: 50 });
    const q = (c: (typeof sweep.cells)[number], k: string) => c.quality![k];
    const ref = sweep.cells.find((c) => c.sampler === "dpmpp-2m" && c.steps === 50)!;
    const ok = sweep.cells.filter((c) => m.metrics.every((k) => q(c, k) <= 1.5 * q(ref, k)));
    expect(m.chosen.nfePerFrame).toBe(Math.min(...ok.map((c) => c.nfePerFrame)));
    expect(m.ratio).toBe(m.chosen.nfePerFrame / 50);
    expect(m.ratio).toBeLessThan(1);
    const l = path([], m).levers[0];
    expect(l.source.kind).toBe("measured");
    expect(l.chainFactor).toBeLessThan(1);
  });

  it("a tighter tolerance or one metric changes the measurement", () => {
    const sweep = syntheticSweep();
    expect(measureStepsLever(sweep, 0).ratio).toBe(1);
    expect(measureStepsLever(sweep, 0.5, "paletteError").metrics).toEqual(["paletteError"]);
    expect(() => measureStepsLever(sweep, 0.1, "fid")).toThrow(
      "--quality-metric fid is not in the sweep; it has: swdPixels, swdPatches, paletteError",
    );
  });
});

describe("--levers file", () => {
  const where = "--levers my.json";
  it("accepts switches and sourced factors", () => {
    expect(
      parseLeversFile(
        {
          levers: [
            { name: "feature-caching", enabled: true },
            { name: "lower-price", factor: 0.7, source: "quote" },
          ],
        },
        where,
      ),
    ).toHaveLength(2);
  });
  it("names the field of the first problem", () => {
    expect(() => parseLeversFile({ levers: [{ name: "teleport" }] }, where)).toThrow(
      `--levers my.json: levers[0].name must be one of ${LEVER_NAMES.join(", ")}, got "teleport"`,
    );
    expect(() =>
      parseLeversFile({ levers: [{ name: "lower-price", factor: -1, source: "x" }] }, where),
    ).toThrow("--levers my.json: levers[0].factor must be > 0, got -1");
    expect(() => parseLeversFile({ levers: [{ name: "lower-price", factor: 0.5 }] }, where)).toThrow(
      "--levers my.json: levers[0].source is missing; a factor from a file needs a source (where the number comes from)",
    );
    expect(() => parseLeversFile({ levers: [{ name: "cheapest-gpu", enable: false }] }, where)).toThrow(
      "--levers my.json: levers[0] has unknown field(s) enable; a lever takes name, enabled, factor, source",
    );
    expect(() => parseLeversFile({ levers: [{ name: "fp8" }] }, where)).toThrow(
      /levers\[0\]\.name must be one of/,
    );
    expect(() => parseLeversFile({}, where)).toThrow("--levers my.json: levers is missing");
    expect(() =>
      parseLeversFile({ levers: [{ name: "lower-price" }, { name: "lower-price", enabled: false }] }, where),
    ).toThrow('--levers my.json: levers[1].name "lower-price" appears twice; give each lever once');
  });
});

describe("the waterfall chart", () => {
  it("has a bar per enabled lever between the start and the end", () => {
    const r = path();
    const plot = waterfallPlot(r);
    const layer = (plot.spec as { layer: Array<{ data?: { values: Array<Record<string, unknown>> } }> })
      .layer;
    const rows = layer[1].data!.values;
    expect(rows).toHaveLength(LEVER_NAMES.length + 2);
    expect(rows.filter((x) => x.kind === "off").map((x) => x.step)).toEqual(["feature caching (off)"]);
    expect(rows[rows.length - 1].hi).toBeCloseTo(r.end.usdPerVideoMinute, 12);
  });
});
