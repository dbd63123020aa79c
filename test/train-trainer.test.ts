import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { makeSchedule } from "../src/diffusion/schedule.ts";
import { applySelfCond, lossWeight, makeTrainBatch } from "../src/diffusion/train-batch.ts";
import { type ModelConfig, PRESETS, patchInputDim, patchOutputDim } from "../src/model/config.ts";
import { prepareInputs, unpatchify } from "../src/model/dit.ts";
import { loadWeights } from "../src/model/io.ts";
import { runGeneration } from "../src/run/generation.ts";

const root = mkdtempSync(join(tmpdir(), "framecost-train-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("training batch", () => {
  it("is deterministic per seed and weights rows by min-SNR", () => {
    const cfg = PRESETS.micro;
    const s = makeSchedule("cosine");
    const a = makeTrainBatch(cfg, s, 4, 7, 1000);
    const b = makeTrainBatch(cfg, s, 4, 7, 1000);
    expect(a.target).toEqual(b.target);
    expect(a.inputs.tokens).toEqual(b.inputs.tokens);
    for (const w of a.rowWeight) {
      expect(w).toBeGreaterThan(0);
      expect(w).toBeLessThanOrEqual(5 / 6 + 1e-6); // min(snr, 5) / (snr + 1) peaks at snr = 5
    }
  });

  it("weights the clean-frame error by SNR clamped to [floor, gamma], whatever the network predicts", () => {
    const snrs = fc.double({ min: 1e-4, max: 1e4, noNaN: true });
    fc.assert(
      fc.property(
        snrs,
        fc.double({ min: 0.5, max: 20, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (snr, gamma, u) => {
          const floor = u * gamma;
          const x0Weight = Math.min(Math.max(snr, floor), gamma);
          // the v error is (SNR + 1) times the x0 error, the eps error SNR times
          expect(lossWeight(snr, "v", gamma, floor) * (snr + 1)).toBeCloseTo(x0Weight, 9);
          expect(lossWeight(snr, "eps", gamma, floor) * snr).toBeCloseTo(x0Weight, 9);
          // a floor only raises the weight, and only where SNR is below it
          expect(lossWeight(snr, "v", gamma, floor)).toBeGreaterThanOrEqual(lossWeight(snr, "v", gamma));
          if (snr >= floor) expect(lossWeight(snr, "v", gamma, floor)).toBe(lossWeight(snr, "v", gamma));
        },
      ),
    );
    // high noise: min-SNR-5 gives v almost nothing, a floor of 1 gives it the weight of SNR = 1
    expect(lossWeight(0.01, "v", 5)).toBeCloseTo(0.0099, 4);
    expect(lossWeight(0.01, "v", 5, 1)).toBeCloseTo(0.99, 3);
    expect(lossWeight(3, "v", 0, 0)).toBe(1);
  });

  it("self-conditioning puts the estimate where generation puts it, only for the samples drawn", () => {
    const cfg: ModelConfig = { ...PRESETS.micro, selfCond: true };
    const B = 6;
    const a = makeTrainBatch(cfg, makeSchedule("cosine"), B, 3, 1000);
    expect([...a.selfCond].some((x) => x === 1) && [...a.selfCond].some((x) => x === 0)).toBe(true);
    const before = { tokens: a.inputs.tokens.slice(), missing: a.inputs.missing.slice() };
    // a perfect prediction: the estimate is the clean frame itself
    applySelfCond(cfg, a, a.target);
    // the same estimate packed by prepareInputs, as generation does: x_t and x0 as frames
    const C = cfg.channels;
    const Q = patchOutputDim(cfg);
    const P = patchInputDim(cfg);
    const cin = P / (cfg.patch * cfg.patch);
    const xtTokens = new Float32Array(a.target.length);
    for (let r = 0; r < a.target.length / Q; r++)
      for (let q = 0; q < Q / C; q++)
        for (let c = 0; c < C; c++) xtTokens[r * Q + q * C + c] = before.tokens[r * P + q * cin + c];
    const xt = unpatchify(cfg, B, xtTokens);
    const v = unpatchify(cfg, B, a.target);
    const n = xt.length / B;
    const x0 = xt.map(
      (x, i) => Math.sqrt(a.abar[Math.floor(i / n)]) * x - Math.sqrt(1 - a.abar[Math.floor(i / n)]) * v[i],
    );
    const t = Array.from({ length: B }, () => 0);
    const packed = prepareInputs(cfg, B, xt, null, null, t, x0);
    const R = a.target.length / Q;
    for (let r = 0; r < R; r++) {
      const used = a.selfCond[r % B] === 1;
      for (let f = 0; f < P; f++) {
        const i = r * P + f;
        const inSlot = f % cin >= C * (cfg.contextFrames + 1);
        if (!inSlot) {
          expect(a.inputs.tokens[i]).toBe(before.tokens[i]);
          expect(a.inputs.missing[i]).toBe(before.missing[i]);
        } else if (used) {
          expect(a.inputs.tokens[i]).toBeCloseTo(Math.max(-1, Math.min(1, packed.tokens[i])), 5);
          expect(a.inputs.missing[i]).toBe(0);
        } else {
          expect(a.inputs.tokens[i]).toBe(0);
          expect(a.inputs.missing[i]).toBe(1);
        }
      }
    }
  });
});

// The trainer runs as the CLI does, in its own process: its worker threads need a plain Node
// process (under the test runner's forked process they exit at start-up).
function trainCli(args: string[]): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", "train", ...args], {
    encoding: "utf8",
    timeout: 170_000,
  });
  return { code: r.status, stderr: r.stderr };
}

describe("trainer", () => {
  it("lowers the loss on micro with two workers, checkpoints, and resumes where it stopped", () => {
    const out = join(root, "out");
    const common = [
      "--preset",
      "micro",
      "--out",
      out,
      "--checkpoint-dir",
      join(root, "ckpt"),
      "--batch",
      "16",
      "--workers",
      "2",
      "--lr",
      "3e-3",
    ];
    const first = trainCli([...common, "--steps", "50", "--backend", "wasm"]);
    expect(first.stderr).toContain("train: micro from step 0, 2 workers on wasm");
    expect(first.stderr).toContain("trained 50 steps");
    expect(first.code).toBe(0);
    const log = JSON.parse(readFileSync(join(out, "training-log.json"), "utf8"));
    expect(log.history.length).toBe(2);
    expect(log.history[1].loss).toBeLessThan(log.history[0].loss);
    expect(existsSync(join(root, "ckpt", "checkpoint.bin"))).toBe(true);
    // the resumed run changes the loss weighting and the engine (auto: onnx, installed here);
    // the weights record both runs and their recipes
    const second = trainCli([...common, "--steps", "60", "--min-snr-gamma", "0", "--p-uncond", "0.5"]);
    expect(second.stderr).toContain("train: micro from step 50, 2 workers on onnx");
    expect(second.stderr).toContain("trained 60 steps");
    const w = loadWeights(out, PRESETS.micro);
    expect(w.manifest.training?.steps).toBe(60);
    expect(w.manifest.training?.command).toContain("train --preset micro");
    expect(w.manifest.training?.lossWeighting).toBe("uniform (v-prediction MSE)");
    expect((w.manifest.training?.batchOptions as { pUncond?: number } | undefined)?.pUncond).toBe(0.5);
    const sessions = w.manifest.training?.sessions as Array<Record<string, unknown>>;
    expect(sessions.map((x) => [x.fromStep, x.toStep, x.lossWeighting, x.backend])).toEqual([
      [0, 50, "min-SNR-5", "wasm"],
      [50, 60, "uniform (v-prediction MSE)", "onnx"],
    ]);
    expect(w.manifest.training?.backend).toBe("onnx");
  }, 180_000);

  it("trains a self-conditioned micro, and both engines generate the same frames from it", async () => {
    const out = join(root, "self-cond");
    const args = [
      ...["--preset", "micro", "--self-cond", "--batch", "8", "--workers", "2"],
      ...["--out", out, "--checkpoint-dir", join(root, "self-cond-ckpt")],
    ];
    // the first pass on each engine: tfjs, then resumed on onnx
    for (const [steps, backend] of [
      ["10", "wasm"],
      ["20", "onnx"],
    ]) {
      const r = trainCli([...args, "--steps", steps, "--backend", backend]);
      expect(r.code, r.stderr).toBe(0);
    }
    expect(loadWeights(out).config.selfCond).toBe(true);
    const gen = (backend: string) =>
      runGeneration({
        modelDir: out,
        sampler: "dpmpp-2m",
        steps: 6,
        frames: 2,
        clips: 1,
        fps: 24,
        seed: 1,
        backend,
        threads: 1,
        convention: "flops",
      });
    const [wasm, onnx] = [await gen("wasm"), await gen("onnx")];
    for (let i = 0; i < 2; i++) {
      let err = 0;
      for (let j = 0; j < wasm.frames[i].length; j++)
        err = Math.max(err, Math.abs(wasm.frames[i][j] - onnx.frames[i][j]));
      expect(err).toBeLessThan(1e-3);
    }
  }, 120_000);

  it("refuses a run without a budget, an unknown preset and a bad option, exit 2", () => {
    const none = trainCli(["--preset", "micro", "--out", join(root, "x")]);
    expect(none.code).toBe(2);
    expect(none.stderr.trim().split("\n").at(-1)).toBe(
      "framecost: train needs a budget: pass --minutes M or --steps N",
    );
    const bad = trainCli(["--preset", "huge", "--steps", "1"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown preset "huge"; known presets: micro, tiny, small');
    const share = trainCli(["--preset", "micro", "--steps", "1", "--p-uncond", "1.5"]);
    expect(share.code).toBe(2);
    expect(share.stderr.trim().split("\n").at(-1)).toBe(
      'framecost: --p-uncond must be a number between 0 and 0.9, got "1.5"',
    );
    const engine = trainCli(["--preset", "micro", "--steps", "1", "--backend", "gpu"]);
    expect(engine.code).toBe(2);
    expect(engine.stderr.trim().split("\n").at(-1)).toBe(
      'framecost: --backend must be one of auto, onnx, tensorflow, wasm, cpu, got "gpu"',
    );
    const floor = trainCli(["--preset", "micro", "--steps", "1", "--snr-floor", "5"]);
    expect(floor.code).toBe(2);
    expect(floor.stderr.trim().split("\n").at(-1)).toBe(
      "framecost: --snr-floor 5 needs a larger --min-snr-gamma (got 5): the weights clamp SNR to [floor, gamma]",
    );
    const batch = trainCli(["--preset", "micro", "--steps", "1", "--batch", "0"]);
    expect(batch.code).toBe(2);
    expect(batch.stderr.trim().split("\n").at(-1)).toBe(
      'framecost: --batch must be an integer >= 1, got "0"',
    );
  }, 60_000);
});
