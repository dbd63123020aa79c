import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PRESETS } from "../src/model/config.ts";
import { loadWeights, saveWeights } from "../src/model/io.ts";
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
});
