import { describe, expect, it } from "vitest";
import { makeGaussianDenoiser } from "../src/diffusion/ideal.ts";
import { makeRng } from "../src/diffusion/rng.ts";
import { type StepInfo, sampleFrame } from "../src/diffusion/sample.ts";
import { makeSampler } from "../src/diffusion/samplers/index.ts";
import { makeSchedule } from "../src/diffusion/schedule.ts";

const sch = makeSchedule("cosine");
const model = makeGaussianDenoiser(0, 0.5, sch, "v");

describe("sampleFrame", () => {
  it("calls the model once per timestep with the sampler's t and passes the context through", async () => {
    const seen: Array<[number, string]> = [];
    const sampler = makeSampler("heun", sch, { predictionType: "v" });
    const r = await sampleFrame({
      model: async (x, t, ctx: { tag: string }) => {
        seen.push([t, ctx.tag]);
        return model(x, t, ctx);
      },
      context: { tag: "prev-frames" },
      sampler,
      steps: 3,
      shape: 8,
      rng: makeRng(1),
    });
    expect(seen).toEqual([
      [990, "prev-frames"], // Heun's first timestep capped at sigma 80
      [666, "prev-frames"],
      [666, "prev-frames"],
      [332, "prev-frames"],
      [332, "prev-frames"],
    ]);
    expect(r.nfe).toBe(5);
    expect(r.steps).toBe(3);
    expect(r.stopped).toBe(false);
  });

  it("reports steps and NFEs after every call (Heun: 2 NFEs per step, 1 for the last)", async () => {
    const infos: Array<Omit<StepInfo, "predX0">> = [];
    await sampleFrame({
      model,
      context: null,
      sampler: makeSampler("heun", sch, { predictionType: "v" }),
      steps: 3,
      shape: 4,
      rng: makeRng(2),
      onStep: ({ predX0: _p, ...rest }) => infos.push(rest),
    });
    expect(infos.map((i) => [i.step, i.nfe, i.t])).toEqual([
      [0, 1, 990],
      [1, 2, 666],
      [1, 3, 666],
      [2, 4, 332],
      [3, 5, 332],
    ]);
    expect(infos.every((i) => i.totalSteps === 3 && i.totalNfe === 5)).toBe(true);
  });

  it("hands onStep what each call saw (x_t, the model's input) and the sample after it; the last is the result", async () => {
    const inputs: Float32Array[] = [];
    const infos: StepInfo[] = [];
    const r = await sampleFrame({
      model: async (x, t, ctx) => {
        inputs.push(x);
        return model(x, t, ctx);
      },
      context: null,
      sampler: makeSampler("euler", sch, { predictionType: "v" }),
      steps: 4,
      shape: 6,
      rng: makeRng(3),
      onStep: (info) => infos.push(info),
    });
    expect(infos.map((i) => i.xt)).toEqual(inputs);
    // euler integrates in sigma space: x_t is the sample scaled back, so the first one has unit variance, not sigma's
    expect(Math.max(...infos[0].xt.map(Math.abs))).toBeLessThan(5);
    expect(infos.at(-1)!.sample).toEqual(r.sample);
    expect(infos.at(-1)!.predX0).toEqual(r.predX0);
  });

  it("same seed, same bytes; another seed, another sample (stochastic sampler too)", async () => {
    const run = (seed: number) =>
      sampleFrame({
        model,
        context: null,
        sampler: makeSampler("ddpm", sch, { predictionType: "v" }),
        steps: 20,
        shape: 32,
        rng: makeRng(seed),
      });
    const a = await run(5);
    const b = await run(5);
    const c = await run(6);
    expect(Buffer.from(a.sample.buffer).equals(Buffer.from(b.sample.buffer))).toBe(true);
    expect(Buffer.from(a.sample.buffer).equals(Buffer.from(c.sample.buffer))).toBe(false);
  });

  it("stops before the next call when asked, reporting what was done", async () => {
    let calls = 0;
    const r = await sampleFrame({
      model: async (x, t, c) => {
        calls++;
        return model(x, t, c);
      },
      context: null,
      sampler: makeSampler("euler", sch, { predictionType: "v" }),
      steps: 10,
      shape: 4,
      rng: makeRng(3),
      shouldStop: () => calls >= 4,
    });
    expect(r).toMatchObject({ stopped: true, nfe: 4, steps: 4 });
    expect(calls).toBe(4);
  });

  it("refuses a model output of the wrong size", async () => {
    await expect(
      sampleFrame({
        model: async () => new Float32Array(3),
        context: null,
        sampler: makeSampler("ddim", sch),
        steps: 2,
        shape: 4,
        rng: makeRng(0),
      }),
    ).rejects.toThrow("model returned 3 elements for an input of 4 at t=999");
  });

  it("works on a batch: elementwise samplers treat [B*numel] like one long sample", async () => {
    const one = await sampleFrame({
      model,
      context: null,
      sampler: makeSampler("dpmpp-2m", sch, { predictionType: "v" }),
      steps: 8,
      shape: 2 * 6,
      rng: makeRng(9),
    });
    expect(one.sample.length).toBe(12);
    expect(one.nfe).toBe(8);
  });
});
