import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PRESETS } from "../src/model/config.ts";
import { saveWeights } from "../src/model/io.ts";
import { initParams } from "../src/model/params.ts";
import { mergeShards, type ShardRecord } from "../src/report/shard.ts";
import { type SweepRecord, sweepMachines } from "../src/report/sweep.ts";
import { mergeSweeps } from "../src/run/merge.ts";
import { assignShards, type CellSpec, gridCells } from "../src/run/sweep.ts";
import { UserError } from "../src/util/errors.ts";
import { Rng } from "../src/util/rng.ts";
import { framecostVersion } from "../src/util/version.ts";
import { parseCommandLine } from "./helpers/cli.ts";
import { cli } from "./helpers/outputs.ts";

const root = mkdtempSync(join(tmpdir(), "framecost-shards-"));
const model = join(root, "micro");
afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeAll(() => {
  const rng = new Rng(2);
  saveWeights(
    model,
    PRESETS.micro,
    initParams(PRESETS.micro, 1).map((v) => v + 0.05 * rng.normal()),
  );
});

/** The CLI as a user runs it, in a process of its own. */
const framecost = (args: string[]) => cli(args);

// 3 samplers x 2 steps, 1 clip of 2 frames on the micro preset: seconds per cell
const GRID = ["--samplers", "ddim,euler,heun", "--steps", "1,3", "--frames", "2", "--clips", "1"];
const sweepArgs = (out: string, extra: string[] = []) => [
  "sweep",
  "--model",
  model,
  ...GRID,
  "--reference-clips",
  "2",
  "--workers",
  "1",
  "--gpus",
  "h100-sxm",
  "--out",
  out,
  ...extra,
];

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, "utf8")) as T;

describe("assignShards", () => {
  const cells = (nfes: number[]): CellSpec[] =>
    nfes.map((nfe, i) => ({ id: `c${i}`, sampler: "s", steps: i + 1, nfe }));

  it("puts every cell in exactly one of N shards, the same way every time, NFEs balanced within the largest cell", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 12 }),
        (nfes, n) => {
          const cs = cells(nfes);
          const a = assignShards(cs, n);
          expect([...a.keys()].sort()).toEqual(cs.map((c) => c.id).sort());
          expect([...a.values()].every((s) => Number.isInteger(s) && s >= 1 && s <= n)).toBe(true);
          // a function of the grid: recomputed (or from a shuffled copy of equal cells) it is the same
          expect(assignShards(cs, n)).toEqual(a);
          const load = Array.from({ length: n }, (_, i) =>
            cs.filter((c) => a.get(c.id) === i + 1).reduce((s, c) => s + c.nfe, 0),
          );
          if (nfes.length >= n)
            expect(Math.max(...load) - Math.min(...load)).toBeLessThanOrEqual(Math.max(...nfes));
        },
      ),
    );
  });

  it("splits the default grid's NFEs evenly", () => {
    const grid = gridCells(["ddim", "euler", "heun", "dpmpp-2m"], [1, 2, 4, 8, 16, 32, 50]);
    const a = assignShards(grid, 4);
    const load = [1, 2, 3, 4].map((s) =>
      grid.filter((c) => a.get(c.id) === s).reduce((t, c) => t + c.nfe, 0),
    );
    // heun spends 2 NFEs per step but the last: 113 x 3 + 219 = 558 NFEs, 139.5 per shard on average
    expect(load.reduce((s, x) => s + x, 0)).toBe(558);
    expect(load).toEqual([140, 140, 139, 139]);
  });
});

describe("--shard", () => {
  const shard = async (value: string) => {
    const p = await parseCommandLine(["sweep", "--shard", value]);
    return p.command === "sweep" ? p.options.shard : undefined;
  };
  it("takes I/N with 1 <= I <= N and names the flag, the value and the form otherwise", async () => {
    expect(await shard("2/8")).toEqual({ index: 2, count: 8 });
    expect(await shard(" 1 / 1 ")).toEqual({ index: 1, count: 1 });
    expect((await parseCommandLine(["sweep"])).options).not.toHaveProperty("shard");
    for (const bad of ["0/4", "5/4", "a/b", "2", "1.5/4", "-1/4", "2/0", "1/2/3"]) {
      await expect(shard(bad)).rejects.toThrow(
        new UserError(`--shard must be I/N with whole numbers 1 <= I <= N (e.g. 2/8), got "${bad}"`),
      );
    }
  });
});

describe("sharded sweep, merged (separate processes)", () => {
  it("two shards merged equal the unsharded sweep cell by cell; merge refuses mixed shards and names missing cells", async () => {
    const s1 = join(root, "s1");
    const s2 = join(root, "s2");
    const whole = join(root, "whole");
    const merged = join(root, "merged");
    // the shards run at the same time, as on two machines
    const [r1, r2] = await Promise.all([
      framecost(sweepArgs(s1, ["--shard", "1/2"])),
      framecost(sweepArgs(s2, ["--shard", "2/2"])),
    ]);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r1.stdout).toContain("sweep: 3 cells of shard 1/2");
    expect(existsSync(join(s1, "sweep.json"))).toBe(false);
    const sh1 = readJson<ShardRecord>(join(s1, "shard.json"));
    const sh2 = readJson<ShardRecord>(join(s2, "shard.json"));
    // longest first: heun-3 (5 NFEs) to 1, ddim-3 and euler-3 (3 each) to 2, the 1-NFE cells 1, 1, 2: 7 NFEs each
    expect(sh1.cells.map((c) => `${c.sampler}-${c.steps}`)).toEqual(["ddim-1", "euler-1", "heun-3"]);
    expect(sh2.cells.map((c) => `${c.sampler}-${c.steps}`)).toEqual(["ddim-3", "euler-3", "heun-1"]);
    expect(sh1.shard).toEqual({ index: 1, count: 2 });
    expect(sh1.complete).toBe(true);
    expect(sh1.framecost).toBe(framecostVersion());
    expect(sh1.model.weightsSha256).toBe(readJson<{ sha256: string }>(join(model, "model.json")).sha256);
    expect(sh1.model.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(sh1.identity).toEqual({
      samplers: ["ddim", "euler", "heun"],
      steps: [1, 3],
      frames: 2,
      clips: 1,
      referenceClips: 2,
      seed: 0,
      fps: 24,
      convention: "flops",
      gpus: ["h100-sxm"],
    });
    expect(sh1.machine?.cpu.cores).toBeGreaterThan(0);

    // refusals: shards of another framecost, other weights, another grid, another split, twice the same
    const edited = (name: string, edit: (s: ShardRecord) => void) => {
      const dir = join(root, name);
      cpSync(s2, dir, { recursive: true });
      const s = readJson<ShardRecord>(join(dir, "shard.json"));
      edit(s);
      writeFileSync(join(dir, "shard.json"), JSON.stringify(s));
      return dir;
    };
    const other = edited("other-version", (s) => {
      s.framecost = "0.0.1";
    });
    // every other process at once: one shard alone, a shard of another version, the merge, the unsharded sweep
    const [lone, r, m, w] = await Promise.all([
      framecost(["merge", s1, "--out", join(root, "lone")]),
      framecost(["merge", s1, other, "--out", join(root, "bad")]),
      framecost(["merge", s2, s1, "--out", merged]),
      framecost(sweepArgs(whole)),
    ]);
    // one shard alone: merge names what is missing and which shard holds it
    expect(lone.code).toBe(2);
    expect(lone.stderr.trim()).toBe(
      "framecost: 3 of 6 cells are missing: ddim-3, euler-3, heun-1 (shard 2/2); run `framecost sweep` with the same options and --shard 2/2 (add --resume to keep finished cells) and merge again, or pass --partial to merge what there is",
    );
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      `framecost: shards come from different framecost versions: ${s1} from ${framecostVersion()}, ${other} from 0.0.1; rerun every shard with one version`,
    );
    expect(m.code, m.stderr).toBe(0);
    expect(w.code, w.stderr).toBe(0);
    expect(m.stdout).toMatch(
      /^merge: 6 cells from 2 of 2 shards \(.+\); wrote .*sweep\.json, .*sweep\.csv, .*report\.html\n$/,
    );
    for (const f of ["sweep.csv", "report.html", "plots/quality-vs-usd.svg"])
      expect(existsSync(join(merged, f)), f).toBe(true);
    const a = readJson<SweepRecord>(join(merged, "sweep.json"));
    const b = readJson<SweepRecord>(join(whole, "sweep.json"));
    expect(a.cells.map((c) => `${c.sampler}-${c.steps}`)).toEqual(
      b.cells.map((c) => `${c.sampler}-${c.steps}`),
    );
    for (let i = 0; i < b.cells.length; i++) {
      const [x, y] = [a.cells[i], b.cells[i]];
      // quality and counted figures agree exactly; wall times (and the USD from them) are measured again
      expect(x.quality).toEqual(y.quality);
      expect(x.nfePerFrame).toBe(y.nfePerFrame);
      expect(x.throughput?.flops).toBe(y.throughput?.flops);
      expect(x.throughput?.frames).toBe(y.throughput?.frames);
      expect(x.record).toBe(`cells/${x.sampler}-${x.steps}.json`);
      expect(x.machine?.cpu).toBe(y.machine?.cpu);
      const rx = readJson<{ totals: { nfe: number; flops: number; steps: number } }>(
        join(merged, x.record as string),
      );
      const ry = readJson<{ totals: { nfe: number; flops: number; steps: number } }>(
        join(whole, y.record as string),
      );
      expect({ ...rx.totals, wallMs: 0 }).toEqual({ ...ry.totals, wallMs: 0 });
    }
    expect(a.merged?.shards.map((s) => [s.index, s.cells.length])).toEqual([
      [1, 3],
      [2, 3],
    ]);
    expect(a.merged?.missing).toEqual([]);
    expect(sweepMachines(a.cells).map((r) => r.cells)).toEqual([6]);
    expect(readFileSync(join(merged, "report.html"), "utf8")).toContain("<h2>Shards</h2>");

    const refusal = (dir: string, second = sh2) => {
      try {
        mergeShards([
          { dir: s1, shard: sh1 },
          { dir, shard: second },
        ]);
      } catch (err) {
        return (err as Error).message;
      }
      return "merged";
    };
    expect(
      refusal("w", {
        ...sh2,
        model: { ...sh2.model, sha256: "f".repeat(64), weightsSha256: "e".repeat(64) },
      }),
    ).toBe(
      `shards ran different models: ${s1} ran micro (weights ${sh1.model.weightsSha256.slice(0, 12)}, model.json ${sh1.model.sha256.slice(0, 12)}), w ran micro (weights eeeeeeeeeeee, model.json ffffffffffff); rerun them with the same --model`,
    );
    expect(refusal("c", { ...sh2, identity: { ...sh2.identity, clips: 4 } })).toBe(
      `shards ran different grids: ${s1} has clips 1, c has 4; rerun them with the same sweep options`,
    );
    expect(refusal("g", { ...sh2, identity: { ...sh2.identity, steps: [1, 3, 8] } })).toBe(
      `shards ran different grids: ${s1} has steps 1,3, g has 1,3,8; rerun them with the same sweep options`,
    );
    expect(refusal("n", { ...sh2, shard: { index: 2, count: 3 } })).toBe(
      `shards come from different splits: ${s1} is shard 1/2, n is 2/3; merge shards of one --shard I/N split`,
    );
    expect(refusal("again", sh1)).toBe(
      `shard 1/2 is given twice (${s1} and again); pass each shard's folder once`,
    );
    expect(refusal("x", { ...sh2, cells: [...sh2.cells, sh1.cells[0]] })).toBe(
      `${join("x", "shard.json")} holds cell ddim-1, which belongs to shard 1/2; rerun shard 2/2 into an empty --out`,
    );
    await expect(mergeSweeps([root], join(root, "bad"))).rejects.toThrow(
      new UserError(
        `${root}: no shard.json in it; pass folders that \`framecost sweep --shard I/N --out DIR\` wrote`,
      ),
    );
    // --partial merges what there is and records what is missing
    const part = await mergeSweeps([s2], join(root, "part"), { partial: true });
    expect(part.sweep.cells.map((c) => `${c.sampler}-${c.steps}`)).toEqual(["ddim-3", "euler-3", "heun-1"]);
    expect(part.missing).toBe("ddim-1, euler-1, heun-3 (shard 1/2)");
    expect(readFileSync(join(root, "part", "report.html"), "utf8")).toContain(
      "3 cells of the grid are missing: ddim-1 (shard 1/2), euler-1 (shard 1/2), heun-3 (shard 1/2).",
    );
  }, 300_000);
});
