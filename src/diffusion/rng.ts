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

/**
 * Several clips' streams as one, for a batch of clips sampled together: `normals(B * n)` draws n from each
 * stream in turn, so every clip gets exactly the noise it gets when sampled alone.
 */
export class BatchRng extends Rng {
  constructor(private readonly streams: readonly Rng[]) {
    super(0);
  }

  override normals(n: number): Float32Array {
    const B = this.streams.length;
    if (n % B !== 0) throw new Error(`BatchRng: ${n} normals do not split over ${B} clips`);
    const out = new Float32Array(n);
    for (const [b, r] of this.streams.entries()) out.set(r.normals(n / B), (b * n) / B);
    return out;
  }

  override next(): number {
    throw new Error("BatchRng: draw batches with normals(); a single draw has no clip");
  }
}
