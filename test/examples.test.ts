/**
 * The job files in examples/: every framecost command line in them, with the
 * scheduler's variables set as one task would see them, goes through the
 * CLI's own option parser (no YAML parser is installed, so the YAML is
 * checked for the few fields the commands depend on). A renamed flag or a
 * shard count that disagrees with the job's size fails here.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type Parsed, parseCommandLine } from "./helpers/cli.ts";

const read = (path: string) => readFileSync(join("examples", path), "utf8");

/** Shell-like expansion of what the job files use: ${{ x }}, $((A + n)), ${A:-default}, $A. */
function expand(text: string, env: Record<string, string>): string {
  const get = (name: string) => {
    if (env[name] === undefined) throw new Error(`the example uses ${name}, which the test does not set`);
    return env[name];
  };
  return text
    .replace(/\$\{\{\s*([\w.-]+)\s*\}\}/g, (_, v) => get(v))
    .replace(/\$\(\((\w+)\s*\+\s*(\d+)\)\)/g, (_, v, n) => String(Number(get(v)) + Number(n)))
    .replace(/\$\{(\w+):-([^}]*)\}/g, (_, v, d) => env[v] ?? d)
    .replace(/\$(\w+)/g, (_, v) => get(v));
}

/** Words of a command line as a shell splits them, quotes removed ("$OUT"/x is one word; no escapes: the examples use none). */
function words(line: string): string[] {
  const out: string[] = [];
  let word: string | null = null;
  let quote: string | null = null;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = null;
      else word += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      word ??= "";
    } else if (/\s/.test(ch)) {
      if (word !== null) out.push(word);
      word = null;
    } else word = (word ?? "") + ch;
  }
  if (word !== null) out.push(word);
  return out;
}

/**
 * Each `npm run -s framecost -- ...` command of a file (continuation lines
 * joined, cut at && or ;), expanded with `env` plus the shell assignments
 * (`OUT=...`, `I=...`) made before it, parsed as the CLI parses it.
 */
async function commands(text: string, env: Record<string, string>): Promise<Parsed[]> {
  const vars = { ...env };
  const out: Parsed[] = [];
  for (const raw of text.replace(/\\\n\s*/g, " ").split("\n")) {
    const line = raw.replace(/^\s*(- run:|-)\s*/, "").trim();
    for (const m of line.matchAll(/(?:^|&&\s*)(\w+)=("[^"]*"|\$\(\([^)]*\)\)|\S+)/g))
      vars[m[1]] = words(expand(m[2], vars)).join(" ");
    const cmd = /npm run -s framecost -- (.*?)\s*(?:&&|;|$)/.exec(line);
    if (cmd) out.push(await parseCommandLine(words(expand(cmd[1], vars))));
  }
  return out;
}

function sweepAndMerge(parsed: Parsed[]) {
  expect(parsed.map((p) => p.command)).toEqual(["sweep", "merge"]);
  const [s, m] = parsed;
  if (s.command !== "sweep" || m.command !== "merge") throw new Error("unreachable");
  return { sweep: s.options, merge: m.options };
}

describe("examples/slurm", () => {
  it("array task I runs --shard I/N into its own folder, and the merge job globs those folders", async () => {
    const env = { SLURM_ARRAY_TASK_ID: "3", SLURM_ARRAY_TASK_COUNT: "4", SLURM_CPUS_PER_TASK: "8" };
    const sweepFile = read("slurm/sweep.sbatch");
    const mergeFile = read("slurm/merge.sbatch");
    const { sweep, merge } = sweepAndMerge([
      ...(await commands(sweepFile, env)),
      ...(await commands(mergeFile, {})),
    ]);
    expect(sweep.shard).toEqual({ index: 3, count: 4 });
    expect(sweep.workers).toBe(8);
    expect(sweep.resume).toBe(true);
    expect(sweep.out).toBe("out/sweep-shards/shard-3");
    expect(merge.dirs).toEqual(["out/sweep-shards/shard-*"]);
    expect(merge.dirs[0].replace("*", "3")).toBe(sweep.out);
    expect(merge.out).toBe("out/sweep-shards/merged");
    expect(sweepFile).toMatch(/^#SBATCH --array=1-\d+$/m);
    expect(sweepFile).toContain("sbatch --dependency=afterok:$jid examples/slurm/merge.sbatch");
    for (const f of ["slurm/sweep.sbatch", "slurm/merge.sbatch"]) {
      const r = spawnSync("bash", ["-n", join("examples", f)], { encoding: "utf8" });
      expect(r.stderr, f).toBe("");
      expect(r.status, f).toBe(0);
    }
  });
});

describe("examples/kubernetes", () => {
  it("pod k of the Indexed Job runs --shard k+1/SHARDS with SHARDS = completions; the merge Job reads the same volume", async () => {
    const job = read("kubernetes/sweep-job.yaml");
    const mergeJob = read("kubernetes/merge-job.yaml");
    const shards = /name: SHARDS\n\s+value: "(\d+)"/.exec(job)![1];
    expect(job).toMatch(/^ {2}completionMode: Indexed$/m);
    expect(/^ {2}completions: (\d+)$/m.exec(job)![1]).toBe(shards);
    expect(/^ {2}parallelism: (\d+)$/m.exec(job)![1]).toBe(shards);
    const { sweep, merge } = sweepAndMerge([
      ...(await commands(job, { JOB_COMPLETION_INDEX: "2", SHARDS: shards })),
      ...(await commands(mergeJob, {})),
    ]);
    expect(sweep.shard).toEqual({ index: 3, count: Number(shards) });
    expect(sweep.out).toBe("/out/shard-3");
    expect(sweep.resume).toBe(true);
    expect(merge.dirs[0].replace("*", "3")).toBe(sweep.out);
    for (const text of [job, mergeJob]) {
      expect(text).toContain("claimName: framecost-out");
      expect(text).toContain("mountPath: /out");
      expect(text).not.toMatch(/\t/);
    }
    expect(job).toContain("kubectl wait --for=condition=complete --timeout=6h job/framecost-sweep");
  });
});

describe("examples/github-actions", () => {
  it("matrix job k runs --shard k/job-total and uploads its folder; the merge job needs them and merges the downloads", async () => {
    const wf = read("github-actions/sweep.yml");
    const matrix = /^ {8}shard: \[([\d, ]+)\]$/m.exec(wf)![1].split(",").map(Number);
    expect(matrix).toEqual(matrix.map((_, i) => i + 1));
    const env = { "matrix.shard": "2", "strategy.job-total": String(matrix.length) };
    const { sweep, merge } = sweepAndMerge(await commands(wf, env));
    expect(sweep.shard).toEqual({ index: 2, count: matrix.length });
    expect(sweep.out).toBe("out/shard-2");
    // upload-artifact shard-k from the shard's folder; download-artifact puts it in shards/shard-k/
    expect(expand(/name: (shard-\$\{\{ matrix.shard \}\})/.exec(wf)![1], env)).toBe("shard-2");
    expect(expand(/path: (out\/shard-\$\{\{ matrix\.shard \}\})\//.exec(wf)![1], env)).toBe(sweep.out);
    expect(wf).toMatch(/pattern: shard-\*\n\s+path: shards\n/);
    expect(merge.dirs).toEqual(["shards/shard-*"]);
    expect(wf).toMatch(/^ {2}merge:\n {4}needs: sweep$/m);
    expect(wf).not.toMatch(/\t/);
  });
});

describe("the parser the examples are checked with", () => {
  it("refuses what the CLI refuses", async () => {
    await expect(parseCommandLine(["sweep", "--shards", "1/2"])).rejects.toThrow("unknown option '--shards'");
    await expect(parseCommandLine(["sweep", "--shard", "5/4"])).rejects.toThrow(
      '--shard must be I/N with whole numbers 1 <= I <= N (e.g. 2/8), got "5/4"',
    );
    await expect(parseCommandLine(["merge"])).rejects.toThrow("missing required argument 'dir'");
  });
});
