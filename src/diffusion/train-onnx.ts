/**
 * One training step of the video DiT as a single ONNX graph: the forward pass
 * of `exportDiTOnnx` (the same builder, parameters as inputs), the weighted MSE of
 * `lossAndGrads` (diffusion/train-grads.ts), and the gradient of every
 * parameter, written out by hand (ORT's Node package has no autodiff).
 *
 * Why: ORT's CPU GEMMs run at ~90 GFLOP/s on one core here against ~24 for
 * tfjs-wasm's best matMul (FACTS.md), so the same step takes a fraction of the
 * time. Parameters are graph inputs (they change every step); the gradients
 * are graph outputs in the parameters' order, so the host copies them into
 * the flat layout of `paramSlots`.
 *
 * Backward rules used below (rows are token-major (t, b), as in dit.ts):
 *   dense y = x W + b:        dW = x^T dy, db = sum_rows dy, dx = dy W^T
 *   modulate y = x (1+s) + m: dx = dy (1+s), ds = sum_T dy x, dm = sum_T dy
 *   layer norm y = (x-mu)/sd: dx = (dy - mean(dy) - y mean(dy y)) / sd
 *   softmax p:                ds = p (dp - sum(dp p))
 *   silu x sig(x):            sig(x) (1 + x (1 - sig(x)))
 *   gelu x sig(1.702 x):      sig + 1.702 y (1 - sig), y the output
 */

import type { ModuleLoader } from "../engine/backend.ts";
import { createOnnxSession, loadOrt, type OnnxSession } from "../engine/onnx.ts";
import { GraphBuilder } from "../engine/onnx-graph.ts";
import {
  type ModelConfig,
  patchInputDim,
  patchOutputDim,
  tokensOf,
  validateConfig,
} from "../model/config.ts";
import type { NetworkInputs } from "../model/dit.ts";
import {
  type BlockTrace,
  buildDiTForward,
  type ModulateTrace,
  type NormTrace,
  networkFeeds,
  ONNX_INPUTS,
} from "../model/onnx-export.ts";
import { type ParamSlot, paramCount, paramSlots } from "../model/params.ts";
import { meanLossWeights, type TrainBatch } from "./train-batch.ts";

/** Names of the training graph's data inputs and its loss output; gradients are `grad/<param>`. */
export const TRAIN_INPUTS = { ...ONNX_INPUTS, target: "target", rowWeight: "row_weight" } as const;
export const TRAIN_LOSS = "loss";
export const TRAIN_PREDICTION = "prediction";
export const gradName = (param: string) => `grad/${param}`;

/** A graph whose inputs are the parameters (in `paramSlots` order) and the network's three inputs. */
function graphWithParamInputs(cfg: ModelConfig, batch: number, kind: "train" | "forward") {
  const who = kind === "train" ? "exportDiTTrainOnnx" : "exportDiTForwardOnnx";
  validateConfig(cfg);
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`${who}: batch must be >= 1, got ${batch}`);
  const R = tokensOf(cfg) * batch;
  const P = patchInputDim(cfg);
  const g = new GraphBuilder(`framecost-${cfg.name}-${kind}-b${batch}`);
  const params = new Map(paramSlots(cfg).map((s) => [s.name, g.input(s.name, s.shape)]));
  const param = (p: string, shape?: number[]) => {
    const x = params.get(p);
    if (!x) throw new Error(`${who}: no parameter "${p}"`);
    return shape ? g.reshape(x, shape, `${p}/AsShape`) : x;
  };
  const inputs = {
    tokens: g.input(TRAIN_INPUTS.tokens, [R, P]),
    missing: g.input(TRAIN_INPUTS.missing, [R, P]),
    tFeat: g.input(TRAIN_INPUTS.tFeat, [batch, cfg.freqDim]),
  };
  return { g, param, inputs };
}

/** The forward pass alone, parameters as inputs: self-conditioning's first pass (no gradient). */
export function exportDiTForwardOnnx(cfg: ModelConfig, batch: number): Uint8Array {
  const { g, param, inputs } = graphWithParamInputs(cfg, batch, "forward");
  g.output(buildDiTForward(g, cfg, batch, param, inputs, TRAIN_PREDICTION).prediction);
  return g.encode(`framecost video DiT "${cfg.name}" forward with parameter inputs, batch ${batch}`);
}

/** The training step for `batch` samples as a serialized ONNX model. */
export function exportDiTTrainOnnx(cfg: ModelConfig, batch: number): Uint8Array {
  const { g, param, inputs } = graphWithParamInputs(cfg, batch, "train");
  const B = batch;
  const T = tokensOf(cfg);
  const R = T * B;
  const D = cfg.width;
  const P = patchInputDim(cfg);
  const Q = patchOutputDim(cfg);
  const H = cfg.heads;
  const headDim = D / H;
  const slots = paramSlots(cfg);
  const grads = new Map<string, string>();
  const one = g.scalar(1);

  // ---- forward: the inference graph with parameters as inputs, then the loss ---
  const { tokens, missing, tFeat } = inputs;
  const target = g.input(TRAIN_INPUTS.target, [R, Q]);
  const rowWeight = g.input(TRAIN_INPUTS.rowWeight, [R, 1]);
  const { prediction, trace: f } = buildDiTForward(
    g,
    cfg,
    B,
    param,
    { tokens, missing, tFeat },
    TRAIN_PREDICTION,
  );
  // sum over rows and features of w_row (pred - target)^2
  const diff = g.binary("Sub", prediction, target, "loss/Diff");
  const wDiff = g.mul(diff, rowWeight, "loss/WDiff");
  g.output(g.reduceSum(g.mul(wDiff, diff, "loss/Sq"), [0, 1], false, TRAIN_LOSS));

  // ---- backward rules ------------------------------------------------------------
  const denseBack = (x: string, dy: string, w: string, b: string, name: string, needDx = true) => {
    grads.set(w, g.gemm(x, dy, true, false, `${name}/dW`));
    grads.set(b, g.reduceSum(dy, [0], false, `${name}/db`));
    return needDx ? g.gemm(dy, param(w), false, true, `${name}/dX`) : "";
  };
  const oneMinus = (x: string, name: string) => g.binary("Sub", one, x, name);
  // silu'(x) = sig (1 + x (1 - sig))
  const siluBack = (x: string, sig: string, dy: string, name: string) => {
    const inner = g.add(one, g.mul(x, oneMinus(sig, `${name}/1-sig`), `${name}/x(1-sig)`), `${name}/1+`);
    return g.mul(dy, g.mul(sig, inner, `${name}/d`), `${name}/dX`);
  };
  const layerNormBack = (ln: NormTrace, dy: string, name: string) => {
    const mdy = g.reduceMean(dy, [-1], true, `${name}/MeanDy`);
    const mdyy = g.reduceMean(g.mul(dy, ln.y, `${name}/DyY`), [-1], true, `${name}/MeanDyY`);
    const centred = g.binary("Sub", dy, mdy, `${name}/Sub1`);
    const inner = g.binary("Sub", centred, g.mul(ln.y, mdyy, `${name}/YM`), `${name}/Sub2`);
    return g.binary("Div", inner, ln.std, `${name}/dX`);
  };
  const rows3 = (x: string, name: string) => g.reshape(x, [T, B, D], name);
  const flat2 = (x: string, name: string) => g.reshape(x, [R, D], name);
  const modulateBack = (x: string, m: ModulateTrace, dy: string, name: string) => {
    const dy3 = rows3(dy, `${name}/ReshapeDy`);
    const dyx = g.mul(dy3, rows3(x, `${name}/ReshapeX`), `${name}/DyX`);
    return {
      dx: flat2(g.mul(dy3, m.onePlus, `${name}/dX3`), `${name}/dX`),
      dScale: g.reduceSum(dyx, [0], false, `${name}/dScale`),
      dShift: g.reduceSum(dy3, [0], false, `${name}/dShift`),
    };
  };
  // z = x + gate y: dx = dz (the caller passes it on), dy = dz gate, dgate = sum_T dz y
  const gatedResidualBack = (y: string, gate: string, dz: string, name: string) => {
    const dz3 = rows3(dz, `${name}/ReshapeDz`);
    const dzy = g.mul(dz3, rows3(y, `${name}/ReshapeY`), `${name}/DzY`);
    return {
      dy: flat2(g.mul(dz3, gate, `${name}/dY3`), `${name}/dY`),
      dGate: g.reduceSum(dzy, [0], false, `${name}/dGate`),
    };
  };
  const toHeads = (x: string, name: string) =>
    g.transpose(g.reshape(x, [T, B, H, headDim], `${name}/Reshape`), [1, 2, 0, 3], `${name}/Transpose`);
  const fromHeads = (x: string, name: string) =>
    g.reshape(g.transpose(x, [2, 0, 1, 3], `${name}/Transpose`), [R, D], `${name}/Flatten`);
  const swapLast = (x: string, name: string) => g.transpose(x, [0, 1, 3, 2], name);
  const scale = g.scalar(1 / Math.sqrt(headDim));
  const attentionBack = (b: BlockTrace, dOut: string, name: string) => {
    const dO4 = toHeads(dOut, `${name}/dO`);
    const dV4 = g.matMul(swapLast(b.probs, `${name}/PT`), dO4, `${name}/dV4`);
    const dP = g.matMul(dO4, swapLast(b.v4, `${name}/VT`), `${name}/dP`);
    const rowDot = g.reduceSum(g.mul(dP, b.probs, `${name}/dPP`), [-1], true, `${name}/RowDot`);
    const dS0 = g.mul(b.probs, g.binary("Sub", dP, rowDot, `${name}/dPSub`), `${name}/dS0`);
    const dS = g.mul(dS0, scale, `${name}/dS`);
    const dQ4 = g.matMul(dS, swapLast(b.kT, `${name}/K4`), `${name}/dQ4`);
    const dK4 = g.matMul(swapLast(dS, `${name}/dST`), b.q4, `${name}/dK4`);
    return {
      dq: fromHeads(dQ4, `${name}/dQ`),
      dk: fromHeads(dK4, `${name}/dK`),
      dv: fromHeads(dV4, `${name}/dV`),
    };
  };

  // ---- backward, last layer first ---------------------------------------------------
  const dPred = g.mul(wDiff, g.scalar(2), "grad/final/dPred");
  const dModF = denseBack(f.modF.y, dPred, "final.w", "final.b", "grad/final");
  const modFBack = modulateBack(f.lnF.y, f.modF, dModF, "grad/final/mod");
  const dFinalAda = g.concat([modFBack.dShift, modFBack.dScale], 1, "grad/final/ada/Concat");
  const dScParts = [denseBack(f.sc, dFinalAda, "final.ada.w", "final.ada.b", "grad/final/ada")];
  let dh = layerNormBack(f.lnF, modFBack.dx, "grad/final/ln");
  for (let i = cfg.depth - 1; i >= 0; i--) {
    const b = f.blocks[i];
    const p = `block${i}.`;
    const n = `grad/block${i}`;
    // h_out = h1 + gate2 m, m = mlp2(gelu(mlp1(modulate(ln2(h1)))))
    const res2 = gatedResidualBack(b.m, b.ada.gate2, dh, `${n}/res2`);
    const dm1 = denseBack(b.m1, res2.dy, `${p}mlp.w2`, `${p}mlp.b2`, `${n}/mlp2`);
    // gelu'(u) = sig + 1.702 u sig (1 - sig) = sig + 1.702 m1 (1 - sig)
    const slope = g.mul(
      g.mul(b.m1, g.scalar(1.702), `${n}/gelu/Scale`),
      oneMinus(b.geluSig, `${n}/gelu/1-sig`),
      `${n}/gelu/Term`,
    );
    const dU = g.mul(dm1, g.add(b.geluSig, slope, `${n}/gelu/d`), `${n}/gelu/dX`);
    const dMod2 = denseBack(b.mod2.y, dU, `${p}mlp.w1`, `${p}mlp.b1`, `${n}/mlp1`);
    const mod2B = modulateBack(b.ln2.y, b.mod2, dMod2, `${n}/mod2`);
    const dh1 = g.add(dh, layerNormBack(b.ln2, mod2B.dx, `${n}/ln2`), `${n}/dH1`);
    // h1 = h_in + gate1 o, o = out(attention(q, k, v of modulate(ln1(h_in))))
    const res1 = gatedResidualBack(b.o, b.ada.gate1, dh1, `${n}/res1`);
    const dAttn = denseBack(b.attn, res1.dy, `${p}o.w`, `${p}o.b`, `${n}/o`);
    const att = attentionBack(b, dAttn, `${n}/attn`);
    const dq = denseBack(b.mod1.y, att.dq, `${p}q.w`, `${p}q.b`, `${n}/q`);
    const dk = denseBack(b.mod1.y, att.dk, `${p}k.w`, `${p}k.b`, `${n}/k`);
    const dv = denseBack(b.mod1.y, att.dv, `${p}v.w`, `${p}v.b`, `${n}/v`);
    const dMod1 = g.add(g.add(dq, dk, `${n}/dQK`), dv, `${n}/dMod1`);
    const mod1B = modulateBack(b.ln1.y, b.mod1, dMod1, `${n}/mod1`);
    dh = g.add(dh1, layerNormBack(b.ln1, mod1B.dx, `${n}/ln1`), `${n}/dH`);
    const dAda = g.concat(
      [mod1B.dShift, mod1B.dScale, res1.dGate, mod2B.dShift, mod2B.dScale, res2.dGate],
      1,
      `${n}/ada/Concat`,
    );
    dScParts.push(denseBack(f.sc, dAda, `${p}ada.w`, `${p}ada.b`, `${n}/ada`));
  }
  // patch embedding and the learned empty context (the position embedding is a constant)
  const dInput = denseBack(f.input, dh, "patch.w", "patch.b", "grad/patch");
  const dMasked = g.mul(g.reshape(dInput, [T, B, P], "grad/empty/Reshape"), f.missing3, "grad/empty/Mul");
  const dEmpty3 = g.reduceSum(dMasked, [1], true, "grad/empty/Sum");
  grads.set("empty", g.reshape(dEmpty3, [T, P], "grad/empty/Flatten"));
  // timestep embedder: sc = silu(c), c = silu(a1) W2 + b2, a1 = t_feat W1 + b1
  let dSc = dScParts[0];
  for (let i = 1; i < dScParts.length; i++) dSc = g.add(dSc, dScParts[i], `grad/cond/dSc${i}`);
  const dC = siluBack(f.c, f.sigC, dSc, "grad/cond/silu");
  const dS1 = denseBack(f.s1, dC, "temb.w2", "temb.b2", "grad/temb/fc2");
  const dA1 = siluBack(f.a1, f.sigA1, dS1, "grad/temb/silu");
  denseBack(tFeat, dA1, "temb.w1", "temb.b1", "grad/temb/fc1", false);

  for (const s of slots) {
    const gr = grads.get(s.name);
    if (!gr) throw new Error(`exportDiTTrainOnnx: no gradient for "${s.name}"`);
    const shape = g.shapeOf(gr);
    if (shape.join(",") !== s.shape.join(","))
      throw new Error(`exportDiTTrainOnnx: gradient of ${s.name} is [${shape}], parameter is [${s.shape}]`);
    // name the output after the parameter (an Identity keeps node names unique)
    g.output(g.node("Identity", [gr], [s.shape], {}, gradName(s.name))[0]);
  }
  return g.encode(`framecost video DiT "${cfg.name}" training step, batch ${B}`);
}

/** Loss and gradients of a training batch on onnxruntime: `lossAndGrads` (train-grads.ts) on the native engine. */
export class OnnxTrainStep {
  // one session per batch size, for the training step and for the forward pass alone
  private readonly sessions = new Map<string, Promise<OnnxSession>>();
  private readonly slots: ParamSlot[];
  private readonly size: number;

  constructor(
    readonly cfg: ModelConfig,
    readonly threads: number,
    private readonly load?: ModuleLoader,
  ) {
    this.slots = paramSlots(cfg);
    this.size = paramCount(cfg);
  }

  private session(kind: "train" | "forward", batch: number): Promise<OnnxSession> {
    const key = `${kind}-${batch}`;
    let s = this.sessions.get(key);
    if (!s) {
      const bytes =
        kind === "train" ? exportDiTTrainOnnx(this.cfg, batch) : exportDiTForwardOnnx(this.cfg, batch);
      s = createOnnxSession(bytes, { threads: this.threads, memArena: true, load: this.load });
      this.sessions.set(key, s);
      s.catch(() => this.sessions.delete(key)); // a failed load is retried on the next call
    }
    return s;
  }

  /** The network's inputs and every parameter as ORT tensors. */
  private async feeds(flat: Float32Array, inputs: NetworkInputs) {
    const n = this.size;
    if (flat.length !== n) throw new Error(`OnnxTrainStep: ${flat.length} weights for ${n} parameters`);
    const ort = await loadOrt(this.load);
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = networkFeeds(ort, this.cfg, inputs);
    // a copy, not a view: the weights may live in a SharedArrayBuffer the optimizer writes to
    for (const s of this.slots)
      feeds[s.name] = new ort.Tensor("float32", flat.slice(s.offset, s.offset + s.size), s.shape);
    return { ort, feeds };
  }

  /** Computes the batch's loss and writes d(loss)/d(params) into `gradsOut` (the layout of `flat`). */
  async run(flat: Float32Array, batch: TrainBatch, gradsOut: Float32Array): Promise<{ loss: number }> {
    if (flat.length !== this.size || gradsOut.length !== this.size)
      throw new Error(
        `OnnxTrainStep: ${flat.length} weights / ${gradsOut.length} gradients for ${this.size} parameters`,
      );
    const B = batch.inputs.batch;
    const R = tokensOf(this.cfg) * B;
    const Q = patchOutputDim(this.cfg);
    const { ort, feeds } = await this.feeds(flat, batch.inputs);
    feeds[TRAIN_INPUTS.target] = new ort.Tensor("float32", batch.target, [R, Q]);
    feeds[TRAIN_INPUTS.rowWeight] = new ort.Tensor("float32", meanLossWeights(batch), [R, 1]);
    const out = await (await this.session("train", B)).run(feeds);
    for (const s of this.slots) gradsOut.set(out[gradName(s.name)].data as Float32Array, s.offset);
    return { loss: (out[TRAIN_LOSS].data as Float32Array)[0] };
  }

  /** The network's prediction [T*B, p*p*C] for `inputs` at weights `flat` (no gradient). */
  async predict(flat: Float32Array, inputs: NetworkInputs): Promise<Float32Array> {
    const { feeds } = await this.feeds(flat, inputs);
    const out = await (await this.session("forward", inputs.batch)).run(feeds);
    return out[TRAIN_PREDICTION].data as Float32Array;
  }

  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s.catch(() => null))?.release();
  }
}
