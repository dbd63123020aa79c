/**
 * The `framecost serve` page in a real headless Chromium (test/helpers/browser.ts): a run's step counter
 * reaches its last step while x_t and the predicted x0 change, the counters at the end are the run
 * record's, Stop stops, a second tab runs after the first (queued) and closing a tab stops its run, clip
 * mode plays its frames, every finished run becomes a point of the charts; no console error, and no
 * request goes anywhere but the server on 127.0.0.1. Screenshots go to os.tmpdir().
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shippedCatalog } from "../src/cost/index.ts";
import type { ServedRecord } from "../src/serve/runs.ts";
import { type ServeHandle, startServer } from "../src/serve/server.ts";
import { launchChromium } from "./helpers/browser.ts";
import { makeModelsFolder } from "./helpers/serve-models.ts";
import { readCounters, startOnPage, waitForReady, waitForRunEnd } from "./helpers/serve-page.ts";

const root = mkdtempSync(join(tmpdir(), "framecost-serve-browser-"));
const out = join(root, "out");
const { teacher, student } = makeModelsFolder(join(root, "models"));
let server: ServeHandle;
let browser: Browser;
let context: BrowserContext;
const problems: string[] = [];
const elsewhere: string[] = [];

beforeAll(async () => {
  server = await startServer({
    host: "127.0.0.1",
    port: 0,
    modelsDir: join(root, "models"),
    outDir: out,
    backend: "onnx",
    threads: 1,
    catalog: shippedCatalog(),
  });
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  context.on("request", (r) => {
    if (!r.url().startsWith(server.url)) elsewhere.push(r.url());
  });
  context.on("page", (p) => {
    p.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
    });
    p.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

async function openPage(): Promise<Page> {
  const page = await context.newPage();
  await page.goto(server.url);
  await waitForReady(page);
  return page;
}

/** Waits until the page's step counter shows at least `step` (live). */
async function waitForStep(page: Page, step: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const v = await page.$eval("#c-step", (e) => e.getAttribute("data-value") ?? "");
    const live = await page.$eval("#counters", (e) => e.className);
    if (live === "live" && Number(v) >= step) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`the step counter never reached ${step}`);
}

/** The run record behind the page's download link. */
async function pageRecord(page: Page): Promise<ServedRecord> {
  const href = await page.$eval("#download a", (a) => a.getAttribute("href") ?? "");
  expect(href).toMatch(/^\/runs\/[0-9a-f-]+\/run\.json$/);
  const text = await (await fetch(new URL(href, server.url))).text();
  expect(text).toBe(readFileSync(join(out, href.split("/")[2], "run.json"), "utf8"));
  const record = JSON.parse(text) as ServedRecord;
  return record;
}

describe("framecost serve in headless Chromium", () => {
  it("a run: the step counter reaches the end, the images change, and the counters are run.json's", async () => {
    const page = await openPage();
    // record what the page shows after every step (a MutationObserver on the step counter)
    await page.evaluate(() => {
      type El = { textContent: string | null; toDataURL(): string };
      type Records = Array<{ addedNodes: ArrayLike<El> }>;
      type Observer = new (cb: (records: Records) => void) => { observe(target: El, o: object): void };
      const w = globalThis as unknown as {
        seen: { steps: string[]; x0: string[]; xt: string[] };
        document: { getElementById(id: string): El };
        MutationObserver: Observer;
      };
      const byId = (id: string) => w.document.getElementById(id);
      w.seen = { steps: [], x0: [], xt: [] };
      // every text the counter took is in the records, however many changes one callback sees
      new w.MutationObserver((records) => {
        for (const r of records)
          for (const n of Array.from(r.addedNodes)) w.seen.steps.push(n.textContent ?? "");
        w.seen.x0.push(byId("x0").toDataURL());
        w.seen.xt.push(byId("xt").toDataURL());
      }).observe(byId("c-step"), { childList: true });
    });
    await startOnPage(page, { model: teacher, sampler: "ddim", steps: 8, seed: 3, localPrice: 0.5 });
    await waitForRunEnd(page);
    const seen = (await page.evaluate(() => (globalThis as unknown as { seen: unknown }).seen)) as {
      steps: string[];
      x0: string[];
      xt: string[];
    };
    // drawn at most once per animation frame: the steps shown rise to the last one
    const shown = seen.steps.filter((s) => s.includes(" / ")).map((s) => Number(s.split(" / ")[0]));
    expect(shown.at(-1)).toBe(8);
    expect(shown.every((v, i) => i === 0 || v > shown[i - 1])).toBe(true);
    expect(seen.steps.filter((s) => s.includes(" / ")).at(-1)).toBe("8 / 8");
    // and the pictures changed while it ran
    expect(new Set(seen.x0).size).toBeGreaterThanOrEqual(2);
    expect(new Set(seen.xt).size).toBeGreaterThanOrEqual(2);

    const c = await readCounters(page);
    const record = await pageRecord(page);
    expect(record.complete).toBe(true);
    expect(record.serve.request).toMatchObject({ model: teacher, sampler: "ddim", steps: 8, seed: 3 });
    expect(Number(c["c-step"].value)).toBe(record.totals.steps);
    expect(Number(c["c-frame"].value)).toBe(record.totals.frames);
    expect(Number(c["c-nfe"].value)).toBe(record.totals.nfe);
    expect(c["c-nfe"].text).toBe(`${record.totals.nfe} (${record.sampler.nfePerFrame} per frame)`);
    expect(Number(c["c-flops"].value)).toBe(record.totals.flops);
    expect(c["c-flops"].text).toBe(`${(record.totals.flops / 1e9).toFixed(3)} GFLOP`);
    expect(Number(c["c-ms"].value)).toBe(record.nfeTiming.medianMs);
    expect(c["c-ms"].text).toBe(`${record.nfeTiming.medianMs!.toFixed(2)} ms`);
    expect(Number(c["c-usd-local"].value)).toBe(record.cost.usdPerVideoMinute.local);
    expect(Number(c["c-usd-gpu"].value)).toBe(record.cost.usdPerVideoMinute.byGpu["h100-sxm"]);
    expect(c["c-usd-gpu"].text).toBe(
      `$${Number(record.cost.usdPerVideoMinute.byGpu["h100-sxm"].toPrecision(3))}`,
    );
    // the run's point on both charts and its row in the table
    const id = record.serve.runId;
    expect(await page.locator(`#chart-cost circle[data-run="${id}"]`).count()).toBe(1);
    expect(await page.locator(`#chart-steps circle[data-run="${id}"]`).count()).toBe(1);
    expect(await page.locator(`#runs tr[data-run="${id}"]`).count()).toBe(1);
    await page.screenshot({ path: join(tmpdir(), `serve-page-${process.pid}.png`), fullPage: true });
    await page.close();
  });

  it("Stop stops the run within a step; the counters are then the incomplete run.json's", async () => {
    const page = await openPage();
    await startOnPage(page, { model: teacher, sampler: "ddim", steps: 1000 });
    await waitForStep(page, 3);
    await page.click("#stop");
    await waitForRunEnd(page);
    expect(await page.textContent("#status")).toMatch(
      /^stopped after \d+ NFEs; run.json is marked incomplete$/,
    );
    const record = await pageRecord(page);
    expect(record.complete).toBe(false);
    expect(record.serve.stopped).toBe("stop");
    expect(record.totals.nfe).toBeLessThan(1500);
    const c = await readCounters(page);
    expect(Number(c["c-nfe"].value)).toBe(record.totals.nfe);
    expect(Number(c["c-flops"].value)).toBe(record.totals.flops);
    await page.close();
  });

  it("a second tab waits for the first, runs when the first tab closes (which stops its run), and keeps to its own run", async () => {
    const first = await openPage();
    const second = await openPage();
    await startOnPage(first, { model: teacher, sampler: "ddim", steps: 1000 });
    await waitForStep(first, 2);
    await startOnPage(second, { model: student, seed: 5 });
    await second.locator("#status", { hasText: "queued: 1 run(s) ahead" }).waitFor();
    const firstId = server.runner.list().find((r) => r.status === "running")!.id;
    await first.close();
    await waitForRunEnd(second);
    const record = await pageRecord(second);
    expect(record.complete).toBe(true);
    expect(record.serve.request).toMatchObject({
      model: student,
      sampler: "ddim",
      steps: 2,
      seed: 5,
      guidance: null,
    });
    expect(Number((await readCounters(second))["c-nfe"].value)).toBe(2);
    const closed = JSON.parse(readFileSync(join(out, firstId, "run.json"), "utf8"));
    expect(closed.complete).toBe(false);
    expect(closed.serve.stopped).toBe("closed");
    await second.close();
  });

  it("clip mode shows each finished frame as it is done and then plays them", async () => {
    const page = await openPage();
    await startOnPage(page, { model: student, frames: 3 });
    await waitForRunEnd(page);
    expect(await page.locator("#strip canvas").count()).toBe(3);
    const frames = new Set<string>();
    for (let i = 0; i < 40 && frames.size < 3; i++) {
      frames.add(await page.$eval("#clip", (e) => e.getAttribute("data-frame") ?? ""));
      await new Promise((r) => setTimeout(r, 50));
    }
    expect([...frames].sort()).toEqual(["0", "1", "2"]);
    expect(await page.textContent("#clip-caption")).toMatch(/^clip: frame [123] of 3, playing at 6 fps$/);
    await page.close();
  });

  it("a refused request shows the server's one line (in a tab of its own: Chromium logs the 400)", async () => {
    const page = await browser.newPage();
    const logged: string[] = [];
    page.on("console", (m) => logged.push(`${m.type()}: ${m.text()}`));
    await page.goto(server.url);
    await waitForReady(page);
    await page.fill("#steps", "0");
    // the browser's own form check would keep 0 from being sent: send it as a script would
    await page.$eval("#run-form", (f) => f.setAttribute("novalidate", ""));
    await page.click("#generate");
    await page.locator("#status.error").waitFor();
    expect(await page.textContent("#status")).toBe(
      "refused: steps must be an integer between 1 and 1000, got 0",
    );
    expect(logged).toEqual([
      "error: Failed to load resource: the server responded with a status of 400 (Bad Request)",
    ]);
    await page.close();
  });

  it("no console errors or warnings in any tab, and no request left for anywhere but the server", () => {
    expect(problems).toEqual([]);
    expect(elsewhere).toEqual([]);
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });
});
