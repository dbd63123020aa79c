import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tf } from "../src/engine/tf.ts";
import { parseRunRecord } from "../src/meter/record.ts";
import { PRESETS } from "../src/model/config.ts";
import { saveWeights } from "../src/model/io.ts";
import { initParams } from "../src/model/params.ts";
import { runGeneration } from "../src/run/generation.ts";
import { Rng } from "../src/util/rng.ts";

const root = mkdtempSync(join(tmpdir(), "framecost-gen-"));
const model = join(root, "micro");
afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeAll(async () => {
  await tf.setBackend("wasm");
  const rng = new Rng(11);
  // random weights everywhere: fresh adaLN-Zero weights would make every output 0
  saveWeights(
    model,
    PRESETS.micro,
    initParams(PRESETS.micro, 3).map((v) => v + 0.05 * rng.normal()),
  );
});

const base = {
  modelDir: model,
  sampler: "dpmpp-2m",
  steps: 3,
  frames: 3,
  fps: 24,
  seed: 5,
  backend: "wasm",
  convention: "flops" as const,
  calibration: { gemmGflops: 20, backend: "wasm" },
};

function cli(args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    encoding: "utf8",
    timeout: 120_000,
  });
}
const lastLine = (s: string) => s.trim().split("\n").at(-1);

describe("runGeneration", () => {
  it("same seed, same backend, same options: identical frame bytes", async () => {
    const a = await runGeneration(base);
    const b = await runGeneration(base);
    expect(a.frames.length).toBe(3);
    a.frames.forEach((f, i) => {
      expect(Buffer.from(f.buffer).equals(Buffer.from(b.frames[i].buffer))).toBe(true);
    });
    const c = await runGeneration({ ...base, seed: 6 });
    expect(Buffer.from(c.frames[0].buffer).equals(Buffer.from(a.frames[0].buffer))).toBe(false);
  });

  it("meters steps and NFEs as the sampler states them (Heun: 2n-1 per frame)", async () => {
    const r = await runGeneration({ ...base, sampler: "heun", steps: 4 });
    expect(r.record.sampler.nfePerFrame).toBe(7);
    expect(r.record.totals.nfe).toBe(21);
    expect(r.record.totals.steps).toBe(12);
    expect(r.record.frames.map((f) => f.nfe)).toEqual([7, 7, 7]);
    expect(r.record.complete).toBe(true);
    // counted FLOPs per NFE agree with the analytic formula within 1%
    const analytic = r.record.model.flopsPerNfeAnalytic!;
    expect(Math.abs(r.record.model.flopsPerNfe - analytic) / analytic).toBeLessThan(0.01);
  });

  it("stops within a step when asked and marks the record incomplete", async () => {
    let calls = 0;
    const r = await runGeneration({
      ...base,
      frames: 4,
      onProgress: () => calls++,
      shouldStop: () => calls >= 5,
    });
    expect(r.stopped).toBe(true);
    expect(r.frames.length).toBe(1); // frame 0 done (3 calls), frame 1 stopped after 2 calls
    expect(r.record.complete).toBe(false);
    expect(r.record.totals.nfe).toBe(5);
  });
});

describe("framecost generate", () => {
  it("writes frames, contact sheet, MP4, GIF and a run.json that reads back; --json prints only the record", () => {
    const out = join(root, "out");
    const r = cli([
      "generate",
      "--model",
      model,
      "--frames",
      "2",
      "--steps",
      "2",
      "--backend",
      "wasm",
      "--out",
      out,
      "--json",
    ]);
    expect(r.status).toBe(0);
    const rec = parseRunRecord(r.stdout, "stdout");
    expect(rec.totals.frames).toBe(2);
    for (const f of [
      "contact-sheet.png",
      "clip.mp4",
      "clip.gif",
      "run.json",
      "frames/frame-000.png",
      "frames-raw/frame-001.png",
    ]) {
      expect(existsSync(join(out, f))).toBe(true);
    }
    const fromFile = parseRunRecord(readFileSync(join(out, "run.json"), "utf8"), "run.json");
    expect(fromFile.complete).toBe(true);
    expect(fromFile.cost).toBeDefined();
  }, 150_000);

  it("rejects bad input with one line and exit 2, leaving no output", () => {
    const out = join(root, "bad");
    const cases: Array<[string[], RegExp]> = [
      [["--sampler", "lms"], /--sampler must be one of ddpm, ddim, euler, heun, dpmpp-2m, got "lms"/],
      [["--steps", "0"], /--steps must be an integer between 1 and 1000, got "0"/],
      [["--steps", "5000"], /--steps must be an integer between 1 and 1000, got "5000"/],
      [["--frames", "0"], /--frames must be an integer between 1 and 10000, got "0"/],
      [["--model", join(root, "missing")], /--model must be an existing folder, got ".*missing"/],
    ];
    for (const [args, message] of cases) {
      const r = cli(["generate", "--model", model, "--out", out, ...args]);
      expect(r.status, args.join(" ")).toBe(2);
      expect(lastLine(r.stderr)).toMatch(message);
      expect(existsSync(join(out, "run.json"))).toBe(false);
    }
    // a folder inside a regular file cannot be created
    const file = join(root, "a-file");
    writeFileSync(file, "");
    const r = cli(["generate", "--model", model, "--out", join(file, "out")]);
    expect(r.status).toBe(2);
    expect(lastLine(r.stderr)).toMatch(
      /--out .*a-file\/out cannot be written \(ENOTDIR: a part of the path is a file, not a folder\); pass a folder you can write to/,
    );
  }, 300_000);

  it("Ctrl-C writes the frames done and an incomplete run.json, exit 130", async () => {
    const out = join(root, "interrupted");
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "src/cli/main.ts",
        "generate",
        "--model",
        model,
        "--frames",
        "400",
        "--steps",
        "10",
        "--backend",
        "wasm",
        "--out",
        out,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    let sent = false;
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on("data", (d) => {
        stderr += String(d);
        // one Ctrl-C, as a user presses it (a second one would kill the process outright)
        if (!sent && stderr.includes("frame 2/400 done")) {
          sent = true;
          child.kill("SIGINT");
        }
      });
      child.on("exit", (c) => resolve(c));
    });
    expect(code).toBe(130);
    const rec = parseRunRecord(readFileSync(join(out, "run.json"), "utf8"), "run.json");
    expect(rec.complete).toBe(false);
    expect(rec.totals.frames).toBeGreaterThanOrEqual(2);
    expect(existsSync(join(out, "frames", "frame-001.png"))).toBe(true);
    expect(existsSync(join(out, "clip.mp4"))).toBe(false);
  }, 150_000);
});
