import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { PRESETS } from "../src/model/config.ts";
import { fromBfloat16, loadWeights, saveWeights, toBfloat16 } from "../src/model/io.ts";
import { initParams } from "../src/model/params.ts";
import { UserError } from "../src/util/errors.ts";

const root = mkdtempSync(join(tmpdir(), "framecost-io-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function saved(name: string) {
  const dir = join(root, name);
  const flat = initParams(PRESETS.micro, 5).map((v, i) => v + i * 1e-6);
  saveWeights(dir, PRESETS.micro, flat, { steps: 1 });
  return { dir, flat };
}

describe("weight files", () => {
  it("round-trips exactly", () => {
    const { dir, flat } = saved("ok");
    const got = loadWeights(dir, PRESETS.micro);
    expect(got.flat).toEqual(flat);
    expect(got.config).toEqual(PRESETS.micro);
    expect(got.manifest.training).toEqual({ steps: 1 });
  });

  it("names a missing folder and how to fix it", () => {
    expect(() => loadWeights(join(root, "nope"))).toThrow(UserError);
    expect(() => loadWeights(join(root, "nope"))).toThrow(
      /model folder ".*nope" does not exist; pass --model DIR/,
    );
  });

  it("names a missing weights file", () => {
    const { dir } = saved("noweights");
    rmSync(join(dir, "weights.bin"));
    expect(() => loadWeights(dir)).toThrow(/weights\.bin is missing/);
  });

  it("names a corrupt manifest", () => {
    const { dir } = saved("badjson");
    writeFileSync(join(dir, "model.json"), "{ not json");
    expect(() => loadWeights(dir)).toThrow(/model\.json is not valid JSON/);
  });

  it("refuses a truncated weights file", () => {
    const { dir } = saved("truncated");
    const bytes = readFileSync(join(dir, "weights.bin"));
    writeFileSync(join(dir, "weights.bin"), bytes.subarray(0, 1000));
    expect(() => loadWeights(dir)).toThrow(
      /has 1000 bytes, but the "micro" model needs 202304: the file is truncated or corrupt/,
    );
  });

  it("refuses flipped bytes by checksum", () => {
    const { dir } = saved("flipped");
    const bytes = readFileSync(join(dir, "weights.bin"));
    bytes[10] ^= 0xff;
    writeFileSync(join(dir, "weights.bin"), bytes);
    expect(() => loadWeights(dir)).toThrow(/does not match the sha256 in model\.json: the file is corrupt/);
  });

  it("refuses weights of another preset by shape", () => {
    const { dir } = saved("otherpreset");
    expect(() => loadWeights(dir, PRESETS.tiny)).toThrow(
      /holds a "micro" model whose shapes do not fit preset "tiny" \(patch\.w: file has \[144,32\], preset "tiny" needs \[144,128\]\)/,
    );
  });

  it("bfloat16 files hold half the bytes and load within bfloat16's rounding", () => {
    const { flat } = saved("f32");
    const dir = join(root, "bf16");
    const m = saveWeights(dir, PRESETS.micro, flat, { steps: 1 }, { dtype: "bfloat16" });
    expect(m.dtype).toBe("bfloat16");
    expect(m.byteLength).toBe(flat.length * 2);
    const got = loadWeights(dir, PRESETS.micro).flat;
    let worst = 0;
    for (let i = 0; i < flat.length; i++)
      if (flat[i] !== 0) worst = Math.max(worst, Math.abs(got[i] - flat[i]) / Math.abs(flat[i]));
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThanOrEqual(2 ** -8);
  });

  it("refuses a dtype it cannot read, naming it", () => {
    const { dir } = saved("dtype");
    const path = join(dir, "model.json");
    const m = JSON.parse(readFileSync(path, "utf8"));
    writeFileSync(path, JSON.stringify({ ...m, dtype: "int8" }));
    expect(() => loadWeights(dir)).toThrow(
      /model\.json: dtype "int8" is not supported \(this framecost reads float32, bfloat16\)/,
    );
  });
});

describe("bfloat16", () => {
  it("rounds to nearest (ties to even): within half a unit of its 8-bit significand (2^-8 relative), exact on the way back", () => {
    fc.assert(
      fc.property(
        fc.float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(-1e30), max: Math.fround(1e30) }),
        (x) => {
          const f = new Float32Array([x]);
          const b = toBfloat16(f);
          const y = fromBfloat16(b)[0];
          expect(Math.abs(y - f[0])).toBeLessThanOrEqual(Math.abs(f[0]) * 2 ** -8 + 1e-40);
          expect(toBfloat16(new Float32Array([y]))[0]).toBe(b[0]);
        },
      ),
    );
    // ties go to the even significand: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7
    expect(fromBfloat16(toBfloat16(new Float32Array([1 + 2 ** -8])))[0]).toBe(1);
    expect(fromBfloat16(toBfloat16(new Float32Array([1 + 3 * 2 ** -8])))[0]).toBe(1 + 2 ** -6);
    expect(Number.isNaN(fromBfloat16(toBfloat16(new Float32Array([Number.NaN])))[0])).toBe(true);
  });
});
