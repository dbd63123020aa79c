/**
 * What the network predicts, and conversions between predictions, with
 * x_t = a x0 + s eps, a = sqrt(abar_t), s = sqrt(1 - abar_t):
 *   eps-prediction: the noise eps (DDPM)
 *   v-prediction:   v = a eps - s x0 (Salimans & Ho 2022, sec. 4)
 * so x0 = a x_t - s v and eps = s x_t + a v.
 */
import { UserError } from "../util/errors.ts";

export type PredictionType = "eps" | "v";
export const PREDICTION_TYPES: readonly PredictionType[] = ["eps", "v"];

export function parsePredictionType(name: string): PredictionType {
  if (name === "eps" || name === "v") return name;
  throw new UserError(`unknown prediction type "${name}"; use one of: ${PREDICTION_TYPES.join(", ")}`);
}

/** Coefficients (cx, co) with x0 = cx * x_t + co * out. */
export function x0Coefficients(type: PredictionType, abar: number): [number, number] {
  const a = Math.sqrt(abar);
  const s = Math.sqrt(1 - abar);
  return type === "eps" ? [1 / a, -s / a] : [a, -s];
}

/** Coefficients (cx, co) with eps = cx * x_t + co * out. */
export function epsCoefficients(type: PredictionType, abar: number): [number, number] {
  const a = Math.sqrt(abar);
  const s = Math.sqrt(1 - abar);
  return type === "eps" ? [0, 1] : [s, a];
}

function combine(cx: number, x: Float32Array, co: number, out: Float32Array): Float32Array {
  if (x.length !== out.length) throw new Error(`length mismatch: x ${x.length}, model output ${out.length}`);
  const r = new Float32Array(x.length);
  for (let i = 0; i < r.length; i++) r[i] = cx * x[i] + co * out[i];
  return r;
}

/** Predicted clean sample from a model output at noise level abar. */
export function predX0(
  out: Float32Array,
  xt: Float32Array,
  abar: number,
  type: PredictionType,
): Float32Array {
  const [cx, co] = x0Coefficients(type, abar);
  return combine(cx, xt, co, out);
}

/** Predicted noise from a model output at noise level abar. */
export function predEps(
  out: Float32Array,
  xt: Float32Array,
  abar: number,
  type: PredictionType,
): Float32Array {
  if (type === "eps") return out.slice();
  const [cx, co] = epsCoefficients(type, abar);
  return combine(cx, xt, co, out);
}

/** The training target for (x0, eps) at noise level abar. */
export function predictionTarget(
  x0: Float32Array,
  eps: Float32Array,
  abar: number,
  type: PredictionType,
): Float32Array {
  if (type === "eps") return eps.slice();
  const a = Math.sqrt(abar);
  const s = Math.sqrt(1 - abar);
  return combine(-s, x0, a, eps);
}

/** Noised sample x_t = a x0 + s eps (DDPM eq. 4). */
export function addNoise(x0: Float32Array, eps: Float32Array, abar: number): Float32Array {
  return combine(Math.sqrt(abar), x0, Math.sqrt(1 - abar), eps);
}
