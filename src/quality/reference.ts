/**
 * Held-out reference frames: clips from seeds training never draws
 * (data/clips.ts HELD_OUT_SEED_BASE), the yardstick for quality metrics.
 */
import { HELD_OUT_SEED_BASE, makeClip } from "../data/clips.ts";

/** `clips` held-out clips of `frames` frames each, flattened in clip order. */
export function heldOutFrames(clips: number, frames: number, size = 32): Float32Array[] {
  const out: Float32Array[] = [];
  for (let c = 0; c < clips; c++) out.push(...makeClip(HELD_OUT_SEED_BASE + c, { frames, size }));
  return out;
}
