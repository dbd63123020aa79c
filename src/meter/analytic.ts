/**
 * FLOPs of one network call of the video DiT from its config alone, term by
 * term, following `forwardTokens` in src/model/dit.ts kernel for kernel, under
 * the same rules as flops.ts (GEMM 2 per multiply-accumulate, elementwise 1
 * per output element, reductions 1 per input element, softmax 5 per element,
 * data movement 0). Counted (from the kernels that ran) and analytic agree;
 * test/meter-analytic.test.ts holds them to it for every preset.
 *
 * Symbols: B frames per call, T tokens per frame, R = T*B rows, D width,
 * P patch input features (noisy + K context patches), Q patch output
 * features, F timestep features, M MLP hidden, H heads.
 */
import { type ModelConfig, patchInputDim, patchOutputDim, tokensOf } from "../model/config.ts";
import { cacheBlocks } from "../model/dit.ts";
import { type FlopConvention, SOFTMAX_FLOPS_PER_ELEMENT, toConvention } from "./flops.ts";

/** Named terms of one call, in FLOPs (2 per multiply-accumulate). */
export interface AnalyticBreakdown {
  /** learned empty context where previous frames are missing: multiply + add, [R, P] */
  emptyContext: number;
  /** patch embedding [R, P] x [P, D] + bias, then + position embedding */
  patchEmbed: number;
  /** timestep MLP F -> D -> D with SiLU, and SiLU(c) fed to every adaLN */
  timestep: number;
  /** adaLN modulation vectors: [B, D] x [D, 6D] per block, [D, 2D] for the final layer, with bias */
  adaLN: number;
  /** Q, K, V and output projections: 4 x ([R, D] x [D, D] + bias) per block */
  attentionProjections: number;
  /** scores Q K^T and the weighted sum P V: 2 x 2*T^2*B*D per block (the quadratic term) */
  attentionMatmuls: number;
  /** 1/sqrt(dh) scale and softmax over the scores [T, B*H, T] */
  attentionSoftmax: number;
  /** MLP [R, D] x [D, M] and [R, M] x [M, D] with bias, and GELU as x*sigmoid(1.702x) */
  mlp: number;
  /** LayerNorms (mean, variance, normalise: 6 per element + 2 per row) and modulate x*(1+scale)+shift */
  normModulate: number;
  /** gated residuals x + gate*y, 2 per block */
  residual: number;
  /** final projection [R, D] x [D, Q] + bias */
  finalProjection: number;
  /** feature caching: a full call's residual h_out - h_in, a cached call's h + residual ([R, D]); 0 without */
  featureCache: number;
}

/**
 * Feature caching (model/dit.ts cacheBlocks): "full" runs every block and subtracts once more, "cached"
 * skips blocks [from, to) and adds the cached residual. Undefined: a plain call.
 */
export type CacheCall = "full" | "cached" | undefined;

/** The terms of one call of `batch` frames, in FLOPs. */
export function analyticBreakdown(cfg: ModelConfig, batch = 1, cache?: CacheCall): AnalyticBreakdown {
  const B = batch;
  const T = tokensOf(cfg);
  const R = T * B;
  const D = cfg.width;
  const P = patchInputDim(cfg);
  const Q = patchOutputDim(cfg);
  const F = cfg.freqDim;
  const M = cfg.mlpRatio * D;
  const H = cfg.heads;
  const [from, to] = cacheBlocks(cfg);
  // blocks that run
  const L = cache === "cached" ? cfg.depth - (to - from) : cfg.depth;
  // dense layer [rows, in] x [in, out] + bias: GEMM plus one add per output element
  const dense = (rows: number, inF: number, outF: number) => 2 * rows * inF * outF + rows * outF;
  // mean (R*D), x - mean, square, mean, x - mean, * rsqrt: 6 per element; var + eps, rsqrt: 2 per row
  const layerNorm = 6 * R * D + 2 * R;
  // 1 + scale ([B, D]), x * (..), + shift
  const modulate = 2 * R * D + B * D;
  const silu = (n: number) => 2 * n; // sigmoid, multiply
  return {
    emptyContext: 2 * R * P,
    patchEmbed: dense(R, P, D) + R * D,
    timestep: dense(B, F, D) + silu(B * D) + dense(B, D, D) + silu(B * D),
    adaLN: L * dense(B, D, 6 * D) + dense(B, D, 2 * D),
    attentionProjections: L * 4 * dense(R, D, D),
    // groupedMatMul over G = B*H groups of head size D/H: 2*T*T*(D/H)*G = 2*T^2*B*D, twice
    attentionMatmuls: L * 2 * (2 * T * T * B * D),
    attentionSoftmax: L * (1 + SOFTMAX_FLOPS_PER_ELEMENT) * T * T * B * H,
    mlp: L * (dense(R, D, M) + 3 * R * M + dense(R, M, D)),
    normModulate: (2 * L + 1) * (layerNorm + modulate),
    residual: L * 2 * (2 * R * D),
    finalProjection: dense(R, D, Q),
    featureCache: cache ? R * D : 0,
  };
}

/** FLOPs (or MACs = FLOPs / 2) of one network call of `batch` frames, from the config. */
export function analyticFlopsPerCall(
  cfg: ModelConfig,
  convention: FlopConvention = "flops",
  batch = 1,
  cache?: CacheCall,
): number {
  const terms = analyticBreakdown(cfg, batch, cache);
  const flops = Object.values(terms).reduce((s: number, v: number) => s + v, 0);
  return toConvention(flops, convention);
}
