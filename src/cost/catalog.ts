/**
 * The GPU catalog: peak throughput, memory, power and rental prices of the
 * GPUs people rent, shipped as data (gpus.json) with a source and an as-of
 * date on every figure. A user's `--catalog FILE` merges into it through the
 * same schema: new ids are added whole; an existing id may give only the
 * fields it changes (say, other prices).
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { UserError } from "../util/errors.ts";

const SOURCE_HINT = "every figure needs a source and an asOf date";

/** A number with where it comes from and when it was true. */
export const SourcedSchema = z.object({
  value: z
    .number()
    .refine(Number.isFinite, "must be a finite number")
    .refine((v) => v > 0, "must be > 0"),
  source: z.string().min(1, "must be a non-empty string"),
  asOf: z.string().min(1, "must be a non-empty string"),
});
export type Sourced = z.infer<typeof SourcedSchema>;

export const PriceSchema = z.object({
  usdPerHour: z
    .number()
    .refine(Number.isFinite, "must be a finite number")
    .refine((v) => v >= 0, "must be >= 0"),
  provider: z.string().min(1, "must be a non-empty string"),
  source: z.string().min(1, "must be a non-empty string"),
  asOf: z.string().min(1, "must be a non-empty string"),
  note: z.string().optional(),
});
export type Price = z.infer<typeof PriceSchema>;

const GpuFields = {
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, "must be lower-case letters, digits, '.', '_' or '-'"),
  name: z.string().min(1, "must be a non-empty string"),
  /** dense BF16/FP16 tensor peak, TFLOP/s (FLOP = 2 x multiply-accumulate) */
  bf16DenseTflops: SourcedSchema,
  fp32Tflops: SourcedSchema,
  /** TB/s = 1e12 bytes/s */
  memoryBandwidthTBs: SourcedSchema,
  memoryGB: SourcedSchema,
  boardPowerW: SourcedSchema,
  /** on-demand quotes; may be empty (then --price is required to price this GPU) */
  prices: z.array(PriceSchema),
  /** borrow the calibrated utilization of another GPU with the same compute die (e.g. h200 from h100-sxm) */
  mfuFrom: z.string().optional(),
};

export const GpuSchema = z.strictObject(GpuFields);
export type Gpu = z.infer<typeof GpuSchema>;
/** An entry in a user's catalog for an id the catalog already has: only the fields it changes. */
const GpuPatchSchema = z
  .strictObject({ ...GpuFields })
  .partial()
  .required({ id: true });

export const HostedApiSchema = z.strictObject({
  id: z.string().min(1, "must be a non-empty string"),
  name: z.string().min(1, "must be a non-empty string"),
  usdPerSecond: z
    .number()
    .refine(Number.isFinite, "must be a finite number")
    .refine((v) => v >= 0, "must be >= 0"),
  source: z.string().min(1, "must be a non-empty string"),
  asOf: z.string().min(1, "must be a non-empty string"),
});
export type HostedApi = z.infer<typeof HostedApiSchema>;

export const CatalogSchema = z.strictObject({
  schemaVersion: z.literal(1),
  note: z.string().optional(),
  gpus: z.array(GpuSchema).min(1, "must list at least one GPU"),
  hostedApis: z.array(HostedApiSchema),
});
export type Catalog = z.infer<typeof CatalogSchema>;

const UserCatalogSchema = z.strictObject({
  schemaVersion: z.literal(1).optional(),
  note: z.string().optional(),
  gpus: z.array(z.unknown()).optional(),
  hostedApis: z.array(HostedApiSchema).optional(),
});

/** `gpus[2] ("my-gpu").prices[0].usdPerHour` from a zod path, naming the entry by its id when it has one. */
function fieldName(root: unknown, path: readonly PropertyKey[]): string {
  let s = "";
  let node: unknown = root;
  for (const [i, p] of path.entries()) {
    node = node != null && typeof node === "object" ? (node as Record<PropertyKey, unknown>)[p] : undefined;
    if (typeof p === "number") {
      s += `[${p}]`;
      const id = node != null && typeof node === "object" ? (node as Record<string, unknown>).id : undefined;
      if (i === 1 && typeof id === "string") s += ` ("${id}")`;
    } else s += s === "" ? String(p) : `.${String(p)}`;
  }
  return s === "" ? "the top level" : s;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const p of path) {
    if (v == null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/** One line for the first schema problem: what, where, the value seen, how to fix. */
function describeIssue(where: string, error: z.ZodError, root: unknown, prefix: PropertyKey[] = []): string {
  const issue = error.issues[0];
  const path = [...prefix, ...issue.path];
  const field = fieldName(root, path);
  const seen = valueAt(root, path);
  if (issue.code === "unrecognized_keys") {
    return `${where}: ${field} has unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(", ")}; remove them (fields: see src/cost/gpus.json)`;
  }
  if (seen === undefined) {
    const last = String(path[path.length - 1] ?? "");
    const hint =
      last === "source" || last === "asOf" ? SOURCE_HINT : "add it (fields: see src/cost/gpus.json)";
    return `${where}: ${field} is missing; ${hint}`;
  }
  const shown = JSON.stringify(seen);
  return `${where}: ${field} ${issue.message.replace(/^Invalid input: /, "")}, got ${shown && shown.length > 60 ? `${shown.slice(0, 57)}...` : shown}`;
}

let shipped: Catalog | null = null;

/** The catalog shipped with framecost (src/cost/gpus.json). */
export function shippedCatalog(): Catalog {
  if (shipped) return shipped;
  const raw: unknown = JSON.parse(readFileSync(new URL("./gpus.json", import.meta.url), "utf8"));
  const parsed = CatalogSchema.safeParse(raw);
  // the shipped file is part of the program: a failure is a bug
  if (!parsed.success)
    throw new Error(`internal error: ${describeIssue("src/cost/gpus.json", parsed.error, raw)}`);
  shipped = parsed.data;
  return shipped;
}

/**
 * Merges a user's catalog (already parsed JSON) into `base`. `where` names
 * the file in errors. New GPU ids must be complete entries; known ids may
 * give a subset of fields, which replace the shipped ones (prices as a whole).
 */
export function mergeCatalog(base: Catalog, user: unknown, where: string): Catalog {
  const top = UserCatalogSchema.safeParse(user);
  if (!top.success) throw new UserError(describeIssue(where, top.error, user));
  const gpus = base.gpus.map((g) => ({ ...g }));
  for (const [i, entry] of (top.data.gpus ?? []).entries()) {
    const id = entry != null && typeof entry === "object" ? (entry as Record<string, unknown>).id : undefined;
    const known = typeof id === "string" ? gpus.findIndex((g) => g.id === id) : -1;
    if (known >= 0) {
      const patch = GpuPatchSchema.safeParse(entry);
      if (!patch.success) throw new UserError(describeIssue(where, patch.error, user, ["gpus", i]));
      gpus[known] = { ...gpus[known], ...patch.data };
    } else {
      const full = GpuSchema.safeParse(entry);
      if (!full.success) throw new UserError(describeIssue(where, full.error, user, ["gpus", i]));
      gpus.push(full.data);
    }
  }
  const hostedApis = [...base.hostedApis];
  for (const api of top.data.hostedApis ?? []) {
    const k = hostedApis.findIndex((a) => a.id === api.id);
    if (k >= 0) hostedApis[k] = api;
    else hostedApis.push(api);
  }
  const merged = { ...base, gpus, hostedApis };
  for (const g of gpus) {
    if (g.mfuFrom !== undefined && !gpus.some((o) => o.id === g.mfuFrom)) {
      throw new UserError(
        `${where}: gpus ("${g.id}").mfuFrom names "${g.mfuFrom}", which is not in the catalog`,
      );
    }
  }
  return merged;
}

/** The shipped catalog, merged with the user's file when one is given. */
export function loadCatalog(userFile?: string): Catalog {
  const base = shippedCatalog();
  if (userFile === undefined) return base;
  let text: string;
  try {
    text = readFileSync(userFile, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(
      `--catalog ${userFile}: cannot read (${code ?? String(err)}); pass a JSON file shaped like src/cost/gpus.json`,
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UserError(
      `--catalog ${userFile}: not valid JSON (${err instanceof Error ? err.message : String(err)}); pass a JSON file shaped like src/cost/gpus.json`,
    );
  }
  return mergeCatalog(base, data, `catalog ${userFile}`);
}

export function gpuIds(catalog: Catalog): string[] {
  return catalog.gpus.map((g) => g.id);
}

/** The GPU with this id, or a UserError listing the known ids (naming `flag`, the option it came from). */
export function getGpu(catalog: Catalog, id: string, flag?: string): Gpu {
  const g = catalog.gpus.find((x) => x.id === id);
  if (!g)
    throw new UserError(
      `${flag ? `${flag}: ` : ""}unknown GPU "${id}"; known GPUs: ${gpuIds(catalog).join(", ")} (add your own with --catalog FILE)`,
    );
  return g;
}

/** The price a cost is computed at, and where it comes from. */
export interface ChosenPrice {
  usdPerHour: number;
  source: string;
  asOf: string;
}

/**
 * The override when given, else the lowest listed quote (the cheapest
 * on-demand price on record), else null: the GPU has no price on record.
 */
export function chosenPrice(gpu: Gpu, overrideUsdPerHour?: number): ChosenPrice | null {
  if (overrideUsdPerHour !== undefined) {
    return { usdPerHour: overrideUsdPerHour, source: "--price (user)", asOf: "given" };
  }
  if (gpu.prices.length === 0) return null;
  const p = gpu.prices.reduce((a, b) => (b.usdPerHour < a.usdPerHour ? b : a));
  return {
    usdPerHour: p.usdPerHour,
    source: `${p.provider}: ${p.source} (lowest of ${gpu.prices.length} quote(s))`,
    asOf: p.asOf,
  };
}

/** Like chosenPrice, but a GPU without a price is a UserError that says how to give one. */
export function requirePrice(gpu: Gpu, overrideUsdPerHour?: number): ChosenPrice {
  const p = chosenPrice(gpu, overrideUsdPerHour);
  if (!p) throw new UserError(missingPriceReason(gpu));
  return p;
}

/** Why a GPU has no USD figures, and how to give it a price. */
export function missingPriceReason(gpu: Gpu): string {
  return `no rental price on record for ${gpu.id}; pass --price USD_PER_HOUR or add prices with --catalog FILE`;
}
