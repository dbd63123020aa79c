/**
 * Shapes of diffusion transformers that make images and video for real, and
 * their FLOPs per network call computed from those shapes alone.
 *
 * Conventions: functions return FLOPs (1 multiply-accumulate = 2 FLOPs, the
 * meter's convention); only matrix products are counted (linear layers,
 * attention's two batched products, convolutions), as fvcore and the DiT
 * paper do: softmax, norms and activations are left out. Batch size is 1
 * (one clip, or one frame for per-frame models). framecost's own presets
 * are the exception: their FLOPs come from the meter's analytic formula, so a
 * scenario agrees with what the meter counts on a real run.
 */
import { analyticBreakdown } from "../meter/analytic.ts";
import type { ModelConfig } from "../model/config.ts";
import { UserError } from "../util/errors.ts";

export type TextMode = "none" | "cross" | "joint";

/** A text encoder run once per prompt (per clip); a transformer stack of `layers` blocks. */
export interface TextEncoderShape {
  name: string;
  layers: number;
  width: number;
  /** heads x head size (T5: 64 x 64) */
  attnWidth: number;
  /** key/value projection width (smaller than attnWidth with grouped-query attention) */
  kvWidth: number;
  ffn: number;
  /** three FFN matrices (gated GELU / SwiGLU) instead of two */
  gated: boolean;
  tokens: number;
  source: string;
}

/**
 * A VAE decoder with Wan-VAE's layout (wan/modules/vae.py Decoder3d): a
 * middle of two residual blocks and a single-head attention at the latent
 * resolution, then stages of `resBlocks + 1` residual blocks (two 3x3(x3)
 * convolutions each) separated by 2x upsampling convolutions, channel widths
 * baseDim x mult from the widest down.
 */
export interface VaeDecoderShape {
  name: string;
  baseDim: number;
  mult: number[];
  resBlocks: number;
  /** which of the upsamplings also double time (causal video VAEs) */
  temporalUp: boolean[];
  /** temporal kernel size of the convolutions (3 for 3-D, 1 for an image VAE) */
  kt: number;
  zDim: number;
  /** false: the model's own VAE differs from this layout; the figure is an estimate with its channel widths */
  exact: boolean;
  source: string;
}

export interface DitShape {
  id: string;
  label: string;
  family: string;
  depth: number;
  width: number;
  heads: number;
  ffn: number;
  gatedFfn: boolean;
  /** patch size (t, h, w) in latent voxels */
  patch: [number, number, number];
  /** VAE compression (t, h, w); (1, 1, 1) for a pixel-space model */
  vaeStride: [number, number, number];
  /** channels per latent voxel fed to the patch embedding (context frames included) */
  inChannels: number;
  outChannels: number;
  text: {
    mode: TextMode;
    tokens: number;
    /** width of the text encoder's output, projected to `width` inside the network */
    encoderWidth: number;
    /** text-refiner transformer blocks run on the text tokens each call (HunyuanVideo: 2) */
    refinerBlocks: number;
  };
  /** adaLN modulation computed per block (DiT) or once per call and shared (Wan) */
  modulation: "per-block" | "shared";
  freqDim: number;
  /** "clip": one network call denoises the whole clip; "frame": one frame per call */
  generation: "clip" | "frame";
  /** network calls per step with guidance on (default 2: conditional and unconditional; Open-Sora 2.0: 3) */
  guidanceCalls?: number;
  textEncoder: TextEncoderShape | null;
  vae: VaeDecoderShape | null;
  /** parameter count as published (for memory-fit checks); null where not published */
  params: number | null;
  defaults: { width: number; height: number; frames: number; steps: number; cfg: boolean; fps: number };
  /** a smaller model of the same family among the presets */
  smallerSibling?: string;
  /** framecost's own model: FLOPs come from the meter's analytic formula (src/meter/analytic.ts) */
  ownConfig?: ModelConfig;
  source: string;
  asOf: string;
}

export const T5_XXL_ENCODER = (name: string, tokens: number): TextEncoderShape => ({
  name,
  layers: 24,
  width: 4096,
  attnWidth: 4096,
  kvWidth: 4096,
  ffn: 10240,
  gated: true,
  tokens,
  source: "T5 v1.1 / umT5 XXL config (d_model 4096, d_ff 10240, 24 layers, 64 heads x 64, gated-gelu)",
});

export const WAN_VAE: VaeDecoderShape = {
  name: "Wan-VAE",
  baseDim: 96,
  mult: [1, 2, 4, 4],
  resBlocks: 2,
  temporalUp: [true, true, false],
  kt: 3,
  zDim: 16,
  exact: true,
  source: "Wan2.1 wan/modules/vae.py (_video_vae: dim 96, dim_mult [1,2,4,4], num_res_blocks 2)",
};

/** HunyuanVideo's text encoder: a decoder-only MLLM run once per prompt. */
export const HUNYUAN_TEXT_ENCODER: TextEncoderShape = {
  name: "LLaVA-Llama-3-8B (decoder-only MLLM)",
  layers: 32,
  width: 4096,
  attnWidth: 4096,
  kvWidth: 1024,
  ffn: 14336,
  gated: true,
  tokens: 256,
  source:
    "Llama-3-8B config (32 layers, 4096 wide, 8 KV heads, FFN 14336 SwiGLU); HunyuanVideo text_len 256 (prompt template and CLIP-L not counted)",
};

/** HunyuanVideo's VAE decoder (also Open-Sora 2.0's), estimated with Wan-VAE's layout. */
export const HUNYUAN_VAE: VaeDecoderShape = {
  ...WAN_VAE,
  name: "HunyuanVideo 3D VAE (estimate)",
  baseDim: 128,
  exact: false,
  source:
    "estimated with Wan-VAE's decoder layout at 128 base channels (HunyuanVideo's causal 3D VAE, 884-16c-hy)",
};

/** CogVideoX's VAE decoder (2B and 5B share it), estimated with Wan-VAE's layout. */
export const COGVIDEOX_VAE: VaeDecoderShape = {
  ...WAN_VAE,
  name: "CogVideoX 3D VAE (estimate)",
  baseDim: 128,
  mult: [1, 2, 2, 4],
  resBlocks: 3,
  exact: false,
  source:
    "estimated with Wan-VAE's decoder layout at CogVideoX's channel widths (128 x [1,2,2,4], 3 layers per block)",
};

/** What the two Wan2.1 sizes share (wan/configs/shared_config.py): patching, VAE, text path, modulation. */
const WAN21 = {
  family: "wan2.1",
  gatedFfn: false,
  patch: [1, 2, 2],
  vaeStride: [4, 8, 8],
  inChannels: 16,
  outChannels: 16,
  text: { mode: "cross", tokens: 512, encoderWidth: 4096, refinerBlocks: 0 },
  modulation: "shared",
  freqDim: 256,
  generation: "clip",
  textEncoder: T5_XXL_ENCODER("umT5-XXL encoder", 512),
  vae: WAN_VAE,
} satisfies Partial<DitShape>;

/**
 * The production shapes as first entered by hand from READMEs. `--model`
 * uses the presets built from published config files instead (models.ts);
 * these stay as an independent transcription, and test/cost-config.test.ts
 * checks that both give the same FLOPs.
 */
export const VIDEO_PRESETS: Record<string, DitShape> = {
  "wan2.1-14b": {
    id: "wan2.1-14b",
    label: "Wan2.1 T2V-14B",
    ...WAN21,
    depth: 40,
    width: 5120,
    heads: 40,
    ffn: 13824,
    params: 14e9,
    defaults: { width: 1280, height: 720, frames: 81, steps: 50, cfg: true, fps: 16 },
    smallerSibling: "wan2.1-1.3b",
    source:
      "Wan2.1 README (github.com/Wan-Video/Wan2.1: dim 5120, FFN 13824, 40 heads, 40 layers) and wan/configs/shared_config.py (text_len 512, frame_num 81, sample_fps 16); 50 steps with CFG in generate.py",
    asOf: "2025-02",
  },
  "wan2.1-1.3b": {
    id: "wan2.1-1.3b",
    label: "Wan2.1 T2V-1.3B",
    ...WAN21,
    depth: 30,
    width: 1536,
    heads: 12,
    ffn: 8960,
    params: 1.3e9,
    defaults: { width: 832, height: 480, frames: 81, steps: 50, cfg: true, fps: 16 },
    source:
      "Wan2.1 README (github.com/Wan-Video/Wan2.1: dim 1536, FFN 8960, 12 heads, 30 layers; 480P) and wan/configs/shared_config.py",
    asOf: "2025-02",
  },
  hunyuanvideo: {
    id: "hunyuanvideo",
    label: "HunyuanVideo (13B)",
    family: "hunyuanvideo",
    // 20 dual-stream + 40 single-stream blocks: each costs 12 D^2 per token in linear layers
    depth: 60,
    width: 3072,
    heads: 24,
    ffn: 12288,
    gatedFfn: false,
    patch: [1, 2, 2],
    vaeStride: [4, 8, 8],
    inChannels: 16,
    outChannels: 16,
    text: { mode: "joint", tokens: 256, encoderWidth: 4096, refinerBlocks: 2 },
    modulation: "per-block",
    freqDim: 256,
    generation: "clip",
    textEncoder: HUNYUAN_TEXT_ENCODER,
    vae: HUNYUAN_VAE,
    params: 13e9,
    // the released checkpoint is guidance-distilled: --cfg-scale 1.0, --embedded-cfg-scale 6.0
    defaults: { width: 1280, height: 720, frames: 129, steps: 50, cfg: false, fps: 24 },
    source:
      "HunyuanVideo README and hyvideo/config.py (github.com/Tencent/HunyuanVideo: 720x1280x129, 50 steps, model HYVideo-T/2-cfgdistill, cfg-scale 1.0, text-len 256); shapes from the HunyuanVideo paper (arXiv 2412.03603: 20 dual-stream + 40 single-stream blocks, width 3072, 24 heads)",
    asOf: "2024-12",
  },
  "cogvideox-5b": {
    id: "cogvideox-5b",
    label: "CogVideoX-5B",
    family: "cogvideox",
    depth: 42,
    width: 3072,
    heads: 48,
    ffn: 12288,
    gatedFfn: false,
    patch: [1, 2, 2],
    vaeStride: [4, 8, 8],
    inChannels: 16,
    outChannels: 16,
    text: { mode: "joint", tokens: 226, encoderWidth: 4096, refinerBlocks: 0 },
    modulation: "per-block",
    freqDim: 256,
    generation: "clip",
    textEncoder: T5_XXL_ENCODER("T5-XXL encoder", 226),
    vae: COGVIDEOX_VAE,
    params: 5e9,
    defaults: { width: 720, height: 480, frames: 49, steps: 50, cfg: true, fps: 8 },
    source:
      "CogVideoX README (github.com/THUDM/CogVideo: 720x480, 49 frames at 8 fps, 226 text tokens, 50 steps); shapes from the CogVideoX paper (arXiv 2408.06072: 42 blocks, width 3072, 48 heads for 5B)",
    asOf: "2024-08",
  },
};

/** DiT (Peebles & Xie 2023, Table 1): depth, width, heads. */
const DIT_SIZES: Record<string, { depth: number; width: number; heads: number }> = {
  s: { depth: 12, width: 384, heads: 6 },
  b: { depth: 12, width: 768, heads: 12 },
  l: { depth: 24, width: 1024, heads: 16 },
  xl: { depth: 28, width: 1152, heads: 16 },
};

/** DiT-{S,B,L,XL}/p: class-conditional image DiT on a 32x32x4 latent (256 px), learned sigma. */
export function ditShape(size: string, patch: number): DitShape {
  const s = DIT_SIZES[size];
  return {
    id: `dit-${size}/${patch}`,
    label: `DiT-${size.toUpperCase()}/${patch}`,
    family: "dit",
    depth: s.depth,
    width: s.width,
    heads: s.heads,
    ffn: 4 * s.width,
    gatedFfn: false,
    patch: [1, patch, patch],
    vaeStride: [1, 8, 8],
    inChannels: 4,
    // learned sigma doubles the output channels
    outChannels: 8,
    text: { mode: "none", tokens: 0, encoderWidth: 0, refinerBlocks: 0 },
    modulation: "per-block",
    freqDim: 256,
    generation: "frame",
    textEncoder: null,
    vae: {
      name: "SD VAE decoder (estimate)",
      baseDim: 128,
      mult: [1, 2, 4, 4],
      resBlocks: 2,
      temporalUp: [false, false, false],
      kt: 1,
      zDim: 4,
      exact: false,
      source:
        "estimated with the same decoder layout, 2-D, 128 base channels (Stable Diffusion's VAE, which DiT uses)",
    },
    params: null,
    defaults: { width: 256, height: 256, frames: 1, steps: 250, cfg: false, fps: 24 },
    smallerSibling:
      size === "xl"
        ? `dit-l/${patch}`
        : size === "l"
          ? `dit-b/${patch}`
          : size === "b"
            ? `dit-s/${patch}`
            : undefined,
    source:
      "Peebles & Xie 2023, Scalable Diffusion Models with Transformers (arXiv 2212.09748), Table 1; 250 DDPM steps as in its evaluations",
    asOf: "2023-03",
  };
}

/** One of framecost's own presets (src/model/config.ts): pixel space, one frame per call, K context frames on channels. */
export function ownShape(cfg: ModelConfig): DitShape {
  return {
    id: cfg.name,
    label: `framecost ${cfg.name}`,
    family: "framecost",
    depth: cfg.depth,
    width: cfg.width,
    heads: cfg.heads,
    ffn: cfg.mlpRatio * cfg.width,
    gatedFfn: false,
    patch: [1, cfg.patch, cfg.patch],
    vaeStride: [1, 1, 1],
    inChannels: cfg.channels * (cfg.contextFrames + 1),
    outChannels: cfg.channels,
    text: { mode: "none", tokens: 0, encoderWidth: 0, refinerBlocks: 0 },
    modulation: "per-block",
    freqDim: cfg.freqDim,
    generation: "frame",
    textEncoder: null,
    vae: null,
    params: null,
    defaults: { width: cfg.imageSize, height: cfg.imageSize, frames: 24, steps: 50, cfg: false, fps: 24 },
    smallerSibling: cfg.name === "small" ? "tiny" : cfg.name === "tiny" ? "micro" : undefined,
    ownConfig: cfg,
    source:
      "src/model/config.ts (framecost's own presets); FLOPs per call from src/meter/analytic.ts, the meter's rules (elementwise ops counted too)",
    asOf: "2026",
  };
}

/** DiT sizes `dit-{s,b,l,xl}/p` accepts. */
export const DIT_SIZE_NAMES = Object.keys(DIT_SIZES);

/** A custom video DiT from flags: Wan-like defaults (VAE 4x8x8, 16 latent channels, patch 1x2x2). */
export function customShape(o: {
  depth: number;
  modelWidth: number;
  heads: number;
  ffn?: number;
  patch?: number;
  textTokens?: number;
}): DitShape {
  if (o.modelWidth % o.heads !== 0) {
    throw new UserError(`--model-width ${o.modelWidth} must be a multiple of --heads ${o.heads}`);
  }
  const p = o.patch ?? 2;
  const textTokens = o.textTokens ?? 0;
  return {
    id: "custom",
    label: `custom (depth ${o.depth}, width ${o.modelWidth})`,
    family: "custom",
    depth: o.depth,
    width: o.modelWidth,
    heads: o.heads,
    ffn: o.ffn ?? 4 * o.modelWidth,
    gatedFfn: false,
    patch: [1, p, p],
    vaeStride: [4, 8, 8],
    inChannels: 16,
    outChannels: 16,
    text: {
      mode: textTokens > 0 ? "cross" : "none",
      tokens: textTokens,
      encoderWidth: o.modelWidth,
      refinerBlocks: 0,
    },
    modulation: "shared",
    freqDim: 256,
    generation: "clip",
    textEncoder: null,
    vae: WAN_VAE,
    params: null,
    defaults: { width: 1280, height: 720, frames: 81, steps: 50, cfg: true, fps: 16 },
    source:
      "custom shape from flags (Wan-like defaults: VAE stride 4x8x8, 16 latent channels, patch 1x2x2, Wan-VAE decoder)",
    asOf: "given",
  };
}

/** A clip's size. */
export interface Clip {
  width: number;
  height: number;
  frames: number;
}

/** The token grid one network call sees. */
export interface TokenGrid {
  /** latent frames per call (1 for per-frame models) */
  latentFrames: number;
  latentHeight: number;
  latentWidth: number;
  /** video tokens per call */
  tokens: number;
  /** text tokens in the sequence (joint) or attended to (cross) */
  textTokens: number;
}

/** Latent frames of a causal video VAE: the first frame alone, then `st` frames per latent frame. */
export function latentFramesOf(frames: number, st: number): number {
  return st > 1 ? 1 + Math.ceil((frames - 1) / st) : frames;
}

/** Tokens per network call; throws a UserError when the size does not fit the VAE stride x patch. */
export function tokenGrid(shape: DitShape, clip: Clip): TokenGrid {
  const [st, sh, sw] = shape.vaeStride;
  const [pt, ph, pw] = shape.patch;
  for (const [flag, v, s, p] of [
    ["--width", clip.width, sw, pw],
    ["--height", clip.height, sh, ph],
  ] as const) {
    const m = s * p;
    if (v % m !== 0) {
      const lo = Math.max(m, Math.floor(v / m) * m);
      throw new UserError(
        `${flag} ${v} is not a multiple of ${m} (VAE stride ${s} x patch ${p}) for ${shape.id}; try ${lo} or ${lo + m}`,
      );
    }
  }
  const framesPerCall = shape.generation === "frame" ? 1 : clip.frames;
  const latentFrames = Math.ceil(latentFramesOf(framesPerCall, st) / pt);
  const latentHeight = clip.height / sh;
  const latentWidth = clip.width / sw;
  const tokens = latentFrames * (latentHeight / ph) * (latentWidth / pw);
  return { latentFrames, latentHeight, latentWidth, tokens, textTokens: shape.text.tokens };
}

/** FLOPs of one network call, by where they go. */
export interface NfeFlops {
  tokens: number;
  textTokens: number;
  /** Q, K, V, output projections and the FFN, over every token in the blocks */
  linear: number;
  /** QK^T and attention x V of self-attention: quadratic in the sequence */
  attention: number;
  /** text cross-attention (Wan): projections and its two products */
  crossAttention: number;
  /** patch embedding, final layer, timestep and text projections, adaLN modulation */
  embedding: number;
  total: number;
}

/**
 * FLOPs of one network call at a token count (continuous in `tokens`, so
 * inverse solves can bisect on it). MACs x 2.
 */
export function nfeFlopsAtTokens(shape: DitShape, tokens: number): NfeFlops {
  if (shape.ownConfig) return ownNfeFlops(shape, tokens);
  const D = shape.width;
  const F = shape.ffn;
  const L = shape.depth;
  const Nt = shape.text.tokens;
  const joint = shape.text.mode === "joint";
  // tokens through the blocks' linear layers and self-attention
  const S = joint ? tokens + Nt : tokens;
  const ffnMats = shape.gatedFfn ? 3 : 2;
  const linearMacs = L * (4 * S * D * D + ffnMats * S * D * F);
  // QK^T [S, S] and AV [S, D], summed over heads
  const attnMacs = L * 2 * S * S * D;
  let crossMacs = 0;
  if (shape.text.mode === "cross") {
    // q and out on video tokens, k and v on text tokens, two products [N, Nt]
    crossMacs = L * (2 * tokens * D * D + 2 * Nt * D * D + 2 * tokens * Nt * D);
  }
  const [pt, ph, pw] = shape.patch;
  const patchVol = pt * ph * pw;
  let embedMacs = tokens * patchVol * shape.inChannels * D; // patch embedding
  embedMacs += tokens * D * patchVol * shape.outChannels + 2 * D * D; // final layer + its adaLN
  embedMacs += shape.freqDim * D + D * D; // timestep MLP
  embedMacs += shape.modulation === "per-block" ? L * 6 * D * D : 6 * D * D;
  if (shape.text.mode === "cross") embedMacs += Nt * (shape.text.encoderWidth * D + D * D); // Wan text_embedding
  if (joint) {
    embedMacs += Nt * shape.text.encoderWidth * D; // text input projection
    embedMacs += shape.text.refinerBlocks * (12 * Nt * D * D + 2 * Nt * Nt * D);
  }
  const linear = 2 * linearMacs;
  const attention = 2 * attnMacs;
  const crossAttention = 2 * crossMacs;
  const embedding = 2 * embedMacs;
  return {
    tokens,
    textTokens: shape.text.mode === "none" ? 0 : Nt,
    linear,
    attention,
    crossAttention,
    embedding,
    total: linear + attention + crossAttention + embedding,
  };
}

/**
 * framecost's own model through the meter's analytic formula, so a scenario
 * agrees with what the meter counts; square frames of `tokens` patches.
 */
function ownNfeFlops(shape: DitShape, tokens: number): NfeFlops {
  const cfg = shape.ownConfig as ModelConfig;
  const b = analyticBreakdown({
    ...cfg,
    width: shape.width,
    mlpRatio: shape.ffn / shape.width,
    imageSize: shape.patch[1] * Math.sqrt(tokens),
  });
  const linear = b.attentionProjections + b.mlp;
  const attention = b.attentionMatmuls + b.attentionSoftmax;
  const embedding =
    b.emptyContext + b.patchEmbed + b.timestep + b.adaLN + b.normModulate + b.residual + b.finalProjection;
  return {
    tokens,
    textTokens: 0,
    linear,
    attention,
    crossAttention: 0,
    embedding,
    total: linear + attention + embedding,
  };
}

/** Network calls per sampler step: 1 without guidance, `guidanceCalls` (default 2) with it. */
export function callsPerStep(shape: DitShape, cfg: boolean): number {
  return cfg ? (shape.guidanceCalls ?? 2) : 1;
}

/** Prompts the text encoder runs per clip: the prompt, and the negative prompt with guidance. */
export function promptsPerClip(cfg: boolean): number {
  return cfg ? 2 : 1;
}

export function nfeFlops(shape: DitShape, clip: Clip): NfeFlops {
  return nfeFlopsAtTokens(shape, tokenGrid(shape, clip).tokens);
}

/** FLOPs of encoding one prompt (run once per clip, twice with CFG: the negative prompt too). */
export function textEncoderFlops(enc: TextEncoderShape): number {
  const T = enc.tokens;
  const perLayer =
    T *
      (2 * enc.width * enc.attnWidth +
        2 * enc.width * enc.kvWidth +
        (enc.gated ? 3 : 2) * enc.width * enc.ffn) +
    2 * T * T * enc.attnWidth;
  return 2 * enc.layers * perLayer;
}

/**
 * FLOPs of decoding a latent of `latentFrames` x h x w to pixels, following
 * Wan-VAE's decoder (wan/modules/vae.py): one latent frame per chunk; the
 * first chunk yields one frame, later chunks double time at each temporal
 * upsampling.
 */
export function vaeDecoderFlops(vae: VaeDecoderShape, latentFrames: number, h: number, w: number): number {
  const k3 = vae.kt * 9;
  const dims = [vae.mult[vae.mult.length - 1], ...[...vae.mult].reverse()].map((m) => m * vae.baseDim);
  const res = (vox: number, cin: number, cout: number) =>
    vox * (k3 * cin * cout + k3 * cout * cout + (cin !== cout ? cin * cout : 0));
  let macs = 0;
  const chunks = vae.temporalUp.some(Boolean) ? latentFrames : 1;
  const perChunkT = vae.temporalUp.some(Boolean) ? 1 : latentFrames;
  for (let c = 0; c < chunks; c++) {
    let t = perChunkT;
    let H = h;
    let W = w;
    macs += t * H * W * k3 * vae.zDim * dims[0]; // conv1
    macs += 2 * res(t * H * W, dims[0], dims[0]); // middle residual blocks
    macs += t * (H * W * 4 * dims[0] * dims[0] + 2 * (H * W) ** 2 * dims[0]); // middle single-head attention
    for (let i = 0; i < dims.length - 1; i++) {
      let cin = i === 0 ? dims[0] : dims[i] / 2;
      const cout = dims[i + 1];
      for (let r = 0; r <= vae.resBlocks; r++) {
        macs += res(t * H * W, cin, cout);
        cin = cout;
      }
      if (i < dims.length - 2) {
        if (vae.temporalUp[i] && c > 0) {
          macs += t * H * W * 3 * cout * 2 * cout; // time_conv (3,1,1): cout -> 2 cout
          t *= 2;
        }
        H *= 2;
        W *= 2;
        macs += t * H * W * 9 * cout * (cout / 2); // upsample conv 3x3: cout -> cout / 2
      }
    }
    macs += t * H * W * k3 * dims[dims.length - 1] * 3; // head
  }
  return 2 * macs;
}
