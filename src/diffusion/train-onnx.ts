/**
 * One training step of the video DiT as a single ONNX graph: the forward pass
 * of `exportDiTOnnx` (same ops, same order), the weighted MSE of
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
import { positionEmbedding } from "../model/dit.ts";
import { paramCount, paramSlots } from "../model/params.ts";
import type { TrainBatch } from "./train-batch.ts";

/** Names of the training graph's data inputs and its loss output; gradients are `grad/<param>`. */
export const TRAIN_INPUTS = {
  tokens: "tokens",
  missing: "missing",
  tFeat: "t_feat",
  target: "target",
  rowWeight: "row_weight",
} as const;
export const TRAIN_LOSS = "loss";
export const gradName = (param: string) => `grad/${param}`;

/** The training step for `batch` samples as a serialized ONNX model. */
export function exportDiTTrainOnnx(cfg: ModelConfig, batch: number): Uint8Array {
  validateConfig(cfg);
  if (!Number.isInteger(batch) || batch < 1)
    throw new Error(`exportDiTTrainOnnx: batch must be >= 1, got ${batch}`);
  const B = batch;
  const T = tokensOf(cfg);
  const R = T * B;
  const D = cfg.width;
  const P = patchInputDim(cfg);
  const Q = patchOutputDim(cfg);
  const H = cfg.heads;
  const headDim = D / H;
  const g = new GraphBuilder(`framecost-${cfg.name}-train-b${B}`);
  const slots = paramSlots(cfg);
  const params = new Map(slots.map((s) => [s.name, g.input(s.name, s.shape)]));
  const grads = new Map<string, string>();
  const param = (name: string) => {
    const p = params.get(name);
    if (!p) throw new Error(`exportDiTTrainOnnx: no parameter "${name}"`);
    return p;
  };
  const one = g.scalar(1);

  // ---- building blocks, each returning what its backward needs -----------------
  const dense = (x: string, w: string, b: string, name: string) =>
    g.add(g.matMul(x, param(w), `${name}/MatMul`), param(b), `${name}/Add`);
  const denseBack = (x: string, dy: string, w: string, b: string, name: string, needDx = true) => {
    grads.set(w, g.gemm(x, dy, true, false, `${name}/dW`));
    grads.set(b, g.reduceSum(dy, [0], false, `${name}/db`));
    return needDx ? g.gemm(dy, param(w), false, true, `${name}/dX`) : "";
  };
  const sigmoid = (x: string, name: string) => g.unary("Sigmoid", x, name);
  const oneMinus = (x: string, name: string) => g.binary("Sub", one, x, name);
  // silu'(x) = sig (1 + x (1 - sig))
  const siluBack = (x: string, sig: string, dy: string, name: string) =>
    g.mul(
      dy,
      g.mul(
        sig,
        g.add(one, g.mul(x, oneMinus(sig, `${name}/1-sig`), `${name}/x(1-sig)`), `${name}/1+`),
        `${name}/d`,
      ),
      `${name}/dX`,
    );
  const layerNorm = (x: string, name: string) => {
    const mean = g.reduceMean(x, [-1], true, `${name}/Mean`);
    const d = g.binary("Sub", x, mean, `${name}/Sub`);
    const variance = g.reduceMean(g.binary("Pow", d, g.scalar(2), `${name}/Pow`), [-1], true, `${name}/Var`);
    const std = g.unary("Sqrt", g.add(variance, g.scalar(1e-6), `${name}/AddEps`), `${name}/Sqrt`);
    return { y: g.binary("Div", d, std, `${name}/Div`), std };
  };
  const layerNormBack = (ln: { y: string; std: string }, dy: string, name: string) => {
    const mdy = g.reduceMean(dy, [-1], true, `${name}/MeanDy`);
    const mdyy = g.reduceMean(g.mul(dy, ln.y, `${name}/DyY`), [-1], true, `${name}/MeanDyY`);
    const inner = g.binary(
      "Sub",
      g.binary("Sub", dy, mdy, `${name}/Sub1`),
      g.mul(ln.y, mdyy, `${name}/YM`),
      `${name}/Sub2`,
    );
    return g.binary("Div", inner, ln.std, `${name}/dX`);
  };
  const rows3 = (x: string, name: string) => g.reshape(x, [T, B, D], name);
  const flat2 = (x: string, name: string) => g.reshape(x, [R, D], name);
  const modulate = (x: string, shift: string, scale: string, name: string) => {
    const onePlus = g.add(scale, one, `${name}/OnePlus`);
    const y = flat2(
      g.add(g.mul(rows3(x, `${name}/Reshape`), onePlus, `${name}/Mul`), shift, `${name}/Add`),
      `${name}/Flatten`,
    );
    return { y, onePlus };
  };
  const modulateBack = (x: string, onePlus: string, dy: string, name: string) => {
    const dy3 = rows3(dy, `${name}/ReshapeDy`);
    return {
      dx: flat2(g.mul(dy3, onePlus, `${name}/dX3`), `${name}/dX`),
      dScale: g.reduceSum(
        g.mul(dy3, rows3(x, `${name}/ReshapeX`), `${name}/DyX`),
        [0],
        false,
        `${name}/dScale`,
      ),
      dShift: g.reduceSum(dy3, [0], false, `${name}/dShift`),
    };
  };
  const gatedResidual = (x: string, y: string, gate: string, name: string) =>
    flat2(
      g.add(
        rows3(x, `${name}/ReshapeX`),
        g.mul(rows3(y, `${name}/ReshapeY`), gate, `${name}/Gate`),
        `${name}/Add`,
      ),
      `${name}/Flatten`,
    );
  // d(x + gate y): dx = dz (passed through by the caller), dy = dz gate, dgate = sum_T dz y
  const gatedResidualBack = (y: string, gate: string, dz: string, name: string) => {
    const dz3 = rows3(dz, `${name}/ReshapeDz`);
    return {
      dy: flat2(g.mul(dz3, gate, `${name}/dY3`), `${name}/dY`),
      dGate: g.reduceSum(
        g.mul(dz3, rows3(y, `${name}/ReshapeY2`), `${name}/DzY`),
        [0],
        false,
        `${name}/dGate`,
      ),
    };
  };
  const toHeads = (x: string, name: string) =>
    g.transpose(g.reshape(x, [T, B, H, headDim], `${name}/Reshape`), [1, 2, 0, 3], `${name}/Transpose`); // [B,H,T,dh]
  const fromHeads = (x: string, name: string) =>
    g.reshape(g.transpose(x, [2, 0, 1, 3], `${name}/Transpose`), [R, D], `${name}/Flatten`);
  const swapLast = (x: string, name: string) => g.transpose(x, [0, 1, 3, 2], name);
  const scale = g.scalar(1 / Math.sqrt(headDim));
  const attention = (q: string, k: string, v: string, name: string) => {
    const q4 = toHeads(q, `${name}/Q`);
    const k4 = toHeads(k, `${name}/K`);
    const v4 = toHeads(v, `${name}/V`);
    const scores = g.matMul(q4, swapLast(k4, `${name}/KT`), `${name}/Scores`);
    const p = g.softmax(g.mul(scores, scale, `${name}/Scale`), -1, `${name}/Softmax`);
    const out = fromHeads(g.matMul(p, v4, `${name}/Values`), `${name}/O`);
    return { out, q4, k4, v4, p };
  };
  const attentionBack = (
    at: { q4: string; k4: string; v4: string; p: string },
    dOut: string,
    name: string,
  ) => {
    const dO4 = toHeads(dOut, `${name}/dO`);
    const dV4 = g.matMul(swapLast(at.p, `${name}/PT`), dO4, `${name}/dV4`);
    const dP = g.matMul(dO4, swapLast(at.v4, `${name}/VT`), `${name}/dP`);
    const rowDot = g.reduceSum(g.mul(dP, at.p, `${name}/dPP`), [-1], true, `${name}/RowDot`);
    const dS = g.mul(
      g.mul(at.p, g.binary("Sub", dP, rowDot, `${name}/dPSub`), `${name}/dS0`),
      scale,
      `${name}/dS`,
    );
    const dQ4 = g.matMul(dS, at.k4, `${name}/dQ4`);
    const dK4 = g.matMul(swapLast(dS, `${name}/dST`), at.q4, `${name}/dK4`);
    return {
      dq: fromHeads(dQ4, `${name}/dQ`),
      dk: fromHeads(dK4, `${name}/dK`),
      dv: fromHeads(dV4, `${name}/dV`),
    };
  };

  // ---- forward (exportDiTOnnx's graph with parameters as inputs) ---------------
  const tokens = g.input(TRAIN_INPUTS.tokens, [R, P]);
  const missing = g.input(TRAIN_INPUTS.missing, [R, P]);
  const tFeat = g.input(TRAIN_INPUTS.tFeat, [B, cfg.freqDim]);
  const target = g.input(TRAIN_INPUTS.target, [R, Q]);
  const rowWeight = g.input(TRAIN_INPUTS.rowWeight, [R, 1]);

  const missing3 = g.reshape(missing, [T, B, P], "empty/ReshapeMissing");
  const empty3 = g.reshape(param("empty"), [T, 1, P], "empty/Reshape");
  const input = g.add(
    tokens,
    g.reshape(g.mul(missing3, empty3, "empty/Mul"), [R, P], "empty/Flatten"),
    "empty/Add",
  );
  const pos = g.weight("pos", positionEmbedding(cfg), [T, 1, D]);
  let h = flat2(
    g.add(rows3(dense(input, "patch.w", "patch.b", "patch"), "pos/Reshape"), pos, "pos/Add"),
    "pos/Flatten",
  );
  const a1 = dense(tFeat, "temb.w1", "temb.b1", "temb/fc1");
  const sigA1 = sigmoid(a1, "temb/silu/Sigmoid");
  const s1 = g.mul(a1, sigA1, "temb/silu/Mul");
  const c = dense(s1, "temb.w2", "temb.b2", "temb/fc2");
  const sigC = sigmoid(c, "cond/silu/Sigmoid");
  const sc = g.mul(c, sigC, "cond/silu/Mul");

  interface BlockSave {
    hIn: string;
    ln1: { y: string; std: string };
    mod1: { y: string; onePlus: string };
    at: { out: string; q4: string; k4: string; v4: string; p: string };
    o: string;
    h1: string;
    ln2: { y: string; std: string };
    mod2: { y: string; onePlus: string };
    m1: string;
    sig: string;
    m: string;
    gate1: string;
    gate2: string;
  }
  const saved: BlockSave[] = [];
  for (let i = 0; i < cfg.depth; i++) {
    const p = `block${i}.`;
    const n = `block${i}`;
    const [shift1, scale1, gate1, shift2, scale2, gate2] = g.split(
      dense(sc, `${p}ada.w`, `${p}ada.b`, `${n}/ada`),
      1,
      [D, D, D, D, D, D],
      `${n}/ada/Split`,
    );
    const hIn = h;
    const ln1 = layerNorm(h, `${n}/ln1`);
    const mod1 = modulate(ln1.y, shift1, scale1, `${n}/mod1`);
    const q = dense(mod1.y, `${p}q.w`, `${p}q.b`, `${n}/q`);
    const k = dense(mod1.y, `${p}k.w`, `${p}k.b`, `${n}/k`);
    const v = dense(mod1.y, `${p}v.w`, `${p}v.b`, `${n}/v`);
    const at = attention(q, k, v, `${n}/attn`);
    const o = dense(at.out, `${p}o.w`, `${p}o.b`, `${n}/o`);
    const h1 = gatedResidual(h, o, gate1, `${n}/res1`);
    const ln2 = layerNorm(h1, `${n}/ln2`);
    const mod2 = modulate(ln2.y, shift2, scale2, `${n}/mod2`);
    const u = dense(mod2.y, `${p}mlp.w1`, `${p}mlp.b1`, `${n}/mlp1`);
    const sig = sigmoid(g.mul(u, g.scalar(1.702), `${n}/gelu/Scale`), `${n}/gelu/Sigmoid`);
    const m1 = g.mul(u, sig, `${n}/gelu/Mul`);
    const m = dense(m1, `${p}mlp.w2`, `${p}mlp.b2`, `${n}/mlp2`);
    h = gatedResidual(h1, m, gate2, `${n}/res2`);
    saved.push({ hIn, ln1, mod1, at, o, h1, ln2, mod2, m1, sig, m, gate1, gate2 });
  }
  const [fShift, fScale] = g.split(
    dense(sc, "final.ada.w", "final.ada.b", "final/ada"),
    1,
    [D, D],
    "final/ada/Split",
  );
  const lnF = layerNorm(h, "final/ln");
  const modF = modulate(lnF.y, fShift, fScale, "final/mod");
  const pred = dense(modF.y, "final.w", "final.b", "final");

  // ---- loss: sum over rows and features of w_row (pred - target)^2 ------------
  const diff = g.binary("Sub", pred, target, "loss/Diff");
  const wDiff = g.mul(diff, rowWeight, "loss/WDiff");
  const loss = g.reduceSum(g.mul(wDiff, diff, "loss/Sq"), [0, 1], false, TRAIN_LOSS);
  g.output(loss);

  // ---- backward ---------------------------------------------------------------
  const dPred = g.mul(wDiff, g.scalar(2), "grad/final/dPred");
  const dModF = denseBack(modF.y, dPred, "final.w", "final.b", "grad/final");
  const modFBack = modulateBack(lnF.y, modF.onePlus, dModF, "grad/final/mod");
  const dFinalAda = g.concat([modFBack.dShift, modFBack.dScale], 1, "grad/final/ada/Concat");
  const dScParts = [denseBack(sc, dFinalAda, "final.ada.w", "final.ada.b", "grad/final/ada")];
  let dh = layerNormBack(lnF, modFBack.dx, "grad/final/ln");
  for (let i = cfg.depth - 1; i >= 0; i--) {
    const s = saved[i];
    const p = `block${i}.`;
    const n = `grad/block${i}`;
    // h = h1 + gate2 m
    const res2 = gatedResidualBack(s.m, s.gate2, dh, `${n}/res2`);
    const dm1 = denseBack(s.m1, res2.dy, `${p}mlp.w2`, `${p}mlp.b2`, `${n}/mlp2`);
    const geluD = g.add(
      s.sig,
      g.mul(
        g.mul(s.m1, g.scalar(1.702), `${n}/gelu/Scale`),
        oneMinus(s.sig, `${n}/gelu/1-sig`),
        `${n}/gelu/Term`,
      ),
      `${n}/gelu/d`,
    );
    const dU = g.mul(dm1, geluD, `${n}/gelu/dX`);
    const dMod2 = denseBack(s.mod2.y, dU, `${p}mlp.w1`, `${p}mlp.b1`, `${n}/mlp1`);
    const mod2B = modulateBack(s.ln2.y, s.mod2.onePlus, dMod2, `${n}/mod2`);
    const dh1 = g.add(dh, layerNormBack(s.ln2, mod2B.dx, `${n}/ln2`), `${n}/dH1`);
    // h1 = hIn + gate1 o
    const res1 = gatedResidualBack(s.o, s.gate1, dh1, `${n}/res1`);
    const dAttn = denseBack(s.at.out, res1.dy, `${p}o.w`, `${p}o.b`, `${n}/o`);
    const attB = attentionBack(s.at, dAttn, `${n}/attn`);
    const dMod1 = g.add(
      g.add(
        denseBack(s.mod1.y, attB.dq, `${p}q.w`, `${p}q.b`, `${n}/q`),
        denseBack(s.mod1.y, attB.dk, `${p}k.w`, `${p}k.b`, `${n}/k`),
        `${n}/dQK`,
      ),
      denseBack(s.mod1.y, attB.dv, `${p}v.w`, `${p}v.b`, `${n}/v`),
      `${n}/dMod1`,
    );
    const mod1B = modulateBack(s.ln1.y, s.mod1.onePlus, dMod1, `${n}/mod1`);
    dh = g.add(dh1, layerNormBack(s.ln1, mod1B.dx, `${n}/ln1`), `${n}/dH`);
    const dAda = g.concat(
      [mod1B.dShift, mod1B.dScale, res1.dGate, mod2B.dShift, mod2B.dScale, res2.dGate],
      1,
      `${n}/ada/Concat`,
    );
    dScParts.push(denseBack(sc, dAda, `${p}ada.w`, `${p}ada.b`, `${n}/ada`));
  }
  // patch embedding and the learned empty context (the position embedding is a constant)
  const dInput = denseBack(input, dh, "patch.w", "patch.b", "grad/patch");
  const dEmpty3 = g.reduceSum(
    g.mul(g.reshape(dInput, [T, B, P], "grad/empty/Reshape"), missing3, "grad/empty/Mul"),
    [1],
    true,
    "grad/empty/Sum",
  );
  grads.set("empty", g.reshape(dEmpty3, [T, P], "grad/empty/Flatten"));
  // timestep embedder: sc = silu(c), c = silu(a1) W2 + b2, a1 = tFeat W1 + b1
  let dSc = dScParts[0];
  for (let i = 1; i < dScParts.length; i++) dSc = g.add(dSc, dScParts[i], `grad/cond/dSc${i}`);
  const dC = siluBack(c, sigC, dSc, "grad/cond/silu");
  const dS1 = denseBack(s1, dC, "temb.w2", "temb.b2", "grad/temb/fc2");
  const dA1 = siluBack(a1, sigA1, dS1, "grad/temb/silu");
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
  private readonly sessions = new Map<number, Promise<OnnxSession>>();

  constructor(
    readonly cfg: ModelConfig,
    readonly threads: number,
    private readonly load?: ModuleLoader,
  ) {}

  private session(batch: number): Promise<OnnxSession> {
    let s = this.sessions.get(batch);
    if (!s) {
      s = createOnnxSession(exportDiTTrainOnnx(this.cfg, batch), {
        threads: this.threads,
        memArena: true,
        load: this.load,
      });
      this.sessions.set(batch, s);
    }
    return s;
  }

  /** Computes the batch's loss and writes d(loss)/d(params) into `gradsOut` (the layout of `flat`). */
  async run(flat: Float32Array, batch: TrainBatch, gradsOut: Float32Array): Promise<{ loss: number }> {
    const cfg = this.cfg;
    const n = paramCount(cfg);
    if (flat.length !== n || gradsOut.length !== n)
      throw new Error(
        `OnnxTrainStep: ${flat.length} weights / ${gradsOut.length} gradients for ${n} parameters`,
      );
    const ort = await loadOrt(this.load);
    const B = batch.inputs.batch;
    const T = tokensOf(cfg);
    const R = T * B;
    const Q = patchOutputDim(cfg);
    const P = patchInputDim(cfg);
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
      [TRAIN_INPUTS.tokens]: new ort.Tensor("float32", batch.inputs.tokens, [R, P]),
      [TRAIN_INPUTS.missing]: new ort.Tensor("float32", batch.inputs.missing, [R, P]),
      [TRAIN_INPUTS.tFeat]: new ort.Tensor("float32", batch.inputs.tFeat, [B, cfg.freqDim]),
      [TRAIN_INPUTS.target]: new ort.Tensor("float32", batch.target, [R, Q]),
      // weight / (rows * features), so the loss is a weighted mean (as lossAndGrads)
      [TRAIN_INPUTS.rowWeight]: new ort.Tensor(
        "float32",
        batch.rowWeight.map((x) => x / (R * Q)),
        [R, 1],
      ),
    };
    const slots = paramSlots(cfg);
    // a copy, not a view: the weights may live in a SharedArrayBuffer the optimizer writes to
    for (const s of slots)
      feeds[s.name] = new ort.Tensor("float32", flat.slice(s.offset, s.offset + s.size), s.shape);
    const out = await (await this.session(B)).run(feeds);
    for (const s of slots) gradsOut.set(out[gradName(s.name)].data as Float32Array, s.offset);
    return { loss: (out[TRAIN_LOSS].data as Float32Array)[0] };
  }

  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s.catch(() => null))?.release();
  }
}
