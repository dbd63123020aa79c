/**
 * Output files appear complete or not at all: write to a temporary name in the
 * same folder, then rename (atomic on one filesystem). An output folder is
 * checked before a run spends minutes, and locked while a run writes into it.
 */
import { randomBytes } from "node:crypto";
import {
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, extname, join, resolve } from "node:path";
import { RuntimeFailure, UserError } from "../util/errors.ts";

/** A hidden sibling of `path` that keeps its extension (tools such as ffmpeg pick the format from it). */
export function tempPathFor(path: string): string {
  const ext = extname(path);
  const stem = basename(path, ext);
  return join(dirname(path), `.tmp-${stem}-${process.pid}-${randomBytes(4).toString("hex")}${ext}`);
}

/** What a failed write's errno means, in words (the codes a full, read-only or missing disk gives). */
const WRITE_ERRORS: Record<string, string> = {
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOTDIR: "a part of the path is a file, not a folder",
  EISDIR: "a folder is in the way",
  EEXIST: "a file is in the way",
  ENOENT: "the folder disappeared",
  EIO: "input/output error",
  EFBIG: "file too large",
};

function errnoCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === "string" && code.startsWith("E") ? code : undefined;
}

/** Runs `write(tmp)`, then renames tmp to `path`; removes tmp when writing fails. Creates the folder. */
export async function writeAtomically(
  path: string,
  write: (tmpPath: string) => Promise<void>,
): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    await mkdir(dirname(path), { recursive: true });
    await write(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    const code = errnoCode(err);
    // node's own message ("ENOSPC: no space left on device, write") names no file: say which one and where
    if (code && !(err instanceof UserError) && !(err instanceof RuntimeFailure)) {
      throw new RuntimeFailure(
        `cannot write ${path} (${code}: ${WRITE_ERRORS[code] ?? (err as Error).message}); nothing was left under that name; free space in ${dirname(path)} or write somewhere else`,
      );
    }
    throw err;
  }
}

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await writeAtomically(path, (tmp) => writeFile(tmp, data));
}

/**
 * Checks a folder the user named for output can be made and written, before
 * spending minutes generating; `flag` names the option in the error line.
 */
export function ensureWritableDir(dir: string, flag = "--out"): void {
  try {
    mkdirSync(dir, { recursive: true });
    const probe = join(dir, `.framecost-write-test-${process.pid}`);
    writeFileSync(probe, "");
    rmSync(probe);
  } catch (err) {
    let code = errnoCode(err) ?? (err as Error).message;
    // a recursive mkdir reports ENOENT for any failure below an existing folder (EROFS, EACCES...): ask again
    // one level below the deepest folder that exists, where mkdir gives the real reason
    if (code === "ENOENT") code = mkdirFailure(dir) ?? code;
    throw new UserError(
      `${flag} ${dir} cannot be written (${code}${WRITE_ERRORS[code] ? `: ${WRITE_ERRORS[code]}` : ""}); pass a folder you can write to`,
    );
  }
}

function mkdirFailure(dir: string): string | undefined {
  let child = resolve(dir);
  while (!existsSync(dirname(child)) && dirname(child) !== child) child = dirname(child);
  try {
    mkdirSync(child);
    rmdirSync(child);
    return undefined;
  } catch (err) {
    return errnoCode(err);
  }
}

export const LOCK_FILE = ".framecost.lock";

interface LockInfo {
  pid: number;
  host: string;
  command: string;
  startedAt: string;
}

export interface DirLock {
  readonly path: string;
  /** removes the lock file if it is still this process's; safe to call twice */
  release(): void;
}

/** True while process `pid` exists (EPERM: it exists but belongs to another user). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === "EPERM";
  }
}

function readLock(path: string): { text: string; info: LockInfo | null } | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return null; // released meanwhile
  }
  try {
    const info = JSON.parse(text) as LockInfo;
    return { text, info: Number.isInteger(info?.pid) ? info : null };
  } catch {
    return { text, info: null };
  }
}

/**
 * Takes `dir`'s lock file (`.framecost.lock`: pid, host, command, start time)
 * so two runs never write into one folder at once; a second run is refused
 * with a UserError naming the holder. A lock whose process is gone (killed,
 * crashed) is taken over. The file is created whole through a hard link, so
 * no reader ever sees it half written; released by `release()` or, failing
 * that, when the process exits.
 */
export function lockDir(dir: string, command: string, flag = "--out"): DirLock {
  const path = join(dir, LOCK_FILE);
  const mine = `${JSON.stringify({ pid: process.pid, host: hostname(), command, startedAt: new Date().toISOString() } satisfies LockInfo)}\n`;
  const tmp = tempPathFor(path);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        if (attempt === 0) writeFileSync(tmp, mine);
        linkSync(tmp, path);
        break;
      } catch (err) {
        if (errnoCode(err) !== "EEXIST") {
          throw new UserError(
            `${flag} ${dir} cannot be locked (${errnoCode(err) ?? (err as Error).message}); pass a folder you can write to`,
          );
        }
      }
      const held = readLock(path);
      if (held === null) continue; // released between our link and our read: try again
      const info = held.info;
      const sameHost = info !== null && info.host === hostname();
      const stale = info !== null && sameHost && !pidAlive(info.pid);
      if (!stale || attempt >= 3) {
        const who =
          info === null
            ? `a lock file framecost cannot read`
            : `framecost ${info.command} (pid ${info.pid}${sameHost ? "" : ` on ${info.host}`}, started ${info.startedAt})`;
        throw new UserError(
          `${flag} ${dir} is in use by ${who}; wait for it to finish or pass another ${flag} (if no framecost is writing there, delete ${path})`,
        );
      }
      // the holder died without releasing: take over, unless another run took it over since we read it
      if (readLock(path)?.text === held.text) rmSync(path, { force: true });
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off("exit", release);
    if (readLock(path)?.text === mine) {
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    }
  };
  process.on("exit", release);
  return { path, release };
}
