/**
 * The shipped model's quality on held-out clips, with a fixed seed on the
 * wasm backend (deterministic): the model card's claims, pinned.
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_EVALUATION, evaluateModel } from "../src/run/evaluate.ts";

// a lighter protocol than the model card's, so CI stays quick; same seed, same backend
const protocol = {
  ...DEFAULT_EVALUATION,
  clips: 32,
  longClips: 4,
  longFrames: 16,
  longSteps: 10,
  referenceClips: 48,
};

describe("shipped model quality (models/tiny)", () => {
  it("50-step frames are far closer to real frames than noise and than 1-step samples; long clips keep quality and move", async () => {
    const ev = await evaluateModel("models/tiny", protocol);
    const f = ev.firstFrame;
    const l = ev.longClip;
    // the claims
    expect(f.generated.swdPixels).toBeLessThan(f.noise.swdPixels / 3);
    expect(f.generated.swdPatches).toBeLessThan(f.noise.swdPatches / 3);
    expect(f.generated.swdPixels).toBeLessThan(f.oneStep.swdPixels / 2);
    expect(f.generated.paletteError).toBeLessThan(f.oneStep.paletteError / 2);
    expect(l.lastOverFirst).toBeLessThanOrEqual(2);
    expect(l.motionGenerated).toBeGreaterThan(l.motionReal / 4);
    // the figures, pinned (deterministic for this seed on wasm)
    expect(f.generated.swdPixels).toBeCloseTo(PIN.gen, 3);
    expect(f.oneStep.swdPixels).toBeCloseTo(PIN.oneStep, 3);
    expect(f.noise.swdPixels).toBeCloseTo(PIN.noise, 3);
    expect(l.lastOverFirst).toBeCloseTo(PIN.lastOverFirst, 2);
    // clean shapes or ragged blobs (quality/shapes.ts): the real frames' figures and the model's, pinned
    expect(f.shapes.real.compactness).toBeCloseTo(PIN.realCompactness, 3);
    expect(f.shapes.generated.compactness).toBeCloseTo(PIN.compactness, 3);
    expect(f.shapes.generated.specksPerFrame).toBeCloseTo(PIN.specks, 3);
  }, 300_000);

  it("its guide (models/tiny/guide, on by default) makes cleaner shapes than the network alone, from the same noises", async () => {
    // the guided figures are the first test's (pinned there); here the same first frames without guidance
    const alone = await evaluateModel("models/tiny", {
      ...protocol,
      longClips: 1,
      longFrames: 1,
      guidance: { weight: 0 },
    });
    const a = alone.firstFrame.shapes.generated;
    expect(PIN.compactness).toBeGreaterThan(a.compactness + 0.05);
    expect(a.compactness).toBeCloseTo(PIN.unguidedCompactness, 3);
    expect(a.specksPerFrame).toBeCloseTo(PIN.unguidedSpecks, 3);
  }, 300_000);
});

// measured with this protocol on the shipped weights (scripts/model-card.ts reports the larger protocol)
const PIN = {
  gen: 0.12359,
  oneStep: 0.41503,
  noise: 0.72206,
  lastOverFirst: 0.957,
  realCompactness: 0.66124,
  compactness: 0.65475,
  specks: 0.125,
  unguidedCompactness: 0.57913,
  unguidedSpecks: 0.5,
};
