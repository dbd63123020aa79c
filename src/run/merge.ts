/**
 * `framecost merge`: shard folders into one sweep. Each cell's record is
 * copied into `out/cells/` (the merged folder stands alone), then sweep.json,
 * sweep.csv, plots and report.html are written as an unsharded sweep writes
 * them; cells keep the machine they ran on.
 */
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../media/files.ts";
import { serializeRunRecord, validateRunRecord } from "../meter/record.ts";
import { readJsonFile } from "../report/files.ts";
import { writeSweepOutputs } from "../report/html.ts";
import { describeMissing, mergeShards, readShardDir } from "../report/shard.ts";
import { buildSweepRecord, type SweepCell, type SweepRecord } from "../report/sweep.ts";
import { UserError } from "../util/errors.ts";

export interface MergeResult {
  sweep: SweepRecord;
  files: string[];
  /** "" when every cell is there */
  missing: string;
}

export async function mergeSweeps(
  dirs: readonly string[],
  out: string,
  { partial = false }: { partial?: boolean } = {},
): Promise<MergeResult> {
  const inputs = await Promise.all(dirs.map(async (dir) => ({ dir, shard: await readShardDir(dir) })));
  const merged = mergeShards(inputs);
  const missing = describeMissing(merged.info);
  if (missing !== "" && !partial) {
    const total = merged.info.identity.samplers.length * merged.info.identity.steps.length;
    const shards = [...new Set(merged.info.missing.map((m) => `--shard ${m.shard}/${merged.info.count}`))];
    throw new UserError(
      `${merged.info.missing.length} of ${total} cells are missing: ${missing}; run \`framecost sweep\` with the same options and ${shards.join(", ")} (add --resume to keep finished cells) and merge again, or pass --partial to merge what there is`,
    );
  }
  // every cell's record is read and checked before anything is written: a bad one leaves no half-merged folder
  const copies: Array<{ to: string; record: ReturnType<typeof validateRunRecord> }> = [];
  const cells: SweepCell[] = [];
  for (const { cell, dir, id } of merged.cells) {
    const rel = `cells/${id}.json`;
    if (typeof cell.record === "string") {
      const from = resolve(dir, cell.record);
      const to = resolve(out, rel);
      if (from !== to) copies.push({ to, record: validateRunRecord(await readJsonFile(from), from) });
    }
    cells.push({ ...cell, record: typeof cell.record === "string" ? rel : cell.record });
  }
  await mkdir(join(out, "cells"), { recursive: true });
  for (const c of copies) await writeFileAtomic(c.to, serializeRunRecord(c.record));
  const id = merged.info.identity;
  const sweep = buildSweepRecord({
    grid: { steps: id.steps, samplers: id.samplers, frames: id.frames },
    cells,
    machine: merged.machine,
    assumptions: merged.assumptions,
    merged: merged.info,
  });
  const written = await writeSweepOutputs(out, sweep);
  return { sweep, files: [written.json, written.csv, written.html], missing };
}
