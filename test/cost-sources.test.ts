/**
 * Every source framecost prints cites where a figure was published (a URL or a
 * named document, and a date), never a file on a developer's machine: the GPU
 * catalog, the published factors, the cost assumptions and the path's levers,
 * in process and as `gpus --json`, `cost --json` and `path --json` print them.
 */
import { describe, expect, it } from "vitest";
import { getGpu, shippedCatalog } from "../src/cost/catalog.ts";
import { modelNames, modelShape } from "../src/cost/models.ts";
import { buildPath } from "../src/cost/path.ts";
import * as published from "../src/cost/published.ts";
import { evaluateScenario } from "../src/cost/scenarios.ts";
import { cli } from "./helpers/outputs.ts";

/** A developer's file instead of the original: the shared notes, or any absolute filesystem path. */
function localPathIn(text: string): string | null {
  const m =
    /\/work\//.exec(text) ??
    /shared\/reference/.exec(text) ??
    // "/x/" or "~/" or "C:\" at the start of a word (a URL's "//" and "a/b" are not)
    /(?:^|[\s("'`[,;=])(?:\/(?!\/)[\w.-]+\/|~\/|[A-Za-z]:\\)/.exec(text) ??
    /file:\/\//.exec(text);
  return m ? m[0].trim() : null;
}

const URL_OR_DOCUMENT =
  /https?:\/\/\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|io|ai|dev|net)\b|arXiv \d{4}\.\d{4,5}|\b(?:README|datasheet|whitepaper|specifications?|paper|report|docs|config(?:\.py|\.json)?)\b|"[^"]{6,}"/i;
const DATE = /\b(?:19|20)\d{2}\b/;

/** Why `source` (with its `asOf`, if any) is not a citation of the original, or null when it is. */
function citationProblem(source: string, asOf?: string): string | null {
  const local = localPathIn(source);
  if (local) return `cites a local file (${local})`;
  if (!URL_OR_DOCUMENT.test(source)) return "names no URL or document";
  if (!DATE.test(asOf ?? "") && !DATE.test(source)) return "has no date";
  return null;
}

interface Cited {
  where: string;
  source: string;
  asOf?: string;
}

/** Every `source`-like string in a value, with the asOf beside it. */
function sourcesIn(value: unknown, where: string, out: Cited[] = []): Cited[] {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      sourcesIn(v, `${where}[${i}]`, out);
    });
  } else if (value && typeof value === "object") {
    const o = value as Record<string, unknown>;
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === "string" && /source$/i.test(k))
        out.push({
          where: `${where}.${k}`,
          source: v,
          asOf: typeof o.asOf === "string" ? o.asOf : undefined,
        });
      else sourcesIn(v, `${where}.${k}`, out);
    }
  }
  return out;
}

function problems(cited: Cited[], check: (c: Cited) => string | null): string[] {
  return cited.flatMap((c) => {
    const p = check(c);
    return p ? [`${c.where}: ${p}: ${c.source.slice(0, 160)}`] : [];
  });
}

const noLocal = (c: Cited) => {
  const l = localPathIn(c.source);
  return l ? `cites a local file (${l})` : null;
};
const cited = (c: Cited) => citationProblem(c.source, c.asOf);

const catalog = shippedCatalog();
const wan = {
  shape: modelShape("wan2.1-14b"),
  clip: { width: 1280, height: 720, frames: 81 },
  fps: 16,
  steps: 50,
  cfg: true,
  gpu: getGpu(catalog, "h100-sxm"),
  catalog,
};

describe("printed sources cite the original, never a developer path", () => {
  it("the path check itself: local files caught, URLs and relative names let through", () => {
    for (const bad of [
      "x (/work/shared/reference/gpus.md)",
      "figures as listed in shared/reference/gpus.md",
      "see /home/me/notes.md",
      "~/notes.md",
      "C:\\Users\\me\\gpus.md",
    ])
      expect(localPathIn(bad), bad).not.toBeNull();
    for (const ok of [
      "NVIDIA H100 datasheet (https://www.nvidia.com/en-us/data-center/h100/)",
      "xDiT docs/performance/hunyuanvideo.md (github.com/xdit-project/xDiT)",
      "T(N)/T(1) = s + (1-s)/N; 1/6 to 1/10",
    ])
      expect(localPathIn(ok), ok).toBeNull();
    expect(citationProblem("somewhere", "2024")).toBe("names no URL or document");
    expect(citationProblem("NVIDIA H100 datasheet", "given")).toBe("has no date");
  });

  it("the GPU catalog: every figure, price and hosted API", () => {
    const all = sourcesIn(catalog, "catalog");
    expect(all.length).toBeGreaterThan(40);
    expect(problems(all, cited)).toEqual([]);
    for (const c of all) expect(c.asOf, c.where).toMatch(/^\d{4}(-\d{2}){0,2}$/);
  });

  it("the published factors and measurements", () => {
    const all = sourcesIn(published, "published");
    expect(all.length).toBeGreaterThan(20);
    expect(problems(all, cited)).toEqual([]);
    // the figures quoted without a source field of their own
    expect(citationProblem(published.FP8_TENSOR_CORES_SOURCE)).toBeNull();
    expect(citationProblem(published.ESSAY.outside[0].what)).toBeNull();
  });

  it("cost: every model's assumptions; the published ones with a document and a date", () => {
    const names = modelNames().filter((n) => n !== "custom");
    expect(names.length).toBeGreaterThan(8);
    for (const name of names) {
      const shape = modelShape(name);
      // 4n+2 frames and 4 GPUs: the frames and sequence-parallel assumptions appear too
      const s = evaluateScenario({
        ...wan,
        shape,
        clip: { ...shape.defaults, frames: shape.defaults.frames + 1 },
        fps: shape.defaults.fps,
        gpus: 4,
      });
      const all = s.assumptions.map((a) => ({ where: `${name}: ${a.name}`, source: a.source }));
      expect(problems(all, noLocal)).toEqual([]);
      const external = all.filter((a) => /: (peak|price|energy|frames|model shape)$/.test(a.where));
      expect(problems(external, cited), name).toEqual([]);
    }
  });

  it("path: the levers' published sources, the essay and the outside estimates", () => {
    const r = buildPath({ start: wan, targetUsdPerVideoMinute: 0.01, catalog, steps: null });
    expect(problems(sourcesIn(r, "path"), noLocal)).toEqual([]);
    const levers = r.levers
      .filter((l) => l.source.kind === "published" || l.source.kind.startsWith("not measured"))
      .map((l) => ({ where: `lever ${l.name}`, source: l.source.text, asOf: l.source.asOf }));
    expect(levers.length).toBeGreaterThan(4);
    expect(problems(levers, cited)).toEqual([]);
    const essay = [
      { where: "essay", source: r.essay.source },
      { where: "essay band", source: r.essay.cheaperLabBand.source },
      ...r.essay.outside.map((o, i) => ({ where: `outside[${i}]`, source: o.source })),
    ];
    expect(problems(essay, cited)).toEqual([]);
  });

  it("gpus --json, cost --json, path --json as the CLI prints them", async () => {
    const run = (args: string[]) => cli(args);
    const commands = [
      ["gpus", "--json"],
      ["cost", "--model", "hunyuanvideo", "--frames", "130", "--gpus", "4", "--json"],
      ["cost", "--record", "samples/run.json", "--json"],
      ["path", "--json"],
    ];
    const results = await Promise.all(commands.map(run));
    results.forEach((r, i) => {
      const what = commands[i].join(" ");
      expect(r.stderr, what).toBe("");
      expect(r.code, what).toBe(0);
      expect(localPathIn(r.stdout), what).toBeNull();
      const all = sourcesIn(JSON.parse(r.stdout), what);
      expect(all.length, what).toBeGreaterThan(0);
      expect(problems(all, noLocal)).toEqual([]);
    });
  }, 60_000);
});
