/**
 * `framecost cost`: what video costs.
 *   Scenario (--model NAME): a real model's cost computed from its shape on a
 *   catalog GPU: FLOPs per call, NFEs, GPU-seconds, USD per clip and per video
 *   minute, energy, multi-GPU scaling, and with --target-usd-per-minute what
 *   would have to change to get there.
 *   Record (--record FILE): a metered run priced on this machine and
 *   extrapolated to catalog GPUs with a per-kernel roofline.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { z } from "zod";
import { type Catalog, getGpu, loadCatalog } from "../cost/catalog.ts";
import { type InverseResult, solveInverse } from "../cost/inverse.ts";
import { configShape, modelShape } from "../cost/models.ts";
import {
  DEFAULT_SUMMARY_GPUS,
  type Extrapolation,
  extrapolateRun,
  g3,
  type LocalCost,
  localCost,
  usd,
} from "../cost/run.ts";
import {
  evaluateScenarioOrUnpriced,
  type Scenario,
  type ScenarioOptions,
  type UnpricedScenario,
} from "../cost/scenarios.ts";
import { customShape, type DitShape } from "../cost/shapes.ts";
import { parseRunRecord } from "../meter/record.ts";
import { UserError } from "../util/errors.ts";
import { choiceOpt, intOpt, listOpt, numberOpt, parseOptions, pathOpt, stringOpt } from "./options.ts";

/**
 * Flags shared by `cost` and `path` that describe a scenario. The upper bounds keep every figure
 * finite (a 1e308 price or a 3e-323 fps made Infinity and $0 answers, found by
 * test/reliability-options.test.ts); each is far past any real clip, GPU or price.
 */
export const ScenarioFlags = {
  model: stringOpt().optional(),
  width: intOpt({ min: 1, max: 16_384 }).optional(),
  height: intOpt({ min: 1, max: 16_384 }).optional(),
  frames: intOpt({ min: 1, max: 100_000 }).optional(),
  fps: numberOpt({ min: 1, max: 240 }).optional(),
  steps: intOpt({ min: 1, max: 10_000 }).optional(),
  cfg: z.boolean().optional(),
  gpu: stringOpt().optional(),
  price: numberOpt({ min: 0.001, max: 1000 }).optional(),
  mfu: numberOpt({ min: 0.001, max: 1 }).optional(),
  gpus: intOpt({ min: 1, max: 4096 }).optional(),
  kwhPrice: numberOpt({ min: 0, max: 100 }).optional(),
  convention: choiceOpt(["flops", "macs"]).optional(),
  catalog: pathOpt({ mustExist: "file" }).optional(),
  depth: intOpt({ min: 1, max: 1000 }).optional(),
  modelWidth: intOpt({ min: 1, max: 1_000_000 }).optional(),
  heads: intOpt({ min: 1, max: 10_000 }).optional(),
  ffn: intOpt({ min: 1, max: 10_000_000 }).optional(),
  patch: intOpt({ min: 1, max: 64 }).optional(),
  textTokens: intOpt({ min: 0, max: 1_000_000 }).optional(),
  config: pathOpt({ mustExist: "file" }).optional(),
  vaeConfig: pathOpt({ mustExist: "file" }).optional(),
  vaeTemporal: intOpt({ min: 1, max: 64 }).optional(),
  vaeSpatial: intOpt({ min: 1, max: 64 }).optional(),
  json: z.boolean().default(false),
};
type ScenarioFlagValues = z.output<z.ZodObject<typeof ScenarioFlags>>;

/** Registers the scenario flags on a command. */
export function addScenarioFlags(cmd: Command, modelHelp: string): Command {
  return cmd
    .option("--model <name>", modelHelp)
    .option("--width <px>", "frame width in pixels (default: the model's)")
    .option("--height <px>", "frame height in pixels (default: the model's)")
    .option("--frames <n>", "frames per clip (default: the model's)")
    .option("--fps <n>", "frames per second of the video (default: the model's native rate)")
    .option("--steps <n>", "sampler steps (default: the model's)")
    .option("--cfg", "classifier-free guidance: two network calls per step")
    .option("--no-cfg", "no guidance (or guidance distilled): one call per step")
    .option("--gpu <id>", "catalog GPU id (framecost gpus lists them; default h100-sxm)")
    .option("--price <usdPerHour>", "USD per GPU-hour, overriding the catalog")
    .option("--mfu <x>", "utilization of the dense BF16 peak, 0-1 (default: calibrated per GPU)")
    .option("--gpus <n>", "GPUs per clip, splitting the sequence (sequence parallelism)")
    .option("--kwh-price <usd>", "price of a kWh, to price the energy")
    .option("--convention <c>", "flops (1 MAC = 2 FLOPs, default) or macs (fvcore / DiT paper)")
    .option("--catalog <file>", "merge your own GPU catalog (same schema as src/cost/gpus.json)")
    .option("--depth <n>", "custom model: blocks")
    .option("--model-width <n>", "custom model: hidden size")
    .option("--heads <n>", "custom model: attention heads")
    .option("--ffn <n>", "custom model: FFN hidden size (default 4 x width)")
    .option("--patch <n>", "custom model: spatial patch size (default 2)")
    .option("--text-tokens <n>", "custom model: text tokens attended by cross-attention (default 0)")
    .option(
      "--config <file>",
      "a transformer config.json as diffusers publishes it (WanTransformer3DModel, HunyuanVideoTransformer3DModel, CogVideoXTransformer3DModel, MochiTransformer3DModel, LTXVideoTransformer3DModel; or Open-Sora's MMDiTModel) instead of --model",
    )
    .option(
      "--vae-config <file>",
      "with --config: the VAE's config.json, for its compression (default: the class's usual VAE)",
    )
    .option("--vae-temporal <n>", "with --config: frames per latent frame (overrides the VAE config)")
    .option(
      "--vae-spatial <n>",
      "with --config: pixels per latent pixel, each side (overrides the VAE config)",
    )
    .option("--json", "print JSON only");
}

function flagName(k: string): string {
  return `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** Scenario options from parsed flags (model defaults filled in). */
export function scenarioFromFlags(
  f: ScenarioFlagValues,
  catalog: Catalog,
  defaultModel?: string,
): ScenarioOptions {
  if (f.config === undefined) {
    for (const k of ["vaeConfig", "vaeTemporal", "vaeSpatial"] as const) {
      if (f[k] !== undefined) throw new UserError(`${flagName(k)} applies to --config FILE only`);
    }
  } else if (f.model !== undefined) {
    throw new UserError(`pass --model ${f.model} or --config ${f.config}, not both`);
  }
  const name = f.config !== undefined ? "config" : (f.model ?? defaultModel);
  if (name === undefined)
    throw new UserError(
      "pass --model NAME or --config FILE (a scenario), or --record FILE (a metered run); see --help",
    );
  let shape: DitShape;
  if (f.config !== undefined) {
    for (const k of ["depth", "modelWidth", "heads", "ffn", "patch", "textTokens"] as const) {
      if (f[k] !== undefined)
        throw new UserError(`${flagName(k)} is for --model custom only; --config sets the shape`);
    }
    shape = configShape(f.config, {
      vaeConfig: f.vaeConfig,
      vaeTemporal: f.vaeTemporal,
      vaeSpatial: f.vaeSpatial,
    });
  } else if (name.toLowerCase() === "custom") {
    if (f.depth === undefined || f.modelWidth === undefined || f.heads === undefined) {
      throw new UserError(
        "--model custom needs --depth, --model-width and --heads (and optionally --ffn, --patch, --text-tokens)",
      );
    }
    shape = customShape({
      depth: f.depth,
      modelWidth: f.modelWidth,
      heads: f.heads,
      ffn: f.ffn,
      patch: f.patch,
      textTokens: f.textTokens,
    });
  } else {
    for (const k of ["depth", "modelWidth", "heads", "ffn", "patch", "textTokens"] as const) {
      if (f[k] !== undefined)
        throw new UserError(
          `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is for --model custom only; ${name} has a fixed shape`,
        );
    }
    shape = modelShape(name);
  }
  const d = shape.defaults;
  return {
    shape,
    clip: { width: f.width ?? d.width, height: f.height ?? d.height, frames: f.frames ?? d.frames },
    fps: f.fps ?? d.fps,
    steps: f.steps ?? d.steps,
    cfg: f.cfg ?? d.cfg,
    gpu: getGpu(catalog, f.gpu ?? "h100-sxm", "--gpu"),
    catalog,
    priceUsdPerHour: f.price,
    mfu: f.mfu,
    gpus: f.gpus,
    kwhPriceUsd: f.kwhPrice,
    convention: f.convention ?? "flops",
  };
}

const CostOptions = z.object({
  ...ScenarioFlags,
  gpu: listOpt(stringOpt()).optional(),
  targetUsdPerMinute: numberOpt({ min: 1e-6, max: 1e6 }).optional(),
  record: pathOpt({ mustExist: "file" }).optional(),
  localPrice: numberOpt({ min: 0, max: 10_000 }).optional(),
  watts: numberOpt({ min: 0.001, max: 100_000 }).optional(),
  launchUs: numberOpt({ min: 0, max: 1_000_000 }).optional(),
  precision: choiceOpt(["bf16", "fp32"]).optional(),
});

export function sci(x: number): string {
  return x === 0 ? "0" : x.toExponential(2).replace("e+", "e");
}

function num(x: number, digits = 0): string {
  return x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function pct(x: number): string {
  return `${(x * 100).toFixed(0)}%`;
}

export function formatScenario(s: Scenario | UnpricedScenario): string[] {
  const u = s.convention === "macs" ? "MACs" : "FLOPs";
  const b = s.breakdownPerNfe;
  const L: string[] = [];
  L.push(
    `${s.model.label}: ${s.clip.width}x${s.clip.height}, ${s.clip.frames} frames (${s.clip.seconds.toFixed(2)} s at ${s.clip.fps} fps), ${num(s.steps, Number.isInteger(s.steps) ? 0 : 2)} steps${s.cfg ? " + CFG" : ""}, on ${s.gpus > 1 ? `${s.gpus} x ` : ""}${s.gpu.name}`,
  );
  L.push(
    `  tokens per call       ${num(s.clip.tokensPerNfe)} video${s.clip.textTokens ? ` + ${s.clip.textTokens} text` : ""} (${s.clip.latentFrames} latent frame(s))`,
  );
  L.push(
    `  ${u} per call        ${sci(s.flopsPerNfe)} (linear ${sci(b.linear)}, self-attention ${sci(b.attention)} = ${pct(b.attention / s.flopsPerNfe)}, cross-attention ${sci(b.crossAttention)}, embeddings ${sci(b.embedding)})`,
  );
  L.push(
    `  network calls (NFE)   ${num(s.nfe)} = ${s.nfe / s.nfePerStep === s.steps ? "" : `${num(s.nfe / s.steps / s.nfePerStep)} frames x `}${num(s.steps, Number.isInteger(s.steps) ? 0 : 2)} steps x ${s.nfePerStep}${s.cfg ? " (CFG)" : ""}`,
  );
  L.push(
    `  ${u} per clip        ${sci(s.totalFlops)} = network ${sci(s.networkFlops)} + once per clip ${sci(s.oncePerClip.textEncoderFlops + s.oncePerClip.vaeDecoderFlops)} (text encoder ${sci(s.oncePerClip.textEncoderFlops)}, VAE decoder ${sci(s.oncePerClip.vaeDecoderFlops)})`,
  );
  L.push(
    `  GPU time per clip     ${num(s.gpuSeconds, 1)} GPU-s (${(s.gpuSeconds / 60).toFixed(1)} min) at MFU ${s.mfu.value.toFixed(3)} of ${s.gpu.peakTflops} TFLOP/s; once-per-clip work ${num(s.oncePerClip.gpuSeconds, 2)} GPU-s`,
  );
  if (s.gpus > 1) {
    L.push(
      `  ${s.gpus} GPUs per clip       speed-up ${s.parallel.speedup.toFixed(2)}x (efficiency ${pct(s.parallel.efficiency)}): ${num(s.wallSeconds, 1)} s wall per clip, cost x${(1 / s.parallel.efficiency).toFixed(3)}`,
    );
  }
  if (s.price === null) {
    L.push(`  USD per clip          not priced: ${s.priceMissing}`);
    L.push(
      `  USD per video minute  not priced (${s.clipsPerVideoMinute.toFixed(2)} clips of ${s.clip.frames} frames = ${num(s.gpuSeconds * s.clipsPerVideoMinute, 1)} GPU-s)`,
    );
  } else {
    L.push(
      `  USD per clip          ${usd(s.usdPerClip)} at $${s.price.usdPerHour}/GPU-hour (once-per-clip work ${usd(s.oncePerClip.usd)})`,
    );
    L.push(
      `  USD per video minute  ${usd(s.usdPerVideoMinute)} (${s.clipsPerVideoMinute.toFixed(2)} clips of ${s.clip.frames} frames)`,
    );
  }
  const e = s.energy;
  L.push(
    `  energy                ${num(e.whPerClip, 1)} Wh per clip, ${num(e.whPerVideoMinute, 0)} Wh per video minute at ${s.gpu.boardPowerW} W${e.usdPerVideoMinute !== null ? `: ${usd(e.usdPerVideoMinute)} per video minute at $${e.kwhPriceUsd}/kWh` : ""}`,
  );
  L.push("assumptions:");
  for (const a of s.assumptions) L.push(`  - ${a.name}: ${a.value} [${a.source}]`);
  return L;
}

export function formatInverse(inv: InverseResult): string[] {
  const L: string[] = [];
  L.push(
    `To reach ${usd(inv.targetUsdPerVideoMinute)} per video minute (now ${usd(inv.currentUsdPerVideoMinute)}, ${g3(inv.gap)}x too much), each alone would have to become:`,
  );
  const show = (lever: string, v: number | null) =>
    v === null
      ? "unreachable"
      : lever === "price"
        ? `$${g3(v)}/h`
        : lever === "resolution"
          ? `x${g3(v)} per side`
          : g3(v);
  for (const a of inv.alone) {
    L.push(
      `  ${a.lever.padEnd(11)} ${(a.lever === "resolution" ? "x1" : g3(a.current)).padStart(8)} -> ${show(a.lever, a.required).padEnd(16)} ${a.feasible ? "" : "[not possible] "}${a.note}`,
    );
  }
  L.push(
    `Pairs, each doing half the gap (each alone x${g3(inv.pairs[0]?.ratioEach ?? 1)} of the cost), applied together:`,
  );
  for (const p of inv.pairs) {
    const vals = p.levers.map((l) => `${l} ${show(l, p.values[l])}`).join(", ");
    const res = p.combinedUsdPerVideoMinute === null ? "n/a" : usd(p.combinedUsdPerVideoMinute);
    L.push(
      `  ${p.levers.join(" + ").padEnd(24)} ${vals} -> ${res} ${p.reaches && p.feasible ? "reaches it" : !p.feasible ? "(not possible)" : "(short of it: the levers interact)"}`,
    );
  }
  return L;
}

function formatLocal(l: LocalCost | null): string[] {
  if (!l)
    return ["this machine: not priced (pass --local-price USD_PER_HOUR, or --watts W with --kwh-price USD)"];
  return [
    `this machine (measured: ${l.wallSeconds.toFixed(2)} s for ${l.frames} frames at ${l.fps} fps; basis: ${l.basis})`,
    ...(l.price
      ? [`  price   ${usd(l.price.usdPerVideoMinute)} per video minute at $${l.price.usdPerHour}/h`]
      : []),
    ...(l.energy
      ? [
          `  energy  ${l.energy.whPerVideoMinute.toPrecision(3)} Wh = ${usd(l.energy.usdPerVideoMinute)} per video minute (${l.energy.watts} W, $${l.energy.kwhPriceUsd}/kWh)`,
        ]
      : []),
    `  total   ${usd(l.usdPerVideoMinute)} per video minute`,
  ];
}

function formatExtrapolation(x: Extrapolation): string[] {
  const L = [
    `${x.gpu.id}: ${x.msPerNfe.toPrecision(3)} ms per NFE x ${x.nfePerFrame} NFE/frame = ${x.msPerFrame.toPrecision(3)} ms per frame; ${x.gpuSecondsPerVideoMinute.toPrecision(3)} GPU-s per video minute = ${x.usdPerVideoMinute === null ? "no price (pass --price)" : usd(x.usdPerVideoMinute)} (estimate)`,
    `  time: ${pct(x.share.compute)} compute-bound, ${pct(x.share.memory)} memory-bound, ${pct(x.share.launch)} kernel launches; MFU ${x.mfu.value.toFixed(3)} (${x.mfu.summary ?? x.mfu.source})`,
  ];
  for (const k of x.kernels.slice(0, 8)) {
    L.push(
      `  ${k.name.padEnd(22)} x${String(k.countPerNfe).padEnd(5)} ${k.ms.toPrecision(3).padStart(8)} ms  ${k.bound === "none" ? "no work (view)" : `${k.bound}-bound`}${k.launchDominated && k.bound !== "none" ? ", launch-dominated" : ""} (compute ${k.computeMs.toPrecision(2)} ms, memory ${k.memoryMs.toPrecision(2)} ms)`,
    );
  }
  if (x.kernels.length > 8) L.push(`  ... ${x.kernels.length - 8} more kernels (--json lists all)`);
  if (x.uncounted.length > 0) {
    L.push(
      `  not extrapolated (no FLOP rule): ${x.uncounted.map((u) => u.name).join(", ")}, ${pct(x.uncountedLocalShare)} of local kernel time: the estimate is low by about that share`,
    );
  }
  return L;
}

export function register(program: Command): void {
  const cmd = program
    .command("cost")
    .description(
      "cost of a real model's clip on a catalog GPU (--model), or of a metered run locally and extrapolated (--record)",
    );
  addScenarioFlags(
    cmd,
    "model preset: wan2.1-14b, wan2.1-1.3b, hunyuanvideo, cogvideox-5b, cogvideox-2b, mochi-1, ltx-video, open-sora-2.0, dit-xl/2 (any DiT-S/B/L/XL/p), tiny, small, micro, or custom",
  )
    .option(
      "--target-usd-per-minute <x>",
      "also solve what would have to change to reach this USD per video minute",
    )
    .option("--record <file>", "a RunRecord (run.json from framecost generate) to price and extrapolate")
    .option("--local-price <usdPerHour>", "with --record: what an hour of this machine costs")
    .option("--watts <w>", "with --record: this machine's power draw while generating (needs --kwh-price)")
    .option("--launch-us <us>", "with --record: per-kernel launch overhead in microseconds")
    .option("--precision <p>", "with --record: bf16 (default) or fp32 on the GPU")
    .action((raw: Record<string, unknown>) => {
      const f = parseOptions(CostOptions, raw);
      const catalog = loadCatalog(f.catalog);
      if (f.record !== undefined) {
        runRecordCost(f, catalog);
        return;
      }
      for (const k of ["localPrice", "watts", "launchUs", "precision"] as const) {
        if (f[k] !== undefined)
          throw new UserError(
            `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies to --record FILE only`,
          );
      }
      if (f.gpu !== undefined && f.gpu.length > 1) {
        throw new UserError(`--gpu takes one GPU for a scenario, got ${f.gpu.join(",")}; run once per GPU`);
      }
      const o = scenarioFromFlags({ ...f, gpu: f.gpu?.[0] }, catalog);
      // a GPU with no price on record still gets its time, energy and FLOPs
      const s = evaluateScenarioOrUnpriced(o);
      if (s.price === null && f.targetUsdPerMinute !== undefined)
        throw new UserError(`--target-usd-per-minute needs a price: ${s.priceMissing}`);
      const inv =
        f.targetUsdPerMinute !== undefined && s.price !== null
          ? solveInverse(o, s, f.targetUsdPerMinute)
          : null;
      if (f.json) {
        process.stdout.write(`${JSON.stringify(inv ? { ...s, inverse: inv } : s, null, 2)}\n`);
        return;
      }
      const lines = formatScenario(s);
      if (inv) lines.push(...formatInverse(inv));
      process.stdout.write(`${lines.join("\n")}\n`);
    });
}

function runRecordCost(f: z.output<typeof CostOptions>, catalog: Catalog): void {
  for (const k of [
    "model",
    "config",
    "steps",
    "frames",
    "width",
    "height",
    "targetUsdPerMinute",
    "gpus",
  ] as const) {
    if (f[k] !== undefined) {
      throw new UserError(
        `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} describes a scenario; with --record the run's own figures are used`,
      );
    }
  }
  const path = f.record!;
  const run = parseRunRecord(readFileSync(path, "utf8"), path);
  const local = localCost(run, { localUsdPerHour: f.localPrice, watts: f.watts, kwhPriceUsd: f.kwhPrice });
  const ids = f.gpu ?? [...DEFAULT_SUMMARY_GPUS];
  if (f.price !== undefined && ids.length > 1) {
    throw new UserError(
      `--price applies to one GPU; with --record pass a single --gpu (got ${ids.join(",")})`,
    );
  }
  const ex = ids.map((id) =>
    extrapolateRun(run, {
      gpu: getGpu(catalog, id, "--gpu"),
      catalog,
      mfu: f.mfu,
      launchUs: f.launchUs,
      precision: f.precision,
      priceUsdPerHour: f.price,
    }),
  );
  if (f.json) {
    process.stdout.write(`${JSON.stringify({ record: path, local, extrapolations: ex }, null, 2)}\n`);
    return;
  }
  const lines = [
    `${path}: ${run.model.name}, ${run.sampler.name} ${run.sampler.steps} steps, ${run.totals.frames} frames ${run.video.width}x${run.video.height} at ${run.video.fps} fps`,
  ];
  lines.push(...formatLocal(local));
  lines.push(
    "catalog GPUs (roofline per kernel: max(FLOPs / (peak x MFU), bytes / bandwidth) + launches x overhead):",
  );
  for (const x of ex) lines.push(...formatExtrapolation(x));
  lines.push("assumptions:");
  for (const a of ex[0]?.assumptions.slice(1) ?? [])
    lines.push(`  - ${a.replace(/ \(\d[\d.]* TB\/s for [^;]*;/, " (per GPU;")}`);
  lines.push(
    "  - compute roof: each GPU's dense BF16 peak x its MFU (shown per GPU; sources: framecost gpus --json)",
  );
  process.stdout.write(`${lines.join("\n")}\n`);
}
