/**
 * The framecost program in this process, for checks that would take hours
 * as one spawned CLI each (tsx starts in ~2.5 s): every command that
 * src/cli/main.ts registers (found by reading its imports, so a new command
 * is picked up without touching this file), its options as commander holds
 * them, and a runner that turns a command line into what main.ts would
 * print and exit with.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Command, CommanderError, type Option } from "commander";
import { exitCodeOf } from "../../src/util/errors.ts";

const CLI_DIR = join(import.meta.dirname, "..", "..", "src", "cli");

export type Register = (program: Command) => void;

export interface CommandFile {
  /** file name under src/cli/, e.g. "generate.ts" */
  file: string;
  /** registered in main.ts (a file that only exports register() is listed too, with false) */
  inMain: boolean;
  register: Register;
}

/**
 * Every command file: those main.ts imports `register` from, and any other
 * file in src/cli/ that exports a `register` (a command being added).
 */
export async function commandFiles(): Promise<CommandFile[]> {
  const main = readFileSync(join(CLI_DIR, "main.ts"), "utf8");
  const inMain = new Set(
    [...main.matchAll(/import\s*\{\s*register as \w+\s*\}\s*from\s*"\.\/([\w-]+\.ts)"/g)].map((m) => m[1]),
  );
  const others = readdirSync(CLI_DIR).filter(
    (f) =>
      f.endsWith(".ts") &&
      !inMain.has(f) &&
      f !== "main.ts" &&
      /export function register\(/.test(readFileSync(join(CLI_DIR, f), "utf8")),
  );
  const files = [...inMain, ...others];
  return Promise.all(
    files.map(async (file) => {
      const mod = (await import(join(CLI_DIR, file))) as { register?: Register };
      if (typeof mod.register !== "function") throw new Error(`src/cli/${file} has no register()`);
      return { file, inMain: inMain.has(file), register: mod.register };
    }),
  );
}

/** The program with every command registered, parse errors captured as main.ts captures them. */
export function buildProgram(registers: Register[]): {
  program: Command;
  failure: () => { message: string; command: Command } | undefined;
} {
  const program = new Command().name("framecost").showHelpAfterError(false).exitOverride();
  for (const register of registers) register(program);
  let failure: { message: string; command: Command } | undefined;
  const quiet = (cmd: Command): void => {
    cmd.exitOverride().configureOutput({
      outputError: (message) => {
        failure = { message, command: cmd };
      },
      writeOut: () => {},
      writeErr: () => {},
    });
    cmd.commands.forEach(quiet);
  };
  quiet(program);
  return { program, failure: () => failure };
}

/** One option of one command, as commander declares it. */
export interface DeclaredOption {
  command: string;
  /** "--model-width" */
  flag: string;
  /** the key in the options object, "modelWidth" */
  key: string;
  /** takes a value: "required" (<x>), "optional" ([x]) or none (a switch) */
  value: "required" | "optional" | "none";
  option: Option;
}

/** Every option of every command, read from commander (so new options are found without a list). */
export function declaredOptions(program: Command): DeclaredOption[] {
  return program.commands.flatMap((cmd) =>
    cmd.options
      .filter((o) => o.long !== undefined && o.long !== "--help")
      .map((o) => ({
        command: cmd.name(),
        flag: o.long as string,
        key: o.attributeName(),
        value: o.required ? ("required" as const) : o.optional ? ("optional" as const) : ("none" as const),
        option: o,
      })),
  );
}

export interface CliResult {
  /** what main.ts would exit with; null when the run reached a stubbed piece of real work */
  code: number | null;
  stdout: string;
  stderr: string;
  /** the stubbed work the command got to (its options were accepted), else null */
  reached: string | null;
  /** what was thrown, if anything (main.ts prints only its message) */
  thrown?: unknown;
}

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/**
 * Runs `args` (as after `framecost`) in this process and returns what
 * main.ts would print and exit with. An error named "ReachedWork" (thrown by
 * a test's stub of a command's real work) ends the run with `reached` set.
 */
export async function runCli(registers: Register[], args: string[]): Promise<CliResult> {
  const { program, failure } = buildProgram(registers);
  const out: string[] = [];
  const err: string[] = [];
  const stdoutWrite = process.stdout.write;
  const stderrWrite = process.stderr.write;
  const exitCodeBefore = process.exitCode;
  process.exitCode = undefined;
  // a command that stops at a stub leaves its Ctrl-C handlers (a real run exits): removed after each run
  const signals = ["SIGINT", "SIGTERM"] as const;
  const listenersBefore = signals.map((s) => new Set(process.listeners(s)));
  const capture =
    (into: string[]) =>
    (chunk: unknown, ...rest: unknown[]): boolean => {
      into.push(typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString("utf8"));
      const cb = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      cb?.();
      return true;
    };
  process.stdout.write = capture(out) as typeof process.stdout.write;
  process.stderr.write = capture(err) as typeof process.stderr.write;
  let code: number | null;
  let reached: string | null = null;
  let thrown: unknown;
  try {
    await program.parseAsync(args, { from: "user" });
    code = Number(process.exitCode ?? 0);
  } catch (e) {
    thrown = e;
    if (e instanceof Error && e.name === "ReachedWork") {
      reached = e.message;
      code = null;
    } else if (e instanceof CommanderError) {
      // main.ts: --help and --version exit 0; parse errors are one line, exit 2
      const f = failure();
      if (e.exitCode !== 0 && f) {
        const what = f.message
          .replace(/^error: /, "")
          .replace(/\s*\n\s*/g, " ")
          .trim()
          .replace(/\.$/, "");
        err.push(`framecost: ${what}; see "${commandPath(f.command)} --help"\n`);
      }
      code = e.exitCode === 0 ? 0 : 2;
    } else {
      err.push(`framecost: ${e instanceof Error ? e.message : String(e)}\n`);
      code = exitCodeOf(e);
    }
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
    process.exitCode = exitCodeBefore;
    signals.forEach((s, i) => {
      for (const l of process.listeners(s)) if (!listenersBefore[i].has(l)) process.removeListener(s, l);
    });
  }
  return { code, stdout: out.join(""), stderr: err.join(""), reached, thrown };
}
