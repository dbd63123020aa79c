/**
 * File helpers for the report stage: atomic writes (temp name, then rename,
 * so a reader never sees half a file) and reading JSON records with one-line
 * errors that name the file.
 */
import { randomBytes } from "node:crypto";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { z } from "zod";
import { UserError } from "../util/errors.ts";

/** Writes `data` to `path` through a temporary sibling and a rename. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.tmp-${basename(path)}-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Reads and parses a JSON file; a missing or malformed file is a UserError naming it. */
export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : String(code);
    throw new UserError(`${path}: cannot read (${why}); pass the path of a JSON record written by framecost`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new UserError(`${path}: not valid JSON (${msg}); pass a record written by framecost`);
  }
}

/** The first schema problem as one line: `at cells.3.steps: expected number, received string`. */
export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return "invalid";
  const where = issue.path.length > 0 ? `at ${issue.path.map(String).join(".")}: ` : "";
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problems)` : "";
  return `${where}${issue.message}${more}`;
}
