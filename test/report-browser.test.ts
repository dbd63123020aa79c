/**
 * Opens report.html in a real headless Chromium (the one @sparticuz/chromium
 * ships inside npm, or FRAMECOST_CHROMIUM's): it must render with no console
 * errors, no request leaving the file, every plot present with a real size,
 * and text drawn with real glyphs. Screenshots go to os.tmpdir().
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser } from "playwright-core";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeRunReport, writeSweepOutputs } from "../src/report/html.ts";
import { syntheticRunRecord, syntheticSweep } from "./fixtures/report-fixtures.ts";
import { launchChromium } from "./helpers/browser.ts";

let dir: string;
let browser: Browser | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "framecost-report-browser-"));
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await rm(dir, { recursive: true, force: true });
});

function needBrowser(): Browser {
  if (!browser) throw new Error("chromium did not start");
  return browser;
}

interface PageCheck {
  errors: string[];
  external: string[];
  plots: Array<{ name: string | null; width: number; height: number; marks: number }>;
  tables: Record<string, number>;
  h1: string;
  screenshot: string;
}

async function openAndCheck(htmlPath: string, shotName: string): Promise<PageCheck> {
  const page = await needBrowser().newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  const external: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("request", (r) => {
    if (!r.url().startsWith("file:")) external.push(r.url());
  });
  try {
    await page.goto(pathToFileURL(htmlPath).href, { waitUntil: "load" });
    const plots = await page.$$eval("figure.plot", (figs) =>
      figs.map((f) => {
        const svg = f.querySelector("svg");
        const box = svg?.getBoundingClientRect();
        return {
          name: f.getAttribute("data-plot"),
          width: box?.width ?? 0,
          height: box?.height ?? 0,
          // drawn marks: points, lines, bars, rules
          marks: svg ? svg.querySelectorAll("path, line, rect").length : 0,
        };
      }),
    );
    const tables = await page.$$eval("table", (ts) => {
      const out: Record<string, number> = {};
      for (const t of ts) out[t.className] = (out[t.className] ?? 0) + t.querySelectorAll("tbody tr").length;
      return out;
    });
    const h1 = await page.$eval("h1", (h) => h.textContent ?? "");
    const screenshot = join(tmpdir(), `${shotName}-${process.pid}.png`);
    await page.screenshot({ path: screenshot, fullPage: true });
    return { errors, external, plots, tables, h1, screenshot };
  } finally {
    await page.close();
  }
}

/** Dark pixels of a screenshot: text drawn without fonts leaves (almost) none. */
async function darkPixels(png: Buffer): Promise<number> {
  const { data, info } = await sharp(png).greyscale().raw().toBuffer({ resolveWithObject: true });
  let dark = 0;
  for (let i = 0; i < info.width * info.height; i++) if (data[i] < 128) dark++;
  return dark;
}

describe("report.html in headless Chromium", () => {
  it("draws text with real glyphs (fonts are there)", async () => {
    const page = await needBrowser().newPage({ viewport: { width: 400, height: 80 } });
    try {
      const shot = async (text: string) => {
        await page.setContent(
          `<body style="margin:0;background:#fff"><p style="font:32px sans-serif;color:#000">${text}</p></body>`,
        );
        return darkPixels(await page.screenshot());
      };
      const blank = await shot("&nbsp;");
      const text = await shot("framecost $0.0369");
      expect(blank).toBe(0);
      // 17 glyphs at 32 px: thousands of inked pixels; tofu boxes or nothing would be far fewer or none
      expect(text).toBeGreaterThan(1500);
      // the same string in monospace differs: a font, not one fallback box per glyph
      const mono = await (async () => {
        await page.setContent(
          `<body style="margin:0;background:#fff"><p style="font:32px monospace;color:#000">framecost $0.0369</p></body>`,
        );
        return darkPixels(await page.screenshot());
      })();
      expect(mono).toBeGreaterThan(1500);
    } finally {
      await page.close();
    }
  });

  it("renders the sweep report with every plot, no console errors and no network", async () => {
    const out = join(dir, "sweep");
    const sweep = syntheticSweep();
    const written = await writeSweepOutputs(out, sweep);
    const r = await openAndCheck(written.html, "framecost-sweep-report");
    expect(r.errors).toEqual([]);
    expect(r.external).toEqual([]);
    expect(r.h1).toBe("framecost sweep report");
    expect(r.plots.map((p) => p.name)).toEqual([
      "wall-vs-nfe",
      "usd-vs-nfe",
      "quality-vs-nfe",
      "quality-vs-usd",
    ]);
    for (const p of r.plots) {
      expect(p.width).toBeGreaterThan(300);
      expect(p.height).toBeGreaterThan(200);
      expect(p.marks).toBeGreaterThan(20);
    }
    expect(r.tables.cells).toBe(sweep.cells.length);
    expect(r.tables.fits).toBe(sweep.fits.length + 1);
    expect((await stat(r.screenshot)).size).toBeGreaterThan(50_000);
    console.log(`sweep report screenshot: ${r.screenshot}`);
  });

  it("renders the single-run report the same way", async () => {
    const record = syntheticRunRecord({ sampler: "heun", steps: 8, usdPerVideoMinute: { local: 0.004 } });
    const html = join(dir, "run-report.html");
    await writeRunReport(html, record, { machine: syntheticSweep().machine });
    const r = await openAndCheck(html, "framecost-run-report");
    expect(r.errors).toEqual([]);
    expect(r.external).toEqual([]);
    expect(r.h1).toBe("framecost run report");
    expect(r.plots.map((p) => p.name)).toEqual(["run-timing"]);
    expect(r.plots[0].width).toBeGreaterThan(600);
    expect(r.tables.frames).toBe(record.frames.length);
    expect(r.tables.kernels).toBe(record.kernels.length);
    expect((await stat(r.screenshot)).size).toBeGreaterThan(30_000);
    console.log(`run report screenshot: ${r.screenshot}`);
  });
});
