import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatDoctor } from "../src/cli/doctor.ts";
import type { DoctorData } from "../src/media/machine.ts";

// tsx directly, not npx: npm prints its own warnings on stderr, which would hide what framecost printed.
const TSX = join(process.cwd(), "node_modules", ".bin", "tsx");

function framecost(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(TSX, ["src/cli/main.ts", ...args], {
    encoding: "utf8",
    env: { ...process.env, FRAMECOST_DEBUG: "", ...env },
    timeout: 90_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("framecost (end to end)", () => {
  it("--help exits 0 and lists doctor", () => {
    const r = framecost(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: framecost");
    expect(r.stdout).toMatch(/doctor \[options\]/);
  });

  it("doctor --help exits 0 and shows its options", () => {
    const r = framecost(["doctor", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--json");
    expect(r.stdout).toContain("--ffmpeg <path>");
  });

  it.each([
    [["doctor", "--bogus"], `framecost: unknown option '--bogus'; see "framecost doctor --help"`],
    [
      ["doctor", "--jsn"],
      `framecost: unknown option '--jsn' (Did you mean --json?); see "framecost doctor --help"`,
    ],
    [
      ["doctor", "--ffmpeg"],
      `framecost: option '--ffmpeg <path>' argument missing; see "framecost doctor --help"`,
    ],
    [
      ["doctor", "extra"],
      `framecost: too many arguments for 'doctor'. Expected 0 arguments but got 1; see "framecost doctor --help"`,
    ],
    [["nosuchcommand"], `framecost: unknown command 'nosuchcommand'; see "framecost --help"`],
    [
      ["doctor", "--ffmpeg", "/no/such/ffmpeg"],
      'framecost: --ffmpeg "/no/such/ffmpeg" does not run as ffmpeg (no such file); give the path of a working ' +
        "ffmpeg binary, or leave out --ffmpeg to search FFMPEG_PATH, the npm packages and PATH",
    ],
  ])("%j exits 2 with one line on stderr", (args, line) => {
    const r = framecost(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`${line}\n`);
  });

  it("FRAMECOST_DEBUG=1 shows the stack for a user mistake", () => {
    const r = framecost(["doctor", "--ffmpeg", "/no/such/ffmpeg"], { FRAMECOST_DEBUG: "1" });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/UserError: --ffmpeg "\/no\/such\/ffmpeg"[\s\S]*\n\s+at /);
  });

  it("doctor --json prints only JSON with the documented keys", () => {
    const r = framecost(["doctor", "--json"]);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.node).toBe(process.version);
    expect(typeof d.cpu.model).toBe("string");
    expect(d.cpu.cores).toBeGreaterThanOrEqual(1);
    expect(d.backends.map((b: { name: string }) => b.name)).toEqual(["tensorflow", "wasm", "cpu", "onnx"]);
    const fastest = d.backends
      .filter((b: { available: boolean }) => b.available)
      .sort((a: { gemmGflops: number }, b: { gemmGflops: number }) => b.gemmGflops - a.gemmGflops)[0];
    expect(d.autoBackend).toBe(fastest.name);
    for (const b of d.backends) {
      expect(typeof b.available).toBe("boolean");
      if (b.available) {
        expect(Number.isFinite(b.gemmGflops)).toBe(true);
        expect(b.gemmGflops).toBeGreaterThan(0);
      } else {
        expect(b.reason.length).toBeGreaterThan(0);
        expect(b.gemmGflops).toBeUndefined();
      }
    }
    expect(d.backends.find((b: { name: string }) => b.name === "wasm").available).toBe(true);
    expect(d.ffmpeg.path).toMatch(/ffmpeg$/);
    expect(typeof d.ffmpeg.version).toBe("string");
  });
});

describe("formatDoctor", () => {
  const data: DoctorData = {
    node: "v20.0.0",
    platform: "linux",
    arch: "x64",
    cpu: { model: "Test CPU", cores: 4, available: 2 },
    memoryBytes: 8 * 2 ** 30,
    tfjsVersion: "4.22.0",
    backends: [
      {
        name: "tensorflow",
        summary: "native",
        available: false,
        reason: "@tensorflow/tfjs-node is not installed",
        howToGet: "npm install @tensorflow/tfjs-node",
      },
      {
        name: "wasm",
        summary: "embedded",
        available: true,
        reason: "bundled",
        gemmGflops: 23.456,
        gemm: { size: 512, runs: 9, flopsPerRun: 2 * 512 ** 3, warmupMs: 20, medianMs: 11.444 },
      },
      { name: "cpu", summary: "pure JS", available: true, reason: "bundled" },
    ],
    autoBackend: "wasm",
    ffmpeg: { path: null, version: null, source: null, reason: "no working ffmpeg found (...)" },
  };

  it("pins the summary layout", () => {
    expect(formatDoctor(data).split("\n")).toEqual([
      "node      v20.0.0 (linux-x64), tfjs 4.22.0",
      "cpu       Test CPU, 4 logical cores (2 usable), 8.0 GiB memory",
      "backends  fp32 GEMM measured here (n x n matMul, median after a warm-up; 1 FLOP = 1 add or 1 multiply)",
      "  tensorflow  not available: @tensorflow/tfjs-node is not installed",
      "              to get it: npm install @tensorflow/tfjs-node",
      "  wasm          23.46 GFLOP/s  (512x512, median of 9: 11.44 ms)  embedded",
      "  cpu         available (not calibrated)  pure JS",
      "auto      wasm (what generate runs when --backend is not given: the fastest GEMM above)",
      "ffmpeg    none: no working ffmpeg found (...)",
    ]);
  });
});
