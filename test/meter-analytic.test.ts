import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { tf } from "../src/engine/tf.ts";
import { analyticBreakdown, analyticFlopsPerCall } from "../src/meter/analytic.ts";
import { type KernelCounter, Meter, tfjsProfileCounter } from "../src/meter/meter.ts";
import { type ModelConfig, PRESETS } from "../src/model/config.ts";
import { VideoDiT } from "../src/model/dit.ts";
import { initParams } from "../src/model/params.ts";

beforeAll(async () => {
  await tf.setBackend("wasm");
  await tf.ready();
});

/** FLOPs per NFE counted from the kernels one forward pass of a random-weight model ran. */
async function countedFlops(
  cfg: ModelConfig,
  batch = 1,
  withContext = false,
  countKernels?: KernelCounter,
): Promise<number> {
  const model = new VideoDiT(cfg, initParams(cfg, 3));
  const frame = cfg.imageSize * cfg.imageSize * cfg.channels;
  const K = cfg.contextFrames;
  const context = withContext && K > 0 ? new Float32Array(batch * K * frame).fill(0.1) : null;
  const mask = context ? new Float32Array(batch * K).fill(1) : null;
  try {
    const meter = new Meter({ countKernels });
    const net = meter.wrap<null>((x, t) => model.predict(x, new Array(batch).fill(t), context, mask));
    await net(new Float32Array(batch * frame).fill(0.2), 500, null);
    const s = meter.summary();
    expect(s.uncounted).toEqual([]);
    return s.flopsPerNfe;
  } finally {
    model.dispose();
  }
}

describe("analytic FLOPs of the video DiT", () => {
  for (const name of Object.keys(PRESETS)) {
    it(`agrees with the counted kernels within 1% for preset ${name}`, async () => {
      const cfg = PRESETS[name];
      const counted = await countedFlops(cfg, 1, true);
      const analytic = analyticFlopsPerCall(cfg);
      expect(Math.abs(counted - analytic) / analytic).toBeLessThan(0.01);
      // the formula follows forwardTokens kernel for kernel: it is exact, not just within 1%
      expect(counted).toBe(analytic);
    });
  }

  it("counting through tf.profile gives the same number", async () => {
    const cfg = PRESETS.micro;
    expect(await countedFlops(cfg, 2, true, tfjsProfileCounter)).toBe(analyticFlopsPerCall(cfg, "flops", 2));
  });

  it("pins the tiny preset: 114,945,280 FLOPs per NFE (57,472,640 MACs)", () => {
    expect(analyticFlopsPerCall(PRESETS.tiny)).toBe(114_945_280);
    expect(analyticFlopsPerCall(PRESETS.tiny, "macs")).toBe(57_472_640);
  });

  it("is linear in the batch (one call of B frames = B calls of one frame)", () => {
    const cfg = PRESETS.tiny;
    expect(analyticFlopsPerCall(cfg, "flops", 4)).toBe(4 * analyticFlopsPerCall(cfg, "flops", 1));
  });

  it("attention's quadratic term grows with tokens squared; context frames only widen the patch embedding", () => {
    const base = PRESETS.micro;
    const a = analyticBreakdown(base);
    const finer = analyticBreakdown({ ...base, patch: base.patch / 2 }); // 4x the tokens
    expect(finer.attentionMatmuls).toBe(16 * a.attentionMatmuls);
    const moreContext = analyticBreakdown({ ...base, contextFrames: base.contextFrames + 2 });
    expect(moreContext.attentionMatmuls).toBe(a.attentionMatmuls);
    expect(moreContext.patchEmbed).toBeGreaterThan(a.patchEmbed);
    expect(moreContext.mlp).toBe(a.mlp);
  });

  it("property: counted = analytic for random depth, width, heads, patch and context frames", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }), // depth
        fc.integer({ min: 1, max: 4 }), // heads
        fc.constantFrom(4, 8), // head size (width = heads * head size, a multiple of 4)
        fc.constantFrom(2, 4), // patch
        fc.integer({ min: 0, max: 3 }), // context frames
        fc.constantFrom(1, 2), // frames per call
        async (depth, heads, headSize, patch, contextFrames, batch) => {
          const cfg: ModelConfig = {
            ...PRESETS.micro,
            name: "prop",
            imageSize: 8,
            patch,
            width: heads * headSize,
            depth,
            heads,
            contextFrames,
            freqDim: 8,
          };
          const counted = await countedFlops(cfg, batch, contextFrames > 0);
          expect(counted).toBe(analyticFlopsPerCall(cfg, "flops", batch));
        },
      ),
      { numRuns: 12, seed: 20250601 },
    );
  });

  it("leaves no tensors behind", async () => {
    const before = tf.memory().numTensors;
    await countedFlops(PRESETS.micro, 2, true);
    expect(tf.memory().numTensors).toBe(before);
  });
});
