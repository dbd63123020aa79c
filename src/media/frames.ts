/**
 * Frames to pictures. A frame is a Float32Array of shape [H, W, C], C = 3,
 * row-major, values in [-1, 1] (the model's range); out-of-range values are
 * clamped. Upscaling is nearest-neighbour by an integer factor so every model
 * pixel stays a sharp square.
 */
import sharp, { type OverlayOptions } from "sharp";
import { UserError } from "../util/errors.ts";
import { writeFileAtomic } from "./files.ts";

const CHANNELS = 3;

function checkFrame(frame: Float32Array, h: number, w: number, what = "frame"): void {
  if (frame.length !== h * w * CHANNELS) {
    throw new UserError(
      `${what} has ${frame.length} values, expected H*W*C = ${h}*${w}*${CHANNELS} = ${h * w * CHANNELS}`,
    );
  }
}

function checkScale(scale: number): void {
  if (!Number.isInteger(scale) || scale < 1)
    throw new UserError(`scale must be an integer >= 1, got ${scale}`);
}

/** [-1, 1] -> 0..255, clamped and rounded; NaN becomes 0 (black) rather than garbage. */
export function toByte(v: number): number {
  const b = Math.round((v + 1) * 127.5);
  if (!(b >= 0)) return 0; // also catches NaN
  return Math.min(b, 255);
}

/** [H, W, 3] floats in [-1, 1] -> [H*scale, W*scale, 3] bytes, nearest-neighbour. */
export function frameToRgb(frame: Float32Array, h: number, w: number, scale = 1): Uint8Array {
  checkFrame(frame, h, w);
  checkScale(scale);
  const W = w * scale;
  const out = new Uint8Array(h * scale * W * CHANNELS);
  for (let y = 0; y < h * scale; y++) {
    const srcRow = Math.floor(y / scale) * w;
    for (let x = 0; x < W; x++) {
      const src = (srcRow + Math.floor(x / scale)) * CHANNELS;
      const dst = (y * W + x) * CHANNELS;
      for (let c = 0; c < CHANNELS; c++) out[dst + c] = toByte(frame[src + c]);
    }
  }
  return out;
}

export interface PngOptions {
  /** integer nearest-neighbour upscale factor; default 1 */
  scale?: number;
}

/** Encodes one frame as PNG bytes. */
export async function frameToPngBuffer(
  frame: Float32Array,
  h: number,
  w: number,
  { scale = 1 }: PngOptions = {},
): Promise<Buffer> {
  const rgb = frameToRgb(frame, h, w, scale);
  return sharp(rgb, { raw: { width: w * scale, height: h * scale, channels: CHANNELS } })
    .png()
    .toBuffer();
}

/** Writes one frame as a PNG file (via a temporary name). */
export async function frameToPng(
  frame: Float32Array,
  h: number,
  w: number,
  path: string,
  opts: PngOptions = {},
): Promise<void> {
  await writeFileAtomic(path, await frameToPngBuffer(frame, h, w, opts));
}

export interface ContactSheetOptions {
  /** frames per row; default min(frames, 8) */
  cols?: number;
  /** integer upscale of each frame; default 4 */
  scale?: number;
  /** pixels between tiles and around the edge; default 4 */
  gap?: number;
  /** one caption per frame, drawn under its tile */
  labels?: string[];
  /** background as CSS colour; default "#202020" */
  background?: string;
}

const LABEL_HEIGHT = 14;

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Lays the frames out on a grid (row-major) and writes one PNG. */
export async function contactSheet(
  frames: Float32Array[],
  h: number,
  w: number,
  path: string,
  { cols, scale = 4, gap = 4, labels, background = "#202020" }: ContactSheetOptions = {},
): Promise<void> {
  if (frames.length === 0) throw new UserError("contact sheet needs at least one frame, got 0");
  if (labels && labels.length !== frames.length) {
    throw new UserError(
      `contact sheet got ${labels.length} labels for ${frames.length} frames; give one per frame`,
    );
  }
  checkScale(scale);
  const nCols = cols ?? Math.min(frames.length, 8);
  if (!Number.isInteger(nCols) || nCols < 1)
    throw new UserError(`cols must be an integer >= 1, got ${nCols}`);
  if (!Number.isInteger(gap) || gap < 0) throw new UserError(`gap must be an integer >= 0, got ${gap}`);
  for (const [i, f] of frames.entries()) checkFrame(f, h, w, `frame ${i}`);

  const tileW = w * scale;
  const tileH = h * scale;
  const labelH = labels ? LABEL_HEIGHT : 0;
  const nRows = Math.ceil(frames.length / nCols);
  const width = gap + nCols * (tileW + gap);
  const height = gap + nRows * (tileH + labelH + gap);

  const tiles: OverlayOptions[] = frames.map((frame, i) => ({
    input: Buffer.from(frameToRgb(frame, h, w, scale).buffer),
    raw: { width: tileW, height: tileH, channels: CHANNELS },
    left: gap + (i % nCols) * (tileW + gap),
    top: gap + Math.floor(i / nCols) * (tileH + labelH + gap),
  }));
  if (labels) {
    // One SVG layer with every caption: sharp renders SVG text through librsvg.
    const texts = labels.map((label, i) => {
      const x = gap + (i % nCols) * (tileW + gap) + tileW / 2;
      const y = gap + Math.floor(i / nCols) * (tileH + labelH + gap) + tileH + labelH - 3;
      return `<text x="${x}" y="${y}" text-anchor="middle">${escapeXml(label)}</text>`;
    });
    const svg =
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      `<g font-family="sans-serif" font-size="11" fill="#e0e0e0">${texts.join("")}</g></svg>`;
    tiles.push({ input: Buffer.from(svg), left: 0, top: 0 });
  }
  const composed = await sharp({ create: { width, height, channels: CHANNELS, background } })
    .composite(tiles)
    .png()
    .toBuffer();
  // composite() adds an alpha channel and runs last in its pipeline, so drop alpha in a second pass: RGB PNG.
  const png = await sharp(composed).removeAlpha().png().toBuffer();
  await writeFileAtomic(path, png);
}
