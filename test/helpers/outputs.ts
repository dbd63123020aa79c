/**
 * What the reliability battery checks of an output folder after a run that
 * may have failed or been stopped: nothing half written under a final name,
 * nothing that claims to be complete when it is not.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { parseRunRecord, type RunRecord } from "../../src/meter/record.ts";
import { PRESETS } from "../../src/model/config.ts";
import { saveWeights } from "../../src/model/io.ts";
import { initParams } from "../../src/model/params.ts";
import { Rng } from "../../src/util/rng.ts";

/** A micro model with random weights (fresh adaLN-Zero weights would make every output 0). */
export function saveMicroModel(dir: string, seed = 11): void {
  const rng = new Rng(seed);
  saveWeights(
    dir,
    PRESETS.micro,
    initParams(PRESETS.micro, 3).map((v) => v + 0.05 * rng.normal()),
  );
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

export interface FolderState {
  /** frames/frame-NNN.png written (each checked to decode) */
  frames: number;
  /** null: no run.json */
  record: RunRecord | null;
  videos: string[];
}

/**
 * Throws (with what is wrong) unless `out` is consistent with exit code
 * `code` (null: killed by a signal): no temporary file or lock left, every PNG decodes, frames are
 * numbered without gaps in both frame folders, run.json (if any) parses; a
 * complete record only after exit 0 with both videos and every frame there,
 * and a failed or stopped run never leaves a complete record.
 */
export async function checkOutFolder(out: string, code: number | null): Promise<FolderState> {
  const files = walk(out).map((p) => relative(out, p));
  const leftovers = files.filter((f) => /(^|\/)\.tmp-/.test(f) || f.endsWith(".framecost.lock"));
  if (leftovers.length > 0) throw new Error(`${out}: left behind ${leftovers.join(", ")}`);
  for (const f of files.filter((f) => f.endsWith(".png"))) {
    try {
      const { info } = await sharp(join(out, f)).raw().toBuffer({ resolveWithObject: true });
      if (!(info.width > 0 && info.height > 0)) throw new Error("empty image");
    } catch (err) {
      throw new Error(`${out}/${f} is not a valid PNG: ${(err as Error).message}`);
    }
  }
  const names = (d: string) =>
    files
      .filter((f) => f.startsWith(`${d}/`))
      .map((f) => f.slice(d.length + 1))
      .sort();
  const frames = names("frames");
  const expected = frames.map((_, i) => `frame-${String(i).padStart(3, "0")}.png`);
  if (JSON.stringify(frames) !== JSON.stringify(expected))
    throw new Error(`${out}/frames holds ${frames.join(", ")}`);
  const raw = names("frames-raw");
  // the raw copy of a frame is written just before its viewing copy
  if (!(raw.length === frames.length || raw.length === frames.length + 1))
    throw new Error(`${out}: ${raw.length} raw frames for ${frames.length} frames`);
  const videos = ["clip.mp4", "clip.gif"].filter((v) => files.includes(v));
  let record: RunRecord | null = null;
  if (files.includes("run.json")) {
    record = parseRunRecord(readFileSync(join(out, "run.json"), "utf8"), `${out}/run.json`);
    if (record.complete) {
      // null: killed by a signal that came after everything was written (the files are complete)
      if (code !== 0 && code !== null) throw new Error(`${out}/run.json says complete after exit ${code}`);
      if (videos.length !== 2) throw new Error(`${out}/run.json says complete without both videos`);
      if (frames.length !== record.video.frames || record.totals.frames !== record.video.frames)
        throw new Error(
          `${out}/run.json says complete with ${frames.length} of ${record.video.frames} frames`,
        );
    } else {
      if (code === 0) throw new Error(`${out}/run.json says incomplete after exit 0`);
      // totals.frames counts the frame the stop cut short; its PNG is not written
      if (frames.length > record.totals.frames || frames.length < record.totals.frames - 1)
        throw new Error(`${out}: ${frames.length} frames for a run.json of ${record.totals.frames}`);
      if (!record.interrupted) throw new Error(`${out}/run.json is incomplete and does not say why`);
    }
  } else if (code === 0) throw new Error(`${out}: exit 0 without run.json`);
  return { frames: frames.length, record, videos };
}

const REPO = fileURLToPath(new URL("../..", import.meta.url));

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts `framecost ARGS`; `at`, if given, sends `signal` `delayMs` after the
 * first time stderr contains `marker` (or after spawning, for an empty marker).
 */
export function start(
  args: string[],
  at?: { marker: string; delayMs: number; signal: NodeJS.Signals },
): { child: ChildProcess; done: Promise<CliRun> } {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    // the repository, wherever the test has moved its own working folder
    cwd: REPO,
    // a user's run: no stack traces even where the developer's shell has FRAMECOST_DEBUG set
    env: { ...process.env, FRAMECOST_DEBUG: "" },
  });
  const done = new Promise<CliRun>((resolve) => {
    let stdout = "";
    let stderr = "";
    let armed = at !== undefined;
    const fire = () => {
      armed = false;
      setTimeout(() => child.kill(at!.signal), at!.delayMs);
    };
    if (at && at.marker === "") fire();
    child.stdout!.on("data", (d) => {
      stdout += String(d);
    });
    child.stderr!.on("data", (d) => {
      stderr += String(d);
      if (armed && stderr.includes(at!.marker)) fire();
    });
    child.on("exit", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** Runs `framecost ARGS` to its end (see `start`). */
export function cli(
  args: string[],
  at?: { marker: string; delayMs: number; signal: NodeJS.Signals },
): Promise<CliRun> {
  return start(args, at).done;
}

export const lastLine = (s: string) => s.trim().split("\n").at(-1) ?? "";

/** Exit status as a shell reports it: 128 + signal number for a death by signal. */
export function shellCode(r: CliRun): number {
  if (r.code !== null) return r.code;
  return r.signal === "SIGINT" ? 130 : r.signal === "SIGTERM" ? 143 : 137;
}

/**
 * Mounts a tmpfs of `kib` KiB (read-only with `ro`) on `dir` where this
 * process may (root with CAP_SYS_ADMIN); false where mount is refused (a
 * sandbox, a container), and the caller falls back to a simulated fault.
 * FRAMECOST_TEST_NO_MOUNT=1 takes the fallback path on purpose.
 */
export function tryMountTmpfs(dir: string, kib: number, ro = false): boolean {
  if (process.env.FRAMECOST_TEST_NO_MOUNT === "1") return false;
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${kib}k${ro ? ",ro" : ""}`, "tmpfs", dir], {
    encoding: "utf8",
  });
  return r.status === 0;
}

export function unmount(dir: string): void {
  spawnSync("umount", [dir]);
}
