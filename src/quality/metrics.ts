/**
 * Quality metrics for small frames, comparing a set of generated frames with a
 * set of reference frames. Frames are Float32Array [H, W, 3] (row-major,
 * channels last) in [-1, 1]. Pure TS, deterministic (seeded projections and
 * subsampling), symmetric where the metric is.
 *
 * - Sliced Wasserstein distance (Rabin et al. 2011; as in Karras et al. 2018's
 *   SWD): the two sets become point clouds (each pixel's RGB, or each p x p
 *   patch flattened), both are projected on the same random unit directions,
 *   and the exact 1-D Wasserstein-2 distance between the projected empirical
 *   distributions is averaged: SW2 = sqrt(mean_theta W2(theta.a, theta.b)^2).
 *   In the units of the data ([-1, 1]); 0 for identical sets; a uniform shift
 *   of every point by a vector d gives |d| / sqrt(dim).
 * - Palette error: mean Euclidean RGB distance from each generated pixel to the
 *   nearest colour of the reference palette (the reference's common colours).
 * - Colour histogram distance: total variation between the histograms of
 *   colours quantised to `bins` levels per channel (0 = same, 1 = disjoint).
 */
import { UserError } from "../util/errors.ts";
import { mixSeed, Rng } from "../util/rng.ts";

export interface FrameShape {
  height: number;
  width: number;
}

export interface SwdOptions {
  /** random unit directions; default 32 for pixels, 64 for patches */
  projections?: number;
  /** seed for directions and subsampling; default 0 */
  seed?: number;
  /** points per set above which a seeded subset of this size is used; default 16384 for pixels, 8192 for patches */
  maxPoints?: number;
}

export interface PatchSwdOptions extends SwdOptions {
  /** patch side in pixels; default 4 */
  patch?: number;
  /** distance between patch origins; default = patch (non-overlapping) */
  stride?: number;
}

/** Checks that every frame has H*W*3 values and returns that count. */
export function checkFrames(frames: readonly Float32Array[], shape: FrameShape, what: string): number {
  const { height, width } = shape;
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new UserError(`frame size must be positive whole numbers, got ${height}x${width}`);
  }
  if (frames.length === 0) throw new UserError(`${what}: no frames to compare; give at least one frame`);
  const n = height * width * 3;
  frames.forEach((f, i) => {
    if (f.length !== n) {
      throw new UserError(
        `${what}: frame ${i} has ${f.length} values, expected ${height}x${width}x3 = ${n}; use frames of one size`,
      );
    }
  });
  return n;
}

/** W2^2 between two 1-D empirical distributions with uniform weights, given sorted samples. */
export function wasserstein2Sq1d(x: Float32Array | Float64Array, y: Float32Array | Float64Array): number {
  const n = x.length;
  const m = y.length;
  if (n === m) {
    let s = 0;
    for (let i = 0; i < n; i++) s += (x[i] - y[i]) ** 2;
    return s / n;
  }
  // merge the quantile functions' breakpoints i/n and j/m (integers: compare (i+1)*m with (j+1)*n)
  let i = 0;
  let j = 0;
  let prev = 0; // current quantile level times n*m
  let acc = 0;
  while (i < n && j < m) {
    const ni = (i + 1) * m;
    const nj = (j + 1) * n;
    const next = Math.min(ni, nj);
    acc += (next - prev) * (x[i] - y[j]) ** 2;
    prev = next;
    if (ni === next) i++;
    if (nj === next) j++;
  }
  return acc / (n * m);
}

/** Seeded unit directions in `dim` dimensions: [count * dim]. */
export function unitDirections(count: number, dim: number, seed: number): Float64Array {
  const rng = new Rng(mixSeed(seed, dim));
  const out = new Float64Array(count * dim);
  for (let k = 0; k < count; k++) {
    let norm = 0;
    for (let d = 0; d < dim; d++) {
      const v = rng.normal();
      out[k * dim + d] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    for (let d = 0; d < dim; d++) out[k * dim + d] /= norm;
  }
  return out;
}

/** A seeded subset of `k` of the indices 0..n-1 (all of them when n <= k), in increasing order. */
function subsetIndices(n: number, k: number, seed: number): Int32Array {
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  if (n <= k) return idx;
  // partial Fisher-Yates; the stream depends on (seed, n) only, so equal sets pick equal subsets
  const rng = new Rng(mixSeed(seed ^ 0x5bd1e995, n));
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rng.next() * (n - i));
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  return idx.subarray(0, k).sort();
}

/** SW2 between two point clouds given as [n * dim] and [m * dim]. */
export function slicedWasserstein(
  a: Float32Array,
  b: Float32Array,
  dim: number,
  opts: SwdOptions = {},
): number {
  const projections = opts.projections ?? 64;
  const seed = opts.seed ?? 0;
  const maxPoints = opts.maxPoints ?? 16384;
  if (a.length % dim !== 0 || b.length % dim !== 0) throw new Error(`point clouds must be [n * ${dim}]`);
  const ia = subsetIndices(a.length / dim, maxPoints, seed);
  const ib = subsetIndices(b.length / dim, maxPoints, seed);
  const dirs = unitDirections(projections, dim, seed);
  const pa = new Float32Array(ia.length);
  const pb = new Float32Array(ib.length);
  const scratch = new Uint32Array(Math.max(ia.length, ib.length) * 2);
  let total = 0;
  for (let k = 0; k < projections; k++) {
    const off = k * dim;
    project(a, ia, dirs, off, dim, pa);
    project(b, ib, dirs, off, dim, pb);
    radixSortFloat32(pa, scratch);
    radixSortFloat32(pb, scratch);
    total += wasserstein2Sq1d(pa, pb);
  }
  return Math.sqrt(total / projections);
}

/**
 * Sorts finite float32 values ascending in place: LSD radix sort, 3 passes of
 * 11 bits over keys that order like the floats (sign bit flipped, negatives
 * inverted). Several times faster here than TypedArray.prototype.sort.
 * `scratch` holds at least 2 * a.length entries.
 */
export function radixSortFloat32(a: Float32Array, scratch: Uint32Array): void {
  const n = a.length;
  const bits = new Uint32Array(a.buffer, a.byteOffset, n);
  const keys = scratch.subarray(0, n);
  const tmp = scratch.subarray(n, 2 * n);
  for (let i = 0; i < n; i++) {
    const b = bits[i];
    keys[i] = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
  }
  const count = new Uint32Array(2048);
  let src = keys;
  let dst = tmp;
  for (let shift = 0; shift < 33; shift += 11) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[(src[i] >>> shift) & 2047]++;
    let sum = 0;
    for (let c = 0; c < 2048; c++) {
      const v = count[c];
      count[c] = sum;
      sum += v;
    }
    for (let i = 0; i < n; i++) dst[count[(src[i] >>> shift) & 2047]++] = src[i];
    const t = src;
    src = dst;
    dst = t;
  }
  // three passes: the sorted keys are in `tmp` (src after an odd number of swaps)
  for (let i = 0; i < n; i++) {
    const k = src[i];
    bits[i] = k & 0x80000000 ? (k & 0x7fffffff) >>> 0 : ~k >>> 0;
  }
}

function project(
  pts: Float32Array,
  idx: Int32Array,
  dirs: Float64Array,
  off: number,
  dim: number,
  out: Float32Array,
): void {
  for (let i = 0; i < idx.length; i++) {
    const base = idx[i] * dim;
    let s = 0;
    for (let d = 0; d < dim; d++) s += pts[base + d] * dirs[off + d];
    out[i] = s;
  }
}

/** All pixels of a set of frames as RGB points: [frames * H * W * 3]. */
function pixelCloud(frames: readonly Float32Array[]): Float32Array {
  const n = frames[0].length;
  const out = new Float32Array(frames.length * n);
  frames.forEach((f, i) => {
    out.set(f, i * n);
  });
  return out;
}

/** All p x p patches (origins every `stride` pixels) as points: [count * p * p * 3]. */
export function patchCloud(
  frames: readonly Float32Array[],
  shape: FrameShape,
  patch: number,
  stride: number,
): Float32Array {
  const { height: H, width: W } = shape;
  if (!Number.isInteger(patch) || patch < 1 || patch > Math.min(H, W)) {
    throw new UserError(`patch size must be a whole number from 1 to ${Math.min(H, W)}, got ${patch}`);
  }
  if (!Number.isInteger(stride) || stride < 1)
    throw new UserError(`patch stride must be a whole number >= 1, got ${stride}`);
  const ny = Math.floor((H - patch) / stride) + 1;
  const nx = Math.floor((W - patch) / stride) + 1;
  const dim = patch * patch * 3;
  const out = new Float32Array(frames.length * ny * nx * dim);
  let o = 0;
  for (const f of frames) {
    for (let py = 0; py < ny; py++) {
      for (let px = 0; px < nx; px++) {
        for (let y = 0; y < patch; y++) {
          const row = ((py * stride + y) * W + px * stride) * 3;
          for (let c = 0; c < patch * 3; c++) out[o++] = f[row + c];
        }
      }
    }
  }
  return out;
}

/** Sliced Wasserstein distance between the pixel colours of two frame sets. */
export function swdPixels(
  a: readonly Float32Array[],
  b: readonly Float32Array[],
  shape: FrameShape,
  opts: SwdOptions = {},
): number {
  checkFrames(a, shape, "generated frames");
  checkFrames(b, shape, "reference frames");
  return slicedWasserstein(pixelCloud(a), pixelCloud(b), 3, { projections: 32, maxPoints: 16384, ...opts });
}

/** Sliced Wasserstein distance between the p x p patches of two frame sets. */
export function swdPatches(
  a: readonly Float32Array[],
  b: readonly Float32Array[],
  shape: FrameShape,
  opts: PatchSwdOptions = {},
): number {
  checkFrames(a, shape, "generated frames");
  checkFrames(b, shape, "reference frames");
  const patch = opts.patch ?? 4;
  const stride = opts.stride ?? patch;
  const dim = patch * patch * 3;
  return slicedWasserstein(patchCloud(a, shape, patch, stride), patchCloud(b, shape, patch, stride), dim, {
    projections: 64,
    maxPoints: 8192,
    ...opts,
  });
}

export interface PaletteOptions {
  /** quantisation levels per channel; default 8 */
  bins?: number;
  /** a quantised colour joins the palette when it holds at least this share of the pixels; default 0.002 */
  minShare?: number;
}

function binOf(v: number, bins: number): number {
  // [-1, 1] -> 0..bins-1; values outside are clamped into the edge bins
  const q = Math.floor(((v + 1) / 2) * bins);
  return q < 0 ? 0 : q >= bins ? bins - 1 : q;
}

/** Counts of colours quantised to bins^3 cells, over all pixels of all frames. */
export function colourHistogram(frames: readonly Float32Array[], bins = 8): Float64Array {
  const h = new Float64Array(bins ** 3);
  for (const f of frames) {
    for (let p = 0; p < f.length; p += 3) {
      h[(binOf(f[p], bins) * bins + binOf(f[p + 1], bins)) * bins + binOf(f[p + 2], bins)]++;
    }
  }
  return h;
}

/**
 * The reference palette: the mean colour of every quantised cell holding at
 * least `minShare` of the pixels: [K * 3].
 */
export function extractPalette(frames: readonly Float32Array[], opts: PaletteOptions = {}): Float32Array {
  const bins = opts.bins ?? 8;
  const minShare = opts.minShare ?? 0.002;
  const cells = bins ** 3;
  const count = new Float64Array(cells);
  const sum = new Float64Array(cells * 3);
  let total = 0;
  for (const f of frames) {
    for (let p = 0; p < f.length; p += 3) {
      const c = (binOf(f[p], bins) * bins + binOf(f[p + 1], bins)) * bins + binOf(f[p + 2], bins);
      count[c]++;
      sum[c * 3] += f[p];
      sum[c * 3 + 1] += f[p + 1];
      sum[c * 3 + 2] += f[p + 2];
      total++;
    }
  }
  const out: number[] = [];
  for (let c = 0; c < cells; c++) {
    if (count[c] > 0 && count[c] >= minShare * total) {
      out.push(sum[c * 3] / count[c], sum[c * 3 + 1] / count[c], sum[c * 3 + 2] / count[c]);
    }
  }
  return Float32Array.from(out);
}

/** Mean RGB distance from each pixel of `frames` to the nearest colour of `palette` ([K * 3]). */
export function paletteError(frames: readonly Float32Array[], palette: Float32Array): number {
  if (palette.length === 0 || palette.length % 3 !== 0) {
    throw new Error(`palette must be [K * 3] with K >= 1, got ${palette.length} values`);
  }
  let acc = 0;
  let n = 0;
  for (const f of frames) {
    for (let p = 0; p < f.length; p += 3) {
      let best = Infinity;
      for (let k = 0; k < palette.length; k += 3) {
        const d =
          (f[p] - palette[k]) ** 2 + (f[p + 1] - palette[k + 1]) ** 2 + (f[p + 2] - palette[k + 2]) ** 2;
        if (d < best) best = d;
      }
      acc += Math.sqrt(best);
      n++;
    }
  }
  return acc / n;
}

/** Total variation between the quantised colour histograms of two frame sets, in [0, 1]. */
export function colourHistogramDistance(
  a: readonly Float32Array[],
  b: readonly Float32Array[],
  bins = 8,
): number {
  const ha = colourHistogram(a, bins);
  const hb = colourHistogram(b, bins);
  let na = 0;
  let nb = 0;
  for (let c = 0; c < ha.length; c++) {
    na += ha[c];
    nb += hb[c];
  }
  let tv = 0;
  for (let c = 0; c < ha.length; c++) tv += Math.abs(ha[c] / na - hb[c] / nb);
  return tv / 2;
}

export interface FrameStats {
  /** per-channel mean, RGB */
  mean: [number, number, number];
  /** per-channel standard deviation, RGB */
  std: [number, number, number];
  min: number;
  max: number;
  /** share of values outside [-1, 1] */
  outOfRange: number;
}

export function frameStats(frame: Float32Array): FrameStats {
  if (frame.length === 0 || frame.length % 3 !== 0) {
    throw new Error(`a frame must be [H * W * 3] values, got ${frame.length}`);
  }
  const px = frame.length / 3;
  const mean: [number, number, number] = [0, 0, 0];
  const sq: [number, number, number] = [0, 0, 0];
  let min = Infinity;
  let max = -Infinity;
  let out = 0;
  for (let p = 0; p < frame.length; p++) {
    const v = frame[p];
    mean[p % 3] += v;
    sq[p % 3] += v * v;
    if (v < min) min = v;
    if (v > max) max = v;
    if (v < -1 || v > 1) out++;
  }
  const std: [number, number, number] = [0, 0, 0];
  for (let c = 0; c < 3; c++) {
    mean[c] /= px;
    std[c] = Math.sqrt(Math.max(sq[c] / px - mean[c] * mean[c], 0));
  }
  return { mean, std, min, max, outOfRange: out / frame.length };
}

export interface QualityFigures {
  /** SW2 on pixel colours */
  swdPixels: number;
  /** SW2 on 4x4 patches */
  swdPatches: number;
  /** mean RGB distance of generated pixels to the reference palette */
  paletteError: number;
  /** total variation between quantised colour histograms */
  histogramDistance: number;
}

/** All metrics of `generated` against `reference`, with default settings. */
export function qualityFigures(
  generated: readonly Float32Array[],
  reference: readonly Float32Array[],
  shape: FrameShape,
  opts: { seed?: number } = {},
): QualityFigures {
  const seed = opts.seed ?? 0;
  return {
    swdPixels: swdPixels(generated, reference, shape, { seed }),
    swdPatches: swdPatches(generated, reference, shape, { seed }),
    paletteError: paletteError(generated, extractPalette(reference)),
    histogramDistance: colourHistogramDistance(generated, reference),
  };
}
