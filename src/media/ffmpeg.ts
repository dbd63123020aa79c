/**
 * Finding a working ffmpeg. Order: `--ffmpeg PATH`, env `FFMPEG_PATH`, the
 * optional `ffmpeg-static` package, the bundled `@ffmpeg-installer/ffmpeg`,
 * then `ffmpeg` on PATH. Each candidate counts only if `<path> -version` runs.
 * Everything outside (env, package loading, running a binary) is injectable.
 */
import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { RuntimeFailure, UserError } from "../util/errors.ts";

export type FfmpegSource = "--ffmpeg" | "FFMPEG_PATH" | "ffmpeg-static" | "@ffmpeg-installer/ffmpeg" | "PATH";

export interface FfmpegInfo {
  path: string;
  /** e.g. "N-47683-g0e8eb07980-static" or "6.0": the word after "ffmpeg version" */
  version: string;
  source: FfmpegSource;
  /** earlier candidates that were tried and why each was passed over */
  skipped: Array<{ source: FfmpegSource; reason: string }>;
}

export interface FindFfmpegOptions {
  /** value of --ffmpeg; when given and it does not run, that is a user error (no fallback) */
  explicitPath?: string;
  env?: NodeJS.ProcessEnv;
  /** loads an optional package; rejects when absent */
  load?: (specifier: string) => Promise<unknown>;
  /** runs `path -version` and resolves its stdout; rejects when it does not run or exits non-zero */
  runVersion?: (path: string) => Promise<string>;
}

const defaultRunVersion = (path: string): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(path, ["-version"], { timeout: 10_000, maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) reject(err);
      else resolve(stdout);
    });
  });

const defaultLoad = (specifier: string): Promise<unknown> => import(specifier);

/** "ffmpeg version 4.4.2-0+deb12u1 Copyright ..." -> "4.4.2-0+deb12u1"; null when it is not ffmpeg's banner. */
export function parseFfmpegVersion(stdout: string): string | null {
  const m = /^ffmpeg version (\S+)/m.exec(stdout);
  return m ? m[1] : null;
}

/** The first `name` on PATH that is an executable file, or null. */
function onPath(name: string, envPath: string | undefined): string | null {
  for (const dir of (envPath ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** Module namespace or CJS export -> the ffmpeg path the package advertises. */
function packagePath(specifier: string, mod: unknown): string {
  const m = mod as { default?: unknown; path?: unknown };
  const value =
    specifier === "ffmpeg-static" ? (m.default ?? mod) : (m.path ?? (m.default as { path?: unknown })?.path);
  if (typeof value !== "string" || value === "") {
    throw new Error(`${specifier} has no ffmpeg binary for ${process.platform}-${process.arch}`);
  }
  return value;
}

function firstLine(err: unknown): string {
  const code = (err as { code?: string } | null)?.code;
  if (code === "ENOENT") return "no such file";
  if (code === "EACCES") return "not executable";
  if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") return "not installed";
  return (err instanceof Error ? err.message : String(err)).split("\n")[0];
}

export async function findFfmpeg(opts: FindFfmpegOptions = {}): Promise<FfmpegInfo> {
  const env = opts.env ?? process.env;
  const load = opts.load ?? defaultLoad;
  const runVersion = opts.runVersion ?? defaultRunVersion;
  const skipped: FfmpegInfo["skipped"] = [];

  const check = async (path: string): Promise<string> => {
    const version = parseFfmpegVersion(await runVersion(path));
    if (version === null) throw new Error(`${path} -version did not print an ffmpeg banner`);
    return version;
  };

  if (opts.explicitPath !== undefined) {
    try {
      return {
        path: opts.explicitPath,
        version: await check(opts.explicitPath),
        source: "--ffmpeg",
        skipped,
      };
    } catch (err) {
      throw new UserError(
        `--ffmpeg "${opts.explicitPath}" does not run as ffmpeg (${firstLine(err)}); ` +
          "give the path of a working ffmpeg binary, or leave out --ffmpeg to search FFMPEG_PATH, the npm packages and PATH",
      );
    }
  }
  skipped.push({ source: "--ffmpeg", reason: "not given" });

  // Each source yields a path to try, or throws why it has none.
  const sources: Array<[FfmpegSource, () => Promise<string>]> = [
    [
      "FFMPEG_PATH",
      async () => {
        if (!env.FFMPEG_PATH) throw new Error("not set");
        return env.FFMPEG_PATH;
      },
    ],
    ["ffmpeg-static", async () => packagePath("ffmpeg-static", await load("ffmpeg-static"))],
    [
      "@ffmpeg-installer/ffmpeg",
      async () => packagePath("@ffmpeg-installer/ffmpeg", await load("@ffmpeg-installer/ffmpeg")),
    ],
    [
      "PATH",
      async () => {
        const found = onPath("ffmpeg", env.PATH);
        if (found === null) throw new Error("no ffmpeg on PATH");
        return found;
      },
    ],
  ];
  for (const [source, locate] of sources) {
    let path: string;
    try {
      path = await locate();
    } catch (err) {
      skipped.push({ source, reason: firstLine(err) });
      continue;
    }
    try {
      return { path, version: await check(path), source, skipped };
    } catch (err) {
      skipped.push({ source, reason: `${path}: ${firstLine(err)}` });
    }
  }
  throw new RuntimeFailure(
    `no working ffmpeg found (${skipped.map((s) => `${s.source}: ${s.reason}`).join("; ")}); ` +
      "fix: npm ci (installs @ffmpeg-installer/ffmpeg), or install ffmpeg on PATH (apt-get install ffmpeg), " +
      "or pass --ffmpeg PATH / set FFMPEG_PATH",
  );
}

export type FfmpegStatus =
  | { path: string; version: string; source: FfmpegSource; reason?: undefined }
  | { path: null; version: null; source: null; reason: string };

/**
 * findFfmpeg for reports: says why when there is none instead of throwing.
 * A bad --ffmpeg is still a user error and throws.
 */
export async function ffmpegStatus(opts: FindFfmpegOptions = {}): Promise<FfmpegStatus> {
  try {
    const { path, version, source } = await findFfmpeg(opts);
    return { path, version, source };
  } catch (err) {
    if (err instanceof UserError) throw err;
    return {
      path: null,
      version: null,
      source: null,
      reason: err instanceof Error ? err.message : String(err),
    };
  }
}
