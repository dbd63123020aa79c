/**
 * The one seeded RNG for noise: mulberry32 uniforms with Box-Muller normals
 * (src/util/rng.ts, shared with data and weight init). The sampling loop draws
 * its initial noise from it and DDPM / DDIM(eta > 0) draw their step noise
 * from the same stream, so a seed fixes a sample completely.
 */
import { mixSeed, Rng } from "../util/rng.ts";

export { mixSeed, Rng };

export function makeRng(seed: number): Rng {
  return new Rng(seed);
}

/** An independent stream for frame `index` of a run seeded with `seed`. */
export function frameRng(seed: number, index: number): Rng {
  return new Rng(mixSeed(seed, index));
}
