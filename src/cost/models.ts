/**
 * The models `--model` names: production video models built from the
 * config files shipped in src/cost/configs/ (a transformer config.json and a
 * VAE config.json each, written from the published values), DiT, and
 * framecost's own presets; and `--config FILE`, any config of a known class.
 */
import { readFileSync } from "node:fs";
import { PRESETS as OWN_PRESETS } from "../model/config.ts";
import { UserError } from "../util/errors.ts";
import { type NativeSetting, readTransformerConfig, readVaeConfig } from "./model-config.ts";
import { DIT_SIZE_NAMES, type DitShape, ditShape, ownShape } from "./shapes.ts";

/** A shipped preset: its config files' folder and what the configs do not say. */
export interface ConfigPreset {
  id: string;
  label: string;
  aliases: string[];
  /** where the shipped config's values come from */
  configSource: string;
  params: number;
  paramsSource: string;
  native: NativeSetting;
  smallerSibling?: string;
  asOf: string;
}

const DIFFUSERS = "huggingface/diffusers@58eb52c0803ea9af3abec60841c2a093bdf1f951";

export const CONFIG_PRESETS: ConfigPreset[] = [
  {
    id: "wan2.1-14b",
    label: "Wan2.1 T2V-14B",
    aliases: ["wan2.1-t2v-14b"],
    configSource: `${DIFFUSERS} scripts/convert_wan_to_diffusers.py get_transformer_config("Wan-T2V-14B") diffusers_config (the config of Wan-AI/Wan2.1-T2V-14B-Diffusers), unlisted fields at WanTransformer3DModel's defaults; VAE: AutoencoderKLWan defaults`,
    params: 14e9,
    paramsSource: "Wan2.1 README (T2V-14B)",
    native: {
      width: 1280,
      height: 720,
      frames: 81,
      fps: 16,
      steps: 50,
      cfg: true,
      source:
        "Wan-Video/Wan2.1@9737cba9c1c3c4d04b33fcad41c111989865d315 README (720P = 1280x720), wan/configs/shared_config.py (sample_fps 16), generate.py (frame_num 81, sample_steps 50 for T2V, guidance on)",
    },
    smallerSibling: "wan2.1-1.3b",
    asOf: "2025-02",
  },
  {
    id: "wan2.1-1.3b",
    label: "Wan2.1 T2V-1.3B",
    aliases: ["wan2.1-t2v-1.3b"],
    configSource: `${DIFFUSERS} scripts/convert_wan_to_diffusers.py get_transformer_config("Wan-T2V-1.3B") diffusers_config, unlisted fields at WanTransformer3DModel's defaults; VAE: AutoencoderKLWan defaults`,
    params: 1.3e9,
    paramsSource: "Wan2.1 README (T2V-1.3B)",
    native: {
      width: 832,
      height: 480,
      frames: 81,
      fps: 16,
      steps: 50,
      cfg: true,
      source:
        "Wan-Video/Wan2.1@9737cba9c1c3c4d04b33fcad41c111989865d315 README (T2V-1.3B: 480P, 832x480), shared_config.py (sample_fps 16), generate.py (81 frames, 50 steps)",
    },
    asOf: "2025-02",
  },
  {
    id: "hunyuanvideo",
    label: "HunyuanVideo (13B)",
    aliases: ["hunyuan-video"],
    configSource: `${DIFFUSERS} scripts/convert_hunyuan_video_to_diffusers.py (builds HunyuanVideoTransformer3DModel() and AutoencoderKLHunyuanVideo() at their defaults); the same shape as Tencent/HunyuanVideo@fa14b001c18f37191c938a9ef6baad3b9b472759 hyvideo/modules/models.py HYVideo-T/2-cfgdistill (20 double + 40 single blocks, 3072 wide, 24 heads, MLP ratio 4)`,
    params: 13e9,
    paramsSource: "HunyuanVideo README (13B)",
    native: {
      width: 1280,
      height: 720,
      frames: 129,
      fps: 24,
      steps: 50,
      cfg: false,
      source:
        "Tencent/HunyuanVideo@fa14b001c18f37191c938a9ef6baad3b9b472759 README and hyvideo/config.py (720x1280, video-length 129, infer-steps 50, cfg-scale 1.0: guidance-distilled, one call per step; 24 fps as saved by sample_video.py)",
    },
    asOf: "2024-12",
  },
  {
    id: "cogvideox-5b",
    label: "CogVideoX-5B",
    aliases: ["cogvideox"],
    configSource: `${DIFFUSERS} scripts/convert_cogvideox_to_diffusers.py (5B: --num_layers 42 --num_attention_heads 48 --use_rotary_positional_embeddings, version 1.0 init kwargs, scaling_factor 0.7), other fields at CogVideoXTransformer3DModel's defaults`,
    params: 5e9,
    paramsSource: "CogVideoX README (5B)",
    native: {
      width: 720,
      height: 480,
      frames: 49,
      fps: 8,
      steps: 50,
      cfg: true,
      source:
        "THUDM/CogVideo@e519eced782c08db81f45e5eb40baa45958087ae README (720 * 480, 6 seconds at 8 frames / second = 49 frames, inference speed quoted at step = 50; guidance_scale 6)",
    },
    smallerSibling: "cogvideox-2b",
    asOf: "2024-08",
  },
  {
    id: "cogvideox-2b",
    label: "CogVideoX-2B",
    aliases: [],
    configSource: `${DIFFUSERS} scripts/convert_cogvideox_to_diffusers.py (2B: num_layers 30, num_attention_heads 30, no RoPE, scaling_factor 1.15258426, the script's defaults), other fields at CogVideoXTransformer3DModel's defaults`,
    params: 2e9,
    paramsSource: "CogVideoX README (2B)",
    native: {
      width: 720,
      height: 480,
      frames: 49,
      fps: 8,
      steps: 50,
      cfg: true,
      source:
        "THUDM/CogVideo@e519eced782c08db81f45e5eb40baa45958087ae README (720 * 480, 49 frames at 8 fps, step = 50)",
    },
    asOf: "2024-08",
  },
  {
    id: "mochi-1",
    label: "Mochi 1 preview (10B)",
    aliases: ["mochi"],
    configSource: `${DIFFUSERS} scripts/convert_mochi_to_diffusers.py (MochiTransformer3DModel() at its defaults; AutoencoderKLMochi(latent_channels=12, out_channels=3)); agrees with genmoai/mochi@0c86aebf386e6622deadfb47ff1996878cefc0ac README (48 layers, 24 heads, visual dim 3072, text dim 1536, 44,520 visual and 256 text tokens)`,
    params: 10e9,
    paramsSource: "genmoai/mochi README (10 billion parameters)",
    native: {
      width: 848,
      height: 480,
      frames: 163,
      fps: 30,
      steps: 64,
      cfg: true,
      source:
        "genmoai/mochi@0c86aebf386e6622deadfb47ff1996878cefc0ac demos/cli.py (--width 848 --height 480 --num_frames 163 --num_steps 64 --cfg_scale 6.0) and src/genmo/lib/utils.py (save_video fps 30)",
    },
    asOf: "2024-10",
  },
  {
    id: "ltx-video",
    label: "LTX-Video 0.9 (2B)",
    aliases: ["ltx-video-2b", "ltxv-2b"],
    configSource: `${DIFFUSERS} scripts/convert_ltx_to_diffusers.py get_transformer_config (versions before 0.9.7: the 2B model) and get_vae_config("0.9.0")`,
    params: 2e9,
    paramsSource: "LTX-Video README (ltxv-2b)",
    native: {
      width: 768,
      height: 512,
      frames: 121,
      fps: 24,
      steps: 40,
      cfg: true,
      source:
        'Lightricks/LTX-Video@5a592aa5b16cf7581dd73b59461ef65634d542f6 (first release) README ("24 FPS videos at 768x512 resolution") and inference.py (--num_inference_steps 40, --guidance_scale 3, --num_frames 121)',
    },
    asOf: "2024-11",
  },
  {
    id: "open-sora-2.0",
    label: "Open-Sora 2.0 (11B)",
    aliases: ["open-sora", "opensora-2.0"],
    configSource:
      "hpcaitech/Open-Sora@7ad6a96a135feb81f755c84fb391818718f6beb2 configs/diffusion/inference/256px.py: the model dict (type flux = MMDiTModel) and the ae dict (hunyuan_vae) as JSON; not a diffusers class (Open-Sora publishes no diffusers config)",
    params: 11e9,
    paramsSource: "Open-Sora README (11B)",
    native: {
      width: 768,
      height: 768,
      frames: 129,
      fps: 24,
      steps: 50,
      cfg: true,
      source:
        "hpcaitech/Open-Sora@7ad6a96a135feb81f755c84fb391818718f6beb2 configs/diffusion/inference/256px.py (num_frames 129, num_steps 50, guidance 7.5 and guidance_img 3.0: three calls per step, fps_save 24) and README (768x768 timed at 50 steps)",
    },
    asOf: "2025-03",
  },
];

function readJson(url: URL | string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(url, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`${what}: cannot read (${code ?? String(err)}); pass a config.json file`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UserError(`${what}: not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** VAE compression: flags over the VAE config over the transformer class's default. */
export interface VaeOptions {
  /** parsed VAE config.json and the name to show in errors */
  vaeConfig?: { raw: unknown; where: string };
  temporal?: number;
  spatial?: number;
}

function vaeStride(
  classDefault: { temporal: number; spatial: number; source: string },
  o: VaeOptions,
  inChannels: number,
  where: string,
): { stride: [number, number, number]; source: string } {
  let t = classDefault.temporal;
  let s = classDefault.spatial;
  let source = `class default: ${classDefault.source}`;
  if (o.vaeConfig) {
    const v = readVaeConfig(o.vaeConfig.raw, o.vaeConfig.where);
    if (v.latentChannels !== inChannels) {
      throw new UserError(
        `${o.vaeConfig.where}: the VAE has ${v.latentChannels} latent channels but ${where} takes ${inChannels} per latent voxel; pass the VAE of the same model (or --vae-temporal / --vae-spatial)`,
      );
    }
    t = v.temporal;
    s = v.spatial;
    source = `${o.vaeConfig.where} (${v.className})`;
  }
  if (o.temporal !== undefined || o.spatial !== undefined) {
    t = o.temporal ?? t;
    s = o.spatial ?? s;
    source = `--vae-temporal / --vae-spatial, else ${source}`;
  }
  return { stride: [t, s, s], source };
}

/** A DitShape from a transformer config (parsed JSON), the VAE's compression and a preset's facts, if any. */
export function shapeFromConfig(
  raw: unknown,
  where: string,
  vae: VaeOptions = {},
  preset?: ConfigPreset,
): DitShape {
  const { className, arch, reader } = readTransformerConfig(raw, where);
  const { stride, source: strideSource } = vaeStride(reader.vae, vae, arch.inChannels, where);
  const d = preset?.native ?? reader.defaults;
  const shapeText = `${className}: ${arch.depth} blocks, width ${arch.width}, ${arch.heads} heads, FFN ${arch.ffn}${arch.gatedFfn ? " (gated)" : ""}, patch ${arch.patch.join("x")}, VAE stride ${stride.join("x")}`;
  return {
    ...arch,
    id: preset?.id ?? "config",
    label: preset?.label ?? `${className} from ${where}`,
    vaeStride: stride,
    params: preset?.params ?? null,
    defaults: { width: d.width, height: d.height, frames: d.frames, steps: d.steps, cfg: d.cfg, fps: d.fps },
    ...(preset?.smallerSibling ? { smallerSibling: preset.smallerSibling } : {}),
    source: preset
      ? `${shapeText} from src/cost/configs/${preset.id}/ (${preset.configSource}), read as in ${reader.code}; native setting: ${d.source}`
      : `${shapeText} from ${where}, read as in ${reader.code}; VAE compression: ${strideSource}; default setting (the class's family): ${d.source}`,
    asOf: preset?.asOf ?? "given",
  };
}

const presetCache = new Map<string, DitShape>();

/** A shipped preset's shape, built from its config files. */
export function presetShape(p: ConfigPreset): DitShape {
  const cached = presetCache.get(p.id);
  if (cached) return cached;
  const dir = new URL(`./configs/${p.id}/`, import.meta.url);
  const t = readJson(new URL("transformer.json", dir), `src/cost/configs/${p.id}/transformer.json`);
  const v = readJson(new URL("vae.json", dir), `src/cost/configs/${p.id}/vae.json`);
  // the shipped files are part of the program: a failure is a bug
  let shape: DitShape;
  try {
    shape = shapeFromConfig(
      t,
      `src/cost/configs/${p.id}/transformer.json`,
      { vaeConfig: { raw: v, where: `src/cost/configs/${p.id}/vae.json` } },
      p,
    );
  } catch (err) {
    throw new Error(`internal error: ${err instanceof Error ? err.message : String(err)}`);
  }
  presetCache.set(p.id, shape);
  return shape;
}

/** `framecost cost --config FILE [--vae-config FILE]`: a shape from a user's config files. */
export function configShape(
  file: string,
  o: { vaeConfig?: string; vaeTemporal?: number; vaeSpatial?: number } = {},
): DitShape {
  const raw = readJson(file, `--config ${file}`);
  const vaeConfig =
    o.vaeConfig === undefined
      ? undefined
      : { raw: readJson(o.vaeConfig, `--vae-config ${o.vaeConfig}`), where: `--vae-config ${o.vaeConfig}` };
  return shapeFromConfig(raw, `--config ${file}`, {
    vaeConfig,
    temporal: o.vaeTemporal,
    spatial: o.vaeSpatial,
  });
}

/** Every preset name `--model` accepts (DiT at patch 2, 4, 8 listed; any patch works). */
export function modelNames(): string[] {
  const dits = DIT_SIZE_NAMES.flatMap((s) => [2, 4, 8].map((p) => `dit-${s}/${p}`));
  return [...CONFIG_PRESETS.map((p) => p.id), ...dits, ...Object.keys(OWN_PRESETS)];
}

/** The shape for a `--model` name (case-insensitive), or a UserError listing the known ones. */
export function modelShape(name: string): DitShape {
  const n = name.trim().toLowerCase();
  const preset = CONFIG_PRESETS.find((p) => p.id === n || p.aliases.includes(n));
  if (preset) return presetShape(preset);
  const dit = /^dit-(s|b|l|xl)\/(\d+)$/.exec(n);
  if (dit) {
    const p = Number(dit[2]);
    if (p < 1 || 32 % p !== 0)
      throw new UserError(
        `--model ${name}: DiT patch size must divide the 32x32 latent (1, 2, 4, 8, 16, 32), got ${p}`,
      );
    return ditShape(dit[1], p);
  }
  const own = OWN_PRESETS[n];
  if (own) return ownShape(own);
  throw new UserError(
    `unknown model "${name}"; known models: ${modelNames().join(", ")}, custom (with --depth, --model-width, --heads), or pass --config FILE (a diffusers transformer config.json)`,
  );
}
