/**
 * PNG frames to video with ffmpeg (driven by fluent-ffmpeg). MP4 is H.264
 * (libx264, yuv420p so every player opens it; yuv420p needs even sides, so odd
 * frames are padded by one pixel); GIF goes through a generated palette.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join, resolve } from "node:path";
import ffmpeg from "fluent-ffmpeg";
import { RuntimeFailure, UserError } from "../util/errors.ts";
import { writeAtomically } from "./files.ts";

export interface EncodeOptions {
  /** frames per second; default 24 */
  fps?: number;
  /** ffmpeg binary (from findFfmpeg) */
  ffmpegPath: string;
  /** aborting kills ffmpeg (a stop signal during encoding); the temporary file is removed, nothing is renamed */
  signal?: AbortSignal;
}

function outputArgs(format: "mp4" | "gif"): string[] {
  if (format === "mp4") {
    return [
      "-vf",
      "pad=ceil(iw/2)*2:ceil(ih/2)*2",
      "-c:v",
      "libx264",
      "-pix_fmt",
      "yuv420p",
      "-crf",
      "18",
      "-movflags",
      "+faststart",
      "-f",
      "mp4",
    ];
  }
  // One pass: split the stream, build a 256-colour palette from it, map the frames onto it.
  return ["-filter_complex", "[0:v]split[a][b];[a]palettegen[p];[b][p]paletteuse", "-loop", "0", "-f", "gif"];
}

/** Encodes the PNGs, in order, into `outPath` (.mp4 or .gif), via a temporary name. */
export async function encodeVideo(pngPaths: string[], outPath: string, opts: EncodeOptions): Promise<void> {
  const fps = opts.fps ?? 24;
  const ext = extname(outPath).toLowerCase();
  if (ext !== ".mp4" && ext !== ".gif") {
    throw new UserError(`video output must end in .mp4 or .gif, got "${outPath}"`);
  }
  if (pngPaths.length === 0) throw new UserError("video needs at least one frame, got 0");
  if (!(fps > 0) || !Number.isFinite(fps)) throw new UserError(`fps must be a number > 0, got ${fps}`);

  // ffmpeg's image2 demuxer wants numbered names: link the frames into a fresh folder in order.
  const dir = await mkdtemp(join(tmpdir(), "framecost-frames-"));
  try {
    await Promise.all(
      pngPaths.map((p, i) => symlink(resolve(p), join(dir, `f${String(i).padStart(6, "0")}.png`))),
    );
    await writeAtomically(
      outPath,
      (tmp) =>
        new Promise<void>((done, fail) => {
          if (opts.signal?.aborted) {
            fail(new RuntimeFailure(`encoding ${outPath} was stopped`));
            return;
          }
          const cmd = ffmpeg()
            .setFfmpegPath(opts.ffmpegPath)
            .input(join(dir, "f%06d.png"))
            .inputOptions(["-framerate", String(fps), "-f", "image2"])
            .outputOptions(["-y", ...outputArgs(ext === ".mp4" ? "mp4" : "gif")])
            .output(tmp)
            .on("end", () => done())
            .on("error", (err: Error, _stdout: string | null, stderr: string | null) => {
              const last = (stderr ?? "").trim().split("\n").slice(-1)[0] ?? "";
              fail(
                new RuntimeFailure(
                  `ffmpeg could not encode ${outPath}: ${err.message.split("\n")[0]} ${last}`,
                ),
              );
            });
          const kill = () => cmd.kill("SIGKILL");
          opts.signal?.addEventListener("abort", kill, { once: true });
          cmd.on("end", () => opts.signal?.removeEventListener("abort", kill));
          cmd.on("error", () => opts.signal?.removeEventListener("abort", kill));
          cmd.run();
        }),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface VideoInfo {
  /** container as ffmpeg names it, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "gif" */
  format: string;
  codec: string;
  width: number;
  height: number;
  /** frames decoded (the whole file is decoded, so this also proves it is readable) */
  frames: number;
}

/**
 * Decodes a video with ffmpeg (ffprobe is not shipped) and reads the stream
 * line and the frame count from its log.
 */
export function inspectVideo(path: string, ffmpegPath: string): Promise<VideoInfo> {
  return new Promise((done, fail) => {
    execFile(
      ffmpegPath,
      ["-hide_banner", "-nostats", "-i", path, "-map", "0:v:0", "-f", "null", "-"],
      { timeout: 60_000, maxBuffer: 16 << 20 },
      (err, _stdout, stderr) => {
        if (err) {
          fail(
            new RuntimeFailure(`ffmpeg could not decode ${path}: ${stderr.trim().split("\n").slice(-1)[0]}`),
          );
          return;
        }
        const input = /^Input #0, ([^,]+(?:,[^,\s]+)*), from/m.exec(stderr);
        const stream = /Stream #0:\d+.*?: Video: (\w+).*?, (\d+)x(\d+)/.exec(stderr);
        // With -nostats ffmpeg still prints one final "frame=  N" summary line: the last one is the count.
        const frameLines = [...stderr.matchAll(/frame=\s*(\d+)/g)];
        if (!input || !stream || frameLines.length === 0) {
          fail(new RuntimeFailure(`could not read the stream description of ${path} from ffmpeg's log`));
          return;
        }
        done({
          format: input[1],
          codec: stream[1],
          width: Number(stream[2]),
          height: Number(stream[3]),
          frames: Number(frameLines[frameLines.length - 1][1]),
        });
      },
    );
  });
}
