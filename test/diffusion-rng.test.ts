import { describe, expect, it } from "vitest";
import { frameRng, makeRng } from "../src/diffusion/rng.ts";

describe("rng", () => {
  it("pins the first uniforms and normals of seed 42", () => {
    const r = makeRng(42);
    expect([r.next(), r.next(), r.next()]).toEqual([
      0.6011037519201636, 0.44829055899754167, 0.8524657934904099,
    ]);
    expect(Array.from(makeRng(42).normals(4))).toEqual([
      -0.9561622142791748, 0.32207024097442627, -0.27302610874176025, -0.4946727454662323,
    ]);
    expect(Array.from(frameRng(42, 3).normals(2))).toEqual([0.5798395872116089, 1.150109887123108]);
  });

  it("normals have mean ~0 and variance ~1", () => {
    const x = makeRng(1).normals(20000);
    let m = 0;
    let v = 0;
    for (const a of x) m += a / x.length;
    for (const a of x) v += (a - m) ** 2 / x.length;
    expect(Math.abs(m)).toBeLessThan(0.03);
    expect(Math.abs(v - 1)).toBeLessThan(0.03);
  });

  it("frame streams differ from each other and from the run's stream", () => {
    const a = frameRng(7, 0).normals(4);
    const b = frameRng(7, 1).normals(4);
    expect(Array.from(a)).not.toEqual(Array.from(b));
    expect(Array.from(a)).toEqual(Array.from(frameRng(7, 0).normals(4)));
  });
});
