import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { num } from "../src/report/format.ts";
import {
  esc,
  renderGeneric,
  renderRunHtml,
  renderSweepHtml,
  writeRunReport,
  writeSweepOutputs,
} from "../src/report/html.ts";
import type { RenderedPlot } from "../src/report/plots.ts";
import { buildSweepRecord } from "../src/report/sweep.ts";
import {
  fixtureCellMachine,
  syntheticMachine,
  syntheticRunRecord,
  syntheticSweep,
} from "./fixtures/report-fixtures.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "framecost-report-html-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Anything that would make the page reach outside itself. */
function outsideReferences(html: string): string[] {
  const found = [
    ...html.matchAll(/\b(?:src|href|srcset|action|poster|data)\s*=\s*["']?\s*(?!#)([^"'\s>]+)/gi),
  ].map((m) => m[0]);
  if (/<script\b/i.test(html)) found.push("<script>");
  if (/<link\b/i.test(html)) found.push("<link>");
  if (/<iframe\b/i.test(html)) found.push("<iframe>");
  if (/@import|url\(\s*["']?(?!#)/i.test(html)) found.push("CSS import or url()");
  return found;
}

const fakePlot = (
  name: string,
  svg = '<svg width="10" height="10"><g clip-path="url(#clip1)"/><clipPath id="clip1"/></svg>',
): RenderedPlot => ({
  name,
  title: `title of ${name}`,
  caption: `caption of ${name}`,
  spec: {} as RenderedPlot["spec"],
  svg,
});

describe("sweep report.html", () => {
  it("is one self-contained file with the plots, the table, the fit, the machine and the assumptions", async () => {
    const out = join(dir, "sweep");
    const sweep = syntheticSweep();
    const written = await writeSweepOutputs(out, sweep);
    expect((await readdir(out)).sort()).toEqual(["plots", "report.html", "sweep.csv", "sweep.json"]);
    expect((await readdir(join(out, "plots"))).sort()).toEqual(
      ["quality-vs-nfe", "quality-vs-usd", "usd-vs-nfe", "wall-vs-nfe"].flatMap((n) => [
        `${n}.png`,
        `${n}.svg`,
      ]),
    );
    const html = await readFile(written.html, "utf8");
    expect(outsideReferences(html)).toEqual([]);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?https?:/i);
    expect(html.match(/<figure class="plot"/g)?.length).toBe(4);
    expect(html.match(/<svg\b/g)?.length).toBe(4);
    // one row per cell, one per fit plus the pooled fit
    expect(html.match(/<table class="cells">[\s\S]*?<\/table>/)![0].match(/<tr>/g)!.length).toBe(
      1 + sweep.cells.length,
    );
    expect(html.match(/<table class="fits">[\s\S]*?<\/table>/)![0].match(/<tr>/g)!.length).toBe(1 + 5);
    expect(html).toContain(
      "<li>ddim: wall per frame = 42.7 ms + 11.6 ms × NFE (R² 0.9996, 7 cells); fixed share 78.6% at 1 NFE to 6.85% at 50 NFE</li>",
    );
    expect(html).toContain("Fixture CPU (synthetic), 2 cores; Node v20.0.0 (fixture)");
    expect(html).toContain(
      "<tr><td>gpus.h100-sxm.usdPerHour</td><td>2.99 USD/h</td><td>fixture</td><td>2025-01</td></tr>",
    );
    // 15 cells on the swdPatches/local front
    expect(html.match(/<td>★<\/td>/g)?.length).toBe(15);
  });

  it("shows a merged sweep's machines side by side, its shards and its missing cells", () => {
    const one = fixtureCellMachine({ cpu: "Fixture CPU one", cores: 2, backend: "wasm", gemmGflops: 20 });
    const two = fixtureCellMachine({ cpu: "Fixture CPU two", cores: 8, backend: "onnx", gemmGflops: 80 });
    const identity = {
      samplers: ["ddim", "heun"],
      steps: [1, 2],
      frames: 8,
      clips: 1,
      referenceClips: 2,
      seed: 0,
      fps: 24,
      convention: "flops" as const,
      gpus: ["h100-sxm"],
    };
    const sweep = syntheticSweep({
      samplers: ["ddim", "heun"],
      steps: [1, 2],
      machineFor: (sampler) => (sampler === "ddim" ? one : two),
      // heun's machine is twice as fast per frame
      speed: (sampler) => (sampler === "ddim" ? 1 : 0.5),
      machine: null,
      merged: {
        count: 3,
        framecost: "0.1.0",
        model: {
          name: "micro",
          sha256: "a".repeat(64),
          weightsSha256: "b".repeat(64),
          guideWeightsSha256: null,
        },
        identity,
        shards: [
          {
            index: 1,
            dir: "shards/1",
            createdAt: "2025-01-01T00:00:00.000Z",
            cells: ["ddim-1", "ddim-2"],
            machine: syntheticMachine({ model: "Fixture CPU one", cores: 2 }),
          },
          {
            index: 2,
            dir: "shards/2",
            createdAt: "2025-01-01T00:00:00.000Z",
            cells: ["heun-1", "heun-2"],
            machine: syntheticMachine({ model: "Fixture CPU two", cores: 8 }),
          },
        ],
        missing: [{ sampler: "heun", steps: 4, shard: 3 }],
      },
    });
    const html = renderSweepHtml(sweep, []);
    const machines = html.match(/<table class="machines">[\s\S]*?<\/table>/)![0];
    const rows = [...machines.matchAll(/<tr>(.*?)<\/tr>/g)].map((m) =>
      [...m[1].matchAll(/<t[dh][^>]*>(.*?)<\/t[dh]>/g)].map((c) => c[1]),
    );
    expect(rows[0]).toEqual([
      "machine",
      "CPU",
      "cores",
      "backend",
      "calibrated GEMM peak, GFLOP/s",
      "cells",
      "frames",
      "frames/s",
      "GFLOP/s",
      "utilization",
    ]);
    // frames/s = 16 frames / (sum of 8 x wallMsPerFrame); GFLOP/s = 2.6e8 FLOPs x NFEs x 8 frames over the same time
    const ddim = sweep.cells.filter((c) => c.sampler === "ddim");
    const heun = sweep.cells.filter((c) => c.sampler === "heun");
    const fps = (cs: typeof ddim) => (16 * 1000) / cs.reduce((t, c) => t + 8 * c.wallMsPerFrame, 0);
    const gf = (cs: typeof ddim) =>
      cs.reduce((t, c) => t + 2.6e8 * c.nfePerFrame * 8, 0) /
      cs.reduce((t, c) => t + 8 * c.wallMsPerFrame, 0) /
      1e6;
    expect(rows[1].slice(0, 7)).toEqual([
      "Fixture CPU one (2 cores), wasm",
      "Fixture CPU one",
      "2",
      "wasm",
      "20",
      "2",
      "16",
    ]);
    expect(rows[2].slice(0, 7)).toEqual([
      "Fixture CPU two (8 cores), onnx",
      "Fixture CPU two",
      "8",
      "onnx",
      "80",
      "2",
      "16",
    ]);
    expect([rows[1][7], rows[2][7]]).toEqual([num(fps(ddim)), num(fps(heun))]);
    expect([rows[1][8], rows[2][8]]).toEqual([num(gf(ddim)), num(gf(heun))]);
    // heun ran twice as fast per frame with the same FLOPs per NFE
    expect(fps(heun) / fps(ddim)).toBeGreaterThan(1.5);
    expect(rows[2][9]).toBe(`${((100 * gf(heun)) / 80).toPrecision(3)}%`);
    expect(html).toContain("<h2>Shards</h2>");
    expect(html).toContain(
      "Merged from 2 of 3 shards, framecost 0.1.0, model micro (model.json sha256 aaaaaaaaaaaa, weights bbbbbbbbbbbb).",
    );
    expect(html).toContain('<p class="warn">1 cells of the grid are missing: heun-4 (shard 3/3).</p>');
    expect(html).toContain(
      '<tr><td>2/3</td><td><code>shards/2</code></td><td>heun-1, heun-2</td><td>Fixture CPU two</td><td class="n">8</td>',
    );
    expect(html).toContain("The shards ran on different machines");
  });

  it("escapes every string it did not write itself", () => {
    const base = syntheticSweep({ samplers: ["ddim"], steps: [1, 2] });
    const evil = '<script>alert("x")</script>';
    const sweep = buildSweepRecord({
      grid: { ...base.grid, samplers: [evil] },
      cells: base.cells.map((c) => ({ ...c, sampler: evil, record: `runs/${evil}.json` })),
      machine: { node: evil, cpu: { model: evil, cores: 2 }, backends: [{ name: evil }], ffmpeg: null },
      assumptions: { [evil]: { value: evil, source: evil } },
    });
    const html = renderSweepHtml(sweep, [fakePlot(evil)]);
    expect(html).not.toContain("<script>");
    expect(html).toContain("&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;");
  });

  it("gives each inline plot its own ids so plots cannot clip each other", () => {
    const sweep = syntheticSweep({ samplers: ["ddim"], steps: [1, 2] });
    const html = renderSweepHtml(sweep, [fakePlot("a"), fakePlot("b")]);
    expect(html).toContain('<clipPath id="plot0-clip1"/>');
    expect(html).toContain('<clipPath id="plot1-clip1"/>');
    expect(html).toContain("url(#plot1-clip1)");
  });

  it("says so when no machine or assumptions were supplied", () => {
    const sweep = buildSweepRecord({ grid: { steps: [1], samplers: ["ddim"] }, cells: [] });
    const html = renderSweepHtml(sweep, []);
    expect(html).toContain("No machine description was supplied (run <code>framecost doctor</code>).");
    expect(html).toContain("No cost assumptions were supplied.");
    expect(html).toContain("<li>ddim: no fit (needs at least 2 cells, has 0)</li>");
  });
});

describe("single-run report.html", () => {
  it("shows key figures in the record's FLOP convention and names it", () => {
    const rec = syntheticRunRecord({ sampler: "ddim", steps: 4, frames: 3, flopConvention: "macs" });
    const html = renderRunHtml(rec, [fakePlot("run-timing")]);
    expect(html).toContain(
      "Counts in MACs (fvcore/DiT convention: 1 multiply-accumulate = 1; every count here is FLOPs / 2).",
    );
    // flopsPerNfe 2.6e8 FLOPs = 130 M MACs
    expect(html).toContain(
      "<tr><th>MACs per NFE (counted from the kernels that ran)</th><td>130 M</td></tr>",
    );
    expect(html).toContain("<td>unknown (no FLOP rule)</td>");
    expect(html).not.toContain("did not finish");
    expect(outsideReferences(html)).toEqual([]);
  });

  it("lists plain-text assumptions (the cost section's) as a list", () => {
    const rec = syntheticRunRecord({ sampler: "ddim", steps: 2, frames: 2 });
    const html = renderRunHtml(rec, [], { assumptions: ["launch overhead 5 us per kernel", "batch <1>"] });
    expect(html).toContain("<ul><li>launch overhead 5 us per kernel</li><li>batch &#60;1&#62;</li></ul>");
  });

  it("warns about an unfinished run", () => {
    const rec = { ...syntheticRunRecord({ sampler: "ddim", steps: 2, frames: 2 }), complete: false };
    rec.video = { ...rec.video, frames: 5 };
    expect(renderRunHtml(rec, [])).toContain("This run did not finish: 2 of 5 frames were generated.");
  });

  it("writes the page and, when asked, the plot files, leaving no temporary files", async () => {
    const out = join(dir, "run");
    const rec = syntheticRunRecord({ sampler: "euler", steps: 2, frames: 2 });
    const w = await writeRunReport(join(dir, "run.html"), rec, { plotsDir: out, source: "run.json" });
    expect(w.plots.map((p) => p.name)).toEqual(["run-timing"]);
    expect((await readdir(out)).sort()).toEqual(["run-timing.png", "run-timing.svg"]);
    expect((await readdir(dir)).filter((f) => f.startsWith(".tmp"))).toEqual([]);
    const html = await readFile(join(dir, "run.html"), "utf8");
    expect(html.match(/<svg\b/g)?.length).toBe(1);
  });
});

describe("generic rendering", () => {
  it("renders nested objects and arrays of objects as tables", () => {
    expect(renderGeneric({ a: 1.23456, b: [{ x: true }, { y: "z" }] })).toBe(
      '<div class="scroll"><table class="kv"><tbody>\n<tr><th>a</th><td>1.23</td></tr>\n' +
        '<tr><th>b</th><td><div class="scroll"><table class="generic"><thead><tr><th>x</th><th>y</th></tr></thead><tbody>\n' +
        "<tr><td>yes</td><td></td></tr>\n<tr><td></td><td>z</td></tr>\n</tbody></table></div></td></tr>\n</tbody></table></div>",
    );
    expect(esc(`<a href="x">&'`)).toBe("&#60;a href=&#34;x&#34;&#62;&#38;&#39;");
  });
});
