/**
 * Regenerates samples/ from real runs of the program (`npm run samples`):
 * a clip from the shipped model (contact sheet, GIF, run.json), every cost
 * lever measured on it (levers/: levers.json, the frontier plot, the table),
 * a small sweep (sweep.json, sweep.csv, plots, report.html), the path to
 * $0.01 from both (path/) and a screenshot of `framecost serve`'s page after
 * real runs (serve/page.png). Nothing here is drawn by hand.
 *
 * `npm run samples -- serve path` regenerates only the parts named (generate, levers, sweep, path,
 * serve); path reads samples/levers/levers.json and samples/sweep/sweep.json as they are.
 */
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchChromium } from "../test/helpers/browser.ts";
import { startOnPage, waitForReady, waitForRunEnd } from "../test/helpers/serve-page.ts";

const PARTS = ["generate", "levers", "sweep", "path", "serve"];
const asked = process.argv.slice(2);
const unknown = asked.filter((p) => !PARTS.includes(p));
if (unknown.length > 0) {
  console.error(`samples: unknown part(s) ${unknown.join(", ")}; parts: ${PARTS.join(", ")} (none = all)`);
  process.exit(2);
}
const want = (part: string) => asked.length === 0 || asked.includes(part);

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

/**
 * `framecost serve` on a free port, driven in headless Chromium as a student would: the teacher at 1 to 50
 * ddim steps, each distilled student at its own steps, then an 8-frame clip with ddpm (the default), this
 * machine priced at $0.10/h; the page as it stands after that run.
 */
async function servePage(out: string): Promise<void> {
  console.error("$ framecost serve --port 0 (driven in headless Chromium)");
  // node itself (not npx), so that the SIGINT at the end reaches the server
  const server = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli/main.ts", "serve", "--port", "0", "--out", join(out, "runs")],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const exited = new Promise((resolve) => server.on("close", resolve));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let text = "";
      server.stdout.on("data", (c) => {
        text += c;
        const m = /^framecost serve: (http:\/\/\S+)$/m.exec(text);
        if (m) resolve(m[1]);
      });
      server.on("close", (code) => reject(new Error(`framecost serve exited ${code}: ${text}`)));
    });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      await page.goto(url);
      await waitForReady(page);
      const localPrice = 0.1;
      for (const steps of [1, 2, 4, 8, 20, 50]) {
        await startOnPage(page, { model: "models/tiny", sampler: "ddim", steps, seed: 1, localPrice });
        await waitForRunEnd(page);
      }
      const students = await page.$$eval("#model option", (os) =>
        os.map((o) => o.getAttribute("value") ?? "").filter((v) => v !== "models/tiny"),
      );
      for (const model of students) {
        await startOnPage(page, { model, seed: 1, localPrice });
        await waitForRunEnd(page);
      }
      await startOnPage(page, {
        model: "models/tiny",
        sampler: "ddpm",
        steps: 20,
        seed: 1,
        frames: 8,
        localPrice,
      });
      await waitForRunEnd(page);
      mkdirSync(join("samples", "serve"), { recursive: true });
      await page.screenshot({ path: join("samples", "serve", "page.png"), fullPage: true });
    } finally {
      await browser.close();
    }
  } finally {
    server.kill("SIGINT");
    await exited;
  }
}

const tmp = mkdtempSync(join(tmpdir(), "framecost-samples-"));
try {
  mkdirSync("samples", { recursive: true });
  const leversJson = join("samples", "levers", "levers.json");
  if (want("generate")) {
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
  }
  if (want("levers")) {
    // the levers on the model card's protocol (about 7 minutes on 2 cores; --quick for a quarter of it)
    const levers = join("samples", "levers");
    framecost(["levers", "--out", levers], join(levers, "levers.txt"));
  }
  if (want("sweep")) {
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
  }
  if (want("path")) {
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
  }
  if (want("serve")) await servePage(join(tmp, "serve"));
  console.error(
    `wrote samples/: ${asked.length === 0 ? "contact-sheet.png, clip.gif, run.json, levers/, sweep/, path/, serve/" : asked.join(", ")}`,
  );
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
