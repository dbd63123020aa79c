/**
 * The model's parameters as one flat Float32Array with a fixed, named layout.
 * A flat buffer is what the trainer shares between worker threads and what
 * the weight file stores; the layout is derived from the config alone.
 */
import { Rng } from "../util/rng.ts";
import { type ModelConfig, patchInputDim, patchOutputDim, tokensOf } from "./config.ts";

export type Init = "zeros" | "xavier" | "normal02";

export interface ParamSpec {
  name: string;
  shape: number[];
  init: Init;
}

export interface ParamSlot extends ParamSpec {
  offset: number;
  size: number;
}

/** Every parameter, in storage order. */
export function paramSpecs(cfg: ModelConfig): ParamSpec[] {
  const D = cfg.width;
  const P = patchInputDim(cfg);
  const H = cfg.mlpRatio * D;
  const specs: ParamSpec[] = [
    { name: "patch.w", shape: [P, D], init: "xavier" },
    { name: "patch.b", shape: [D], init: "zeros" },
    // learned "empty context": stands in for missing previous frames (the first frame of a clip)
    { name: "empty", shape: [tokensOf(cfg), P], init: "zeros" },
    { name: "temb.w1", shape: [cfg.freqDim, D], init: "normal02" },
    { name: "temb.b1", shape: [D], init: "zeros" },
    { name: "temb.w2", shape: [D, D], init: "normal02" },
    { name: "temb.b2", shape: [D], init: "zeros" },
  ];
  for (let i = 0; i < cfg.depth; i++) {
    const p = `block${i}.`;
    specs.push(
      // adaLN-Zero: zero-initialised so every block starts as the identity
      { name: `${p}ada.w`, shape: [D, 6 * D], init: "zeros" },
      { name: `${p}ada.b`, shape: [6 * D], init: "zeros" },
      { name: `${p}q.w`, shape: [D, D], init: "xavier" },
      { name: `${p}q.b`, shape: [D], init: "zeros" },
      { name: `${p}k.w`, shape: [D, D], init: "xavier" },
      { name: `${p}k.b`, shape: [D], init: "zeros" },
      { name: `${p}v.w`, shape: [D, D], init: "xavier" },
      { name: `${p}v.b`, shape: [D], init: "zeros" },
      { name: `${p}o.w`, shape: [D, D], init: "xavier" },
      { name: `${p}o.b`, shape: [D], init: "zeros" },
      { name: `${p}mlp.w1`, shape: [D, H], init: "xavier" },
      { name: `${p}mlp.b1`, shape: [H], init: "zeros" },
      { name: `${p}mlp.w2`, shape: [H, D], init: "xavier" },
      { name: `${p}mlp.b2`, shape: [D], init: "zeros" },
    );
  }
  specs.push(
    { name: "final.ada.w", shape: [D, 2 * D], init: "zeros" },
    { name: "final.ada.b", shape: [2 * D], init: "zeros" },
    { name: "final.w", shape: [D, patchOutputDim(cfg)], init: "zeros" },
    { name: "final.b", shape: [patchOutputDim(cfg)], init: "zeros" },
  );
  return specs;
}

export function paramSlots(cfg: ModelConfig): ParamSlot[] {
  let offset = 0;
  return paramSpecs(cfg).map((s) => {
    const size = s.shape.reduce((a, b) => a * b, 1);
    const slot = { ...s, offset, size };
    offset += size;
    return slot;
  });
}

/** Total trainable parameters. */
export function paramCount(cfg: ModelConfig): number {
  return paramSlots(cfg).reduce((a, s) => a + s.size, 0);
}

/** Fresh weights: xavier-uniform for dense layers, N(0, 0.02) for the timestep MLP, zeros for adaLN-Zero. */
export function initParams(cfg: ModelConfig, seed: number): Float32Array {
  const slots = paramSlots(cfg);
  const flat = new Float32Array(slots.reduce((a, s) => a + s.size, 0));
  const rng = new Rng(seed);
  for (const s of slots) {
    const view = flat.subarray(s.offset, s.offset + s.size);
    if (s.init === "xavier") {
      const [fanIn, fanOut] = s.shape;
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < view.length; i++) view[i] = rng.uniform(-limit, limit);
    } else if (s.init === "normal02") {
      for (let i = 0; i < view.length; i++) view[i] = 0.02 * rng.normal();
    }
  }
  return flat;
}
