/**
 * Reliability battery: SIGINT and SIGTERM at seeded random points of
 * `generate` (start-up and loading, mid-frame, writing frames, encoding) and
 * of `sweep`. A stopped run exits non-zero (130 for SIGINT, 143 for SIGTERM),
 * its frames are valid PNGs, run.json (if written) says incomplete and why;
 * `sweep --resume` then finishes the grid with the figures of an
 * uninterrupted sweep.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseRunRecord } from "../src/meter/record.ts";
import { parseSweepRecord } from "../src/report/sweep.ts";
import { runSweep } from "../src/run/sweep.ts";
import { Rng } from "../src/util/rng.ts";
import { checkOutFolder, cli, saveMicroModel, shellCode } from "./helpers/outputs.ts";

const root = mkdtempSync(join(tmpdir(), "framecost-rel-sig-"));
const model = join(root, "micro");
beforeAll(() => saveMicroModel(model));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const SIGNALS = ["SIGINT", "SIGTERM"] as const;
const codeOf = { SIGINT: 130, SIGTERM: 143 };

describe("generate stopped by a signal", () => {
  it("at seeded random points: exit 130/143, valid PNGs, run.json absent or incomplete with the signal", async () => {
    const rng = new Rng(18);
    const frames = 6;
    // where each run is stopped: the stderr line to wait for, then a random delay
    const points = [
      { phase: "start-up or loading", marker: "", delayMs: rng.int(0, 4000) },
      { phase: "mid-frame", marker: `frame ${rng.int(1, 3)}/${frames} done`, delayMs: rng.int(0, 30) },
      { phase: "mid-frame", marker: `frame ${rng.int(3, 5)}/${frames} done`, delayMs: rng.int(0, 30) },
      { phase: "writing frames", marker: "generate: writing", delayMs: rng.int(0, 5) },
      { phase: "encoding", marker: "encoding clip.mp4", delayMs: rng.int(0, 40) },
      { phase: "encoding", marker: "encoding clip.gif", delayMs: rng.int(0, 40) },
    ];
    const runs = await Promise.all(
      points.map(async (p, i) => {
        const signal = SIGNALS[i % 2];
        const out = join(root, `gen-${i}`);
        const args = [
          "generate",
          "--model",
          model,
          "--backend",
          "wasm",
          "--frames",
          String(frames),
          "--steps",
          "4",
        ];
        const r = await cli([...args, "--out", out], { marker: p.marker, delayMs: p.delayMs, signal });
        return { ...p, signal, out, r };
      }),
    );
    const seen: string[] = [];
    for (const { phase, signal, out, r, marker, delayMs } of runs) {
      const what = `${signal} ${delayMs} ms after "${marker}" (${phase})`;
      const state = await checkOutFolder(out, r.code);
      const rec = state.record;
      if (rec?.complete) {
        // the signal came after the last file: nothing was lost
        seen.push("after the end");
        continue;
      }
      expect(shellCode(r), what).toBe(codeOf[signal]);
      if (rec) {
        expect(rec.interrupted?.signal, what).toBe(signal);
        seen.push(rec.interrupted!.during);
        expect(state.videos.length, what).toBeLessThan(2);
      } else {
        expect(state.frames, what).toBe(0);
        seen.push("before the first frame");
      }
    }
    console.log(`generate stopped: ${seen.join(", ")}`);
    // the anchored points land where they aim (the start-up one may land anywhere up to the first frame)
    expect(seen.slice(1, 3)).toEqual(["generating", "generating"]);
    expect(seen.slice(4).every((s) => s === "writing" || s === "after the end")).toBe(true);
  }, 120_000);
});

describe("sweep stopped by a signal", () => {
  it("exit 130/143 keeps finished cells; --resume finishes the grid with the uninterrupted figures", async () => {
    const grid = { samplers: ["ddim", "euler"], steps: [1, 4], frames: 3, clips: 1, referenceClips: 4 };
    const args = (out: string) => [
      "sweep",
      "--model",
      model,
      "--samplers",
      grid.samplers.join(","),
      "--steps",
      grid.steps.join(","),
      "--frames",
      String(grid.frames),
      "--clips",
      String(grid.clips),
      "--reference-clips",
      String(grid.referenceClips),
      "--workers",
      "1",
      "--gpus",
      "h100-sxm",
      "--out",
      out,
    ];
    const rng = new Rng(1818);
    const trials = SIGNALS.map((signal, i) => ({
      signal,
      out: join(root, `sweep-${i}`),
      marker: `(${rng.int(1, 2)}/4)`,
      delayMs: rng.int(0, 50),
    }));
    const [reference, ...stopped] = await Promise.all([
      runSweep({
        ...grid,
        seed: 0,
        fps: 24,
        model,
        backend: "wasm",
        workers: 1,
        out: join(root, "sweep-ref"),
        resume: false,
        convention: "flops",
        gpus: ["h100-sxm"],
        report: false,
      }),
      ...trials.map((t) => cli(args(t.out), { marker: t.marker, delayMs: t.delayMs, signal: t.signal })),
    ]);
    const figures = (cells: typeof reference.sweep.cells, dir: string) =>
      cells.map((c) => {
        const rec = parseRunRecord(readFileSync(join(dir, c.record as string), "utf8"), c.record as string);
        return {
          cell: `${c.sampler}-${c.steps}`,
          nfePerFrame: c.nfePerFrame,
          quality: c.quality,
          nfe: rec.totals.nfe,
          steps: rec.totals.steps,
          flops: rec.totals.flops,
          frames: rec.totals.frames,
        };
      });
    const want = figures(reference.sweep.cells, join(root, "sweep-ref"));
    expect(want).toHaveLength(4);
    const kept: number[] = [];
    for (const [i, t] of trials.entries()) {
      const r = stopped[i];
      const what = `${t.signal} ${t.delayMs} ms after "${t.marker}"`;
      const partial = parseSweepRecord(
        JSON.parse(readFileSync(join(t.out, "sweep.json"), "utf8")),
        "sweep.json",
      );
      if (partial.complete) {
        kept.push(4); // the signal came after the last cell
        continue;
      }
      expect(shellCode(r), what).toBe(codeOf[t.signal]);
      expect(r.stderr, what).toContain(
        "framecost: sweep interrupted; finished cells are in cells/, rerun with --resume",
      );
      // what was kept is finished and equal to the uninterrupted figures
      expect(figures(partial.cells, t.out), what).toEqual(
        want.filter((w) => partial.cells.some((c) => `${c.sampler}-${c.steps}` === w.cell)),
      );
      kept.push(partial.cells.length);
    }
    const resumed = await Promise.all(trials.map((t) => cli([...args(t.out), "--resume"])));
    for (const [i, t] of trials.entries()) {
      expect(resumed[i].code).toBe(0);
      const done = parseSweepRecord(
        JSON.parse(readFileSync(join(t.out, "sweep.json"), "utf8")),
        "sweep.json",
      );
      expect(done.complete).toBe(true);
      expect(figures(done.cells, t.out)).toEqual(want);
    }
    console.log(`sweep stopped with ${kept.join(" and ")} of 4 cells kept; resumed to 4 with equal figures`);
    expect(kept.some((k) => k < 4)).toBe(true);
  }, 180_000);
});
