import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findFfmpeg } from "../src/media/ffmpeg.ts";
import { writeAtomically } from "../src/media/files.ts";
import { contactSheet, frameToPng, frameToRgb, toByte } from "../src/media/frames.ts";
import { encodeVideo, inspectVideo } from "../src/media/video.ts";
import { UserError } from "../src/util/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "framecost-media-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A deterministic [h, w, 3] frame in [-1, 1] that changes with `t`. */
function frame(h: number, w: number, t: number): Float32Array {
  const f = new Float32Array(h * w * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      f[i] = (2 * x) / (w - 1) - 1; // red ramps left to right
      f[i + 1] = (2 * y) / (h - 1) - 1; // green ramps top to bottom
      f[i + 2] = ((x + y + t) % 4) / 1.5 - 1; // blue stripes move with t
    }
  }
  return f;
}

async function rawPixels(path: string) {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

describe("toByte", () => {
  it("maps [-1, 1] to 0..255, clamps, and turns NaN black", () => {
    expect([-1, 0, 1, -3, 7, Number.NaN, 0.5].map(toByte)).toEqual([0, 128, 255, 0, 255, 0, 191]);
  });

  it("is monotone and stays in 0..255", () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true }), fc.double({ noNaN: true }), (a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(toByte(lo)).toBeLessThanOrEqual(toByte(hi));
        expect(toByte(a)).toBeGreaterThanOrEqual(0);
        expect(toByte(a)).toBeLessThanOrEqual(255);
      }),
    );
  });
});

describe("frameToRgb", () => {
  it("upscales nearest-neighbour: every output pixel copies its source pixel", () => {
    const f = frame(3, 5, 0);
    const rgb = frameToRgb(f, 3, 5, 4); // [12, 20, 3]
    expect(rgb.length).toBe(12 * 20 * 3);
    for (let y = 0; y < 12; y++) {
      for (let x = 0; x < 20; x++) {
        for (let c = 0; c < 3; c++) {
          expect(rgb[(y * 20 + x) * 3 + c]).toBe(
            toByte(f[(Math.floor(y / 4) * 5 + Math.floor(x / 4)) * 3 + c]),
          );
        }
      }
    }
  });

  it("rejects a frame of the wrong length and a bad scale", () => {
    expect(() => frameToRgb(new Float32Array(10), 2, 2)).toThrow(
      new UserError("frame has 10 values, expected H*W*C = 2*2*3 = 12"),
    );
    expect(() => frameToRgb(frame(2, 2, 0), 2, 2, 1.5)).toThrow(
      new UserError("scale must be an integer >= 1, got 1.5"),
    );
  });
});

describe("frameToPng", () => {
  it("writes a PNG whose pixels are the frame's bytes, leaving no temporary file", async () => {
    const f = frame(6, 7, 1);
    const path = join(dir, "png", "one.png");
    await frameToPng(f, 6, 7, path, { scale: 3 });
    expect(readFileSync(path).subarray(0, 8)).toEqual(
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    );
    const px = await rawPixels(path);
    expect([px.width, px.height, px.channels]).toEqual([21, 18, 3]);
    expect(new Uint8Array(px.data)).toEqual(frameToRgb(f, 6, 7, 3));
    expect(readdirSync(join(dir, "png"))).toEqual(["one.png"]);
  });
});

describe("writeAtomically", () => {
  it("leaves neither the target nor a temporary file when writing fails", async () => {
    const target = join(dir, "atomic", "out.bin");
    await expect(
      writeAtomically(target, async (tmp) => {
        await sharp({ create: { width: 1, height: 1, channels: 3, background: "#000" } })
          .png()
          .toFile(tmp);
        throw new Error("disk full (simulated)");
      }),
    ).rejects.toThrow("disk full (simulated)");
    expect(readdirSync(join(dir, "atomic"))).toEqual([]);
  });
});

describe("contactSheet", () => {
  it("lays frames out row-major with gaps and label rows", async () => {
    const frames = [0, 1, 2, 3, 4].map((t) => frame(4, 6, t));
    const path = join(dir, "sheet.png");
    await contactSheet(frames, 4, 6, path, { cols: 3, scale: 2, gap: 5, labels: ["a", "b", "c", "d", "e"] });
    const px = await rawPixels(path);
    // width = gap + cols * (w*scale + gap) = 5 + 3 * 17; height = gap + rows * (h*scale + 14 + gap) = 5 + 2 * 27
    expect([px.width, px.height]).toEqual([56, 59]);
    // Frame 4 sits in row 1, column 1: its top-left pixel is at (5 + 17, 5 + 27).
    const at = (x: number, y: number) => [...px.data.subarray((y * 56 + x) * 3, (y * 56 + x) * 3 + 3)];
    expect(at(22, 32)).toEqual([...frameToRgb(frames[4], 4, 6).subarray(0, 3)]);
    expect(at(0, 0)).toEqual([0x20, 0x20, 0x20]); // background in the gap
  });

  it("rejects a label count that does not match and an empty list", async () => {
    const path = join(dir, "bad-sheet.png");
    await expect(contactSheet([frame(2, 2, 0)], 2, 2, path, { labels: [] })).rejects.toThrow(
      new UserError("contact sheet got 0 labels for 1 frames; give one per frame"),
    );
    await expect(contactSheet([], 2, 2, path)).rejects.toThrow(
      new UserError("contact sheet needs at least one frame, got 0"),
    );
    await expect(contactSheet([frame(2, 2, 0), new Float32Array(3)], 2, 2, path)).rejects.toThrow(
      new UserError("frame 1 has 3 values, expected H*W*C = 2*2*3 = 12"),
    );
  });
});

describe("encodeVideo", () => {
  let ffmpegPath = "";
  const pngs: string[] = [];
  beforeAll(async () => {
    ffmpegPath = (await findFfmpeg()).path;
    // Odd sides on purpose: the MP4 path must pad to even sizes for yuv420p.
    for (let t = 0; t < 6; t++) {
      const p = join(dir, "video-frames", `${t}.png`);
      await frameToPng(frame(9, 11, t), 9, 11, p, { scale: 1 });
      pngs.push(p);
    }
  });

  it("writes an H.264 MP4 that decodes to every frame, padded to even sides", async () => {
    const out = join(dir, "out", "clip.mp4");
    await encodeVideo(pngs, out, { fps: 12, ffmpegPath });
    expect(readFileSync(out).subarray(4, 8).toString("latin1")).toBe("ftyp");
    const info = await inspectVideo(out, ffmpegPath);
    expect(info).toMatchObject({ codec: "h264", width: 12, height: 10, frames: 6 });
    expect(info.format).toContain("mp4");
    expect(readdirSync(join(dir, "out"))).toEqual(["clip.mp4"]);
  });

  it("writes a GIF that decodes to every frame at the original size", async () => {
    const out = join(dir, "out-gif", "clip.gif");
    await encodeVideo(pngs, out, { fps: 12, ffmpegPath });
    expect(readFileSync(out).subarray(0, 6).toString("latin1")).toBe("GIF89a");
    expect(await inspectVideo(out, ffmpegPath)).toEqual({
      format: "gif",
      codec: "gif",
      width: 11,
      height: 9,
      frames: 6,
    });
  });

  it("rejects a bad extension, no frames and a bad fps", async () => {
    await expect(encodeVideo(pngs, join(dir, "clip.avi"), { ffmpegPath })).rejects.toThrow(
      new UserError(`video output must end in .mp4 or .gif, got "${join(dir, "clip.avi")}"`),
    );
    await expect(encodeVideo([], join(dir, "clip.mp4"), { ffmpegPath })).rejects.toThrow(
      new UserError("video needs at least one frame, got 0"),
    );
    await expect(encodeVideo(pngs, join(dir, "clip.mp4"), { ffmpegPath, fps: 0 })).rejects.toThrow(
      new UserError("fps must be a number > 0, got 0"),
    );
  });

  it("fails as a runtime failure and leaves nothing behind when ffmpeg cannot read the frames", async () => {
    const out = join(dir, "out-broken", "clip.mp4");
    const err = await encodeVideo([join(dir, "no-such-frame.png")], out, { ffmpegPath }).catch((e) => e);
    expect(err.name).toBe("RuntimeFailure");
    expect(err.message).toMatch(/^ffmpeg could not encode .*clip\.mp4: /);
    expect(readdirSync(join(dir, "out-broken"))).toEqual([]);
  });
});
