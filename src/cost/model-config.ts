/**
 * A video transformer's FLOP shape read from its `config.json` as diffusers
 * publishes it (the `transformer/` folder of a model repository), and the
 * VAE's compression read from the `vae/` folder's config. `_class_name`
 * selects the reader; each class has a zod schema of the fields the FLOP
 * model needs (other fields are ignored), and the mapping to a DitShape
 * follows the class's diffusers code (cited per reader).
 *
 * Open-Sora 2.0 is not in diffusers: its reader takes the model dict of
 * Open-Sora's own inference config (configs/diffusion/inference/256px.py)
 * written as JSON with `"_class_name": "MMDiTModel"`, the class it builds.
 */
import { z } from "zod";
import { UserError } from "../util/errors.ts";
import {
  COGVIDEOX_VAE,
  type DitShape,
  HUNYUAN_TEXT_ENCODER,
  HUNYUAN_VAE,
  T5_XXL_ENCODER,
  type TextEncoderShape,
  type TextMode,
  type VaeDecoderShape,
  WAN_VAE,
} from "./shapes.ts";

const DIFFUSERS = "huggingface/diffusers@58eb52c0803ea9af3abec60841c2a093bdf1f951";

const int = (min = 1) =>
  z
    .number({ error: `must be an integer >= ${min}` })
    .int({ error: `must be an integer >= ${min}` })
    .min(min, { error: `must be an integer >= ${min}` });
const positive = () =>
  z.number({ error: "must be a number > 0" }).positive({ error: "must be a number > 0" });
const nullableInt = () => int().nullable().optional();

/** What a config fixes of a DitShape; a preset or the class defaults add the rest. */
export type ConfigArch = Omit<
  DitShape,
  "id" | "label" | "params" | "defaults" | "smallerSibling" | "source" | "asOf" | "ownConfig" | "vaeStride"
>;

/** A setting (size, frames, fps, steps, guidance) with where it comes from. */
export interface NativeSetting {
  width: number;
  height: number;
  frames: number;
  fps: number;
  steps: number;
  cfg: boolean;
  source: string;
}

interface TransformerReader {
  schema: z.ZodType;
  /** the class's diffusers source (or Open-Sora's), for the shape's source line */
  code: string;
  build: (c: never) => ConfigArch;
  /** the VAE compression (t, spatial) the class is used with, and where that comes from */
  vae: { temporal: number; spatial: number; source: string };
  /** what `--config` runs at unless flags say otherwise: the family's native setting */
  defaults: NativeSetting;
}

function arch(o: {
  family: string;
  depth: number;
  heads: number;
  headDim: number;
  ffn: number;
  gatedFfn: boolean;
  patch: [number, number, number];
  inChannels: number;
  outChannels: number;
  text: { mode: TextMode; tokens: number; encoderWidth: number; refinerBlocks?: number };
  modulation: "per-block" | "shared";
  freqDim: number;
  textEncoder: TextEncoderShape;
  vae: VaeDecoderShape;
  guidanceCalls?: number;
}): ConfigArch {
  return {
    family: o.family,
    depth: o.depth,
    width: o.heads * o.headDim,
    heads: o.heads,
    ffn: o.ffn,
    gatedFfn: o.gatedFfn,
    patch: o.patch,
    inChannels: o.inChannels,
    outChannels: o.outChannels,
    text: { refinerBlocks: 0, ...o.text },
    modulation: o.modulation,
    freqDim: o.freqDim,
    generation: "clip",
    textEncoder: o.textEncoder,
    vae: o.vae,
    ...(o.guidanceCalls !== undefined ? { guidanceCalls: o.guidanceCalls } : {}),
  };
}

const WanSchema = z.looseObject({
  patch_size: z.tuple([int(), int(), int()], { error: "must be a list of 3 integers [t, h, w]" }),
  num_attention_heads: int(),
  attention_head_dim: int(),
  in_channels: int(),
  out_channels: nullableInt(),
  text_dim: int(),
  freq_dim: int(),
  ffn_dim: int(),
  num_layers: int(),
  image_dim: nullableInt(),
});

const HunyuanSchema = z.looseObject({
  in_channels: int(),
  out_channels: nullableInt(),
  num_attention_heads: int(),
  attention_head_dim: int(),
  num_layers: int(0),
  num_single_layers: int(0),
  num_refiner_layers: int(0),
  mlp_ratio: positive(),
  patch_size: int(),
  patch_size_t: int(),
  text_embed_dim: int(),
});

const CogVideoXSchema = z.looseObject({
  num_attention_heads: int(),
  attention_head_dim: int(),
  in_channels: int(),
  out_channels: nullableInt(),
  time_embed_dim: int(),
  text_embed_dim: int(),
  num_layers: int(),
  patch_size: int(),
  patch_size_t: nullableInt(),
  max_text_seq_length: int(),
});

const MochiSchema = z.looseObject({
  patch_size: int(),
  num_attention_heads: int(),
  attention_head_dim: int(),
  num_layers: int(),
  in_channels: int(),
  out_channels: nullableInt(),
  text_embed_dim: int(),
  time_embed_dim: int(),
  activation_fn: z.string({ error: "must be a string" }),
  max_sequence_length: int(),
});

const LtxSchema = z.looseObject({
  in_channels: int(),
  out_channels: nullableInt(),
  patch_size: int(),
  patch_size_t: int(),
  num_attention_heads: int(),
  attention_head_dim: int(),
  cross_attention_dim: int(),
  num_layers: int(),
  caption_channels: int(),
});

const MmditSchema = z.looseObject({
  in_channels: int(),
  hidden_size: int(),
  num_heads: int(),
  depth: int(0),
  depth_single_blocks: int(0),
  mlp_ratio: positive(),
  context_in_dim: int(),
  patch_size: int().optional(),
});

/** Mochi's AsymmVAE decoder (128 x [1,2,4,6]), estimated with Wan-VAE's layout. */
export const MOCHI_VAE: VaeDecoderShape = {
  ...WAN_VAE,
  name: "Mochi AsymmVAE decoder (estimate)",
  baseDim: 128,
  mult: [1, 2, 4, 6],
  resBlocks: 3,
  zDim: 12,
  exact: false,
  source:
    "estimated with Wan-VAE's decoder layout at Mochi's decoder widths (128, 256, 512, 768) with 3 residual blocks per stage; the layout doubles time twice (x4) where Mochi expands x6, so the decoder is undercounted",
};

/** LTX-Video's VAE decoder, estimated with Wan-VAE's layout; it stops at 1/4 resolution (patch 4 unpacks to pixels). */
export const LTX_VAE: VaeDecoderShape = {
  ...WAN_VAE,
  name: "LTX-Video VAE decoder (estimate)",
  baseDim: 128,
  mult: [1, 2, 4, 4],
  resBlocks: 3,
  temporalUp: [true, true, true],
  zDim: 128,
  exact: false,
  source:
    "estimated with Wan-VAE's decoder layout at LTX-Video's decoder widths (128, 256, 512, 512), 3 spatio-temporal 2x upsamplings; its output at 1/4 resolution is unpacked to pixels (patch_size 4) without further convolutions",
};

/** T5 tokens the pipelines pad prompts to when the transformer config does not say. */
const WAN_TEXT_LEN = 512;
const HUNYUAN_TEXT_LEN = 256;
const LTX_TEXT_LEN = 128;
const OPEN_SORA_TEXT_LEN = 512;

export const TRANSFORMER_READERS: Record<string, TransformerReader> = {
  WanTransformer3DModel: {
    schema: WanSchema,
    code: `${DIFFUSERS} src/diffusers/models/transformers/transformer_wan.py`,
    build: (c: z.output<typeof WanSchema>) => {
      if (c.image_dim != null) {
        throw new UserError(
          `image_dim is ${c.image_dim}: an image-to-video Wan config; framecost models text-to-video only (pass a T2V config)`,
        );
      }
      return arch({
        family: "wan2.1",
        depth: c.num_layers,
        heads: c.num_attention_heads,
        headDim: c.attention_head_dim,
        ffn: c.ffn_dim,
        gatedFfn: false,
        patch: c.patch_size,
        inChannels: c.in_channels,
        outChannels: c.out_channels ?? c.in_channels,
        // cross-attention to umT5 tokens, padded to text_len 512 (wan/configs/shared_config.py)
        text: { mode: "cross", tokens: WAN_TEXT_LEN, encoderWidth: c.text_dim },
        modulation: "shared",
        freqDim: c.freq_dim,
        textEncoder: T5_XXL_ENCODER("umT5-XXL encoder", WAN_TEXT_LEN),
        vae: WAN_VAE,
      });
    },
    vae: {
      temporal: 4,
      spatial: 8,
      source: `AutoencoderKLWan defaults scale_factor_temporal 4, scale_factor_spatial 8 (${DIFFUSERS} src/diffusers/models/autoencoders/autoencoder_kl_wan.py); Wan2.1 vae_stride (4, 8, 8)`,
    },
    defaults: {
      width: 1280,
      height: 720,
      frames: 81,
      fps: 16,
      steps: 50,
      cfg: true,
      source:
        "Wan-Video/Wan2.1@9737cba9c1c3c4d04b33fcad41c111989865d315 wan/configs/shared_config.py (sample_fps 16), generate.py (50 T2V steps, guide scale 5), README (720P 1280x720, 81 frames)",
    },
  },
  HunyuanVideoTransformer3DModel: {
    schema: HunyuanSchema,
    code: `${DIFFUSERS} src/diffusers/models/transformers/transformer_hunyuan_video.py`,
    build: (c: z.output<typeof HunyuanSchema>) =>
      arch({
        family: "hunyuanvideo",
        // dual-stream and single-stream blocks cost the same 12 D^2 per token in linear layers
        // (dual: QKV + out + 4x MLP per stream; single: linear1 D -> 3D + 4D, linear2 5D -> D)
        depth: c.num_layers + c.num_single_layers,
        heads: c.num_attention_heads,
        headDim: c.attention_head_dim,
        ffn: Math.round(c.mlp_ratio * c.num_attention_heads * c.attention_head_dim),
        gatedFfn: false,
        patch: [c.patch_size_t, c.patch_size, c.patch_size],
        inChannels: c.in_channels,
        outChannels: c.out_channels ?? c.in_channels,
        // joint attention with the MLLM's tokens (pipeline max_sequence_length 256), refined first
        text: {
          mode: "joint",
          tokens: HUNYUAN_TEXT_LEN,
          encoderWidth: c.text_embed_dim,
          refinerBlocks: c.num_refiner_layers,
        },
        modulation: "per-block",
        freqDim: 256,
        textEncoder: HUNYUAN_TEXT_ENCODER,
        vae: HUNYUAN_VAE,
      }),
    vae: {
      temporal: 4,
      spatial: 8,
      source: `AutoencoderKLHunyuanVideo defaults temporal_compression_ratio 4, spatial_compression_ratio 8 (${DIFFUSERS} src/diffusers/models/autoencoders/autoencoder_kl_hunyuan_video.py)`,
    },
    defaults: {
      width: 1280,
      height: 720,
      frames: 129,
      fps: 24,
      steps: 50,
      cfg: false,
      source:
        "Tencent/HunyuanVideo@fa14b001c18f37191c938a9ef6baad3b9b472759 README and hyvideo/config.py (720x1280x129, 50 infer-steps, cfg-scale 1.0: the released model is guidance-distilled, embedded-cfg-scale 6.0); diffusers pipeline_hunyuan_video.py defaults 720x1280x129, 50 steps",
    },
  },
  CogVideoXTransformer3DModel: {
    schema: CogVideoXSchema,
    code: `${DIFFUSERS} src/diffusers/models/transformers/cogvideox_transformer_3d.py`,
    build: (c: z.output<typeof CogVideoXSchema>) =>
      arch({
        family: "cogvideox",
        depth: c.num_layers,
        heads: c.num_attention_heads,
        headDim: c.attention_head_dim,
        // FeedForward at its default 4x, gelu-approximate
        ffn: 4 * c.num_attention_heads * c.attention_head_dim,
        gatedFfn: false,
        patch: [c.patch_size_t ?? 1, c.patch_size, c.patch_size],
        inChannels: c.in_channels,
        outChannels: c.out_channels ?? c.in_channels,
        text: { mode: "joint", tokens: c.max_text_seq_length, encoderWidth: c.text_embed_dim },
        modulation: "per-block",
        freqDim: c.time_embed_dim,
        textEncoder: T5_XXL_ENCODER("T5-XXL encoder", c.max_text_seq_length),
        vae: COGVIDEOX_VAE,
      }),
    vae: {
      temporal: 4,
      spatial: 8,
      source: `AutoencoderKLCogVideoX defaults temporal_compression_ratio 4, 2^(len(block_out_channels) - 1) = 8 spatial (${DIFFUSERS} src/diffusers/pipelines/cogvideo/pipeline_cogvideox.py)`,
    },
    defaults: {
      width: 720,
      height: 480,
      frames: 49,
      fps: 8,
      steps: 50,
      cfg: true,
      source:
        "THUDM/CogVideo@e519eced782c08db81f45e5eb40baa45958087ae README (720 * 480, 49 frames, 8 frames / second, 6 seconds; inference speed quoted at step = 50); diffusers pipeline_cogvideox.py (50 steps, guidance_scale 6)",
    },
  },
  MochiTransformer3DModel: {
    schema: MochiSchema,
    code: `${DIFFUSERS} src/diffusers/models/transformers/transformer_mochi.py`,
    build: (c: z.output<typeof MochiSchema>) => {
      const D = c.num_attention_heads * c.attention_head_dim;
      return arch({
        family: "mochi",
        depth: c.num_layers,
        heads: c.num_attention_heads,
        headDim: c.attention_head_dim,
        // ff_inner_dim = (4 * dim * 2) // 3; swiglu has three matrices
        ffn: Math.floor((4 * D * 2) / 3),
        gatedFfn: c.activation_fn === "swiglu",
        patch: [1, c.patch_size, c.patch_size],
        inChannels: c.in_channels,
        outChannels: c.out_channels ?? c.in_channels,
        // AsymmDiT: text tokens run in a narrower stream (pooled_projection_dim); counted at the
        // visual width here, which overcounts the 256 text tokens' linear layers (< 1% at 44,520 tokens)
        text: { mode: "joint", tokens: c.max_sequence_length, encoderWidth: c.text_embed_dim },
        modulation: "per-block",
        freqDim: c.time_embed_dim,
        textEncoder: T5_XXL_ENCODER("T5-XXL encoder", c.max_sequence_length),
        vae: MOCHI_VAE,
      });
    },
    vae: {
      temporal: 6,
      spatial: 8,
      source: `pipeline_mochi.py vae_temporal_scale_factor 6, vae_spatial_scale_factor 8 (${DIFFUSERS}); genmoai/mochi README (8x8 spatial, 6x temporal)`,
    },
    defaults: {
      width: 848,
      height: 480,
      frames: 163,
      fps: 30,
      steps: 64,
      cfg: true,
      source:
        "genmoai/mochi@0c86aebf386e6622deadfb47ff1996878cefc0ac demos/cli.py (848x480, 163 frames, 64 steps, cfg_scale 6.0) and src/genmo/lib/utils.py (save_video fps 30)",
    },
  },
  LTXVideoTransformer3DModel: {
    schema: LtxSchema,
    code: `${DIFFUSERS} src/diffusers/models/transformers/transformer_ltx.py`,
    build: (c: z.output<typeof LtxSchema>) => {
      const D = c.num_attention_heads * c.attention_head_dim;
      if (c.cross_attention_dim !== D) {
        throw new UserError(
          `cross_attention_dim ${c.cross_attention_dim} differs from num_attention_heads x attention_head_dim = ${D}; framecost's cross-attention count assumes they are equal`,
        );
      }
      return arch({
        family: "ltx-video",
        depth: c.num_layers,
        heads: c.num_attention_heads,
        headDim: c.attention_head_dim,
        // FeedForward at its default 4x, gelu-approximate
        ffn: 4 * D,
        gatedFfn: false,
        patch: [c.patch_size_t, c.patch_size, c.patch_size],
        inChannels: c.in_channels,
        outChannels: c.out_channels ?? c.in_channels,
        // cross-attention to T5 tokens (pipeline max_sequence_length 128), PixArt caption projection
        text: { mode: "cross", tokens: LTX_TEXT_LEN, encoderWidth: c.caption_channels },
        // AdaLayerNormSingle: one timestep modulation shared by every block
        modulation: "shared",
        freqDim: 256,
        textEncoder: T5_XXL_ENCODER("T5-XXL encoder", LTX_TEXT_LEN),
        vae: LTX_VAE,
      });
    },
    vae: {
      temporal: 8,
      spatial: 32,
      source: `AutoencoderKLLTXVideo: patch_size 4 x 2^3 = 32 spatial, patch_size_t 1 x 2^3 = 8 temporal (${DIFFUSERS} src/diffusers/models/autoencoders/autoencoder_kl_ltx.py)`,
    },
    defaults: {
      width: 768,
      height: 512,
      frames: 121,
      fps: 24,
      steps: 40,
      cfg: true,
      source:
        'Lightricks/LTX-Video@5a592aa5b16cf7581dd73b59461ef65634d542f6 (first release) README ("24 FPS videos at 768x512 resolution") and inference.py (40 steps, guidance_scale 3, 121 frames)',
    },
  },
  MMDiTModel: {
    schema: MmditSchema,
    code: "hpcaitech/Open-Sora@7ad6a96a135feb81f755c84fb391818718f6beb2 opensora/models/mmdit/model.py (MMDiTModel, registered as flux)",
    build: (c: z.output<typeof MmditSchema>) => {
      const p = c.patch_size ?? 2;
      if (c.hidden_size % c.num_heads !== 0) {
        throw new UserError(`hidden_size ${c.hidden_size} is not a multiple of num_heads ${c.num_heads}`);
      }
      if (c.in_channels % (p * p) !== 0) {
        throw new UserError(
          `in_channels ${c.in_channels} is not a multiple of patch_size^2 = ${p * p} (Open-Sora packs p x p latent voxels into one token)`,
        );
      }
      return arch({
        family: "open-sora",
        // Flux-style double-stream and single-stream blocks: 12 D^2 per token each
        depth: c.depth + c.depth_single_blocks,
        heads: c.num_heads,
        headDim: c.hidden_size / c.num_heads,
        ffn: Math.round(c.mlp_ratio * c.hidden_size),
        gatedFfn: false,
        patch: [1, p, p],
        // img_in is Linear(in_channels, hidden) on tokens already packed p x p
        inChannels: c.in_channels / (p * p),
        outChannels: c.in_channels / (p * p),
        text: { mode: "joint", tokens: OPEN_SORA_TEXT_LEN, encoderWidth: c.context_in_dim },
        modulation: "per-block",
        freqDim: 256,
        textEncoder: T5_XXL_ENCODER("T5-XXL encoder", OPEN_SORA_TEXT_LEN),
        vae: HUNYUAN_VAE,
        // I2VDenoiser runs cond, text-uncond and image-uncond in one batch of 3 every step
        guidanceCalls: 3,
      });
    },
    vae: {
      temporal: 4,
      spatial: 8,
      source:
        "Open-Sora 2.0 decodes with the HunyuanVideo VAE (configs/diffusion/inference/256px.py: ae type hunyuan_vae, temporal_reduction 4; 8x8 spatial)",
    },
    defaults: {
      width: 768,
      height: 768,
      frames: 129,
      fps: 24,
      steps: 50,
      cfg: true,
      source:
        "hpcaitech/Open-Sora@7ad6a96a135feb81f755c84fb391818718f6beb2 configs/diffusion/inference/256px.py (num_frames 129, num_steps 50, guidance 7.5 + guidance_img 3.0, fps_save 24) and README (768x768 and 256x256 timed)",
    },
  },
};

export const KNOWN_TRANSFORMER_CLASSES = Object.keys(TRANSFORMER_READERS);

/** VAE classes whose config gives (temporal, spatial) compression, following each class's diffusers code. */
const VAE_READERS: Record<
  string,
  { schema: z.ZodType; factors: (c: never) => [number, number]; latent: (c: never) => number }
> = {
  AutoencoderKLWan: {
    schema: z.looseObject({
      temperal_downsample: z.array(z.boolean({ error: "must be a list of booleans" })).optional(),
      scale_factor_temporal: nullableInt(),
      scale_factor_spatial: nullableInt(),
      z_dim: int().optional(),
    }),
    latent: (c: { z_dim?: number }) => c.z_dim ?? 16,
    factors: (c: {
      temperal_downsample?: boolean[];
      scale_factor_temporal?: number | null;
      scale_factor_spatial?: number | null;
    }) => {
      const down = c.temperal_downsample ?? [false, true, true];
      return [
        c.scale_factor_temporal ?? 2 ** down.filter(Boolean).length,
        c.scale_factor_spatial ?? 2 ** down.length,
      ];
    },
  },
  AutoencoderKLHunyuanVideo: {
    schema: z.looseObject({
      temporal_compression_ratio: int().optional(),
      spatial_compression_ratio: int().optional(),
      latent_channels: int().optional(),
    }),
    latent: (c: { latent_channels?: number }) => c.latent_channels ?? 16,
    factors: (c: { temporal_compression_ratio?: number; spatial_compression_ratio?: number }) => [
      c.temporal_compression_ratio ?? 4,
      c.spatial_compression_ratio ?? 8,
    ],
  },
  AutoencoderKLCogVideoX: {
    schema: z.looseObject({
      temporal_compression_ratio: int().optional(),
      block_out_channels: z.array(int()).min(1, { error: "must list at least one width" }).optional(),
      latent_channels: int().optional(),
    }),
    latent: (c: { latent_channels?: number }) => c.latent_channels ?? 16,
    factors: (c: { temporal_compression_ratio?: number; block_out_channels?: number[] }) => [
      c.temporal_compression_ratio ?? 4,
      2 ** ((c.block_out_channels?.length ?? 4) - 1),
    ],
  },
  AutoencoderKLMochi: {
    schema: z.looseObject({
      temporal_expansions: z.array(int()).optional(),
      spatial_expansions: z.array(int()).optional(),
      latent_channels: int().optional(),
    }),
    latent: (c: { latent_channels?: number }) => c.latent_channels ?? 12,
    factors: (c: { temporal_expansions?: number[]; spatial_expansions?: number[] }) => [
      (c.temporal_expansions ?? [1, 2, 3]).reduce((a, b) => a * b, 1),
      (c.spatial_expansions ?? [2, 2, 2]).reduce((a, b) => a * b, 1),
    ],
  },
  AutoencoderKLLTXVideo: {
    schema: z.looseObject({
      patch_size: int().optional(),
      patch_size_t: int().optional(),
      spatio_temporal_scaling: z.array(z.boolean({ error: "must be a list of booleans" })).optional(),
      spatial_compression_ratio: nullableInt(),
      temporal_compression_ratio: nullableInt(),
      latent_channels: int().optional(),
    }),
    latent: (c: { latent_channels?: number }) => c.latent_channels ?? 128,
    factors: (c: {
      patch_size?: number;
      patch_size_t?: number;
      spatio_temporal_scaling?: boolean[];
      spatial_compression_ratio?: number | null;
      temporal_compression_ratio?: number | null;
    }) => {
      const up = 2 ** (c.spatio_temporal_scaling ?? [true, true, true, false]).filter(Boolean).length;
      return [
        c.temporal_compression_ratio ?? (c.patch_size_t ?? 1) * up,
        c.spatial_compression_ratio ?? (c.patch_size ?? 4) * up,
      ];
    },
  },
};

export const KNOWN_VAE_CLASSES = Object.keys(VAE_READERS);

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const p of path) {
    if (v == null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/** One line for the first schema problem: the field, what it must be, the value seen. */
function fieldProblem(where: string, className: string, error: z.ZodError, root: unknown): string {
  const issue = error.issues[0];
  const field = issue.path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join("");
  const seen = valueAt(root, issue.path);
  if (seen === undefined) return `${where}: ${field} is missing (${className} needs it for the FLOP model)`;
  const shown = JSON.stringify(seen);
  return `${where}: ${field} ${issue.message.replace(/^Invalid input: /, "")}, got ${shown && shown.length > 60 ? `${shown.slice(0, 57)}...` : shown}`;
}

function className(raw: unknown, where: string, known: string[], what: string): string {
  if (raw == null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new UserError(`${where}: not a JSON object; pass the ${what} config.json`);
  }
  const name = (raw as Record<string, unknown>)._class_name;
  if (name === undefined) {
    throw new UserError(`${where}: _class_name is missing; known ${what} classes: ${known.join(", ")}`);
  }
  if (typeof name !== "string" || !known.includes(name)) {
    throw new UserError(
      `${where}: _class_name ${JSON.stringify(name)} is not a known ${what} class; known: ${known.join(", ")}`,
    );
  }
  return name;
}

/** A transformer config (parsed JSON) read by its class's reader. */
export function readTransformerConfig(
  raw: unknown,
  where: string,
): { className: string; arch: ConfigArch; reader: TransformerReader } {
  const name = className(raw, where, KNOWN_TRANSFORMER_CLASSES, "transformer");
  const reader = TRANSFORMER_READERS[name];
  const parsed = reader.schema.safeParse(raw);
  if (!parsed.success) throw new UserError(fieldProblem(where, name, parsed.error, raw));
  try {
    return { className: name, arch: reader.build(parsed.data as never), reader };
  } catch (err) {
    if (err instanceof UserError) throw new UserError(`${where}: ${err.message}`);
    throw err;
  }
}

/** A VAE config's (temporal, spatial) compression. */
export function readVaeConfig(
  raw: unknown,
  where: string,
): { className: string; temporal: number; spatial: number; latentChannels: number } {
  const name = className(raw, where, KNOWN_VAE_CLASSES, "VAE");
  const reader = VAE_READERS[name];
  const parsed = reader.schema.safeParse(raw);
  if (!parsed.success) throw new UserError(fieldProblem(where, name, parsed.error, raw));
  const [temporal, spatial] = reader.factors(parsed.data as never);
  return { className: name, temporal, spatial, latentChannels: reader.latent(parsed.data as never) };
}
