/**
 * Reliability battery: two runs into one --out. The second is refused while
 * the first holds the folder's lock (`.framecost.lock`: pid, host, command,
 * start); a lock whose process died is taken over; a lock is released on exit.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCK_FILE, lockDir } from "../src/media/files.ts";
import { UserError } from "../src/util/errors.ts";
import { checkOutFolder, cli, lastLine, saveMicroModel, start } from "./helpers/outputs.ts";

const root = mkdtempSync(join(tmpdir(), "framecost-rel-lock-"));
const model = join(root, "micro");
beforeAll(() => saveMicroModel(model));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** a pid that was just used and is now free: a run killed without releasing its lock */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  return Number(r.stdout);
}

const lockText = (info: object) => `${JSON.stringify(info)}\n`;

describe("lockDir", () => {
  it("refuses a second holder with one line naming it, and is free again after release", () => {
    const dir = join(root, "unit");
    mkdirSync(dir);
    const a = lockDir(dir, "generate");
    const held = JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8"));
    expect(held).toMatchObject({ pid: process.pid, host: hostname(), command: "generate" });
    expect(() => lockDir(dir, "sweep")).toThrow(UserError);
    expect(() => lockDir(dir, "sweep")).toThrow(
      new RegExp(
        `^--out ${dir} is in use by framecost generate \\(pid ${process.pid}, started ${held.startedAt}\\); wait for it to finish or pass another --out \\(if no framecost is writing there, delete ${dir}/${LOCK_FILE}\\)$`,
      ),
    );
    a.release();
    a.release(); // twice is harmless
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    lockDir(dir, "sweep").release();
  });

  it("takes over a lock whose process is gone; keeps one from another host or one it cannot read", () => {
    const dir = join(root, "stale");
    mkdirSync(dir);
    const path = join(dir, LOCK_FILE);
    const pid = deadPid();
    writeFileSync(
      path,
      lockText({ pid, host: hostname(), command: "generate", startedAt: "2026-01-01T00:00:00Z" }),
    );
    const l = lockDir(dir, "generate");
    expect(JSON.parse(readFileSync(path, "utf8")).pid).toBe(process.pid);
    l.release();

    // the same pid on another machine (a shared folder) cannot be checked: it stays
    writeFileSync(
      path,
      lockText({ pid, host: "elsewhere", command: "sweep", startedAt: "2026-01-01T00:00:00Z" }),
    );
    expect(() => lockDir(dir, "generate")).toThrow(
      `is in use by framecost sweep (pid ${pid} on elsewhere, started 2026-01-01T00:00:00Z)`,
    );
    writeFileSync(path, "garbage");
    expect(() => lockDir(dir, "generate")).toThrow(`is in use by a lock file framecost cannot read;`);
    expect(readFileSync(path, "utf8")).toBe("garbage");
  });

  it("release leaves a lock that is no longer its own", () => {
    const dir = join(root, "taken");
    mkdirSync(dir);
    const l = lockDir(dir, "generate");
    const other = lockText({ pid: process.ppid, host: hostname(), command: "sweep", startedAt: "x" });
    writeFileSync(join(dir, LOCK_FILE), other);
    l.release();
    expect(readFileSync(join(dir, LOCK_FILE), "utf8")).toBe(other);
  });
});

describe("two runs into one --out", () => {
  it("while a generate runs, a second generate and a sweep are refused (exit 2, nothing of theirs written); it finishes unmixed", async () => {
    const out = join(root, "shared");
    // long enough to outlast the other two however slow the machine; stopped with Ctrl-C once they are refused
    const first = start([
      "generate",
      "--model",
      model,
      "--backend",
      "wasm",
      "--frames",
      "1000",
      "--steps",
      "2",
      "--out",
      out,
    ]);
    for (let i = 0; i < 600 && !existsSync(join(out, LOCK_FILE)); i++)
      await new Promise((r) => setTimeout(r, 100));
    const holder = JSON.parse(readFileSync(join(out, LOCK_FILE), "utf8"));
    expect(holder.pid).toBe(first.child.pid);
    const [gen, sweep] = await Promise.all([
      cli([
        "generate",
        "--model",
        model,
        "--backend",
        "wasm",
        "--frames",
        "2",
        "--steps",
        "2",
        "--seed",
        "9",
        "--out",
        out,
      ]),
      cli([
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
        "--out",
        out,
      ]),
    ]);
    for (const r of [gen, sweep]) {
      expect(r.code).toBe(2);
      expect(lastLine(r.stderr)).toBe(
        `framecost: --out ${out} is in use by framecost generate (pid ${holder.pid}, started ${holder.startedAt}); wait for it to finish or pass another --out (if no framecost is writing there, delete ${out}/${LOCK_FILE})`,
      );
    }
    first.child.kill("SIGINT");
    const a = await first.done;
    expect(a.code).toBe(130);
    const state = await checkOutFolder(out, 130);
    expect(state.record?.seed).toBe(0); // the first run's, not the refused one's
    expect(state.record?.video.frames).toBe(1000);
    expect(existsSync(join(out, "cells"))).toBe(false);
    // checkOutFolder found no lock left: released on the way out
  }, 120_000);

  it("a run killed outright (SIGKILL) leaves a stale lock that the next run takes over", async () => {
    const out = join(root, "killed");
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "src/cli/main.ts",
        "generate",
        "--model",
        model,
        "--backend",
        "wasm",
        "--frames",
        "50",
        "--steps",
        "3",
        "--out",
        out,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    await new Promise<void>((resolve) => {
      let err = "";
      child.stderr.on("data", (d) => {
        err += String(d);
        if (err.includes("frame 1/50 done")) {
          child.kill("SIGKILL");
          resolve();
        }
      });
    });
    await new Promise((r) => child.once("exit", r));
    expect(JSON.parse(readFileSync(join(out, LOCK_FILE), "utf8")).pid).toBe(child.pid);
    const r = await cli([
      "generate",
      "--model",
      model,
      "--backend",
      "wasm",
      "--frames",
      "2",
      "--steps",
      "2",
      "--out",
      out,
    ]);
    expect(r.code).toBe(0);
    expect((await checkOutFolder(out, 0)).frames).toBe(2);
  }, 120_000);
});
