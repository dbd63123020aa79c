/**
 * Reading JSON records with one-line errors that name the file and the first
 * bad field (the same wording as the meter's RunRecord errors). Writes go
 * through media's atomic writer: a temporary name, then a rename.
 */

import type { z } from "zod";
import { UserError } from "../util/errors.ts";
import { readUserFile } from "../util/files.ts";

export { writeFileAtomic } from "../media/files.ts";

/** Reads and parses a JSON file; a missing or malformed file is a UserError naming it. */
export async function readJsonFile(path: string): Promise<unknown> {
  const text = await readUserFile(path, "pass the path of a JSON record written by framecost");
  try {
    return JSON.parse(text);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new UserError(`${path}: not valid JSON (${msg}); pass a record written by framecost`);
  }
}

/** `field cells[3].steps is invalid (expected number; value seen: "four")` for the first zod issue. */
export function firstIssue(error: z.ZodError, data: unknown): string {
  const issue = error.issues[0];
  if (!issue) return "invalid";
  let where = "";
  let v: unknown = data;
  for (const p of issue.path) {
    where += typeof p === "number" ? `[${p}]` : where === "" ? String(p) : `.${String(p)}`;
    v = v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[p] : undefined;
  }
  const text = v === undefined ? "missing" : JSON.stringify(v);
  const seen = text.length > 60 ? `${text.slice(0, 57)}...` : text;
  return `field ${where || "(the top level)"} is invalid (${issue.message}; value seen: ${seen})`;
}
