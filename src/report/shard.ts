/**
 * The shard record (`shard.json`) a `framecost sweep --shard I/N` leaves
 * beside its cells, and the checks that decide whether shards merge: same
 * framecost version, same grid, same weights, same split. A merged sweep
 * says which shard each cell came from and which cells no shard holds.
 */
import { join } from "node:path";
import { z } from "zod";
import { UserError } from "../util/errors.ts";
import { firstIssue, readJsonFile, writeFileAtomic } from "./files.ts";
import {
  GridIdentitySchema,
  type Machine,
  MachineSchema,
  type MergeInfo,
  ModelIdentitySchema,
  type SweepCell,
  SweepCellSchema,
} from "./sweep.ts";

export const SHARD_SCHEMA_VERSION = 1;

export const ShardRecordSchema = z.object({
  schemaVersion: z.literal(SHARD_SCHEMA_VERSION),
  kind: z.literal("sweep-shard"),
  createdAt: z.string(),
  /** package version of the framecost that ran the shard */
  framecost: z.string(),
  identity: GridIdentitySchema,
  model: ModelIdentitySchema,
  shard: z.object({ index: z.number().int().positive(), count: z.number().int().positive() }),
  /** every cell of the grid and its shard: the split merge checks and reports missing cells against */
  plan: z.array(
    z.object({ sampler: z.string(), steps: z.number().int().positive(), shard: z.number().int() }),
  ),
  /** false when the shard stopped before all its cells finished */
  complete: z.boolean(),
  /** the cells this shard finished; `record` paths are relative to the shard's folder */
  cells: z.array(SweepCellSchema),
  machine: MachineSchema.nullable(),
  assumptions: z.unknown(),
});
export type ShardRecord = z.infer<typeof ShardRecordSchema>;

export const SHARD_FILE = "shard.json";

export async function writeShardRecord(dir: string, shard: ShardRecord): Promise<string> {
  const path = join(dir, SHARD_FILE);
  await writeFileAtomic(path, `${JSON.stringify(shard, null, 2)}\n`);
  return path;
}

/** Reads `DIR/shard.json`; every problem is one UserError line naming the file. */
export async function readShardDir(dir: string): Promise<ShardRecord> {
  const path = join(dir, SHARD_FILE);
  const data = await readJsonFile(path).catch((err: unknown) => {
    if (err instanceof UserError && err.message.includes("no such file"))
      throw new UserError(
        `${dir}: no ${SHARD_FILE} in it; pass folders that \`framecost sweep --shard I/N --out DIR\` wrote`,
      );
    throw err;
  });
  const parsed = ShardRecordSchema.safeParse(data);
  if (!parsed.success) {
    throw new UserError(
      `${path}: ${firstIssue(parsed.error, data)}; this is not a shard record that framecost wrote: rerun \`framecost sweep --shard I/N\``,
    );
  }
  return parsed.data;
}

export interface MergedShards {
  /** every cell the shards hold, each with the folder its record path is relative to */
  cells: Array<{ cell: SweepCell; dir: string; id: string }>;
  info: MergeInfo;
  /** the shards' common machine (same CPU model and cores), else null */
  machine: Machine | null;
  assumptions: unknown;
}

export const cellId = (c: { sampler: string; steps: number }): string => `${c.sampler}-${c.steps}`;

/**
 * Checks that the shards belong together and lists what they hold and lack.
 * Refuses (one UserError line) shards of other framecost versions, another
 * split, other weights or another grid, and a shard given twice.
 */
export function mergeShards(inputs: ReadonlyArray<{ dir: string; shard: ShardRecord }>): MergedShards {
  if (inputs.length === 0) throw new UserError("merge needs at least one shard folder; pass DIR...");
  const [first, ...rest] = inputs;
  const a = first.shard;
  for (const { dir, shard: b } of rest) {
    if (b.framecost !== a.framecost) {
      throw new UserError(
        `shards come from different framecost versions: ${first.dir} from ${a.framecost}, ${dir} from ${b.framecost}; rerun every shard with one version`,
      );
    }
    if (b.shard.count !== a.shard.count) {
      throw new UserError(
        `shards come from different splits: ${first.dir} is shard ${a.shard.index}/${a.shard.count}, ${dir} is ${b.shard.index}/${b.shard.count}; merge shards of one --shard I/N split`,
      );
    }
    if (b.model.sha256 !== a.model.sha256) {
      throw new UserError(
        `shards ran different models: ${first.dir} ran ${a.model.name} (weights ${a.model.weightsSha256.slice(0, 12)}, model.json ${a.model.sha256.slice(0, 12)}), ${dir} ran ${b.model.name} (weights ${b.model.weightsSha256.slice(0, 12)}, model.json ${b.model.sha256.slice(0, 12)}); rerun them with the same --model`,
      );
    }
    const key = (Object.keys(a.identity) as Array<keyof typeof a.identity>).find(
      (k) => JSON.stringify(a.identity[k]) !== JSON.stringify(b.identity[k]),
    );
    if (key !== undefined) {
      const show = (v: unknown) => (Array.isArray(v) ? v.join(",") : String(v));
      throw new UserError(
        `shards ran different grids: ${first.dir} has ${key} ${show(a.identity[key])}, ${dir} has ${show(b.identity[key])}; rerun them with the same sweep options`,
      );
    }
    if (JSON.stringify(b.plan) !== JSON.stringify(a.plan)) {
      throw new UserError(
        `shards split the grid differently (${first.dir} and ${dir}); rerun them with one framecost version`,
      );
    }
  }
  const byIndex = new Map<number, string>();
  for (const { dir, shard } of inputs) {
    const seen = byIndex.get(shard.shard.index);
    if (seen !== undefined) {
      throw new UserError(
        `shard ${shard.shard.index}/${shard.shard.count} is given twice (${seen} and ${dir}); pass each shard's folder once`,
      );
    }
    byIndex.set(shard.shard.index, dir);
  }

  const planOf = new Map(a.plan.map((p) => [cellId(p), p.shard]));
  const cells: MergedShards["cells"] = [];
  const held = new Set<string>();
  for (const { dir, shard } of inputs) {
    for (const cell of shard.cells) {
      const id = cellId(cell);
      const owner = planOf.get(id);
      // a cell outside the plan or in another shard's part means the folder was edited or mixed up
      if (owner !== shard.shard.index) {
        throw new UserError(
          `${join(dir, SHARD_FILE)} holds cell ${id}, which ${owner === undefined ? "is not in the grid" : `belongs to shard ${owner}/${a.shard.count}`}; rerun shard ${shard.shard.index}/${shard.shard.count} into an empty --out`,
        );
      }
      held.add(id);
      cells.push({ cell, dir, id });
    }
  }
  const missing = a.plan.filter((p) => !held.has(cellId(p)));
  const machines = inputs.map((i) => i.shard.machine);
  const same = machines.every(
    (m) => m !== null && m.cpu.model === machines[0]?.cpu.model && m.cpu.cores === machines[0]?.cpu.cores,
  );
  return {
    cells,
    machine: same ? machines[0] : null,
    assumptions: a.assumptions,
    info: {
      count: a.shard.count,
      framecost: a.framecost,
      model: a.model,
      identity: a.identity,
      shards: [...inputs]
        .sort((p, q) => p.shard.shard.index - q.shard.shard.index)
        .map(({ dir, shard }) => ({
          index: shard.shard.index,
          dir,
          createdAt: shard.createdAt,
          cells: shard.cells.map(cellId),
          machine: shard.machine,
        })),
      missing,
    },
  };
}

/** "heun-16, heun-32 (shard 3/4); euler-8 (shard 2/4)": missing cells grouped by shard. */
export function describeMissing(info: MergeInfo): string {
  const by = new Map<number, string[]>();
  for (const m of info.missing) by.set(m.shard, [...(by.get(m.shard) ?? []), cellId(m)]);
  return [...by]
    .sort((p, q) => p[0] - q[0])
    .map(([s, ids]) => `${ids.join(", ")} (shard ${s}/${info.count})`)
    .join("; ");
}
