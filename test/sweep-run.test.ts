import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PRESETS } from "../src/model/config.ts";
import { saveWeights } from "../src/model/io.ts";
import { initParams } from "../src/model/params.ts";
import { runSweep, type SweepOptions } from "../src/run/sweep.ts";
import { Rng } from "../src/util/rng.ts";

const root = mkdtempSync(join(tmpdir(), "framecost-sweep-"));
const model = join(root, "micro");
afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeAll(() => {
  const rng = new Rng(2);
  saveWeights(
    model,
    PRESETS.micro,
    initParams(PRESETS.micro, 1).map((v) => v + 0.05 * rng.normal()),
  );
});

const opts = (out: string, over: Partial<SweepOptions> = {}): SweepOptions => ({
  steps: [1, 3],
  samplers: ["ddim", "heun"],
  frames: 2,
  clips: 2,
  referenceClips: 4,
  seed: 0,
  fps: 24,
  model,
  backend: "wasm",
  workers: 2,
  out,
  resume: false,
  convention: "flops",
  gpus: ["h100-sxm"],
  report: false,
  ...over,
});

describe("sweep", () => {
  it("runs every cell on two workers, scores quality, fits wall time against NFEs, and --resume keeps finished cells", async () => {
    const out = join(root, "grid");
    const progress: number[] = [];
    const res = await runSweep(opts(out, { onProgress: (done, total) => progress.push(done, total) }));
    expect(res.interrupted).toBe(false);
    // the progress reaches every network call of the grid: (1 + 3 + 1 + 5) NFEs x 2 frames x 2 clips
    expect(progress.slice(-2)).toEqual([40, 40]);
    const cells = res.sweep.cells;
    expect(cells.map((c) => `${c.sampler}-${c.steps}`)).toEqual(["ddim-1", "ddim-3", "heun-1", "heun-3"]);
    expect(cells.map((c) => c.nfePerFrame)).toEqual([1, 3, 1, 5]);
    for (const c of cells) {
      expect(existsSync(join(out, "cells", `${c.sampler}-${c.steps}.json`))).toBe(true);
      expect(c.quality?.swdPixels).toBeGreaterThan(0);
      expect(c.usdPerVideoMinute.byGpu["h100-sxm"]).toBeGreaterThan(0);
      expect(c.wallMsPerFrame).toBeGreaterThan(0);
    }
    expect(res.sweep.fits.map((f) => f.sampler)).toEqual(["ddim", "heun"]);
    expect(res.sweep.fits.every((f) => f.ok)).toBe(true);

    const before = statSync(join(out, "cells", "heun-3.json")).mtimeMs;
    const again = await runSweep(opts(out, { resume: true }));
    expect(again.sweep.cells.length).toBe(4);
    // nothing re-ran: the cell files were not rewritten
    expect(statSync(join(out, "cells", "heun-3.json")).mtimeMs).toBe(before);
    expect(JSON.parse(readFileSync(join(out, "cells", "ddim-1.json"), "utf8")).complete).toBe(true);

    // one worker runs all four cells on one loaded network: the frames (hence the scores) match the two-worker run
    const single = await runSweep(opts(join(root, "single"), { workers: 1 }));
    expect(single.sweep.cells.map((c) => c.quality)).toEqual(cells.map((c) => c.quality));
  }, 300_000);

  it("refuses an unknown sampler before starting any worker", async () => {
    await expect(runSweep(opts(join(root, "bad"), { samplers: ["lms"] }))).rejects.toThrow(
      '--sampler must be one of ddpm, ddim, euler, heun, dpmpp-2m, got "lms"',
    );
  });
});
