/**
 * Reliability battery, inputs: every file a command reads, broken each way
 * files break (missing, a folder in its place, empty, cut in half, not JSON,
 * random bytes, the wrong schema or schemaVersion, a file of another kind;
 * for model folders also weights of the right size with the wrong bytes and
 * a guide of another shape). Each must end in exit 2 and one line that names
 * the file and what to do, with nothing on stdout and nothing written.
 *
 * The commands run in this process (spawning the CLI per case would take
 * minutes); a sample runs end to end through the real CLI.
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PRESETS } from "../src/model/config.ts";
import { saveWeights, setGuidanceDefaults } from "../src/model/io.ts";
import { initParams } from "../src/model/params.ts";
import { Rng } from "../src/util/rng.ts";
import { type CliResult, commandFiles, type Register, runCli } from "./helpers/cli-inprocess.ts";
import { cli, saveMicroModel } from "./helpers/outputs.ts";

const ROOT = process.cwd();
const R = (...p: string[]) => resolve(ROOT, ...p);
const tmp = mkdtempSync(join(tmpdir(), "framecost-inputs-"));

const spawnCli = (args: string[]) => cli(args);

function walk(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** Deterministic "random" bytes. */
function noise(n: number, seed: number): Buffer {
  const rng = new Rng(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rng.uniform(0, 256));
  return b;
}

/** A way a file breaks; `good` is the file as it should be, `other` a valid file of another kind. */
interface Fault {
  name: string;
  apply(path: string, good: Buffer, other: Buffer): void;
}

const withJson = (f: (j: Record<string, unknown>) => unknown) => (path: string, good: Buffer) =>
  writeFileSync(path, `${JSON.stringify(f(JSON.parse(good.toString("utf8"))), null, 2)}\n`);

const FILE_FAULTS: Fault[] = [
  { name: "missing", apply: (p) => rmSync(p, { force: true }) },
  {
    name: "a folder in its place",
    apply: (p) => {
      rmSync(p, { force: true });
      mkdirSync(p);
    },
  },
  { name: "empty", apply: (p) => writeFileSync(p, "") },
  { name: "cut in half", apply: (p, good) => writeFileSync(p, good.subarray(0, good.length >> 1)) },
  { name: "not JSON", apply: (p) => writeFileSync(p, "{ this is not json\n") },
  { name: "random bytes", apply: (p, good) => writeFileSync(p, noise(good.length, 7)) },
  { name: "JSON of the wrong schema", apply: (p) => writeFileSync(p, '{"hello": [1, 2, 3]}\n') },
  { name: "a file of another kind", apply: (p, _good, other) => writeFileSync(p, other) },
];
/** For records that carry a schemaVersion. */
const VERSION_FAULT: Fault = {
  name: "another schemaVersion",
  apply: withJson((j) => ({ ...j, schemaVersion: 99 })),
};

const MODEL_JSON_FAULTS: Fault[] = [
  ...FILE_FAULTS,
  { name: "another formatVersion", apply: withJson((j) => ({ ...j, formatVersion: 99 })) },
  { name: "no parameter list", apply: withJson(({ params: _p, ...j }) => j) },
  { name: "a config that is not one", apply: withJson((j) => ({ ...j, config: "tiny" })) },
  { name: "another dtype", apply: withJson((j) => ({ ...j, dtype: "float64" })) },
];

const WEIGHTS_FAULTS: Fault[] = [
  // missing, a folder in its place, empty, cut in half: as for any file
  ...FILE_FAULTS.slice(0, 4),
  {
    name: "one byte too many",
    apply: (p, good) => writeFileSync(p, Buffer.concat([good, Buffer.from([0])])),
  },
  { name: "random bytes of the right size", apply: (p, good) => writeFileSync(p, noise(good.length, 11)) },
  {
    name: "one weight changed",
    apply: (p, good) => {
      const b = Buffer.from(good);
      b[b.length >> 1] ^= 0x40;
      writeFileSync(p, b);
    },
  },
];

/** One input of one command: where the file goes and the command line that reads it. */
interface Reader {
  input: string;
  /** the command line, given the case's scratch folder (the file to break is `target(dir)`) */
  args(dir: string): string[];
  target(dir: string): string;
  /** folders the command may write to: they must hold no file afterwards */
  outputs?(dir: string): string[];
  /** what the line must name: the file (default), or its folder */
  names?(dir: string): string;
  faults: Fault[];
  /** sets up the case's folder before the fault is applied */
  setup(dir: string): void;
  good: () => Buffer;
  other: () => Buffer;
}

const file = (p: string) => () => readFileSync(p);

let registers: Register[] = [];
let micro = "";
let shard = "";
const results: Array<{ reader: string; fault: string; problem: string | null; wrote: string[] }> = [];

function runRecordReaders(): Reader[] {
  const common = {
    input: "run record",
    target: (d: string) => join(d, "run.json"),
    setup: (d: string) => cpSync(R("samples/run.json"), join(d, "run.json")),
    good: file(R("samples/run.json")),
    other: file(R("samples/sweep/sweep.json")),
    faults: [...FILE_FAULTS, VERSION_FAULT],
  };
  return [
    { ...common, input: "run record (report)", args: (d) => ["report", join(d, "run.json")] },
    {
      ...common,
      input: "run record (report --html)",
      args: (d) => ["report", join(d, "run.json"), "--html", join(d, "out", "report.html")],
      outputs: (d) => [join(d, "out")],
    },
    {
      ...common,
      input: "run record (compare)",
      args: (d) => ["compare", R("samples/run.json"), join(d, "run.json")],
    },
    {
      ...common,
      input: "run record (cost --record)",
      args: (d) => ["cost", "--record", join(d, "run.json")],
    },
  ];
}

function sweepRecordReaders(): Reader[] {
  const common = {
    target: (d: string) => join(d, "sweep.json"),
    setup: (d: string) => cpSync(R("samples/sweep/sweep.json"), join(d, "sweep.json")),
    good: file(R("samples/sweep/sweep.json")),
    other: file(R("samples/run.json")),
    faults: [...FILE_FAULTS, VERSION_FAULT],
  };
  return [
    {
      ...common,
      input: "sweep record (compare)",
      args: (d) => ["compare", R("samples/sweep/sweep.json"), join(d, "sweep.json")],
    },
    {
      ...common,
      input: "sweep record (path --sweep)",
      args: (d) => ["path", "--sweep", join(d, "sweep.json"), "--out", join(d, "out")],
      outputs: (d) => [join(d, "out")],
    },
  ];
}

function catalogReaders(): Reader[] {
  const common = {
    target: (d: string) => join(d, "catalog.json"),
    setup: (d: string) => cpSync(R("src/cost/gpus.json"), join(d, "catalog.json")),
    good: file(R("src/cost/gpus.json")),
    other: file(R("samples/run.json")),
    faults: [...FILE_FAULTS, VERSION_FAULT],
  };
  return [
    { ...common, input: "GPU catalog (gpus)", args: (d) => ["gpus", "--catalog", join(d, "catalog.json")] },
    {
      ...common,
      input: "GPU catalog (cost)",
      args: (d) => ["cost", "--model", "wan2.1-14b", "--catalog", join(d, "catalog.json")],
    },
    {
      ...common,
      input: "GPU catalog (path)",
      args: (d) => ["path", "--catalog", join(d, "catalog.json"), "--out", join(d, "out")],
      outputs: (d) => [join(d, "out")],
    },
    {
      ...common,
      input: "GPU catalog (generate)",
      args: (d) => [
        ...["generate", "--model", micro, "--frames", "1", "--steps", "1", "--backend", "cpu"],
        ...["--out", join(d, "out"), "--catalog", join(d, "catalog.json")],
      ],
      outputs: (d) => [join(d, "out")],
    },
  ];
}

const LEVERS_FILE = `${JSON.stringify({ levers: [{ name: "lower-price", enabled: false }] })}\n`;

function leverReaders(): Reader[] {
  const measured = {
    target: (d: string) => join(d, "levers.json"),
    setup: (d: string) => cpSync(R("samples/levers/levers.json"), join(d, "levers.json")),
    good: file(R("samples/levers/levers.json")),
    other: file(R("samples/run.json")),
    faults: [...FILE_FAULTS, VERSION_FAULT],
  };
  return [
    {
      input: "lever file (path --levers)",
      target: (d) => join(d, "levers-file.json"),
      setup: (d) => writeFileSync(join(d, "levers-file.json"), LEVERS_FILE),
      good: () => Buffer.from(LEVERS_FILE),
      other: file(R("samples/levers/levers.json")),
      faults: FILE_FAULTS,
      args: (d) => ["path", "--levers", join(d, "levers-file.json"), "--out", join(d, "out")],
      outputs: (d) => [join(d, "out")],
    },
    {
      ...measured,
      input: "levers.json (path --levers-measured)",
      args: (d) => ["path", "--levers-measured", join(d, "levers.json"), "--out", join(d, "out")],
      outputs: (d) => [join(d, "out")],
    },
    {
      ...measured,
      input: "levers.json (sweep --levers-measured)",
      // a grid of one cell, in case the file were taken: the check is that it is read before any cell runs
      args: (d) => [
        ...["sweep", "--model", micro, "--samplers", "ddim", "--steps", "1", "--frames", "1", "--clips", "1"],
        ...["--reference-clips", "1", "--workers", "1", "--backend", "cpu", "--out", join(d, "out")],
        ...["--levers-measured", join(d, "levers.json")],
      ],
      outputs: (d) => [join(d, "out")],
    },
  ];
}

function shardReaders(): Reader[] {
  const merge = (d: string) => ["merge", join(d, "shard"), "--out", join(d, "out")];
  const copy = (d: string) => cpSync(shard, join(d, "shard"), { recursive: true });
  return [
    {
      input: "shard record (merge)",
      target: (d) => join(d, "shard", "shard.json"),
      setup: copy,
      good: file(join(shard, "shard.json")),
      other: file(R("samples/run.json")),
      faults: [...FILE_FAULTS, VERSION_FAULT],
      args: merge,
      outputs: (d) => [join(d, "out")],
      // a missing shard.json is named with its folder ("DIR: no shard.json in it")
      names: (d) => join(d, "shard"),
    },
    {
      input: "a shard's cell record (merge)",
      target: (d) => join(d, "shard", "cells", "ddim-1.json"),
      setup: copy,
      good: file(join(shard, "cells", "ddim-1.json")),
      other: file(R("samples/sweep/sweep.json")),
      faults: [...FILE_FAULTS, VERSION_FAULT],
      args: merge,
      outputs: (d) => [join(d, "out")],
    },
  ];
}

function modelReaders(): Reader[] {
  const gen = (d: string, model: string) => [
    ...["generate", "--model", model, "--frames", "1", "--steps", "1", "--backend", "cpu"],
    ...["--out", join(d, "out")],
  ];
  const copyModel = (d: string) => cpSync(micro, join(d, "model"), { recursive: true });
  const modelJson = {
    target: (d: string) => join(d, "model", "model.json"),
    setup: copyModel,
    good: file(join(micro, "model.json")),
    other: file(R("samples/run.json")),
    faults: MODEL_JSON_FAULTS,
    names: (d: string) => join(d, "model"),
  };
  const weights = {
    target: (d: string) => join(d, "model", "weights.bin"),
    setup: copyModel,
    good: file(join(micro, "weights.bin")),
    other: file(join(micro, "weights.bin")),
    faults: WEIGHTS_FAULTS,
    names: (d: string) => join(d, "model"),
  };
  const guided = (d: string) => {
    copyModel(d);
    saveMicroModel(join(d, "model", "guide"), 5);
    setGuidanceDefaults(join(d, "model"), { guide: "guide", weight: 2, fromT: 300, frames: "all" });
  };
  return [
    {
      ...modelJson,
      input: "model.json (generate)",
      args: (d) => gen(d, join(d, "model")),
      outputs: (d) => [join(d, "out")],
    },
    {
      ...weights,
      input: "weights.bin (generate)",
      args: (d) => gen(d, join(d, "model")),
      outputs: (d) => [join(d, "out")],
    },
    {
      ...weights,
      input: "weights.bin (sweep --model)",
      args: (d) => [
        ...["sweep", "--model", join(d, "model"), "--samplers", "ddim", "--steps", "1", "--frames", "1"],
        ...[
          "--clips",
          "1",
          "--reference-clips",
          "1",
          "--workers",
          "1",
          "--backend",
          "cpu",
          "--out",
          join(d, "out"),
        ],
      ],
      outputs: (d) => [join(d, "out")],
    },
    {
      ...weights,
      input: "weights.bin (levers --model)",
      args: (d) => ["levers", "--model", join(d, "model"), "--quick", "--out", join(d, "out")],
      outputs: (d) => [join(d, "out")],
    },
    {
      ...modelJson,
      input: "model.json (distill --teacher)",
      args: (d) => [
        ...["distill", "--teacher", join(d, "model"), "--teacher-steps", "2", "--steps", "1"],
        ...["--round-steps", "1", "--checkpoint-dir", join(d, "ckpt"), "--out", join(d, "out")],
      ],
      outputs: (d) => [join(d, "out"), join(d, "ckpt")],
    },
    {
      ...modelJson,
      input: "model.json (guide <model>)",
      args: (d) => ["guide", join(d, "model"), "--from", micro],
      outputs: (d) => [join(d, "model", "guide")],
    },
    {
      ...weights,
      input: "weights.bin (guide --from)",
      setup: copyModel,
      args: (d) => {
        const target = join(d, "target");
        if (!existsSync(target)) cpSync(micro, target, { recursive: true });
        return ["guide", target, "--from", join(d, "model")];
      },
      outputs: (d) => [join(d, "target", "guide")],
    },
    {
      ...weights,
      input: "the guide's weights.bin (generate)",
      setup: guided,
      target: (d) => join(d, "model", "guide", "weights.bin"),
      good: () => readFileSync(join(micro, "weights.bin")),
      names: (d) => join(d, "model", "guide"),
      args: (d) => gen(d, join(d, "model")),
      outputs: (d) => [join(d, "out")],
    },
    {
      input: "a guide of another shape (generate)",
      target: (d) => join(d, "model", "guide", "model.json"),
      setup: guided,
      good: () => Buffer.alloc(0),
      other: () => Buffer.alloc(0),
      names: (d) => join(d, "model", "guide"),
      faults: [
        {
          name: "a guide of another preset",
          apply: (p) => {
            const dir = join(p, "..");
            rmSync(dir, { recursive: true });
            const rng = new Rng(3);
            saveWeights(
              dir,
              PRESETS.tiny,
              initParams(PRESETS.tiny, 3).map((v) => v + 0.05 * rng.normal()),
            );
          },
        },
        { name: "the guide folder missing", apply: (p) => rmSync(join(p, ".."), { recursive: true }) },
      ],
      args: (d) => gen(d, join(d, "model")),
      outputs: (d) => [join(d, "out")],
    },
  ];
}

/** Why `r` is not one clear refusal naming `what`, or null. */
function refusalProblem(r: CliResult, what: string): string | null {
  if (r.reached !== null) return `accepted (reached ${r.reached})`;
  if (r.code === 0) return "exit 0: the broken file was taken";
  if (r.code !== 2)
    return `exit ${r.code}${r.thrown instanceof Error ? ` (${r.thrown.name}: ${r.thrown.message.split("\n")[0]})` : ""}`;
  if (r.stdout !== "") return `printed on stdout: ${r.stdout.slice(0, 100)}`;
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  if (lines.length !== 1) return `stderr is ${lines.length} lines: ${r.stderr.slice(0, 300)}`;
  const line = lines[0];
  if (!line.startsWith("framecost: ")) return `not framecost's line: ${line}`;
  if (!line.includes(what)) return `does not name ${what}: ${line}`;
  if (
    !/pass |restore|retrain|rerun|regenerate|remove|run |use |add |give |expected|must|needs?|delete|write|leave /i.test(
      line,
    )
  )
    return `says no fix: ${line}`;
  return null;
}

beforeAll(async () => {
  registers = (await commandFiles()).map((f) => f.register);
  micro = join(tmp, "micro");
  saveMicroModel(micro, 11);
  // a real shard of one cell (a sweep needs worker threads: run through the CLI, ~5 s)
  shard = join(tmp, "shard");
  const r = await spawnCli([
    ...["sweep", "--model", micro, "--samplers", "ddim", "--steps", "1", "--frames", "1", "--clips", "1"],
    ...["--reference-clips", "1", "--workers", "1", "--backend", "cpu", "--shard", "1/1", "--out", shard],
  ]);
  if (r.code !== 0) throw new Error(`could not make a shard: ${r.stderr}`);
}, 120_000);

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  const byFault = new Map<string, number>();
  for (const r of results) byFault.set(r.fault, (byFault.get(r.fault) ?? 0) + 1);
  const inputs = new Set(results.map((r) => r.reader.replace(/ \(.*\)$/, "")));
  const readers = new Set(results.map((r) => r.reader));
  console.log(
    `reliability-inputs: ${results.length} cases in process (${readers.size} readers of ${inputs.size} kinds of input), ${results.filter((r) => r.problem).length} failed; left on disk by a refused run: ${results.filter((r) => r.wrote.length > 0).length} cases wrote a file`,
  );
});

describe("every file a command reads, broken each way files break", () => {
  const groups: Array<[string, () => Reader[]]> = [
    ["run records", runRecordReaders],
    ["sweep records", sweepRecordReaders],
    ["GPU catalogs", catalogReaders],
    ["lever files", leverReaders],
    ["shard outputs", shardReaders],
    ["model folders", modelReaders],
  ];
  for (const [name, readers] of groups) {
    it(`${name}: exit 2, one line naming the file, nothing written`, async () => {
      const failures: string[] = [];
      let n = 0;
      for (const reader of readers()) {
        for (const fault of reader.faults) {
          const dir = join(tmp, `case-${name.replace(/\W+/g, "-")}-${n++}`);
          mkdirSync(dir);
          reader.setup(dir);
          const target = reader.target(dir);
          const good = reader.good();
          fault.apply(target, good, reader.other());
          const args = reader.args(dir);
          const r = await runCli(registers, args);
          const outputs = reader.outputs?.(dir) ?? [];
          const wrote = outputs.flatMap(walk).map((p) => relative(dir, p));
          const problem =
            refusalProblem(r, reader.names?.(dir) ?? target) ??
            (wrote.length > 0 ? `wrote ${wrote.join(", ")}` : null);
          results.push({ reader: reader.input, fault: fault.name, problem, wrote });
          if (problem) failures.push(`${reader.input}, ${fault.name}: ${problem}`);
        }
      }
      expect(failures).toEqual([]);
    }, 120_000);
  }
});

describe("a sample end to end through the real CLI", () => {
  it("a broken record, catalog, shard and weights file: exit 2, one line", async () => {
    const dir = join(tmp, "e2e");
    mkdirSync(dir);
    writeFileSync(join(dir, "run.json"), "{ truncated");
    writeFileSync(join(dir, "catalog.json"), '{"schemaVersion": 2, "gpus": []}');
    cpSync(micro, join(dir, "model"), { recursive: true });
    const w = join(dir, "model", "weights.bin");
    writeFileSync(w, noise(readFileSync(w).length, 5));
    cpSync(shard, join(dir, "shard"), { recursive: true });
    writeFileSync(join(dir, "shard", "shard.json"), "");
    const cases: Array<[string[], string]> = [
      [["report", join(dir, "run.json")], join(dir, "run.json")],
      [["gpus", "--catalog", join(dir, "catalog.json")], join(dir, "catalog.json")],
      [["generate", "--model", join(dir, "model"), "--out", join(dir, "out")], w],
      [["merge", join(dir, "shard"), "--out", join(dir, "merged")], join(dir, "shard", "shard.json")],
    ];
    const failures: string[] = [];
    for (let i = 0; i < cases.length; i += 2) {
      const batch = cases.slice(i, i + 2);
      const rs = await Promise.all(batch.map(([args]) => spawnCli(args)));
      rs.forEach((r, j) => {
        const p = refusalProblem({ ...r, reached: null }, batch[j][1]);
        if (p) failures.push(`${batch[j][0].join(" ")}: ${p}`);
      });
    }
    expect(walk(join(dir, "out"))).toEqual([]);
    expect(walk(join(dir, "merged"))).toEqual([]);
    expect(failures).toEqual([]);
  }, 120_000);
});
