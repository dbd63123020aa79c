/**
 * Output files appear complete or not at all: write to a temporary name in the
 * same folder, then rename (atomic on one filesystem).
 */
import { randomBytes } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";

/** A hidden sibling of `path` that keeps its extension (tools such as ffmpeg pick the format from it). */
export function tempPathFor(path: string): string {
  const ext = extname(path);
  const stem = basename(path, ext);
  return join(dirname(path), `.tmp-${stem}-${process.pid}-${randomBytes(4).toString("hex")}${ext}`);
}

/** Runs `write(tmp)`, then renames tmp to `path`; removes tmp when writing fails. Creates the folder. */
export async function writeAtomically(
  path: string,
  write: (tmpPath: string) => Promise<void>,
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    await write(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await writeAtomically(path, (tmp) => writeFile(tmp, data));
}
