import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ffmpegStatus, findFfmpeg, parseFfmpegVersion } from "../src/media/ffmpeg.ts";
import { RuntimeFailure, UserError } from "../src/util/errors.ts";

// Fake ffmpeg binaries: shell scripts that print a banner naming which one ran.
const root = mkdtempSync(join(tmpdir(), "framecost-ffmpeg-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function fakeBinary(name: string, stdout: string, exitCode = 0): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "ffmpeg");
  writeFileSync(path, `#!/bin/sh\necho '${stdout}'\nexit ${exitCode}\n`);
  chmodSync(path, 0o755);
  return path;
}

const flag = fakeBinary("flag", "ffmpeg version 1.0-flag Copyright (c) 2000-2024");
const envBin = fakeBinary("env", "ffmpeg version 2.0-env Copyright");
const staticBin = fakeBinary("static", "ffmpeg version 3.0-static Copyright");
const installerBin = fakeBinary("installer", "ffmpeg version 4.0-installer Copyright");
const pathBin = fakeBinary("onpath", "ffmpeg version 5.0-path Copyright");
const notFfmpeg = fakeBinary("other", "something else entirely");
const crashing = fakeBinary("crash", "ffmpeg version 6.0 Copyright", 1);
const emptyDir = join(root, "empty");
mkdirSync(emptyDir);

function notFound(specifier: string): Error {
  return Object.assign(new Error(`Cannot find package '${specifier}'`), { code: "ERR_MODULE_NOT_FOUND" });
}

/** A loader with the given packages "installed", shaped as import() returns them. */
function loader(pkgs: { static?: string; installer?: string }) {
  return async (specifier: string): Promise<unknown> => {
    if (specifier === "ffmpeg-static" && pkgs.static) return { default: pkgs.static };
    if (specifier === "@ffmpeg-installer/ffmpeg" && pkgs.installer) {
      return { default: { path: pkgs.installer, version: "x" }, path: pkgs.installer };
    }
    throw notFound(specifier);
  };
}

const everything = {
  env: { FFMPEG_PATH: envBin, PATH: join(root, "onpath") },
  load: loader({ static: staticBin, installer: installerBin }),
};

describe("findFfmpeg discovery order", () => {
  it("--ffmpeg wins over everything", async () => {
    const f = await findFfmpeg({ ...everything, explicitPath: flag });
    expect(f).toEqual({ path: flag, version: "1.0-flag", source: "--ffmpeg", skipped: [] });
  });

  it("then FFMPEG_PATH", async () => {
    const f = await findFfmpeg(everything);
    expect([f.source, f.path, f.version]).toEqual(["FFMPEG_PATH", envBin, "2.0-env"]);
    expect(f.skipped).toEqual([{ source: "--ffmpeg", reason: "not given" }]);
  });

  it("then ffmpeg-static", async () => {
    const f = await findFfmpeg({ ...everything, env: { PATH: everything.env.PATH } });
    expect([f.source, f.path, f.version]).toEqual(["ffmpeg-static", staticBin, "3.0-static"]);
  });

  it("then @ffmpeg-installer/ffmpeg", async () => {
    const f = await findFfmpeg({
      env: { PATH: everything.env.PATH },
      load: loader({ installer: installerBin }),
    });
    expect([f.source, f.path, f.version]).toEqual([
      "@ffmpeg-installer/ffmpeg",
      installerBin,
      "4.0-installer",
    ]);
    expect(f.skipped).toEqual([
      { source: "--ffmpeg", reason: "not given" },
      { source: "FFMPEG_PATH", reason: "not set" },
      { source: "ffmpeg-static", reason: "not installed" },
    ]);
  });

  it("then ffmpeg on PATH (first directory that has one)", async () => {
    const f = await findFfmpeg({ env: { PATH: `${emptyDir}:${join(root, "onpath")}` }, load: loader({}) });
    expect([f.source, f.path, f.version]).toEqual(["PATH", pathBin, "5.0-path"]);
  });

  it("passes over candidates that do not run as ffmpeg, saying why", async () => {
    const f = await findFfmpeg({
      env: { FFMPEG_PATH: notFfmpeg, PATH: join(root, "onpath") },
      load: loader({ static: crashing, installer: join(root, "missing", "ffmpeg") }),
    });
    expect(f.source).toBe("PATH");
    expect(f.skipped[1]).toEqual({
      source: "FFMPEG_PATH",
      reason: `${notFfmpeg}: ${notFfmpeg} -version did not print an ffmpeg banner`,
    });
    expect(f.skipped[2].source).toBe("ffmpeg-static");
    expect(f.skipped[2].reason).toMatch(new RegExp(`^${crashing}: Command failed`));
    expect(f.skipped[3]).toEqual({
      source: "@ffmpeg-installer/ffmpeg",
      reason: `${join(root, "missing", "ffmpeg")}: no such file`,
    });
  });

  it("names every source when none works", async () => {
    const err = await findFfmpeg({ env: { PATH: emptyDir }, load: loader({}) }).catch((e) => e);
    expect(err).toBeInstanceOf(RuntimeFailure);
    expect(err.message).toBe(
      "no working ffmpeg found (--ffmpeg: not given; FFMPEG_PATH: not set; ffmpeg-static: not installed; " +
        "@ffmpeg-installer/ffmpeg: not installed; PATH: no ffmpeg on PATH); " +
        "fix: npm ci (installs @ffmpeg-installer/ffmpeg), or install ffmpeg on PATH (apt-get install ffmpeg), " +
        "or pass --ffmpeg PATH / set FFMPEG_PATH",
    );
    expect(err.message).not.toContain("\n");
  });

  it("a --ffmpeg that does not run is a user error, with no fallback", async () => {
    const bad = join(root, "nope", "ffmpeg");
    const err = await findFfmpeg({ ...everything, explicitPath: bad }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(
      `--ffmpeg "${bad}" does not run as ffmpeg (no such file); give the path of a working ffmpeg binary, ` +
        "or leave out --ffmpeg to search FFMPEG_PATH, the npm packages and PATH",
    );
  });

  it("a package that throws a string (as @ffmpeg-installer does) is reported, not fatal", async () => {
    const f = await findFfmpeg({
      env: { PATH: join(root, "onpath") },
      load: async (s) => {
        if (s === "@ffmpeg-installer/ffmpeg") throw "Could not find ffmpeg executable, tried a, b";
        throw notFound(s);
      },
    });
    expect(f.source).toBe("PATH");
    expect(f.skipped[3]).toEqual({
      source: "@ffmpeg-installer/ffmpeg",
      reason: "Could not find ffmpeg executable, tried a, b",
    });
  });

  it("finds the bundled @ffmpeg-installer binary in this checkout", async () => {
    const f = await findFfmpeg({ env: { PATH: emptyDir } });
    expect(f.source).toBe("@ffmpeg-installer/ffmpeg");
    expect(f.path).toMatch(/@ffmpeg-installer\/linux-x64\/ffmpeg$/);
    expect(f.version.length).toBeGreaterThan(0);
  });
});

describe("ffmpegStatus", () => {
  it("gives null with the reason instead of throwing", async () => {
    const s = await ffmpegStatus({ env: { PATH: emptyDir }, load: loader({}) });
    expect(s.path).toBeNull();
    expect(s.version).toBeNull();
    expect(s.reason).toMatch(/^no working ffmpeg found \(--ffmpeg: not given;/);
  });

  it("still throws for a bad --ffmpeg", async () => {
    await expect(ffmpegStatus({ explicitPath: notFfmpeg })).rejects.toBeInstanceOf(UserError);
  });
});

describe("parseFfmpegVersion", () => {
  it("reads the word after 'ffmpeg version'", () => {
    expect(parseFfmpegVersion("ffmpeg version 4.4.2-0+deb12u1 Copyright (c) 2000-2021\nbuilt with gcc")).toBe(
      "4.4.2-0+deb12u1",
    );
    expect(parseFfmpegVersion("ffmpeg version N-47683-g0e8eb07980-static https://x")).toBe(
      "N-47683-g0e8eb07980-static",
    );
    expect(parseFfmpegVersion("ffprobe version 6.0")).toBeNull();
    expect(parseFfmpegVersion("")).toBeNull();
  });
});
