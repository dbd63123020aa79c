import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attachGuide } from "../src/cli/guide.ts";
import { tf } from "../src/engine/tf.ts";
import { PRESETS } from "../src/model/config.ts";
import { loadWeights, saveWeights } from "../src/model/io.ts";
import { initParams } from "../src/model/params.ts";
import { runGeneration } from "../src/run/generation.ts";
import { Rng } from "../src/util/rng.ts";

const root = mkdtempSync(join(tmpdir(), "framecost-guide-"));
const model = join(root, "micro");
const weaker = join(root, "weaker");
const other = join(root, "other-preset");
afterAll(() => rmSync(root, { recursive: true, force: true }));
// random weights everywhere (fresh adaLN-Zero weights would make every output 0); the guide is another draw
const noisy = (seed: number, scale: number) => {
  const rng = new Rng(seed);
  return initParams(PRESETS.micro, 3).map((v) => v + scale * rng.normal());
};
beforeAll(async () => {
  await tf.setBackend("wasm");
  saveWeights(model, PRESETS.micro, noisy(11, 0.05));
  saveWeights(weaker, PRESETS.micro, noisy(12, 0.05));
  saveWeights(other, { ...PRESETS.micro, depth: 1 }, initParams({ ...PRESETS.micro, depth: 1 }, 3));
});

// dpmpp-2m with 4 trailing steps calls the network at t = 999, 749, 499, 249
const base = {
  modelDir: model,
  sampler: "dpmpp-2m",
  steps: 4,
  frames: 2,
  fps: 24,
  seed: 5,
  backend: "wasm",
  convention: "flops" as const,
  calibration: { gemmGflops: 20, backend: "wasm" },
};
const same = (a: Float32Array[], b: Float32Array[]) =>
  a.length === b.length && a.every((f, i) => Buffer.from(f.buffer).equals(Buffer.from(b[i].buffer)));

describe("autoguidance", () => {
  it("D + w (D - G): a guide equal to the model changes nothing but the calls, which are metered as NFEs", async () => {
    const plain = await runGeneration(base);
    expect(plain.record.sampler.nfePerFrame).toBe(4);
    expect(plain.record.sampler.guidance).toBeNull();
    const selfGuided = await runGeneration({
      ...base,
      guidance: { guideDir: model, weight: 3, fromT: 500, frames: "all" },
    });
    expect(same(selfGuided.frames, plain.frames)).toBe(true);
    // t >= 500: 999 and 749 call the guide too
    expect(selfGuided.record.sampler.nfePerFrame).toBe(6);
    expect(selfGuided.record.totals.nfe).toBe(12);
    expect(selfGuided.record.frames.map((f) => f.nfe)).toEqual([6, 6]);
    expect(selfGuided.record.sampler.guidance).toEqual({
      kind: "autoguidance",
      guide: model,
      weight: 3,
      fromT: 500,
      frames: "all",
      guideCallsPerFrame: 2,
    });
    // the guide is the same network, so the counted cost per NFE does not move
    expect(selfGuided.record.model.flopsPerNfe).toBeCloseTo(plain.record.model.flopsPerNfe, 0);
  });

  it("another guide moves the frames, more with more weight; weight 0 is no guidance", async () => {
    const plain = await runGeneration(base);
    const g = (weight: number) =>
      runGeneration({ ...base, guidance: { guideDir: weaker, weight, fromT: 0 } });
    const dist = (a: Float32Array[]) => {
      let d = 0;
      for (const [i, f] of a.entries())
        for (const [j, v] of f.entries()) d += Math.abs(v - plain.frames[i][j]);
      return d;
    };
    const [w1, w2, w0] = [await g(1), await g(2), await g(0)];
    expect(w1.record.sampler.nfePerFrame).toBe(8);
    expect(dist(w1.frames)).toBeGreaterThan(0);
    expect(dist(w2.frames)).toBeGreaterThan(dist(w1.frames));
    expect(same(w0.frames, plain.frames)).toBe(true);
    expect(w0.record.sampler.nfePerFrame).toBe(4);
  });

  it("guiding first frames only: the frames with history are the unguided ones' given the same first frame", async () => {
    const r = await runGeneration({
      ...base,
      frames: 3,
      guidance: { guideDir: weaker, weight: 2, fromT: 500, frames: "first" },
    });
    expect(r.record.frames.map((f) => f.nfe)).toEqual([6, 4, 4]);
    expect(r.record.sampler.nfePerFrame).toBe(4);
    expect(r.record.sampler.guidance).toMatchObject({ frames: "first", guideCallsPerFrame: 2 });
    const all = await runGeneration({
      ...base,
      frames: 3,
      guidance: { guideDir: weaker, weight: 2, fromT: 500, frames: "all" },
    });
    expect(all.record.frames.map((f) => f.nfe)).toEqual([6, 6, 6]);
    expect(same(all.frames.slice(0, 1), r.frames.slice(0, 1))).toBe(true);
    expect(same(all.frames.slice(1), r.frames.slice(1))).toBe(false);
  });

  it("a model folder's guide is the default; --guidance 0 turns it off; the guide is stored in bfloat16", async () => {
    const dir = join(root, "with-guide");
    cpSync(model, dir, { recursive: true });
    attachGuide(dir, weaker, { weight: 2, fromT: 500, frames: "all" });
    expect(loadWeights(join(dir, "guide")).manifest.dtype).toBe("bfloat16");
    expect(loadWeights(dir).manifest.guidance).toEqual({
      guide: "guide",
      weight: 2,
      fromT: 500,
      frames: "all",
    });
    const byDefault = await runGeneration({ ...base, modelDir: dir });
    expect(byDefault.record.sampler.guidance).toMatchObject({ weight: 2, fromT: 500 });
    expect(byDefault.record.sampler.nfePerFrame).toBe(6);
    const off = await runGeneration({ ...base, modelDir: dir, guidance: { weight: 0 } });
    expect(off.record.sampler.guidance).toBeNull();
    expect(same(off.frames, (await runGeneration(base)).frames)).toBe(true);
  });

  it("refuses a guide that is another network, and a weight with no guide", async () => {
    await expect(runGeneration({ ...base, guidance: { guideDir: other, weight: 2 } })).rejects.toThrow(
      /guide .*other-preset is not the same network as the model \(depth 1 vs 2\); pass a snapshot of the same preset/,
    );
    await expect(runGeneration({ ...base, guidance: { weight: 2 } })).rejects.toThrow(
      /--guidance 2 needs a guide model, and .*model\.json names none; pass --guide DIR/,
    );
  });
});

describe("framecost guide / generate --guidance", () => {
  const cli = (args: string[]) =>
    spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
      encoding: "utf8",
      timeout: 120_000,
    });
  it("attaches a guide, then generate guides by default and says so", () => {
    const dir = join(root, "cli-model");
    cpSync(model, dir, { recursive: true });
    const a = cli([
      "guide",
      dir,
      "--from",
      weaker,
      "--weight",
      "1.5",
      "--from-t",
      "600",
      "--frames",
      "first",
    ]);
    expect(a.status).toBe(0);
    expect(a.stdout).toMatch(/guides first frames with weight 1\.5 at t >= 600/);
    expect(JSON.parse(readFileSync(join(dir, "model.json"), "utf8")).guidance).toEqual({
      guide: "guide",
      weight: 1.5,
      fromT: 600,
      frames: "first",
    });
    const out = join(root, "cli-out");
    const g = cli([
      "generate",
      "--model",
      dir,
      "--sampler",
      "dpmpp-2m",
      "--frames",
      "1",
      "--steps",
      "4",
      "--backend",
      "wasm",
      "--out",
      out,
    ]);
    expect(g.status).toBe(0);
    // t >= 600: 999 and 749, on the first frame (the only one here)
    expect(g.stdout).toMatch(/dpmpp-2m 4 steps = 4 NFEs per frame \(6 NFEs/);
    expect(g.stdout).toMatch(
      /guidance {2}autoguidance weight 1\.5 by .*guide at t >= 600: each first frame of a clip \(no history\) calls the guide 2 more times/,
    );
    const bad = cli(["guide", dir, "--from", other]);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split("\n").at(-1)).toMatch(
      /is not the same network as the model \(depth 1 vs 2\)/,
    );
    // the defaults: weight 2 from t 300, every frame
    expect(cli(["guide", dir, "--from", weaker]).status).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, "model.json"), "utf8")).guidance).toEqual({
      guide: "guide",
      weight: 2,
      fromT: 300,
      frames: "all",
    });
  }, 150_000);
});
