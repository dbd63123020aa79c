/**
 * Regenerates samples/ from real runs of the program (`npm run samples`):
 * a clip from the shipped model (contact sheet, GIF, run.json) and a small
 * sweep (sweep.json, sweep.csv, plots, report.html). Nothing here is drawn by hand.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function framecost(args: string[]): void {
  console.error(`$ framecost ${args.join(" ")}`);
  const r = spawnSync("npx", ["tsx", "src/cli/main.ts", ...args], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (r.status !== 0) throw new Error(`framecost ${args[0]} exited ${r.status}`);
}

const tmp = mkdtempSync(join(tmpdir(), "framecost-samples-"));
try {
  mkdirSync("samples", { recursive: true });
  const gen = join(tmp, "generate");
  framecost([
    "generate",
    "--frames",
    "16",
    "--steps",
    "20",
    "--sampler",
    "ddpm",
    "--backend",
    "wasm",
    "--seed",
    "3",
    "--out",
    gen,
  ]);
  for (const f of ["contact-sheet.png", "clip.gif", "run.json"])
    copyFileSync(join(gen, f), join("samples", f));

  const sweep = join(tmp, "sweep");
  framecost(["sweep", "--frames", "2", "--clips", "4", "--backend", "wasm", "--out", sweep]);
  rmSync(join("samples", "sweep"), { recursive: true, force: true });
  mkdirSync(join("samples", "sweep"), { recursive: true });
  for (const f of ["sweep.json", "sweep.csv", "report.html"])
    copyFileSync(join(sweep, f), join("samples", "sweep", f));
  cpSync(join(sweep, "cells"), join("samples", "sweep", "cells"), { recursive: true });
  cpSync(join(sweep, "plots"), join("samples", "sweep", "plots"), { recursive: true });
  console.error("wrote samples/: contact-sheet.png, clip.gif, run.json, sweep/");
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
