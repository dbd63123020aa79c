/**
 * Regenerates samples/ from real runs of the program (`npm run samples`):
 * a clip from the shipped model (contact sheet, GIF, run.json), every cost
 * lever measured on it (levers/: levers.json, the frontier plot, the table),
 * a small sweep (sweep.json, sweep.csv, plots, report.html) and the path to
 * $0.01 from both (path/). Nothing here is drawn by hand.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function framecost(args: string[], stdoutTo?: string): void {
  console.error(`$ framecost ${args.join(" ")}`);
  const r = spawnSync("npx", ["tsx", "src/cli/main.ts", ...args], {
    stdio: ["ignore", stdoutTo ? "pipe" : "inherit", "inherit"],
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`framecost ${args[0]} exited ${r.status}`);
  if (stdoutTo) {
    process.stdout.write(r.stdout);
    writeFileSync(stdoutTo, r.stdout);
  }
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

  // the levers on the model card's protocol (about 7 minutes on 2 cores; --quick for a quarter of it)
  const levers = join("samples", "levers");
  framecost(["levers", "--out", levers], join(levers, "levers.txt"));
  const leversJson = join(levers, "levers.json");

  const sweep = join(tmp, "sweep");
  framecost([
    "sweep",
    "--frames",
    "2",
    "--clips",
    "4",
    "--backend",
    "wasm",
    "--out",
    sweep,
    "--levers-measured",
    leversJson,
  ]);
  rmSync(join("samples", "sweep"), { recursive: true, force: true });
  mkdirSync(join("samples", "sweep"), { recursive: true });
  for (const f of ["sweep.json", "sweep.csv", "report.html"])
    copyFileSync(join(sweep, f), join("samples", "sweep", f));
  cpSync(join(sweep, "cells"), join("samples", "sweep", "cells"), { recursive: true });
  cpSync(join(sweep, "plots"), join("samples", "sweep", "plots"), { recursive: true });
  framecost(
    [
      ..."path --model wan2.1-14b --width 1280 --height 720 --frames 81 --steps 50 --cfg --gpu h100-sxm".split(
        " ",
      ),
      ...["--sweep", join("samples", "sweep", "sweep.json"), "--levers-measured", leversJson],
      ...["--out", join("samples", "path")],
    ],
    join("samples", "path", "path.txt"),
  );
  console.error("wrote samples/: contact-sheet.png, clip.gif, run.json, levers/, sweep/, path/");
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
