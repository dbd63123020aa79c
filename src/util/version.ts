import { readFileSync } from "node:fs";

let cached: string | undefined;

/** This framecost's version, from its package.json (shards of different versions do not merge). */
export function framecostVersion(): string {
  cached ??= (
    JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
  ).version;
  return cached;
}
