import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import type { TopLevelSpec } from "vega-lite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  renderPlots,
  renderSvg,
  runPlotSpecs,
  scopeSvgIds,
  svgToPng,
  sweepPlotSpecs,
  writePlots,
} from "../src/report/plots.ts";
import { buildSweepRecord } from "../src/report/sweep.ts";
import { syntheticRunRecord, syntheticSweep } from "./fixtures/report-fixtures.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "framecost-report-plots-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every axis title in a spec, wherever it sits (encodings are nested in layers, facets, concats). */
function titles(spec: unknown): string[] {
  const out: string[] = [];
  const walk = (x: unknown) => {
    if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === "object") {
      const o = x as Record<string, unknown>;
      for (const ch of ["x", "y"]) {
        const enc = o[ch] as Record<string, unknown> | undefined;
        if (enc && typeof enc === "object" && typeof enc.title === "string") out.push(enc.title);
      }
      Object.values(o).forEach(walk);
    }
  };
  walk(spec);
  return out;
}

describe("sweep plots", () => {
  it("makes the four plots with unit-bearing axis titles", () => {
    const plots = sweepPlotSpecs(syntheticSweep());
    expect(plots.map((p) => p.name)).toEqual([
      "wall-vs-nfe",
      "usd-vs-nfe",
      "quality-vs-nfe",
      "quality-vs-usd",
    ]);
    const t = Object.fromEntries(plots.map((p) => [p.name, titles(p.spec)]));
    expect(t["wall-vs-nfe"]).toEqual(["network evaluations per frame (NFE)", "wall time per frame (ms)"]);
    expect(t["usd-vs-nfe"]).toEqual(["network evaluations per frame (NFE)", "USD per video-minute"]);
    expect(t["quality-vs-nfe"]).toEqual([
      "network evaluations per frame (NFE), log scale",
      "value (lower is better)",
    ]);
    expect(t["quality-vs-usd"]).toContain("USD per video-minute on this machine (log scale)");
    expect(t["quality-vs-usd"]).toContain("SWD, patches (lower is better)");
  });

  it("prices the Pareto plot on the GPU and metric asked for", () => {
    const [, , , pareto] = sweepPlotSpecs(syntheticSweep(), { priceKey: "h100-sxm", metric: "paletteError" });
    expect(titles(pareto.spec)).toContain("USD per video-minute on h100-sxm (extrapolated) (log scale)");
    expect(titles(pareto.spec)).toContain("palette error (lower is better)");
    expect(pareto.caption).toMatch(/^Each cell's palette error against its USD per video-minute on h100-sxm/);
  });

  it("leaves out the cost and quality plots when the sweep has no prices or quality", () => {
    const base = syntheticSweep({ samplers: ["ddim"], steps: [1, 2, 4] });
    const bare = buildSweepRecord({
      grid: base.grid,
      cells: base.cells.map((c) => ({ ...c, quality: null, usdPerVideoMinute: { local: null, byGpu: {} } })),
    });
    expect(sweepPlotSpecs(bare).map((p) => p.name)).toEqual(["wall-vs-nfe"]);
  });

  it("renders SVG in Node and PNG through sharp, and writes both", async () => {
    const rendered = await renderPlots(sweepPlotSpecs(syntheticSweep({ samplers: ["ddim", "heun"] })));
    for (const p of rendered) expect(p.svg.startsWith("<svg")).toBe(true);
    expect(rendered[0].svg).toContain("wall time per frame (ms)");
    expect(rendered[3].svg).toContain("USD per video-minute on this machine");
    const png = await svgToPng(rendered[0].svg, 72);
    const meta = await sharp(png).metadata();
    const w = Number(/width="(\d+)"/.exec(rendered[0].svg)![1]);
    expect(meta.format).toBe("png");
    expect(meta.width).toBe(w);
    const written = await writePlots(dir, rendered);
    expect(written.map((w) => w.name)).toEqual(rendered.map((p) => p.name));
    expect((await readdir(dir)).sort()).toEqual(
      rendered.flatMap((p) => [`${p.name}.png`, `${p.name}.svg`]).sort(),
    );
  });

  it("never fetches: a spec that names a URL fails instead of loading it", async () => {
    const spec = {
      data: { url: "https://example.com/data.json" },
      mark: "point",
      encoding: { x: { field: "a", type: "quantitative" } },
    } as TopLevelSpec;
    await expect(renderSvg(spec)).rejects.toThrow(
      "framecost plots load nothing from outside (asked for https://example.com/data.json)",
    );
  });
});

describe("run plot", () => {
  it("names the FLOP convention on the throughput axis", () => {
    const flops = titles(runPlotSpecs(syntheticRunRecord({ sampler: "ddim", steps: 4 }))[0].spec);
    expect(flops).toEqual([
      "frame index",
      "wall time per frame (ms)",
      "sampler step",
      "wall time per step (ms)",
      "frame index",
      "achieved GFLOP/s (multiply-add = 2 FLOP)",
    ]);
    const macs = titles(
      runPlotSpecs(syntheticRunRecord({ sampler: "ddim", steps: 4, flopConvention: "macs" }))[0].spec,
    );
    expect(macs[5]).toBe("achieved GMAC/s (multiply-add = 1 MAC)");
  });

  it("plots every step of every frame and the calibrated peak in the record's convention", async () => {
    const rec = syntheticRunRecord({
      sampler: "heun",
      steps: 3,
      frames: 2,
      flopConvention: "macs",
      gemmGflops: 30,
    });
    const [plot] = await renderPlots(runPlotSpecs(rec));
    expect(plot.svg).toContain("GEMM peak 15.0 GMAC/s");
    expect(plot.caption).toContain("against the calibrated GEMM peak of wasm");
  });
});

describe("scopeSvgIds", () => {
  it("prefixes ids and the references to them, and nothing else", () => {
    const svg =
      '<svg><defs><clipPath id="clip1"><rect/></clipPath></defs>' +
      '<g clip-path="url(#clip1)"><use href="#clip1"/><use href="#other"/></g><a href="https://x/#clip1"/></svg>';
    expect(scopeSvgIds(svg, "p0")).toBe(
      '<svg><defs><clipPath id="p0-clip1"><rect/></clipPath></defs>' +
        '<g clip-path="url(#p0-clip1)"><use href="#p0-clip1"/><use href="#other"/></g><a href="https://x/#clip1"/></svg>',
    );
  });
});
