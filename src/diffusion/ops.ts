/**
 * Elementwise arithmetic for samplers that counts what it does: 1 FLOP = one
 * add or one multiply (DESIGN.md), comparisons and clamps are not counted, and
 * neither is drawing random normals. Each sampler owns one counter, so the
 * FLOPs it states for a call can be checked against what actually ran.
 * All arrays are Float32Array of any shape, flattened; scalars are float64.
 */
export class ElementwiseOps {
  /** FLOPs performed so far by this instance. */
  flops = 0;

  /** a*x: 1 FLOP per element. */
  scale(a: number, x: Float32Array): Float32Array {
    const r = new Float32Array(x.length);
    for (let i = 0; i < r.length; i++) r[i] = a * x[i];
    this.flops += x.length;
    return r;
  }

  /** a*x + b*y: 3 FLOPs per element. */
  lin2(a: number, x: Float32Array, b: number, y: Float32Array): Float32Array {
    sameLength(x, y);
    const r = new Float32Array(x.length);
    for (let i = 0; i < r.length; i++) r[i] = a * x[i] + b * y[i];
    this.flops += 3 * x.length;
    return r;
  }

  /** a*x + b*y + c*z: 5 FLOPs per element. */
  lin3(a: number, x: Float32Array, b: number, y: Float32Array, c: number, z: Float32Array): Float32Array {
    sameLength(x, y);
    sameLength(x, z);
    const r = new Float32Array(x.length);
    for (let i = 0; i < r.length; i++) r[i] = a * x[i] + b * y[i] + c * z[i];
    this.flops += 5 * x.length;
    return r;
  }

  /** Clamp into [-limit, limit] in place (not counted: comparisons only). */
  clampInPlace(x: Float32Array, limit: number): Float32Array {
    for (let i = 0; i < x.length; i++) x[i] = Math.min(limit, Math.max(-limit, x[i]));
    return x;
  }
}

/** FLOPs per element of each op, for samplers stating their cost up front. */
export const OP_FLOPS = { scale: 1, lin2: 3, lin3: 5 } as const;

function sameLength(x: Float32Array, y: Float32Array): void {
  if (x.length !== y.length) throw new Error(`elementwise length mismatch: ${x.length} vs ${y.length}`);
}
