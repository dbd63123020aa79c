import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { getGpu, shippedCatalog } from "../src/cost/catalog.ts";
import { KNOWN_TRANSFORMER_CLASSES, readTransformerConfig, readVaeConfig } from "../src/cost/model-config.ts";
import { CONFIG_PRESETS, configShape, modelShape, shapeFromConfig } from "../src/cost/models.ts";
import { REPORTED_RUNS } from "../src/cost/published.ts";
import { evaluateScenario } from "../src/cost/scenarios.ts";
import { nfeFlops, textEncoderFlops, tokenGrid, VIDEO_PRESETS, vaeDecoderFlops } from "../src/cost/shapes.ts";

const FIX = "test/fixtures/model-configs";
const tmp = mkdtempSync(join(tmpdir(), "framecost-config-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const cat = shippedCatalog();
const json = (path: string) => JSON.parse(readFileSync(path, "utf8"));
const native = (id: string) => {
  const d = modelShape(id).defaults;
  return { width: d.width, height: d.height, frames: d.frames };
};

describe("presets built from the shipped config files", () => {
  it("ships the eight presets, each with its config's source and native setting", () => {
    expect(CONFIG_PRESETS.map((p) => p.id)).toEqual([
      "wan2.1-14b",
      "wan2.1-1.3b",
      "hunyuanvideo",
      "cogvideox-5b",
      "cogvideox-2b",
      "mochi-1",
      "ltx-video",
      "open-sora-2.0",
    ]);
    for (const p of CONFIG_PRESETS) {
      const s = modelShape(p.id);
      expect(s.source).toContain(`src/cost/configs/${p.id}/`);
      expect(s.source).toContain(p.native.source);
      expect(s.defaults).toEqual({
        width: p.native.width,
        height: p.native.height,
        frames: p.native.frames,
        steps: p.native.steps,
        cfg: p.native.cfg,
        fps: p.native.fps,
      });
    }
  });

  // the hand-entered shapes (shapes.ts VIDEO_PRESETS) were typed from READMEs before the configs
  for (const id of Object.keys(VIDEO_PRESETS)) {
    it(`${id}: the config-built shape gives the hand-entered FLOPs`, () => {
      const hand = VIDEO_PRESETS[id];
      const built = modelShape(id);
      const clip = native(id);
      expect(tokenGrid(built, clip)).toEqual(tokenGrid(hand, clip));
      const a = nfeFlops(built, clip);
      const b = nfeFlops(hand, clip);
      expect(a.linear).toBe(b.linear);
      expect(a.attention).toBe(b.attention);
      expect(a.crossAttention).toBe(b.crossAttention);
      // CogVideoX: the timestep MLP and adaLN read time_embed_dim 512 from the config where the hand
      // entry used 256; 256 x 3072 MACs more out of 1.7e14 (5e-9); everything else is identical
      expect(Math.abs(a.total / b.total - 1)).toBeLessThan(1e-8);
      expect(textEncoderFlops(built.textEncoder!)).toBe(textEncoderFlops(hand.textEncoder!));
      const g = tokenGrid(built, clip);
      expect(vaeDecoderFlops(built.vae!, g.latentFrames, g.latentHeight, g.latentWidth)).toBe(
        vaeDecoderFlops(hand.vae!, g.latentFrames, g.latentHeight, g.latentWidth),
      );
    });
  }

  it("CogVideoX-2B at 720x480x49: FLOPs per step by hand", () => {
    // 13 latent frames x (60/2) x (90/2) patches, joint attention with 226 T5 tokens
    const L = 30;
    const D = 30 * 64;
    const F = 4 * D;
    const N = 13 * 30 * 45;
    const S = N + 226;
    const macs =
      L * (4 * S * D * D + 2 * S * D * F) + // QKV + out + 2-matrix FFN on every token
      L * 2 * S * S * D + // QK^T and AV
      N * 4 * 16 * D + // patch embedding (2x2 patch of 16 channels)
      N * D * 4 * 16 + // final projection
      2 * D * D + // final adaLN
      512 * D +
      D * D + // timestep MLP from time_embed_dim 512
      L * 6 * D * D + // adaLN per block
      226 * 4096 * D; // T5 projection
    const f = nfeFlops(modelShape("cogvideox-2b"), native("cogvideox-2b"));
    expect(f.tokens).toBe(17550);
    expect(f.total).toBe(2 * macs);
    // CFG: two calls per step
    expect(2 * f.total).toBe(239995896791040);
  });

  it("LTX-Video 2B at 768x512x121: FLOPs per step by hand", () => {
    // 32x32x8 compression, patch 1: 16 latent frames x 16 x 24 tokens; cross-attention to 128 T5 tokens
    const L = 28;
    const D = 32 * 64;
    const N = 16 * 16 * 24;
    const Nt = 128;
    const macs =
      L * (4 * N * D * D + 2 * N * D * 4 * D) +
      L * 2 * N * N * D +
      L * (2 * N * D * D + 2 * Nt * D * D + 2 * N * Nt * D) + // q, out on video; k, v on text; two products
      N * 128 * D + // proj_in
      N * D * 128 + // proj_out
      2 * D * D +
      256 * D +
      D * D + // timestep MLP
      6 * D * D + // AdaLayerNormSingle: one modulation for all blocks
      Nt * (4096 * D + D * D); // caption projection
    const f = nfeFlops(modelShape("ltx-video"), native("ltx-video"));
    expect(f.tokens).toBe(6144);
    expect(f.total).toBe(2 * macs);
    expect(2 * f.total).toBe(58224877240320);
  });

  it("Mochi 1: 44,520 visual tokens at 848x480x163 (the README's count), SwiGLU FFN 8192", () => {
    const s = modelShape("mochi-1");
    expect(s.vaeStride).toEqual([6, 8, 8]);
    expect(s.ffn).toBe(8192);
    expect(s.gatedFfn).toBe(true);
    expect(tokenGrid(s, native("mochi-1")).tokens).toBe(44520);
  });

  it("Open-Sora 2.0: 57 blocks on 2x2-packed tokens, three network calls per guided step", () => {
    const s = modelShape("open-sora-2.0");
    expect([s.depth, s.width, s.inChannels, s.patch]).toEqual([57, 3072, 16, [1, 2, 2]]);
    const sc = evaluateScenario({
      shape: s,
      clip: native("open-sora-2.0"),
      fps: 24,
      steps: 50,
      cfg: true,
      gpu: getGpu(cat, "h100-sxm"),
      catalog: cat,
    });
    expect(sc.nfe).toBe(150);
    expect(sc.nfePerStep).toBe(3);
    expect(sc.networkFlops).toBe(150 * sc.flopsPerNfe);
    // two prompts encoded (positive and negative), as with two-call guidance
    expect(sc.oncePerClip.textEncoderFlops).toBe(2 * textEncoderFlops(s.textEncoder!));
  });
});

describe("published run times (docs/cost.md's table, scripts/cost-table.ts)", () => {
  it("every reported run names a shipped preset and a catalog GPU, and fits its VAE and patch", () => {
    for (const r of REPORTED_RUNS) {
      expect(CONFIG_PRESETS.some((p) => p.id === r.model)).toBe(true);
      const s = evaluateScenario({
        shape: modelShape(r.model),
        clip: { width: r.width, height: r.height, frames: r.frames },
        fps: 24,
        steps: r.steps,
        cfg: r.cfg,
        gpu: getGpu(cat, r.gpu),
        catalog: cat,
        gpus: r.gpus,
        priceUsdPerHour: 0,
      });
      expect(s.wallSeconds).toBeGreaterThan(0);
    }
  });

  it("Wan2.1 T2V-14B on one H100: 1,892.5 s predicted against the README's 1,837.9 s (not an MFU input)", () => {
    const r = REPORTED_RUNS.find((x) => x.id === "wan2.1-14b-h100-sxm-x1")!;
    const s = evaluateScenario({
      shape: modelShape("wan2.1-14b"),
      clip: { width: r.width, height: r.height, frames: r.frames },
      fps: 16,
      steps: r.steps,
      cfg: r.cfg,
      gpu: getGpu(cat, r.gpu),
      catalog: cat,
    });
    expect(r.seconds).toBe(1837.9);
    expect(s.wallSeconds / r.seconds).toBeCloseTo(1.0297, 3);
  });
});

describe("--config FILE", () => {
  it("a transformer config alone takes the class's VAE compression (the same as the shipped VAE config)", () => {
    for (const [file, id] of [
      ["ltx-video-2b.transformer.json", "ltx-video"],
      ["cogvideox-2b.transformer.json", "cogvideox-2b"],
    ] as const) {
      const s = configShape(join(FIX, file));
      const p = modelShape(id);
      expect(s.vaeStride).toEqual(p.vaeStride);
      expect(nfeFlops(s, native(id)).total).toBe(nfeFlops(p, native(id)).total);
      expect(s.defaults).toEqual(p.defaults);
      expect(s.id).toBe("config");
    }
  });

  it("reads each VAE class's compression the way its diffusers code computes it", () => {
    const at = (id: string) => json(`src/cost/configs/${id}/vae.json`);
    const f = (raw: unknown) => {
      const v = readVaeConfig(raw, "v.json");
      return [v.temporal, v.spatial, v.latentChannels];
    };
    expect(f(at("wan2.1-14b"))).toEqual([4, 8, 16]);
    expect(f(at("hunyuanvideo"))).toEqual([4, 8, 16]);
    expect(f(at("cogvideox-5b"))).toEqual([4, 8, 16]);
    expect(f(at("mochi-1"))).toEqual([6, 8, 12]);
    expect(f(json(join(FIX, "mochi.vae.json")))).toEqual([6, 8, 12]);
    expect(f(at("ltx-video"))).toEqual([8, 32, 128]);
    // LTX-Video 0.9.1's VAE: spatio_temporal_scaling stays 3 of 4 -> 8 x 32; an explicit ratio wins
    expect(f({ _class_name: "AutoencoderKLLTXVideo", spatial_compression_ratio: 64 })).toEqual([8, 64, 128]);
    expect(f({ _class_name: "AutoencoderKLWan", temperal_downsample: [false, false, true] })).toEqual([
      2, 8, 16,
    ]);
  });

  it("flags override the VAE config; extra config fields are ignored", () => {
    const raw = { ...json(join(FIX, "cogvideox-2b.transformer.json")), _diffusers_version: "x", foo: [1] };
    const s = shapeFromConfig(raw, "c.json", { temporal: 8, spatial: 16 });
    expect(s.vaeStride).toEqual([8, 16, 16]);
    expect(s.source).toContain("--vae-temporal / --vae-spatial");
  });

  it("unknown classes get one line listing the known ones", () => {
    expect(KNOWN_TRANSFORMER_CLASSES).toEqual([
      "WanTransformer3DModel",
      "HunyuanVideoTransformer3DModel",
      "CogVideoXTransformer3DModel",
      "MochiTransformer3DModel",
      "LTXVideoTransformer3DModel",
      "MMDiTModel",
    ]);
    expect(() => readTransformerConfig({ _class_name: "FluxTransformer2DModel" }, "c.json")).toThrow(
      'c.json: _class_name "FluxTransformer2DModel" is not a known transformer class; known: WanTransformer3DModel, HunyuanVideoTransformer3DModel, CogVideoXTransformer3DModel, MochiTransformer3DModel, LTXVideoTransformer3DModel, MMDiTModel',
    );
    expect(() => readTransformerConfig({ num_layers: 3 }, "c.json")).toThrow(
      "c.json: _class_name is missing; known transformer classes: WanTransformer3DModel,",
    );
    expect(() => readTransformerConfig([1, 2], "c.json")).toThrow(
      "c.json: not a JSON object; pass the transformer config.json",
    );
    expect(() => readVaeConfig({ _class_name: "AutoencoderKL" }, "v.json")).toThrow(
      'v.json: _class_name "AutoencoderKL" is not a known VAE class; known: AutoencoderKLWan, AutoencoderKLHunyuanVideo, AutoencoderKLCogVideoX, AutoencoderKLMochi, AutoencoderKLLTXVideo',
    );
  });

  it("malformed configs name the field, what it must be and the value seen", () => {
    const wan = json("src/cost/configs/wan2.1-1.3b/transformer.json");
    const { num_layers: _, ...noLayers } = wan;
    expect(() => readTransformerConfig(noLayers, "c.json")).toThrow(
      "c.json: num_layers is missing (WanTransformer3DModel needs it for the FLOP model)",
    );
    expect(() => readTransformerConfig({ ...wan, num_layers: "30" }, "c.json")).toThrow(
      'c.json: num_layers must be an integer >= 1, got "30"',
    );
    expect(() => readTransformerConfig({ ...wan, ffn_dim: 89.5 }, "c.json")).toThrow(
      "c.json: ffn_dim must be an integer >= 1, got 89.5",
    );
    expect(() => readTransformerConfig({ ...wan, patch_size: 2 }, "c.json")).toThrow(
      "c.json: patch_size must be a list of 3 integers [t, h, w], got 2",
    );
    expect(() => readTransformerConfig({ ...wan, patch_size: [1, 2, 0] }, "c.json")).toThrow(
      "c.json: patch_size[2] must be an integer >= 1, got 0",
    );
    expect(() => readTransformerConfig({ ...wan, image_dim: 1280 }, "c.json")).toThrow(
      "c.json: image_dim is 1280: an image-to-video Wan config; framecost models text-to-video only (pass a T2V config)",
    );
    const hy = json("src/cost/configs/hunyuanvideo/transformer.json");
    expect(() => readTransformerConfig({ ...hy, mlp_ratio: -4 }, "c.json")).toThrow(
      "c.json: mlp_ratio must be a number > 0, got -4",
    );
  });

  it("a VAE of another model is refused: its latent channels do not match", () => {
    const ltx = json(join(FIX, "ltx-video-2b.transformer.json"));
    const wanVae = json("src/cost/configs/wan2.1-14b/vae.json");
    expect(() => shapeFromConfig(ltx, "t.json", { vaeConfig: { raw: wanVae, where: "v.json" } })).toThrow(
      "v.json: the VAE has 16 latent channels but t.json takes 128 per latent voxel; pass the VAE of the same model (or --vae-temporal / --vae-spatial)",
    );
  });

  it("the CLI prints one line and exits 2 for a bad config; --json runs a good one", () => {
    const bad = join(tmp, "bad.json");
    writeFileSync(bad, JSON.stringify({ _class_name: "MochiTransformer3DModel", patch_size: 2 }));
    const TSX = join(process.cwd(), "node_modules", ".bin", "tsx");
    const run = (args: string[]) =>
      spawnSync(TSX, ["src/cli/main.ts", ...args], {
        encoding: "utf8",
        env: { ...process.env, FRAMECOST_DEBUG: "" },
        timeout: 120_000,
      });
    const r = run(["cost", "--config", bad]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(
      `framecost: --config ${bad}: num_attention_heads is missing (MochiTransformer3DModel needs it for the FLOP model)`,
    );
    const ok = run([
      "cost",
      "--config",
      join(FIX, "ltx-video-2b.transformer.json"),
      "--steps",
      "20",
      "--json",
    ]);
    expect(ok.status).toBe(0);
    const j = JSON.parse(ok.stdout);
    expect(j.nfe).toBe(40);
    expect(j.flopsPerNfe).toBe(nfeFlops(modelShape("ltx-video"), native("ltx-video")).total);
  });
});
