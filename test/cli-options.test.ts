import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  BACKEND_NAMES,
  backendOpt,
  choiceOpt,
  flagOf,
  intOpt,
  listOpt,
  numberOpt,
  parseOptions,
  pathOpt,
  stringOpt,
} from "../src/cli/options.ts";
import { UserError } from "../src/util/errors.ts";

const Schema = z.object({
  steps: intOpt({ min: 1 }).default(20),
  maxSteps: intOpt({ min: 1, max: 1000 }).optional(),
  price: numberOpt({ gt: 0 }).optional(),
  sampler: choiceOpt(["ddim", "euler", "heun"]).default("ddim"),
  stepList: listOpt(intOpt({ min: 1 })).optional(),
  out: stringOpt().optional(),
  json: z.boolean().default(false),
});

/** The one-line message parseOptions throws for `raw`. */
function messageFor(raw: Record<string, unknown>, schema: z.ZodType = Schema): string {
  try {
    parseOptions(schema, raw);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    const message = (err as Error).message;
    expect(message).not.toContain("\n");
    return message;
  }
  throw new Error("expected a UserError");
}

describe("parseOptions", () => {
  it("applies defaults and converts commander's strings", () => {
    expect(parseOptions(Schema, {})).toEqual({ steps: 20, sampler: "ddim", json: false });
    expect(
      parseOptions(Schema, {
        steps: "8",
        maxSteps: "1000",
        price: "2.99",
        sampler: "heun",
        stepList: "5, 10,20",
        out: "x.mp4",
        json: true,
      }),
    ).toEqual({
      steps: 8,
      maxSteps: 1000,
      price: 2.99,
      sampler: "heun",
      stepList: [5, 10, 20],
      out: "x.mp4",
      json: true,
    });
  });

  it.each([
    [{ steps: "abc" }, '--steps must be an integer >= 1, got "abc"'],
    [{ steps: "0" }, '--steps must be an integer >= 1, got "0"'],
    [{ steps: "2.5" }, '--steps must be an integer >= 1, got "2.5"'],
    [{ steps: "" }, '--steps must be an integer >= 1, got ""'],
    [{ steps: "1e3" }, '--steps must be an integer >= 1, got "1e3"'],
    [{ maxSteps: "1001" }, '--max-steps must be an integer between 1 and 1000, got "1001"'],
    [{ price: "-1" }, '--price must be a number > 0, got "-1"'],
    [{ price: "0" }, '--price must be a number > 0, got "0"'],
    [{ price: "cheap" }, '--price must be a number > 0, got "cheap"'],
    [{ price: "Infinity" }, '--price must be a number > 0, got "Infinity"'],
    [{ sampler: "plms" }, '--sampler must be one of ddim, euler, heun, got "plms"'],
    [
      { stepList: "5,x,20" },
      '--step-list must be a comma-separated list, each an integer >= 1, got "5,x,20"',
    ],
    [{ stepList: "5,,20" }, '--step-list must be a comma-separated list, each an integer >= 1, got "5,,20"'],
    [{ out: "  " }, '--out must be a non-empty string, got "  "'],
    [{ json: "yes" }, '--json is not valid (Invalid input: expected boolean, received string), got "yes"'],
  ])("%o -> %s", (raw, message) => {
    expect(messageFor(raw)).toBe(message);
  });

  it("reports only the first problem", () => {
    expect(messageFor({ steps: "x", price: "y" })).toBe('--steps must be an integer >= 1, got "x"');
  });

  it("names a missing required option and how to give it", () => {
    expect(messageFor({}, z.object({ record: pathOpt() }))).toBe(
      "--record is required; add --record <value> (see --help)",
    );
  });

  it("uses the names given for positional arguments", () => {
    const schema = z.object({ record: pathOpt({ mustExist: "file" }) });
    expect(() =>
      parseOptions(schema, { record: "/no/such/run.json" }, { names: { record: "<record>" } }),
    ).toThrow(new UserError('<record> must be an existing file, got "/no/such/run.json"'));
  });

  it("pathOpt checks files and folders when asked", () => {
    const dir = mkdtempSync(join(tmpdir(), "framecost-options-"));
    const file = join(dir, "run.json");
    writeFileSync(file, "{}");
    const schema = z.object({
      file: pathOpt({ mustExist: "file" }).optional(),
      dir: pathOpt({ mustExist: "dir" }).optional(),
    });
    expect(parseOptions(schema, { file, dir })).toEqual({ file, dir });
    expect(messageFor({ file: dir }, schema)).toBe(
      `--file must be an existing file, got ${JSON.stringify(dir)}`,
    );
    expect(messageFor({ dir: file }, schema)).toBe(
      `--dir must be an existing folder, got ${JSON.stringify(file)}`,
    );
  });

  it("every integer within bounds parses back to itself, every one outside is refused", () => {
    const schema = z.object({ n: intOpt({ min: -50, max: 50 }) });
    fc.assert(
      fc.property(fc.integer({ min: -1000, max: 1000 }), (n) => {
        if (n >= -50 && n <= 50) expect(parseOptions(schema, { n: String(n) })).toEqual({ n });
        else
          expect(messageFor({ n: String(n) }, schema)).toBe(
            `--n must be an integer between -50 and 50, got "${n}"`,
          );
      }),
    );
  });
});

describe("numbers written as people write them, nothing else", () => {
  it.each([
    [{ price: "0x10" }, '--price must be a number > 0, got "0x10"'],
    [{ price: "0b11" }, '--price must be a number > 0, got "0b11"'],
    [{ price: "1_000" }, '--price must be a number > 0, got "1_000"'],
    [{ price: "-Infinity" }, '--price must be a number > 0, got "-Infinity"'],
    [{ steps: "99999999999999999999" }, '--steps must be an integer >= 1, got "99999999999999999999"'],
    [{ steps: "9007199254740993" }, '--steps must be an integer >= 1, got "9007199254740993"'],
  ])("%o -> %s", (raw, message) => {
    expect(messageFor(raw)).toBe(message);
  });

  it("decimal forms still parse", () => {
    expect(parseOptions(Schema, { price: " 2.5e1 " }).price).toBe(25);
    expect(parseOptions(Schema, { price: ".5" }).price).toBe(0.5);
    expect(parseOptions(Schema, { steps: "+9007199254740991" }).steps).toBe(9007199254740991);
  });

  it("a value with a newline stays on one line in the message", () => {
    expect(messageFor({ out: "a\nb", steps: "x\ny" })).toBe('--steps must be an integer >= 1, got "x\\ny"');
    expect(new UserError('unknown GPU "a\nb"').message).toBe('unknown GPU "a\\nb"');
  });

  it("--backend names the engines engine/backend.ts knows, and onnx", async () => {
    const { defaultBackends } = await import("../src/engine/backend.ts");
    expect([...BACKEND_NAMES].sort()).toEqual([...defaultBackends().map((b) => b.name), "onnx"].sort());
    expect(messageFor({ backend: "gpu" }, z.object({ backend: backendOpt() }))).toBe(
      '--backend must be one of tensorflow, wasm, cpu, onnx, got "gpu"',
    );
    expect(parseOptions(z.object({ backend: backendOpt({ auto: true }) }), { backend: "auto" })).toEqual({
      backend: "auto",
    });
  });
});

describe("flagOf", () => {
  it("turns commander's camelCase keys back into flags", () => {
    expect(flagOf("steps")).toBe("--steps");
    expect(flagOf("maxSteps")).toBe("--max-steps");
    expect(flagOf("usdPerHour")).toBe("--usd-per-hour");
  });
});
