import { readFile } from "node:fs/promises";
import { UserError } from "./errors.ts";

/**
 * A text file the user named; a missing or unreadable one is a UserError
 * `PATH: cannot read (why); HINT`.
 */
export async function readUserFile(path: string, hint: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : String(code);
    throw new UserError(`${path}: cannot read (${why}); ${hint}`);
  }
}
