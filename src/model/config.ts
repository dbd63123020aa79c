/**
 * The video DiT's shape. One table of presets (as DiT's `DiT_models`), one
 * typed config. Everything else about the model (parameter count, FLOPs per
 * network call) is derived from these numbers.
 */
export interface ModelConfig {
  /** preset name, e.g. "tiny" */
  name: string;
  /** frame height = width in pixels */
  imageSize: number;
  /** colour channels (RGB = 3) */
  channels: number;
  /** patch side in pixels: tokens = (imageSize / patch)^2 */
  patch: number;
  /** token width D */
  width: number;
  /** number of DiT blocks */
  depth: number;
  /** attention heads; head size = width / heads */
  heads: number;
  /** MLP hidden = mlpRatio * width */
  mlpRatio: number;
  /** K clean previous frames the model is conditioned on (concatenated to the noisy frame along channels) */
  contextFrames: number;
  /** size of the sinusoidal timestep features fed to the timestep MLP */
  freqDim: number;
  /**
   * self-conditioning (Chen et al. 2022, "Analog Bits"): the network also sees its own previous estimate of
   * the clean frame, as one more input slot after the context frames (missing = the learned empty value);
   * absent = false
   */
  selfCond?: boolean;
  /** what the network predicts: "v" (v-prediction) or "eps" (the noise) */
  prediction: "v" | "eps";
  /** discrete training timesteps of the noise schedule */
  trainTimesteps: number;
}

export const PRESETS: Record<string, ModelConfig> = {
  // for tests: runs in milliseconds
  micro: {
    name: "micro",
    imageSize: 16,
    channels: 3,
    patch: 4,
    width: 32,
    depth: 2,
    heads: 2,
    mlpRatio: 4,
    contextFrames: 2,
    freqDim: 32,
    prediction: "v",
    trainTimesteps: 1000,
  },
  // the shipped model (models/tiny)
  tiny: {
    name: "tiny",
    imageSize: 32,
    channels: 3,
    patch: 4,
    width: 128,
    depth: 4,
    heads: 4,
    mlpRatio: 4,
    contextFrames: 2,
    freqDim: 64,
    prediction: "v",
    trainTimesteps: 1000,
  },
  // a bigger sibling, for cost scenarios and benchmarks
  small: {
    name: "small",
    imageSize: 32,
    channels: 3,
    patch: 4,
    width: 192,
    depth: 6,
    heads: 6,
    mlpRatio: 4,
    contextFrames: 2,
    freqDim: 64,
    prediction: "v",
    trainTimesteps: 1000,
  },
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

/** Tokens per frame. */
export function tokensOf(cfg: ModelConfig): number {
  return (cfg.imageSize / cfg.patch) ** 2;
}

/** Input slots per pixel: the noisy frame, K context frames, and the self-conditioning estimate if any. */
export function inputSlots(cfg: ModelConfig): number {
  return 1 + cfg.contextFrames + (cfg.selfCond ? 1 : 0);
}

/** Input features per token: the noisy frame's patch plus K context patches (plus the self-conditioning one). */
export function patchInputDim(cfg: ModelConfig): number {
  return cfg.patch * cfg.patch * cfg.channels * inputSlots(cfg);
}

/** Output features per token: one patch of the predicted frame. */
export function patchOutputDim(cfg: ModelConfig): number {
  return cfg.patch * cfg.patch * cfg.channels;
}

/** Throws with the fix when a config cannot describe a model. */
export function validateConfig(cfg: ModelConfig): void {
  const bad = (what: string) => {
    throw new Error(`model config "${cfg.name}": ${what}`);
  };
  if (cfg.imageSize % cfg.patch !== 0)
    bad(`imageSize ${cfg.imageSize} is not a multiple of patch ${cfg.patch}`);
  if (cfg.width % cfg.heads !== 0) bad(`width ${cfg.width} is not a multiple of heads ${cfg.heads}`);
  if (cfg.freqDim % 2 !== 0) bad(`freqDim ${cfg.freqDim} must be even`);
  for (const k of [
    "imageSize",
    "channels",
    "patch",
    "width",
    "depth",
    "heads",
    "mlpRatio",
    "freqDim",
  ] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) bad(`${k} must be a positive integer, got ${cfg[k]}`);
  }
  if (!Number.isInteger(cfg.contextFrames) || cfg.contextFrames < 0) bad("contextFrames must be >= 0");
}
