/**
 * Option parsing shared by every command: each command declares a zod object
 * of its options (built from the helpers below) and calls `parseOptions`. The
 * first problem becomes one UserError line naming the flag, the value seen and
 * what it must be, e.g.
 *   --steps must be an integer >= 1, got "abc"
 *
 * Commander hands option values over as strings (or booleans for switches,
 * or undefined when absent), so every helper accepts a string or a number.
 */
import { existsSync, statSync } from "node:fs";
import { z } from "zod";
import { UserError } from "../util/errors.ts";

export interface Bounds {
  /** inclusive lower bound */
  min?: number;
  /** inclusive upper bound */
  max?: number;
  /** exclusive lower bound */
  gt?: number;
}

function boundsText({ min, max, gt }: Bounds): string {
  if (min !== undefined && max !== undefined) return ` between ${min} and ${max}`;
  const parts: string[] = [];
  if (gt !== undefined) parts.push(`> ${gt}`);
  if (min !== undefined) parts.push(`>= ${min}`);
  if (max !== undefined) parts.push(`<= ${max}`);
  return parts.length > 0 ? ` ${parts.join(" and ")}` : "";
}

function inBounds(v: number, { min, max, gt }: Bounds): boolean {
  return (min === undefined || v >= min) && (max === undefined || v <= max) && (gt === undefined || v > gt);
}

/**
 * A string-or-number option whose parser returns the value or undefined when
 * it does not fit. `desc` completes "must be ...", and lists reuse it.
 */
function option<T>(desc: string, parse: (raw: string | number) => T | undefined) {
  return z
    .union([z.string(), z.number()])
    .transform((raw, ctx): T => {
      const value = parse(raw);
      if (value === undefined) {
        ctx.issues.push({ code: "custom", message: `must be ${desc}`, input: raw });
        return z.NEVER;
      }
      return value;
    })
    .describe(desc);
}

// whole numbers past 2^53 lose digits (99999999999999999999 reads as 1e20): refused, not rounded
function parseInt10(raw: string | number): number | undefined {
  const v = typeof raw === "number" ? raw : /^\s*[+-]?\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
  return Number.isSafeInteger(v) ? v : undefined;
}

// decimal notation only: Number() would also read "0x10", "0b11" and "Infinity"
function parseNumber(raw: string | number): number | undefined {
  const v =
    typeof raw === "number"
      ? raw
      : /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(raw)
        ? Number(raw)
        : Number.NaN;
  return Number.isFinite(v) ? v : undefined;
}

/** An integer option, e.g. `intOpt({ min: 1 })` for --steps. */
export function intOpt(bounds: Bounds = {}) {
  return option(`an integer${boundsText(bounds)}`, (raw) => {
    const v = parseInt10(raw);
    return v !== undefined && inBounds(v, bounds) ? v : undefined;
  });
}

/** A finite number option, e.g. `numberOpt({ gt: 0 })` for --price. */
export function numberOpt(bounds: Bounds = {}) {
  return option(`a number${boundsText(bounds)}`, (raw) => {
    const v = parseNumber(raw);
    return v !== undefined && inBounds(v, bounds) ? v : undefined;
  });
}

/** One of a fixed set of words, e.g. `choiceOpt(["ddim", "heun"])` for --sampler. */
export function choiceOpt<const T extends readonly [string, ...string[]]>(values: T) {
  return option(`one of ${values.join(", ")}`, (raw) =>
    values.includes(String(raw)) ? (String(raw) as T[number]) : undefined,
  );
}

/**
 * The engines --backend may name: tfjs's (engine/backend.ts defaultBackends) and onnxruntime's;
 * `auto` adds "auto" (the training loop's default). Checked here, so a typo fails before any work.
 */
export const BACKEND_NAMES = ["tensorflow", "wasm", "cpu", "onnx"] as const;
export function backendOpt({ auto = false }: { auto?: boolean } = {}) {
  // the training loop's order: auto, then onnx (what auto prefers), then tfjs's
  return auto ? choiceOpt(["auto", "onnx", "tensorflow", "wasm", "cpu"]) : choiceOpt(BACKEND_NAMES);
}

/** A comma-separated list, e.g. `listOpt(intOpt({ min: 1 }))` for --steps 5,10,20. */
export function listOpt<T>(item: z.ZodType<T, string | number>) {
  return option(`a comma-separated list, each ${item.description ?? "valid"}`, (raw) => {
    const parts = String(raw)
      .split(",")
      .map((s) => s.trim());
    const out: T[] = [];
    for (const part of parts) {
      const r = item.safeParse(part);
      if (!r.success) return undefined;
      out.push(r.data);
    }
    return out;
  });
}

/** `--shard I/N`: the I-th of N parts, 1 <= I <= N. */
export function shardOpt() {
  return option("I/N with whole numbers 1 <= I <= N (e.g. 2/8)", (raw) => {
    const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(String(raw));
    if (!m) return undefined;
    const index = Number(m[1]);
    const count = Number(m[2]);
    return index >= 1 && index <= count && Number.isSafeInteger(count) ? { index, count } : undefined;
  });
}

/** A non-empty string. */
export function stringOpt() {
  return option("a non-empty string", (raw) => (String(raw).trim() === "" ? undefined : String(raw)));
}

/** A path; with `mustExist` it must name an existing file or folder. */
export function pathOpt({ mustExist }: { mustExist?: "file" | "dir" } = {}) {
  const what =
    mustExist === "file" ? "an existing file" : mustExist === "dir" ? "an existing folder" : "a path";
  return option(what, (raw) => {
    const p = String(raw);
    if (p.trim() === "") return undefined;
    if (mustExist === undefined) return p;
    if (!existsSync(p)) return undefined;
    const isDir = statSync(p).isDirectory();
    return (mustExist === "dir") === isDir ? p : undefined;
  });
}

/** camelCase option key (as commander stores it) -> its flag, "maxSteps" -> "--max-steps". */
export function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

function shown(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

export interface ParseOptionsConfig {
  /** how to name a key in messages when it is not a flag, e.g. { record: "<record>" } for an argument */
  names?: Record<string, string>;
}

/**
 * Validates commander's option object against `schema`; throws a one-line
 * UserError for the first problem found.
 */
export function parseOptions<S extends z.ZodType>(
  schema: S,
  raw: Record<string, unknown>,
  { names = {} }: ParseOptionsConfig = {},
): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const key = issue.path.length > 0 ? String(issue.path[0]) : undefined;
  if (key === undefined) throw new UserError(issue.message);
  const name = names[key] ?? flagOf(key);
  const value = raw[key];
  if (value === undefined) throw new UserError(`${name} is required; add ${name} <value> (see --help)`);
  const what = issue.code === "custom" ? issue.message : `is not valid (${issue.message})`;
  throw new UserError(`${name} ${what}, got ${shown(value)}`);
}
