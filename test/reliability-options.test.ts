/**
 * Reliability battery, options: every option of every command (read from
 * commander, so a new option or command is fuzzed without touching this
 * file) gets fast-check's bad values for its kind (non-numbers, NaN,
 * Infinity, 1e308, negatives, zero, fractions for integers, empty strings,
 * unknown names): exit 2 and one line naming the flag, the value and what to
 * pass instead, before any real work starts; never a crash, never exit 0.
 * Good values of the same kind must not trip the check.
 *
 * The many cases run in this process (src/cli's commands on a commander
 * program, the real work of each command stubbed: reaching it means the
 * options were accepted); a sample per command runs the real CLI end to end.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { z } from "zod";
import {
  buildProgram,
  type CliResult,
  type CommandFile,
  commandFiles,
  type DeclaredOption,
  declaredOptions,
  runCli,
} from "./helpers/cli-inprocess.ts";
import { cli, saveMicroModel } from "./helpers/outputs.ts";

// ---- the real work of each command, stubbed: getting there means the options were accepted ----
const hooks = vi.hoisted(() => {
  class ReachedWork extends Error {
    constructor(what: string) {
      super(what);
      this.name = "ReachedWork";
    }
  }
  return {
    ReachedWork,
    /** the schemas parseOptions was called with during the current run, in order */
    schemas: [] as unknown[],
    /** stop right after the first successful parseOptions (commands with no stub below) */
    stopAfterParse: false,
  };
});
const reach = (what: string) => () => {
  throw new hooks.ReachedWork(what);
};
vi.mock("../src/cli/options.ts", async (orig) => {
  const m = await orig<typeof import("../src/cli/options.ts")>();
  return {
    ...m,
    parseOptions: (...args: Parameters<typeof m.parseOptions>) => {
      hooks.schemas.push(args[0]);
      const out = m.parseOptions(...args);
      if (hooks.stopAfterParse) throw new hooks.ReachedWork("parsed");
      return out;
    },
  };
});
vi.mock("../src/run/generation.ts", async (orig) => ({
  ...(await orig<object>()),
  runGeneration: reach("runGeneration"),
}));
vi.mock("../src/run/sweep.ts", async (orig) => ({ ...(await orig<object>()), runSweep: reach("runSweep") }));
vi.mock("../src/run/merge.ts", async (orig) => ({
  ...(await orig<object>()),
  mergeSweeps: reach("mergeSweeps"),
}));
vi.mock("../src/run/levers.ts", async (orig) => ({
  ...(await orig<object>()),
  measureLevers: reach("measureLevers"),
}));
vi.mock("../src/run/distill.ts", async (orig) => ({ ...(await orig<object>()), distill: reach("distill") }));
vi.mock("../src/diffusion/trainer.ts", async (orig) => ({
  ...(await orig<object>()),
  train: reach("train"),
}));
vi.mock("../src/serve/server.ts", async (orig) => ({
  ...(await orig<object>()),
  startServer: reach("startServer"),
}));
vi.mock("../src/media/machine.ts", async (orig) => {
  const { findFfmpeg } = await import("../src/media/ffmpeg.ts");
  return {
    ...(await orig<object>()),
    // the real doctorData checks an explicit --ffmpeg first, then calibrates for seconds
    doctorData: async (o: { ffmpeg?: { explicitPath?: string } } = {}) => {
      if (o.ffmpeg?.explicitPath !== undefined) await findFfmpeg({ explicitPath: o.ffmpeg.explicitPath });
      throw new hooks.ReachedWork("doctorData");
    },
  };
});
vi.mock("../src/media/ffmpeg.ts", async (orig) => {
  const m = await orig<typeof import("../src/media/ffmpeg.ts")>();
  return {
    ...m,
    // searching runs `ffmpeg -version` (tens of ms); an explicit --ffmpeg is still checked for real
    findFfmpeg: (o: Parameters<typeof m.findFfmpeg>[0] = {}) =>
      o.explicitPath !== undefined
        ? m.findFfmpeg(o)
        : Promise.resolve({ path: "ffmpeg", version: "stub", source: "PATH" as const, skipped: [] }),
  };
});

const ROOT = process.cwd();
const tmp = mkdtempSync(join(tmpdir(), "framecost-options-"));
const T = (...p: string[]) => join(tmp, ...p);
const R = (...p: string[]) => resolve(ROOT, ...p);

/**
 * Valid command lines to add one fuzzed option to, per command (absolute
 * paths: the fuzz runs in a scratch folder). A command not listed here (one
 * being added) is fuzzed from no arguments, stopped right after its options
 * parse: its number, choice and path options are checked, names are not.
 */
const BASES: Record<string, { args: string[]; byFlag?: Record<string, string[]> }> = {
  generate: { args: ["--model", R("models/tiny"), "--out", T("out-generate")] },
  sweep: { args: ["--model", R("models/tiny"), "--out", T("out-sweep")] },
  merge: { args: [T("shard"), "--out", T("out-merge")] },
  compare: { args: [R("samples/sweep/sweep.json"), R("samples/sweep/sweep.json")] },
  cost: {
    args: ["--model", "wan2.1-14b"],
    byFlag: Object.fromEntries(
      ["--local-price", "--watts", "--launch-us", "--precision"].map((f) => [
        f,
        ["--record", R("samples/run.json")],
      ]),
    ),
  },
  path: { args: ["--sweep", R("samples/sweep/sweep.json")] },
  levers: { args: ["--model", R("models/tiny"), "--out", T("out-levers")] },
  gpus: { args: [] },
  guide: { args: [T("guided"), "--from", T("snapshot")] },
  distill: {
    args: [
      "--teacher",
      R("models/tiny"),
      "--checkpoint-dir",
      T("ckpt-distill"),
      "--out",
      T("out-distill-{steps}"),
    ],
  },
  train: { args: ["--steps", "1", "--out", T("out-train"), "--checkpoint-dir", T("ckpt-train")] },
  report: { args: [R("samples/run.json")] },
  doctor: { args: [] },
  serve: { args: ["--models", R("models"), "--out", T("out-serve")] },
};

/** Options whose value is a name of the user's choosing (an output folder): any non-empty text is fine. */
const FREE_TEXT = new Set(["--out", "--checkpoint-dir", "--html", "--host"]);

// ---- what an option accepts, from the description its zod schema carries ----
type Kind =
  | { kind: "int" | "number"; min?: number; max?: number; gt?: number }
  | { kind: "choice"; values: string[] }
  | { kind: "list"; item: Kind }
  | { kind: "shard" }
  | { kind: "file" | "dir" }
  | { kind: "text" }
  | { kind: "name" };

function describeField(field: unknown): string | undefined {
  let f = field as { description?: string; _zod?: { def?: { innerType?: unknown } } } | undefined;
  for (let i = 0; f && i < 8; i++) {
    if (f.description) return f.description;
    f = f._zod?.def?.innerType as typeof f;
  }
  return undefined;
}

function kindOf(desc: string | undefined, flag: string): Kind {
  if (desc === undefined || desc === "valid")
    return FREE_TEXT.has(flag) ? { kind: "text" } : { kind: "name" };
  let m = /^(an integer|a number)(.*)$/.exec(desc);
  if (m) {
    const b = m[2];
    const num = (re: RegExp) => {
      const x = re.exec(b);
      return x ? Number(x[1]) : undefined;
    };
    const between = /between (\S+) and (\S+)/.exec(b);
    return {
      kind: m[1] === "an integer" ? "int" : "number",
      min: between ? Number(between[1]) : num(/>= (\S+)/),
      max: between ? Number(between[2]) : num(/<= (\S+)/),
      gt: num(/> (\S+)/),
    };
  }
  m = /^one of (.*)$/.exec(desc);
  if (m) return { kind: "choice", values: m[1].split(", ") };
  m = /^a comma-separated list, each (.*)$/.exec(desc);
  if (m) return { kind: "list", item: kindOf(m[1], flag) };
  if (desc.startsWith("I/N")) return { kind: "shard" };
  if (desc === "an existing file") return { kind: "file" };
  if (desc === "an existing folder") return { kind: "dir" };
  return FREE_TEXT.has(flag) ? { kind: "text" } : { kind: "name" };
}

const INT = /^\s*[+-]?\d+\s*$/;
const DECIMAL = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

/** Does `v` belong to the option's documented domain? null: the kind cannot tell (a name). */
function accepts(k: Kind, v: string): boolean | null {
  switch (k.kind) {
    case "int":
    case "number": {
      if (!(k.kind === "int" ? INT : DECIMAL).test(v)) return false;
      const x = Number(v);
      if (k.kind === "int" ? !Number.isSafeInteger(x) : !Number.isFinite(x)) return false;
      return (
        (k.min === undefined || x >= k.min) &&
        (k.max === undefined || x <= k.max) &&
        (k.gt === undefined || x > k.gt)
      );
    }
    case "choice":
      return k.values.includes(v);
    case "list": {
      const parts = v.split(",").map((s) => s.trim());
      const each = parts.map((p) => accepts(k.item, p));
      if (each.includes(false)) return false;
      return each.includes(null) ? null : true;
    }
    case "shard": {
      const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(v);
      return (
        m !== null && Number(m[1]) >= 1 && Number(m[1]) <= Number(m[2]) && Number.isSafeInteger(Number(m[2]))
      );
    }
    case "file":
    case "dir":
      return v.trim() !== "" && existsSync(v) && statSync(v).isDirectory() === (k.kind === "dir");
    case "text":
      return v.trim() !== "";
    case "name":
      return v.trim() === "" ? false : null;
  }
}

/** Values every kind of option meets in the wild: numbers gone wrong, empty and odd strings. */
const WILD = [
  "",
  " ",
  "abc",
  "NaN",
  "nan",
  "Infinity",
  "-Infinity",
  "inf",
  "1e308",
  "-1e308",
  "1e-400",
  "-1",
  "-0",
  "0",
  "0.5",
  "2.5",
  "1.0",
  "1,5",
  "0x10",
  "1_000",
  "１２",
  "null",
  "undefined",
  "true",
  "[]",
  "5abc",
  " 7 ",
  "1e3",
  "99999999999999999999",
  "9007199254740993",
  "a\nb",
  "%s%n",
  "-",
  "/",
  "..",
];

function valuesFor(k: Kind): fc.Arbitrary<string> {
  const numeric = fc.oneof(
    fc.double({ noDefaultInfinity: false }).map(String),
    fc.integer({ min: -1e7, max: 1e7 }).map(String),
    fc.bigInt({ min: -(10n ** 25n), max: 10n ** 25n }).map(String),
    fc.tuple(fc.double({ min: -10, max: 10, noNaN: true }), fc.nat(4)).map(([x, d]) => x.toFixed(d)),
  );
  const text = fc.string({ maxLength: 12 }).filter((s) => !s.startsWith("-"));
  const wild = fc.constantFrom(...WILD);
  switch (k.kind) {
    case "int":
    case "number": {
      // and values inside the bounds, which must go through without a crash or a NaN
      const lo = k.min ?? k.gt ?? -1e6;
      const hi = k.max ?? Math.max(lo, 0) + 1e6;
      const inside =
        k.kind === "int"
          ? fc.integer({ min: Math.ceil(lo), max: Math.floor(hi) }).map(String)
          : fc.double({ min: lo, max: hi, noNaN: true }).map(String);
      return fc.oneof(wild, numeric, text, inside, inside);
    }
    case "shard":
      return fc.oneof(
        wild,
        numeric,
        text,
        numeric.map((a) => `${a}/${a}`),
        fc.tuple(fc.nat(9), fc.nat(9)).map(([i, n]) => `${i}/${n}`),
      );
    case "list":
      return fc.oneof(
        wild,
        fc.array(fc.oneof(numeric, wild, text), { minLength: 1, maxLength: 4 }).map((a) => a.join(",")),
      );
    case "file":
    case "dir":
      // a folder where a file belongs and the other way round, a path that is not there
      return fc.oneof(wild, fc.constantFrom(tmp, R("samples/run.json"), T("not-there"), "/nonexistent/x"));
    case "text":
      return fc.constantFrom("", " ", "\t");
    default:
      // unknown names: garbage, and words no command knows
      return fc.oneof(
        wild,
        text.map((s) => `zz${s.replace(/,/g, "")}`),
      );
  }
}

/** The line main.ts prints, if the result is one clear refusal naming `flag` and `value`; else what is wrong. */
function refusalProblem(r: CliResult, flag: string, value: string): string | null {
  if (r.reached !== null) return `accepted (reached ${r.reached})`;
  if (r.code !== 2)
    return `exit ${r.code}${r.thrown instanceof Error ? ` (${r.thrown.name}: ${r.thrown.message})` : ""}`;
  if (r.stdout !== "") return `printed on stdout: ${r.stdout.slice(0, 80)}`;
  const lines = r.stderr.split("\n");
  if (lines.length !== 2 || lines[1] !== "")
    return `stderr is ${lines.length - 1} lines: ${r.stderr.slice(0, 200)}`;
  const line = lines[0];
  if (/\n\s+at |^\s+at /.test(r.stderr)) return "a stack trace";
  if (!line.startsWith("framecost: ")) return `not framecost's line: ${line}`;
  if (!line.includes(flag)) return `does not name ${flag}: ${line}`;
  // a list's line may show the one item that is wrong
  const shown = [value, value.trim(), ...value.split(",").map((s) => s.trim())]
    .filter((s) => s !== "")
    .flatMap((s) => [s, JSON.stringify(s)]);
  if (value.trim() !== "" && !shown.some((s) => line.includes(s))) return `does not show the value: ${line}`;
  if (value.trim() === "" && !line.includes('""') && !line.includes(JSON.stringify(value)))
    return `does not show the empty value: ${line}`;
  if (
    !/must be|must name|pass |one of|known|needs?|expected|use |add |leave |give |is not|does not|run once/i.test(
      line,
    )
  )
    return `says no fix: ${line}`;
  return null;
}

/** For an accepted value: a clean run, a refusal of something else, or the work reached; never a crash. */
function acceptedProblem(r: CliResult): string | null {
  if (r.reached !== null) return null;
  if (r.code === 0)
    return /\bNaN\b|\bInfinity\b|undefined/.test(r.stdout)
      ? `nonsense on stdout: ${r.stdout.slice(0, 200)}`
      : null;
  if (r.code !== 2)
    return `exit ${r.code}${r.thrown instanceof Error ? ` (${r.thrown.name}: ${r.thrown.message})` : ""}`;
  const lines = r.stderr.split("\n");
  return lines.length === 2 && lines[0].startsWith("framecost: ")
    ? null
    : `not one line: ${r.stderr.slice(0, 200)}`;
}

let files: CommandFile[] = [];
let options: DeclaredOption[] = [];
const registers = () => files.map((f) => f.register);
const cwd = process.cwd();

/** Runs one command line in process, with the command's base; the schema of its options comes back too. */
async function run(o: DeclaredOption, value: string): Promise<CliResult & { schema: unknown }> {
  const base = BASES[o.command];
  hooks.schemas = [];
  hooks.stopAfterParse = base === undefined;
  const args = [o.command, ...(base?.byFlag?.[o.flag] ?? base?.args ?? []), `${o.flag}=${value}`];
  const r = await runCli(registers(), args);
  return { ...r, schema: hooks.schemas[0] };
}

function walk(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const kinds = new Map<string, Kind>();
const tally = { cases: 0, refused: 0, accepted: 0, byCommand: new Map<string, number>() };

beforeAll(async () => {
  files = await commandFiles();
  options = declaredOptions(buildProgram(registers()).program);
  saveMicroModel(T("guided"), 3);
  saveMicroModel(T("snapshot"), 4);
  mkdirSync(T("shard"));
  writeFileSync(T("a-file"), "x");
  // anything a bad value makes a command write lands in the scratch folder, not the repository
  process.chdir(tmp);
});

afterAll(() => {
  process.chdir(cwd);
  rmSync(tmp, { recursive: true, force: true });
  const per = [...tally.byCommand].map(([c, n]) => `${c} ${n}`).join(", ");
  const valued = options.filter((o) => o.value !== "none").length;
  console.log(
    `reliability-options: ${tally.cases} cases in process (${tally.refused} refused as they must be, ${tally.accepted} good values accepted) over the ${valued} options that take a value (of ${options.length}) of ${files.length} commands: ${per}`,
  );
});

describe("every option of every command, fuzzed in process", () => {
  it("finds the commands main.ts registers, and their options", () => {
    const names = buildProgram(registers()).program.commands.map((c) => c.name());
    for (const c of [
      "generate",
      "sweep",
      "merge",
      "compare",
      "cost",
      "path",
      "levers",
      "gpus",
      "guide",
      "distill",
      "train",
      "report",
      "doctor",
    ])
      expect(names).toContain(c);
    // a command file src/cli/ has but main.ts does not register yet is fuzzed all the same
    for (const f of files.filter((f) => !f.inMain))
      console.log(`reliability-options: ${f.file} is not registered in main.ts (fuzzed anyway)`);
    expect(options.filter((o) => o.value !== "none").length).toBeGreaterThan(100);
  });

  it("every option with a value is validated by its command's schema", async () => {
    const missing: string[] = [];
    for (const o of options.filter((o) => o.value !== "none")) {
      // a value no kind accepts, just to get the command's schema back
      const r = await run(o, "");
      const shape = (r.schema as { shape?: Record<string, z.ZodType> } | undefined)?.shape;
      if (!shape || !(o.key in shape)) {
        missing.push(`${o.command} ${o.flag}`);
        continue;
      }
      kinds.set(`${o.command} ${o.flag}`, kindOf(describeField(shape[o.key]), o.flag));
    }
    expect(missing).toEqual([]);
  });

  it("bad values: exit 2, one line naming the flag, the value and the fix; good ones never crash", async () => {
    const failures: string[] = [];
    for (const o of options.filter((o) => o.value !== "none")) {
      const k = kinds.get(`${o.command} ${o.flag}`);
      if (!k) continue;
      // without a base (a command being added) only what parsing decides can be judged
      if (BASES[o.command] === undefined && k.kind === "name") continue;
      await fc
        .assert(
          fc.asyncProperty(valuesFor(k), async (value) => {
            const r = await run(o, value);
            const ok = accepts(k, value);
            tally.cases++;
            tally.byCommand.set(o.command, (tally.byCommand.get(o.command) ?? 0) + 1);
            const problem = ok === true ? acceptedProblem(r) : refusalProblem(r, o.flag, value);
            if (ok === true) tally.accepted++;
            else tally.refused++;
            if (problem) {
              failures.push(`${o.command} ${o.flag}=${JSON.stringify(value)}: ${problem}`);
              return false;
            }
            return true;
          }),
          { numRuns: 30, seed: 18, endOnFailure: true },
        )
        .catch(() => {});
    }
    expect(failures).toEqual([]);
    // refused or stopped at a stub, no run wrote a file (or left a lock) in its output folder
    const outs = readdirSync(tmp).filter((n) => n.startsWith("out-") || n.startsWith("ckpt-"));
    expect(outs.flatMap((n) => walk(T(n)))).toEqual([]);
  }, 300_000);
});

describe("a sample per command, end to end through the real CLI", () => {
  /** One bad value per command: its first number option, else a choice, a file, a name or an empty folder name. */
  function sample(command: string): { flag: string; value: string } | null {
    const mine = options.filter((o) => o.command === command && o.value === "required");
    const kindName = (o: DeclaredOption) => kinds.get(`${o.command} ${o.flag}`)?.kind ?? "";
    const pick = (wanted: string[], value: string) => {
      const o = mine.find((o) => wanted.includes(kindName(o)));
      return o ? { flag: o.flag, value } : null;
    };
    return (
      pick(["int", "number"], "NaN") ??
      pick(["choice"], "zz") ??
      pick(["file", "dir"], "/nonexistent/x") ??
      (BASES[command] ? pick(["name"], "zz-unknown") : null) ??
      pick(["text"], "")
    );
  }

  it("each command refuses a bad value with exit 2 and one line on stderr", async () => {
    const spawnCli = (args: string[]) => cli(args);
    const commands = [...new Set(options.map((o) => o.command))];
    const cases = commands.flatMap((c) => {
      const s = sample(c);
      return s ? [{ command: c, ...s, args: [c, ...(BASES[c]?.args ?? []), s.flag, s.value] }] : [];
    });
    expect(cases.length).toBeGreaterThanOrEqual(14);
    const failures: string[] = [];
    // two at a time: the machine has two cores
    for (let i = 0; i < cases.length; i += 2) {
      const batch = cases.slice(i, i + 2);
      const results = await Promise.all(batch.map((c) => spawnCli(c.args)));
      results.forEach((r, j) => {
        const c = batch[j];
        const problem = refusalProblem({ ...r, reached: null }, c.flag, c.value);
        if (problem) failures.push(`${c.command} ${c.flag} ${JSON.stringify(c.value)}: ${problem}`);
      });
    }
    console.log(
      `reliability-options: ${cases.length} commands refused a bad value end to end (exit 2, one line)`,
    );
    expect(failures).toEqual([]);
  }, 120_000);
});
