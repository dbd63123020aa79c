import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attachGuide } from "../src/cli/guide.ts";
import {
  abarAt,
  ddimStepV,
  distillSteps,
  distillTargetV,
  guidedTeacher,
  roundSteps,
  setDistillTarget,
  setGuidedTarget,
} from "../src/diffusion/distill.ts";
import { DdimSampler } from "../src/diffusion/samplers/ddim.ts";
import { makeSchedule } from "../src/diffusion/schedule.ts";
import { makeTimesteps } from "../src/diffusion/timesteps.ts";
import { DEFAULT_BATCH_OPTIONS, type TrainBatch } from "../src/diffusion/train-batch.ts";
import { tf } from "../src/engine/tf.ts";
import { parseRunRecord } from "../src/meter/record.ts";
import { PRESETS, patchOutputDim, tokensOf } from "../src/model/config.ts";
import { prepareInputs, unpatchify, VideoDiT } from "../src/model/dit.ts";
import { loadWeights, saveWeights } from "../src/model/io.ts";
import { initParams } from "../src/model/params.ts";
import { distill } from "../src/run/distill.ts";
import { Rng } from "../src/util/rng.ts";

const root = mkdtempSync(join(tmpdir(), "framecost-distill-"));
const teacherDir = join(root, "micro");
afterAll(() => rmSync(root, { recursive: true, force: true }));
const cfg = PRESETS.micro;
// random weights everywhere (fresh adaLN-Zero weights would make every output 0); the guide is another draw
const noisy = (seed: number) => {
  const rng = new Rng(seed);
  return initParams(cfg, 3).map((v) => v + 0.05 * rng.normal());
};
beforeAll(async () => {
  await tf.setBackend("wasm");
  saveWeights(teacherDir, cfg, noisy(11));
  saveWeights(join(root, "weaker"), cfg, noisy(12));
  attachGuide(teacherDir, join(root, "weaker"), { weight: 2, fromT: 800, frames: "all" });
});

const schedule = makeSchedule("cosine", 1000);
const A = (t: number) => abarAt(schedule.alphasCumprod, t);

describe("distillation target", () => {
  it("one student DDIM step with the target lands where two teacher DDIM steps land (the samplers' own DDIM)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 2, 4, 8, 16),
        fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 33, maxLength: 33 }),
        (n, vs) => {
          // a teacher whose v depends on the sample and the call, so nothing cancels by accident
          const teacherV = (z: number, call: number) => 0.3 * z + vs[call % vs.length];
          const teacher = new DdimSampler(schedule, { predictionType: "v" });
          const student = new DdimSampler(schedule, { predictionType: "v" });
          teacher.setTimesteps(2 * n);
          student.setTimesteps(n);
          const steps = distillSteps(1000, n);
          expect(steps.map((s) => s.t)).toEqual(student.timesteps);
          let zt: Float32Array = new Float32Array([vs[0]]);
          let zs: Float32Array = new Float32Array([vs[0]]);
          for (let j = 0; j < n; j++) {
            const z0 = zs[0];
            for (const k of [2 * j, 2 * j + 1]) {
              const v = new Float32Array([teacherV(zt[0], k)]);
              zt = teacher.step(v, teacher.timesteps[k], zt).prevSample;
            }
            // the target from the teacher's two steps, recomputed in float64 by distill.ts's own DDIM
            const s = steps[j];
            const z1 = ddimStepV(z0, teacherV(z0, 2 * j), A(s.t), A(s.mid));
            const z2 = ddimStepV(z1, teacherV(z1, 2 * j + 1), A(s.mid), A(s.next));
            const target = distillTargetV(z0, z2, A(s.t), A(s.next));
            zs = student.step(new Float32Array([target]), s.t, zs).prevSample;
            expect(zs[0]).toBeCloseTo(zt[0], 3);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("on a batch: the guided micro teacher's two steps, with each sample's own context, as the sampler takes them", async () => {
    const B = 3;
    const n = cfg.imageSize * cfg.imageSize * cfg.channels;
    const K = cfg.contextFrames;
    const rng = new Rng(4);
    const x = rng.normals(B * n);
    const ctx = rng.normals(B * K * n).map((v) => 0.5 * v);
    const mask = [0, 0, 1, 0, 1, 1]; // no context, partial context, full context
    const t = new Float64Array(B).fill(999);
    const batch: TrainBatch = {
      inputs: prepareInputs(cfg, B, x, ctx, mask, t),
      target: new Float32Array(tokensOf(cfg) * B * patchOutputDim(cfg)),
      rowWeight: new Float32Array(tokensOf(cfg) * B),
      abar: Float64Array.from(t, A),
      t,
      selfCond: new Uint8Array(B),
    };
    const main = new VideoDiT(cfg, loadWeights(teacherDir).flat);
    const guide = new VideoDiT(cfg, loadWeights(join(teacherDir, "guide")).flat);
    const run = async (net: VideoDiT, inputs: Parameters<VideoDiT["forwardPrepared"]>[0]) =>
      (await net.forwardPrepared(inputs).data()) as Float32Array;
    const nets = new Map([
      [loadWeights(teacherDir).flat, main],
      [loadWeights(join(teacherDir, "guide")).flat, guide],
    ]);
    const [mainFlat, guideFlat] = [...nets.keys()];
    const teacher = guidedTeacher(cfg, (flat, inputs) => run(nets.get(flat)!, inputs), mainFlat, guideFlat, {
      weight: 2,
      fromT: 800,
    });
    // a 2-step student from the 4-step teacher: 999 -> 749 -> 499; the guide acts at 999 only (t >= 800)
    const steps = distillSteps(1000, 2);
    await setDistillTarget(cfg, schedule.alphasCumprod, batch, steps, teacher);
    const target = unpatchify(cfg, B, batch.target);
    for (let b = 0; b < B; b++) {
      const frame = x.slice(b * n, (b + 1) * n);
      const c = ctx.slice(b * K * n, (b + 1) * K * n);
      const m = mask.slice(b * K, (b + 1) * K);
      const tSampler = new DdimSampler(schedule, { predictionType: "v" });
      tSampler.setTimesteps(4);
      let z: Float32Array = frame;
      for (const [k, ts] of [999, 749].entries()) {
        const d = await main.predict(z, [ts], c, m);
        if (ts >= 800) {
          const g = await guide.predict(z, [ts], c, m);
          for (let i = 0; i < d.length; i++) d[i] += 2 * (d[i] - g[i]);
        }
        z = tSampler.step(d, tSampler.timesteps[k], z).prevSample;
      }
      const sSampler = new DdimSampler(schedule, { predictionType: "v" });
      sSampler.setTimesteps(2);
      const one = sSampler.step(target.slice(b * n, (b + 1) * n), 999, frame).prevSample;
      let worst = 0;
      for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(one[i] - z[i]));
      expect(worst).toBeLessThan(1e-4);
    }
    main.dispose();
    guide.dispose();
  });

  it("rounds halve the steps; step counts that do not halve evenly are refused with the fix", () => {
    expect(roundSteps(16, 1)).toEqual([8, 4, 2, 1]);
    expect(roundSteps(16, 4)).toEqual([8, 4]);
    expect(() => roundSteps(12, 4)).toThrow(
      "distillation halves the steps each round: --teacher-steps 12 must be --steps 4 times a power of two (e.g. --teacher-steps 16 --steps 4)",
    );
    // trailing spacing nests: the student's grid is every second timestep of the teacher's, for any T and n
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 4000 }), fc.integer({ min: 1, max: 2000 }), (T, k) => {
        const n = 1 + (k % Math.floor(T / 2));
        const steps = distillSteps(T, n);
        expect(steps.map((s) => s.t)).toEqual(makeTimesteps("trailing", T, n));
        expect(steps.at(-1)?.next).toBe(-1);
      }),
    );
  });
});

function cli(args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    encoding: "utf8",
    timeout: 120_000,
  });
}

describe("distill rounds", () => {
  /** what every micro run here trains with: a few steps of batch 4 on both workers */
  const MICRO_TRAINING = {
    batch: 4,
    workers: 2,
    lr: 1e-3,
    warmupSteps: 2,
    emaDecay: 0.9,
    seed: 0,
    backend: "onnx",
    batchOptions: { ...DEFAULT_BATCH_OPTIONS, snrFloor: 1 },
    dtype: "bfloat16" as const,
  };

  it("runs a guided micro round, stops at a checkpoint, resumes it, then runs the next round from its student", async () => {
    const ckpt = join(root, "ckpt");
    const out = join(root, "micro-{steps}step");
    const base = {
      teacherDir,
      teacherSteps: 4,
      out,
      checkpointDir: ckpt,
      roundSteps: 6,
      ...MICRO_TRAINING,
    };
    let progress = 0;
    const starts: Array<[number, number]> = [];
    const stopped = await distill({
      ...base,
      steps: 2,
      onRoundStart: (r) => starts.push([r.steps, r.fromStep]),
      onProgress: () => progress++,
      shouldStop: () => progress >= 3,
    });
    expect(stopped.stopped).toBe(true);
    expect(stopped.rounds).toEqual([]);
    expect(existsSync(join(ckpt, "round-2step", "checkpoint.bin"))).toBe(true);
    expect(existsSync(join(root, "micro-2step"))).toBe(false);
    const done = await distill({
      ...base,
      steps: 2,
      onRoundStart: (r) => starts.push([r.steps, r.fromStep]),
    });
    expect(done.stopped).toBe(false);
    expect(
      done.rounds.map((r) => [r.teacherSteps, r.steps, r.trainSteps, r.guidance?.weight ?? null]),
    ).toEqual([[4, 2, 6, 2]]);
    // the next round skips the finished one and distils its (unguided) student
    const next = await distill({
      ...base,
      steps: 1,
      onRoundStart: (r) => starts.push([r.steps, r.fromStep]),
    });
    expect(starts).toEqual([
      [2, 0],
      [2, 3],
      [1, 0],
    ]);
    expect(next.rounds.map((r) => [r.teacherSteps, r.steps, r.guidance])).toEqual([
      [4, 2, { weight: 2, fromT: 800 }],
      [2, 1, null],
    ]);
    const student = loadWeights(join(root, "micro-2step"), cfg);
    expect(student.manifest.dtype).toBe("bfloat16");
    expect(student.manifest.sampling).toEqual({ sampler: "ddim", steps: 2 });
    expect(student.manifest.guidance).toBeUndefined();
    const sessions = student.manifest.training?.sessions as Array<{ fromStep: number; toStep: number }>;
    expect(sessions.map((s) => [s.fromStep, s.toStep])).toEqual([
      [0, 3],
      [3, 6],
    ]);
    // the student moved off its teacher
    const teacher = loadWeights(teacherDir).flat;
    expect(student.flat.some((v, i) => Math.abs(v - teacher[i]) > 1e-3)).toBe(true);
    expect(JSON.parse(readFileSync(join(ckpt, "distill.json"), "utf8")).rounds.length).toBe(2);
  }, 120_000);

  it("--guidance-only: one round at every timestep whose target is the guided teacher's prediction itself", async () => {
    // the target a worker sets: D + w (D - G) on the samples at t >= fromT, D elsewhere
    const batch = {
      inputs: { batch: 2 },
      t: Float64Array.from([900, 100]),
      target: new Float32Array(2 * patchOutputDim(cfg) * tokensOf(cfg)),
    } as unknown as TrainBatch;
    const d = Float32Array.from(batch.target, (_, i) => Math.sin(i));
    const g = Float32Array.from(batch.target, (_, i) => Math.cos(i));
    const teacher = guidedTeacher(
      cfg,
      async (flat) => (flat[0] === 1 ? d.slice() : g.slice()),
      Float32Array.of(1),
      Float32Array.of(0),
      { weight: 2, fromT: 800 },
    );
    await setGuidedTarget(batch, teacher);
    const Q = patchOutputDim(cfg);
    for (let i = 0; i < batch.target.length; i++) {
      const guided = Math.floor(i / Q) % 2 === 0;
      expect(batch.target[i]).toBeCloseTo(guided ? d[i] + 2 * (d[i] - g[i]) : d[i], 6);
    }
    // a real micro run: one round, a student sampling like the teacher with no guide
    const out = join(root, "micro-guided");
    const r = await distill({
      teacherDir,
      teacherSteps: 4,
      steps: 1,
      guidanceOnly: { sampling: { sampler: "ddpm", steps: 20 } },
      out,
      checkpointDir: join(root, "ckpt-guided"),
      roundSteps: 3,
      ...MICRO_TRAINING,
    });
    expect(r.rounds.map((x) => [x.teacherSteps, x.steps, x.trainSteps, x.guidance, x.outDir])).toEqual([
      [0, 0, 3, { weight: 2, fromT: 800 }, out],
    ]);
    const student = loadWeights(out, cfg);
    expect(student.manifest.sampling).toEqual({ sampler: "ddpm", steps: 20 });
    expect(student.manifest.guidance).toBeUndefined();
    expect(student.manifest.training).toHaveProperty(
      "distillation.method",
      expect.stringMatching(/^guidance distillation \(Meng et al. 2023, stage one\)/),
    );
    // an unguided teacher has no guidance to distil
    await expect(
      distill({
        ...{ teacherDir: join(root, "weaker"), teacherSteps: 4, steps: 1, out, roundSteps: 1 },
        ...{ checkpointDir: join(root, "ckpt-x"), ...MICRO_TRAINING },
        guidanceOnly: { sampling: { sampler: "ddpm", steps: 20 } },
      }),
    ).rejects.toThrow(/--guidance-only distils a guided teacher, and .*weaker is unguided here/);
  }, 120_000);

  it("generate --model on a student folder samples with its own sampler and steps, unguided", () => {
    const dir = join(root, "micro-1step");
    expect(existsSync(dir)).toBe(true);
    const r = cli([
      ...["generate", "--model", dir, "--frames", "1", "--backend", "wasm"],
      ...["--out", join(root, "gen"), "--json"],
    ]);
    expect(r.status).toBe(0);
    const rec = parseRunRecord(r.stdout, "stdout");
    expect([rec.sampler.name, rec.sampler.steps, rec.sampler.nfePerFrame, rec.sampler.guidance]).toEqual([
      "ddim",
      1,
      1,
      null,
    ]);
    // given on the command line, the user's choice wins
    const mine = cli([
      ...["generate", "--model", dir, "--frames", "1", "--backend", "wasm", "--steps", "3"],
      ...["--out", join(root, "gen3"), "--json"],
    ]);
    expect(parseRunRecord(mine.stdout, "stdout").sampler.steps).toBe(3);
  }, 120_000);

  it("refuses a budgetless run and a checkpoint folder of another teacher, one line, exit 2", () => {
    const none = cli(["distill", "--teacher", teacherDir, "--checkpoint-dir", join(root, "x")]);
    expect(none.status).toBe(2);
    expect(none.stderr.trim().split("\n").at(-1)).toBe(
      "framecost: distill needs a budget per round: pass --round-minutes M or --round-steps N",
    );
    const other = join(root, "other");
    saveWeights(other, cfg, noisy(13));
    const clash = cli([
      ...["distill", "--teacher", other, "--checkpoint-dir", join(root, "ckpt")],
      ...["--teacher-steps", "4", "--steps", "2", "--round-steps", "1"],
    ]);
    expect(clash.status).toBe(2);
    expect(clash.stderr.trim().split("\n").at(-1)).toBe(
      `framecost: ${join(root, "ckpt")} holds a distillation of ${teacherDir} from 4 steps at guidance 2, not of ${other} from 4 at guidance 0; use another --checkpoint-dir or remove it`,
    );
    // the same teacher at another guidance weight is another distillation
    const weight = cli([
      ...["distill", "--teacher", teacherDir, "--checkpoint-dir", join(root, "ckpt")],
      ...["--teacher-steps", "4", "--steps", "2", "--round-steps", "1", "--guidance", "1"],
    ]);
    expect(weight.status).toBe(2);
    expect(weight.stderr.trim().split("\n").at(-1)).toBe(
      `framecost: ${join(root, "ckpt")} holds a distillation of ${teacherDir} from 4 steps at guidance 2, not of ${teacherDir} from 4 at guidance 1; use another --checkpoint-dir or remove it`,
    );
  }, 60_000);
});
