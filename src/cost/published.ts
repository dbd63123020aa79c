/**
 * Published measurements and figures the cost model leans on, each with its
 * source and date. Utilization (MFU) and multi-GPU scaling are not typed in:
 * they are computed from these measurements with framecost's own FLOP model
 * (see calibration.ts), so a reader can check every default against a page.
 */

/** A wall-clock measurement of a known model and clip on a known GPU. */
export interface Measurement {
  id: string;
  model: string;
  width: number;
  height: number;
  frames: number;
  steps: number;
  cfg: boolean;
  gpu: string;
  seconds: number;
  source: string;
  asOf: string;
  note?: string;
}

/** Single-GPU end-to-end generation times: they calibrate each GPU's default MFU. */
export const MEASUREMENTS: Measurement[] = [
  {
    id: "hunyuanvideo-720p-h100",
    model: "hunyuanvideo",
    width: 1280,
    height: 720,
    frames: 129,
    steps: 50,
    cfg: false,
    gpu: "h100-sxm",
    seconds: 1904.08,
    source:
      "xDiT performance report, docs/performance/hunyuanvideo.md (github.com/xdit-project/xDiT): HunyuanVideo 1280x720, 129 frames, 50 steps, 1 GPU, official repository",
    asOf: "2024-12",
    note: "the source says H100 without the form factor: SXM assumed; the released model is guidance-distilled (one call per step)",
  },
  {
    id: "hunyuanvideo-720p-h20",
    model: "hunyuanvideo",
    width: 1280,
    height: 720,
    frames: 129,
    steps: 50,
    cfg: false,
    gpu: "h20",
    seconds: 6639.17,
    source:
      "xDiT performance report, docs/performance/hunyuanvideo.md (github.com/xdit-project/xDiT): same workload on 1 H20",
    asOf: "2024-12",
  },
  {
    id: "cogvideox-5b-a100",
    model: "cogvideox-5b",
    width: 720,
    height: 480,
    frames: 49,
    steps: 50,
    cfg: true,
    gpu: "a100-sxm",
    seconds: 180,
    source:
      'CogVideoX README (github.com/THUDM/CogVideo): CogVideoX-5B, 50 steps, BF16, "Single A100: ~180 seconds"',
    asOf: "2024-08",
    note: "diffusers with CPU offload and VAE tiling on; the README says about 10% faster without them",
  },
  {
    id: "cogvideox-5b-h100",
    model: "cogvideox-5b",
    width: 720,
    height: 480,
    frames: 49,
    steps: 50,
    cfg: true,
    gpu: "h100-sxm",
    seconds: 90,
    source:
      'CogVideoX README (github.com/THUDM/CogVideo): CogVideoX-5B, 50 steps, BF16, "Single H100: ~90 seconds"',
    asOf: "2024-08",
    note: "H100 form factor not stated: SXM assumed",
  },
  {
    id: "wan2.1-1.3b-480p-rtx4090",
    model: "wan2.1-1.3b",
    width: 832,
    height: 480,
    frames: 81,
    steps: 50,
    cfg: true,
    gpu: "rtx-4090",
    seconds: 240,
    source:
      'Wan2.1 README (github.com/Wan-Video/Wan2.1): T2V-1.3B "can generate a 5-second 480P video on an RTX 4090 in about 4 minutes (without optimization techniques like quantization)"',
    asOf: "2025-02",
    note: "a rounded figure, run with --offload_model True --t5_cpu",
  },
];

/** Latency of one clip on 1..N GPUs with sequence parallelism (Ulysses). */
export interface ScalingSeries {
  id: string;
  /** the catalog GPU it was measured on, or null for a GPU outside the catalog used as a class proxy */
  gpu: string | null;
  interconnect: "nvlink" | "pcie";
  workload: string;
  points: Array<{ gpus: number; seconds: number }>;
  source: string;
  asOf: string;
}

export const SCALING_SERIES: ScalingSeries[] = [
  {
    id: "xdit-hunyuanvideo-h100",
    gpu: "h100-sxm",
    interconnect: "nvlink",
    workload: "HunyuanVideo 1280x720, 129 frames, 50 steps, Ulysses",
    points: [
      { gpus: 1, seconds: 1904.08 },
      { gpus: 2, seconds: 925.04 },
      { gpus: 4, seconds: 514.08 },
      { gpus: 8, seconds: 337.58 },
    ],
    source: "xDiT performance report, docs/performance/hunyuanvideo.md (github.com/xdit-project/xDiT)",
    asOf: "2024-12",
  },
  {
    id: "xdit-hunyuanvideo-h20",
    gpu: "h20",
    interconnect: "nvlink",
    workload: "HunyuanVideo 1280x720, 129 frames, 50 steps, Ulysses",
    points: [
      { gpus: 1, seconds: 6639.17 },
      { gpus: 2, seconds: 3400.55 },
      { gpus: 4, seconds: 1762.86 },
      { gpus: 8, seconds: 940.97 },
    ],
    source: "xDiT performance report, docs/performance/hunyuanvideo.md (github.com/xdit-project/xDiT)",
    asOf: "2024-12",
  },
  {
    id: "xdit-hunyuanvideo-l20",
    gpu: null,
    interconnect: "pcie",
    workload: "HunyuanVideo 1280x720, 129 frames, 50 steps, Ulysses, on L20 (PCIe, no NVLink), diffusers",
    points: [
      { gpus: 1, seconds: 6043.88 },
      { gpus: 2, seconds: 3271.44 },
      { gpus: 4, seconds: 2080.05 },
    ],
    source: "xDiT performance report, docs/performance/hunyuanvideo.md (github.com/xdit-project/xDiT)",
    asOf: "2024-12",
  },
];

/** Which GPUs talk over NVLink (SXM/HGX parts); the rest are PCIe cards. */
export const INTERCONNECT: Record<string, "nvlink" | "pcie"> = {
  "h100-sxm": "nvlink",
  h200: "nvlink",
  "a100-sxm": "nvlink",
  h20: "nvlink",
  "h100-pcie": "pcie",
  l40s: "pcie",
  "rtx-4090": "pcie",
};

/** A published figure used as an assumption or a lever. */
export interface PublishedFigure {
  value: number;
  source: string;
  asOf: string;
  note?: string;
}

/** Per-kernel launch cost added in the roofline (the memory and compute roofs ignore it). */
export const LAUNCH_OVERHEAD_US: PublishedFigure = {
  value: 5,
  source:
    'dogacel, "Four counter-intuitive lessons from deep-diving GPU kernel dispatch overhead" (dogacel.github.io, 2026-03-14): "a 5 us dispatch path" for a direct kernel launch on B200',
  asOf: "2026-03",
  note: "eager frameworks add Python overhead on top; CUDA graphs remove part of it",
};

/** Guidance distillation: one network call per step instead of two. */
export const GUIDANCE_DISTILLATION = {
  source:
    "Meng et al. 2023, On Distillation of Guided Diffusion Models (CVPR 2023, arXiv 2210.03142); HunyuanVideo ships a guidance-distilled checkpoint (hyvideo/config.py: HYVideo-T/2-cfgdistill, cfg-scale 1.0)",
  asOf: "2023-04",
};

/** Step distillation: 4 steps without CFG (DMD / Self-Forcing) for Wan2.1 14B. */
export const STEP_DISTILLATION: PublishedFigure = {
  value: 4,
  source:
    'LightX2V step distillation docs (lightx2v-en.readthedocs.io, method_tutorials/step_distill): "reduces inference steps from the original 40-50 steps to 4 steps", Wan2.1-T2V-14B StepDistill-CfgDistill',
  asOf: "2025",
  note: "the published models are also guidance-distilled; feature caching is switched off for them (LightX2V requires NoCaching with distilled schedulers)",
};

/** Feature caching between steps: TeaCache on Wan2.1. */
export const FEATURE_CACHING_SPEEDUP: PublishedFigure = {
  value: 2,
  source:
    'Wan2.1 README, community works (github.com/Wan-Video/Wan2.1): "TeaCache now supports Wan2.1 acceleration, capable of increasing speed by approximately 2x" (TeaCache: Liu et al. 2024, arXiv 2411.19108, up to 4.41x on Open-Sora-Plan)',
  asOf: "2025-03",
  note: "measured at 40-50 steps; no published result stacks it with 4-step distilled models, so the lever is off by default",
};

/**
 * Lower precision: FP8 (Transformer Engine, E4M3) on Wan2.2 A14B I2V, 8xH100,
 * 1280x720, 81 frames, 40 steps. The time factor is computed from the two
 * published latencies: FA3 alone, and FA3 + FP8.
 */
export const FP8 = {
  baselineSeconds: 250.7,
  fa3Seconds: 195.13,
  fa3PlusFp8Speedup: 1.71,
  source:
    'Morphic (github.com/morphicfilms/wan2.2_optimizations; dev.to post, 2025-11; r/StableDiffusion "Transformer Engine FP8 Quantization for Wan2.2"): FA2 baseline 250.7 s, FA3 195.13 s, FP8 with FA3 "1.71x speedup over the 8xH100 Flash Attention 2 baseline"',
  asOf: "2025-11",
};

/** FP8's time factor relative to the FA3 run: (baseline / 1.71) / fa3. */
export function fp8TimeFactor(): number {
  return FP8.baselineSeconds / FP8.fa3PlusFp8Speedup / FP8.fa3Seconds;
}

/** Higher utilization: the attention-kernel utilization FlashAttention-3 reaches on H100. */
export const TARGET_MFU: PublishedFigure = {
  value: 0.75,
  source:
    "Shah et al. 2024, FlashAttention-3 (arXiv 2407.08608): up to 740 TFLOP/s FP16 on H100, 75% of peak",
  asOf: "2024-07",
  note: "a kernel-level figure: an upper target for a whole pipeline",
};

/** Lower price per GPU-hour: reserved capacity instead of on-demand. */
export const RESERVED_DISCOUNT = {
  low: 0.3,
  high: 0.5,
  source:
    'Mercatus, Cloud GPU pricing (www.mercatus-ai.com/blog/cloud-gpu-pricing): "Reservation cuts 30-50% off the hourly rate"',
  asOf: "2026-05",
};

/** Sampler fallback when no sweep is given: DPM-Solver at 20 NFEs vs DDIM at 50 (CIFAR-10 FID). */
export const SAMPLER_FALLBACK = {
  fromNfe: 50,
  toNfe: 20,
  source:
    "Lu et al. 2022, DPM-Solver (arXiv 2206.00927): FID 2.87 at 20 NFEs vs DDIM 4.67 at 50 on CIFAR-10; an image benchmark, not measured by framecost",
  asOf: "2022-06",
};

/**
 * The essay's figures: megaton.ai, "Sora's demise: the brutal economics of video diffusion" (its
 * section "Cost curve does have a floor"), and the estimates it rests on, each cited where it was published.
 */
const ESSAY_CITATION =
  'megaton.ai, "Sora\'s demise: the brutal economics of video diffusion", section "Cost curve does have a floor" (https://megaton.ai/news/sora-s-demise-the-brutal-economics-of-video-diffusion, 2026)';

export const ESSAY = {
  soraUsdPerDay: 15e6,
  targetUsdPerMinute: 0.01,
  cheaperLabBand: { from: 1 / 6, to: 1 / 10 },
  citation: ESSAY_CITATION,
  source: `${ESSAY_CITATION}: Sora's ~$15M a day, $0.01 per video minute as the floor, Chinese labs at 1/6 to 1/10 of Sora's cost`,
  outside: [
    {
      what: 'Factorial Funds (Matthias Plappert), "Under The Hood: How OpenAI\'s Sora Model Works" (https://www.factorialfunds.com/blog/under-the-hood-how-openai-s-sora-model-works, 2024-03): at most ~5 video minutes per H100-hour, i.e. ~12 H100-minutes of compute per minute of Sora video',
      h100MinutesPerMinute: 12,
    },
  ],
  cantorUsdPer10sClip: 1.3,
  cantorSource:
    "Cantor Fitzgerald analyst Deepak Mathivanan's estimate of Sora's serving cost, ~$1.30 per 10-second clip, as reported by Forbes (forbes.com, 2025-11)",
};

/** Which catalog GPUs have FP8 tensor cores (Hopper, Ada Lovelace); unknown GPUs count as without. */
export const FP8_TENSOR_CORES: Record<string, boolean> = {
  "h100-sxm": true,
  "h100-pcie": true,
  h200: true,
  h20: true,
  l40s: true,
  "rtx-4090": true,
  "a100-sxm": false,
};
export const FP8_TENSOR_CORES_SOURCE =
  "NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022) and NVIDIA Ada GPU Architecture whitepaper (2022): FP8 tensor cores; the A100 (NVIDIA A100 Tensor Core GPU Architecture whitepaper, 2020) has none";

/** Wan2.1's native frame rate, the lower-frame-rate lever's default target. */
export const NATIVE_LOW_FPS: PublishedFigure = {
  value: 16,
  source: "Wan2.1 wan/configs/shared_config.py: sample_fps = 16 (github.com/Wan-Video/Wan2.1)",
  asOf: "2025-02",
};

/** The lower-resolution lever's default target height: Wan2.1's 480P setting (832x480). */
export const LOW_RES_HEIGHT: PublishedFigure = {
  value: 480,
  source: "Wan2.1 README: 480P (832x480) is a supported size of T2V-14B and the recommended size of T2V-1.3B",
  asOf: "2025-02",
};

/** A published end-to-end run time of a preset, with how many GPUs ran it. */
export interface ReportedRun extends Measurement {
  /** the GPU as the source names it */
  gpuAsPublished: string;
  gpus: number;
  /** "at most": the source gives an upper bound ("within 5 minutes") */
  upperBound?: boolean;
}

const WAN_TABLE =
  "Wan-Video/Wan2.1@9737cba9c1c3c4d04b33fcad41c111989865d315 README, Computational Efficiency on Different GPUs (assets/comp_effic.png: total time (s) / peak memory)";
const OPEN_SORA_TABLE =
  "hpcaitech/Open-Sora@7ad6a96a135feb81f755c84fb391818718f6beb2 README, Computational Efficiency (H100/H800, 50 steps, total time (s))";

function wanRow(
  model: "wan2.1-14b" | "wan2.1-1.3b",
  gpu: string,
  gpuAsPublished: string,
  gpus: number,
  seconds: number,
  note: string,
): ReportedRun {
  const big = model === "wan2.1-14b";
  return {
    id: `${model}-${gpu}-x${gpus}`,
    model,
    width: big ? 1280 : 832,
    height: big ? 720 : 480,
    frames: 81,
    steps: 50,
    cfg: true,
    gpu,
    gpuAsPublished,
    gpus,
    seconds,
    source: `${WAN_TABLE}: T2V-${big ? "14B 720P" : "1.3B 480P"}, ${gpus} GPU(s)`,
    asOf: "2025-02",
    note,
  };
}

function measured(id: string): Measurement {
  const m = MEASUREMENTS.find((x) => x.id === id);
  if (!m) throw new Error(`internal error: no measurement ${id}`);
  return m;
}

/**
 * Every published run time found for the shipped config presets (docs/cost.md
 * compares each with framecost's prediction). Some are also calibration
 * inputs (MEASUREMENTS): the table says which.
 */
export const REPORTED_RUNS: ReportedRun[] = [
  wanRow("wan2.1-14b", "h100-sxm", "H800/H100", 1, 1837.9, "--offload_model True on 1 GPU"),
  wanRow("wan2.1-14b", "h100-sxm", "H800/H100", 8, 287.9, "8 GPUs, sequence parallel"),
  wanRow("wan2.1-14b", "a100-sxm", "A800/A100", 1, 3342.6, "--offload_model True on 1 GPU"),
  wanRow("wan2.1-14b", "a100-sxm", "A800/A100", 8, 469.9, "8 GPUs, sequence parallel"),
  wanRow("wan2.1-14b", "h20", "H20", 1, 6935.5, "--offload_model True on 1 GPU"),
  wanRow("wan2.1-14b", "h20", "H20", 8, 980.5, "8 GPUs, sequence parallel"),
  wanRow("wan2.1-1.3b", "rtx-4090", "4090", 1, 261.4, "--offload_model True --t5_cpu"),
  wanRow("wan2.1-1.3b", "rtx-4090", "4090", 8, 112.3, "--ring_size 8"),
  { ...measured("wan2.1-1.3b-480p-rtx4090"), gpuAsPublished: "RTX 4090", gpus: 1 },
  { ...measured("hunyuanvideo-720p-h100"), gpuAsPublished: "H100", gpus: 1 },
  {
    ...measured("hunyuanvideo-720p-h100"),
    id: "hunyuanvideo-720p-h100-x8",
    gpuAsPublished: "H100",
    gpus: 8,
    seconds: 337.58,
    source:
      "xDiT performance report, docs/performance/hunyuanvideo.md (github.com/xdit-project/xDiT), 8 GPUs Ulysses; the same 1904.08 / 337.58 s in Tencent/HunyuanVideo@fa14b001c18f37191c938a9ef6baad3b9b472759 README (GPU not named there)",
  },
  { ...measured("hunyuanvideo-720p-h20"), gpuAsPublished: "H20", gpus: 1 },
  { ...measured("cogvideox-5b-h100"), gpuAsPublished: "H100", gpus: 1 },
  { ...measured("cogvideox-5b-a100"), gpuAsPublished: "A100", gpus: 1 },
  {
    ...measured("cogvideox-5b-h100"),
    id: "cogvideox-2b-h100",
    model: "cogvideox-2b",
    seconds: 45,
    gpuAsPublished: "H100",
    gpus: 1,
    source:
      'THUDM/CogVideo@e519eced782c08db81f45e5eb40baa45958087ae README: CogVideoX-2B, step = 50, FP16, "Single H100: ~45 seconds"',
    note: "with the README's memory optimizations on (about 10% slower, it says)",
  },
  {
    ...measured("cogvideox-5b-a100"),
    id: "cogvideox-2b-a100",
    model: "cogvideox-2b",
    seconds: 90,
    gpuAsPublished: "A100",
    gpus: 1,
    source:
      'THUDM/CogVideo@e519eced782c08db81f45e5eb40baa45958087ae README: CogVideoX-2B, step = 50, FP16, "Single A100: ~90 seconds"',
    note: "with the README's memory optimizations on",
  },
  {
    id: "mochi-1-replicate-h100",
    model: "mochi-1",
    width: 848,
    height: 480,
    frames: 163,
    steps: 64,
    cfg: true,
    gpu: "h100-sxm",
    gpuAsPublished: "H100 (Replicate)",
    gpus: 1,
    seconds: 300,
    upperBound: true,
    source:
      'Replicate, genmoai/mochi-1 model page (replicate.com/genmoai/mochi-1): "runs on Nvidia H100 GPU hardware. Predictions typically complete within 5 minutes"',
    asOf: "2024-10",
    note: "an upper bound; the page does not state the settings (taken as the defaults of genmoai/mochi demos/cli.py)",
  },
  {
    id: "ltx-video-h100",
    model: "ltx-video",
    width: 768,
    height: 512,
    frames: 121,
    steps: 40,
    cfg: true,
    gpu: "h100-sxm",
    gpuAsPublished: "H100",
    gpus: 1,
    seconds: 2,
    source:
      'HaCohen et al. 2024, LTX-Video: Realtime Video Latent Diffusion (arXiv 2501.00103), abstract: "producing 5 seconds of 24 fps video at 768x512 resolution in just 2 seconds on an Nvidia H100 GPU"',
    asOf: "2024-12",
    note: "the abstract does not state the steps or guidance: predicted at the first release's inference.py defaults (40 steps, CFG)",
  },
  {
    id: "open-sora-2.0-256-h100",
    model: "open-sora-2.0",
    width: 256,
    height: 256,
    frames: 129,
    steps: 50,
    cfg: true,
    gpu: "h100-sxm",
    gpuAsPublished: "H100/H800",
    gpus: 1,
    seconds: 60,
    source: `${OPEN_SORA_TABLE}: 256x256, 1 GPU`,
    asOf: "2025-03",
    note: "--offload True; frames not stated (the config's 129 taken)",
  },
  {
    id: "open-sora-2.0-768-h100",
    model: "open-sora-2.0",
    width: 768,
    height: 768,
    frames: 129,
    steps: 50,
    cfg: true,
    gpu: "h100-sxm",
    gpuAsPublished: "H100/H800",
    gpus: 1,
    seconds: 1656,
    source: `${OPEN_SORA_TABLE}: 768x768, 1 GPU`,
    asOf: "2025-03",
    note: "frames not stated (129 taken); the 768px config makes the first frame with Flux first (use_t2i2v), which is not counted",
  },
  {
    id: "open-sora-2.0-768-h100-x8",
    model: "open-sora-2.0",
    width: 768,
    height: 768,
    frames: 129,
    steps: 50,
    cfg: true,
    gpu: "h100-sxm",
    gpuAsPublished: "H100/H800",
    gpus: 8,
    seconds: 276,
    source: `${OPEN_SORA_TABLE}: 768x768, 8 GPUs (sequence parallel)`,
    asOf: "2025-03",
    note: "frames not stated (129 taken); Flux first frame not counted",
  },
];
