/**
 * Reliability battery: output folders that cannot be written, and a disk
 * that fills up mid-run. A real full disk is a small tmpfs where this process
 * may mount one (root with CAP_SYS_ADMIN); elsewhere the same checks run on an
 * ENOSPC injected into the file writer. Either way nothing may be left that
 * looks complete, and the error line names the file and its folder.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { generateCommand } from "../src/cli/generate.ts";
import { exitCodeOf } from "../src/util/errors.ts";
import { checkOutFolder, cli, lastLine, saveMicroModel, tryMountTmpfs, unmount } from "./helpers/outputs.ts";

// the file writer's writeFile, with a fault that can be armed: fail the n-th write under a folder
const fault = vi.hoisted(() => ({ under: "", failAt: 0, writes: 0 }));
vi.mock("node:fs/promises", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs/promises")>();
  const writeFile: typeof real.writeFile = async (file, data, options) => {
    if (fault.under !== "" && String(file).startsWith(fault.under) && ++fault.writes === fault.failAt) {
      throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    }
    return real.writeFile(file, data, options);
  };
  return { ...real, default: { ...real, writeFile }, writeFile };
});

const root = mkdtempSync(join(tmpdir(), "framecost-rel-out-"));
const model = join(root, "micro");
const mounts: string[] = [];
beforeAll(() => saveMicroModel(model));
afterAll(() => {
  for (const m of mounts) unmount(m);
  rmSync(root, { recursive: true, force: true });
});

const genArgs = (out: string, frames = 4) => [
  "generate",
  "--model",
  model,
  "--backend",
  "wasm",
  "--frames",
  String(frames),
  "--steps",
  "2",
  "--scale",
  "2",
  "--out",
  out,
];
const sweepArgs = (out: string) => [
  "sweep",
  "--model",
  model,
  "--samplers",
  "ddim",
  "--steps",
  "1",
  "--frames",
  "1",
  "--clips",
  "1",
  "--workers",
  "1",
  "--out",
  out,
];

/** generate in this process (so the fault reaches its writes): the exit code main.ts would give */
async function generateHere(out: string, frames: number): Promise<{ code: number; message: string }> {
  // its summary and progress lines are not what these tests read
  const quiet = [vi.spyOn(process.stdout, "write"), vi.spyOn(process.stderr, "write")];
  for (const s of quiet) s.mockImplementation(() => true);
  try {
    const code = await generateCommand({
      steps: 2,
      sampler: "ddim",
      frames,
      fps: 24,
      seed: 0,
      model,
      backend: "wasm",
      device: "cpu",
      out,
      json: true,
      convention: "flops",
      ortProfile: false,
      scale: 2,
      clips: 1,
      cacheInterval: 1,
      precision: "fp32",
      batchCalls: "off",
    });
    return { code, message: "" };
  } catch (err) {
    return { code: exitCodeOf(err), message: (err as Error).message };
  } finally {
    for (const s of quiet) s.mockRestore();
  }
}

describe("output folders that cannot be written", () => {
  it("generate and sweep: exit 2 with one line naming the folder, nothing written", async () => {
    const file = join(root, "a-file");
    writeFileSync(file, "not a folder");
    const cases: Array<[string, RegExp]> = [
      [join(file, "out"), /cannot be written \(ENOTDIR: a part of the path is a file, not a folder\)/],
      [file, /cannot be written \(EEXIST: a file is in the way\)/],
    ];
    const ro = join(root, "read-only");
    mkdirSync(ro);
    if (tryMountTmpfs(ro, 64, true)) {
      mounts.push(ro);
      cases.push([join(ro, "deeper", "out"), /cannot be written \(EROFS: read-only file system\)/]);
    }
    const line = (out: string, why: RegExp) =>
      new RegExp(`^--out ${out} ${why.source}; pass a folder you can write to$`);
    for (const [out, why] of cases) {
      const r = await generateHere(out, 1);
      expect(r.code, out).toBe(2);
      expect(r.message).toMatch(line(out, why));
    }
    // the whole program, once per command: that line alone on stderr, nothing on stdout, exit 2
    const [out, why] = cases.at(-1)!;
    for (const args of [genArgs(out), sweepArgs(out)]) {
      const r = await cli(args);
      expect(r.code, args[0]).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(lastLine(r.stderr).replace(/^framecost: /, "")).toMatch(line(out, why));
      expect(r.stdout).toBe("");
    }
    expect(readdirSync(ro)).toEqual([]);
  }, 60_000);
});

describe("a disk that fills up mid-run", () => {
  it("fails with exit 1 naming the file, at every write of a run; what is left is valid and says incomplete", async () => {
    // count the writes of a whole run, then fail each one in turn (ENOSPC injected into writeFile)
    const frames = 3;
    const clean = join(root, "clean");
    fault.under = clean;
    fault.writes = 0;
    fault.failAt = 0;
    expect((await generateHere(clean, frames)).code).toBe(0);
    const writes = fault.writes;
    expect(writes).toBe(2 * frames + 2); // raw and viewing PNG per frame, contact sheet, run.json
    const failedOn: string[] = [];
    for (let k = 1; k <= writes; k++) {
      const out = join(root, `enospc-${k}`);
      fault.under = out;
      fault.writes = 0;
      fault.failAt = k;
      const r = await generateHere(out, frames);
      expect(r.code, `write ${k}`).toBe(1);
      const m =
        /^cannot write (\S+) \(ENOSPC: no space left on the device\); nothing was left under that name; free space in (\S+) or write somewhere else$/.exec(
          r.message,
        );
      expect(m, r.message).not.toBeNull();
      expect(m![2].startsWith(out)).toBe(true);
      failedOn.push(m![1].slice(out.length + 1));
      const state = await checkOutFolder(out, r.code);
      expect(state.record).toBeNull();
    }
    fault.under = "";
    expect(failedOn).toEqual([
      "frames-raw/frame-000.png",
      "frames/frame-000.png",
      "frames-raw/frame-001.png",
      "frames/frame-001.png",
      "frames-raw/frame-002.png",
      "frames/frame-002.png",
      "contact-sheet.png",
      "run.json",
    ]);
  }, 120_000);

  it("a small tmpfs (or, where mount is refused, an injected ENOSPC): exit 1 naming the file, nothing complete left", async () => {
    // a 4-frame run takes 15 pages of 4 KiB on tmpfs (8 PNGs, contact sheet 2, MP4 1, GIF 2, run.json 2)
    // plus the lock's page: these sizes run out during the frames, the video, run.json, and not at all
    const outcomes: string[] = [];
    for (const kib of [16, 44, 56, 96]) {
      const dir = join(root, `tmpfs-${kib}`);
      mkdirSync(dir);
      const out = join(dir, "out");
      let r: { code: number; message: string };
      if (tryMountTmpfs(dir, kib)) {
        mounts.push(dir);
        r = await generateHere(out, 4);
      } else {
        // the same run with its writes failing from where that much space would run out
        fault.under = out;
        fault.writes = 0;
        fault.failAt = Math.floor(kib / 4) - 1;
        r = await generateHere(out, 4);
        fault.under = "";
      }
      const { code, message: line } = r;
      const state = await checkOutFolder(out, code);
      if (code === 0) {
        outcomes.push("complete");
        continue;
      }
      expect(code, `${kib} KiB`).toBe(1);
      // the error names the file, inside --out
      const file = /(?:cannot write|could not encode) (\S+?):? /.exec(line)?.[1];
      expect(file, line).toBeDefined();
      expect(file!.startsWith(`${out}/`), line).toBe(true);
      expect(state.record).toBeNull();
      outcomes.push(file!.slice(out.length + 1).replace(/\d{3}/, "N"));
    }
    expect(outcomes.at(-1)).toBe("complete");
    expect(outcomes.length).toBe(4);
    console.log(`disk full at: ${outcomes.join(", ")}`);
  }, 120_000);
});
