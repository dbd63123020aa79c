/**
 * Weight files: `model.json` (config, parameter layout, checksum, training
 * metadata) beside `weights.bin` (little-endian float32, or bfloat16 (the top
 * 16 bits of a float32, rounded to nearest even) where `dtype` says so,
 * parameters concatenated in layout order). Loads with no network and refuses
 * a file whose shapes do not match the config it claims or the preset asked for.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../util/errors.ts";
import { type ModelConfig, validateConfig } from "./config.ts";
import { paramCount, paramSlots } from "./params.ts";

export const WEIGHTS_FORMAT = "framecost-dit-weights";
export const WEIGHTS_FORMAT_VERSION = 1;

export interface WeightsManifest {
  format: typeof WEIGHTS_FORMAT;
  formatVersion: number;
  config: ModelConfig;
  dtype: WeightsDtype;
  weightsFile: string;
  byteLength: number;
  sha256: string;
  params: Array<{ name: string; shape: number[]; offset: number }>;
  /** free-form: how the weights were made (command, steps, wall time, machine) */
  training?: Record<string, unknown>;
  /** the guidance generation uses by default with these weights (run/generation.ts; written by `framecost guide`) */
  guidance?: GuidanceDefaults;
  /** the sampler and steps generation uses by default (a distilled student: ddim at its own steps) */
  sampling?: SamplingDefaults;
}

/** A model folder's default sampler and step count (`generate` takes them when not given). */
export interface SamplingDefaults {
  sampler: string;
  steps: number;
}

export type WeightsDtype = "float32" | "bfloat16";
const BYTES: Record<WeightsDtype, number> = { float32: 4, bfloat16: 2 };

/** Autoguidance defaults a model folder ships with: the guide folder (relative to the model's), weight, noise levels. */
export interface GuidanceDefaults {
  guide: string;
  weight: number;
  /** guide only calls at timesteps t >= fromT (the high-noise part, where a frame's layout is decided) */
  fromT: number;
  /** guide only frames with no history ("first") or every frame ("all") */
  frames: GuideFrames;
}

export type GuideFrames = "first" | "all";

export interface SaveOptions {
  /** default float32; bfloat16 halves the file (for a guide, whose small errors only scale the guidance) */
  dtype?: WeightsDtype;
  /** the default sampler and steps to record in model.json */
  sampling?: SamplingDefaults;
}

/** float32 -> bfloat16 bits, round to nearest even (NaN stays NaN). */
export function toBfloat16(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < u.length; i++) {
    const v = u[i];
    if ((v & 0x7f800000) === 0x7f800000 && (v & 0x7fffff) !== 0) out[i] = (v >>> 16) | 0x40;
    else out[i] = (v + 0x7fff + ((v >>> 16) & 1)) >>> 16;
  }
  return out;
}

export function fromBfloat16(b: Uint16Array): Float32Array {
  const u = new Uint32Array(b.length);
  for (let i = 0; i < b.length; i++) u[i] = b[i] << 16;
  return new Float32Array(u.buffer);
}

export interface LoadedWeights {
  manifest: WeightsManifest;
  config: ModelConfig;
  flat: Float32Array;
}

/** Writes to a temporary name beside `path`, then renames: a reader never sees half a file. */
export function writeAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export function saveWeights(
  dir: string,
  config: ModelConfig,
  flat: Float32Array,
  training?: Record<string, unknown>,
  opts: SaveOptions = {},
): WeightsManifest {
  const dtype = opts.dtype ?? "float32";
  if (flat.length !== paramCount(config)) {
    throw new Error(`saveWeights: ${flat.length} values for a model with ${paramCount(config)} parameters`);
  }
  mkdirSync(dir, { recursive: true });
  const data = dtype === "bfloat16" ? toBfloat16(flat) : flat;
  const bytes = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const manifest: WeightsManifest = {
    format: WEIGHTS_FORMAT,
    formatVersion: WEIGHTS_FORMAT_VERSION,
    config,
    dtype,
    weightsFile: "weights.bin",
    byteLength: bytes.byteLength,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    params: paramSlots(config).map((s) => ({ name: s.name, shape: s.shape, offset: s.offset })),
    training,
    ...(opts.sampling ? { sampling: opts.sampling } : {}),
  };
  writeAtomic(join(dir, "weights.bin"), bytes);
  writeAtomic(join(dir, "model.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** Names a guide and its defaults in a model folder's model.json (its sha256 covers weights.bin only). */
export function setGuidanceDefaults(dir: string, guidance: GuidanceDefaults): void {
  const path = join(dir, "model.json");
  const manifest: WeightsManifest = JSON.parse(readFileSync(path, "utf8"));
  writeAtomic(path, `${JSON.stringify({ ...manifest, guidance }, null, 2)}\n`);
}

/**
 * The folder's default sampler and steps from its model.json, or undefined where it names none (or
 * cannot be read: loadWeights then says why).
 */
export function readSamplingDefaults(dir: string): SamplingDefaults | undefined {
  try {
    const m = JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as Partial<WeightsManifest>;
    const s = m.sampling;
    return s && typeof s.sampler === "string" && Number.isInteger(s.steps) ? s : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Load weights from a model folder. `expect` (a preset) makes a file with other shapes fail.
 */
export function loadWeights(dir: string, expect?: ModelConfig): LoadedWeights {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UserError(
      `model folder "${dir}" does not exist; pass --model DIR with a folder holding model.json and weights.bin (the shipped one is models/tiny)`,
    );
  }
  const manifestPath = join(dir, "model.json");
  // every refusal below names the file and ends with what to do about it
  const FIX = `restore ${dir} from git, or retrain it (framecost train --out ${dir})`;
  if (!existsSync(manifestPath)) {
    throw new UserError(
      `${manifestPath} is missing; a model folder needs model.json and weights.bin (train one with: framecost train --out ${dir})`,
    );
  }
  if (statSync(manifestPath).isDirectory())
    throw new UserError(`${manifestPath} is a folder, not a file; ${FIX}`);
  let manifest: WeightsManifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  } catch (err) {
    throw new UserError(`${manifestPath} is not valid JSON (${(err as Error).message}); ${FIX}`);
  }
  if (manifest === null || typeof manifest !== "object" || Array.isArray(manifest))
    throw new UserError(`${manifestPath} is not a model manifest (a JSON object); ${FIX}`);
  if (manifest.format !== WEIGHTS_FORMAT) {
    throw new UserError(
      `${manifestPath}: "format" is ${JSON.stringify(manifest.format)}, expected "${WEIGHTS_FORMAT}"; ${FIX}`,
    );
  }
  if (manifest.formatVersion !== WEIGHTS_FORMAT_VERSION) {
    throw new UserError(
      `${manifestPath}: formatVersion ${JSON.stringify(manifest.formatVersion)} is not supported (this framecost reads ${WEIGHTS_FORMAT_VERSION}); use the framecost that wrote it, or ${FIX}`,
    );
  }
  if (typeof manifest.dtype !== "string" || !(manifest.dtype in BYTES)) {
    throw new UserError(
      `${manifestPath}: dtype ${JSON.stringify(manifest.dtype)} is not supported (this framecost reads ${Object.keys(BYTES).join(", ")}); ${FIX}`,
    );
  }
  const config = manifest.config;
  if (config === null || typeof config !== "object" || Array.isArray(config))
    throw new UserError(`${manifestPath}: "config" is ${JSON.stringify(config)}, not a model config; ${FIX}`);
  try {
    validateConfig(config);
  } catch (err) {
    throw new UserError(`${manifestPath}: ${(err as Error).message}; ${FIX}`);
  }
  if (!Array.isArray(manifest.params) || typeof manifest.weightsFile !== "string")
    throw new UserError(
      `${manifestPath}: ${Array.isArray(manifest.params) ? '"weightsFile"' : '"params" (the parameter layout)'} is missing; ${FIX}`,
    );
  const slots = paramSlots(config);
  const mismatch = slots.find(
    (s, i) =>
      manifest.params[i]?.name !== s.name ||
      !Array.isArray(manifest.params[i]?.shape) ||
      manifest.params[i].shape.join("x") !== s.shape.join("x"),
  );
  if (mismatch || manifest.params.length !== slots.length) {
    throw new UserError(
      `${manifestPath}: parameter layout does not match its config (first difference at "${mismatch?.name ?? "the parameter count"}"); the file is corrupt: ${FIX}`,
    );
  }
  if (expect) {
    const want = paramSlots(expect);
    const diff = want.find((s, i) => slots[i]?.shape.join("x") !== s.shape.join("x"));
    if (diff || want.length !== slots.length) {
      const where = diff
        ? `${diff.name}: file has [${slots.find((s) => s.name === diff.name)?.shape ?? "none"}], preset "${expect.name}" needs [${diff.shape}]`
        : "parameter count differs";
      throw new UserError(
        `${dir} holds a "${config.name}" model whose shapes do not fit preset "${expect.name}" (${where}); pass the matching --preset or another --model`,
      );
    }
  }
  const weightsPath = join(dir, manifest.weightsFile);
  if (!existsSync(weightsPath)) {
    throw new UserError(`${weightsPath} is missing; model.json names it as the weights file: ${FIX}`);
  }
  if (statSync(weightsPath).isDirectory())
    throw new UserError(`${weightsPath} is a folder, not the weights file model.json names; ${FIX}`);
  const buf = readFileSync(weightsPath);
  const expectedBytes = paramCount(config) * BYTES[manifest.dtype];
  if (buf.byteLength !== expectedBytes || buf.byteLength !== manifest.byteLength) {
    throw new UserError(
      `${weightsPath} has ${buf.byteLength} bytes, but the "${config.name}" model needs ${expectedBytes}: the file is truncated or corrupt; ${FIX}`,
    );
  }
  const sha = createHash("sha256").update(buf).digest("hex");
  if (sha !== manifest.sha256) {
    throw new UserError(
      `${weightsPath} does not match the sha256 in model.json: the file is corrupt (restore it from git or retrain)`,
    );
  }
  const raw = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const flat = manifest.dtype === "bfloat16" ? fromBfloat16(new Uint16Array(raw)) : new Float32Array(raw);
  return { manifest, config, flat };
}
