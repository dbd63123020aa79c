/**
 * Drives the `framecost serve` page in a real browser (playwright-core): fill
 * the form, press Generate, wait for the run to end, read the counters. Used
 * by test/serve-browser.test.ts and by scripts/samples.ts for the README's
 * screenshot.
 */
import type { Page } from "playwright-core";

export interface PageRun {
  model?: string;
  sampler?: string;
  steps?: number;
  seed?: number;
  guidance?: number;
  frames?: number;
  gpu?: string;
  gpuPrice?: number;
  localPrice?: number;
}

/** Fills the form (model first: choosing one sets its sampler, steps and guidance) and presses Generate. */
export async function startOnPage(page: Page, r: PageRun): Promise<void> {
  if (r.model !== undefined) await page.selectOption("#model", r.model);
  if (r.sampler !== undefined) await page.selectOption("#sampler", r.sampler);
  if (r.steps !== undefined) await page.fill("#steps", String(r.steps));
  if (r.seed !== undefined) await page.fill("#seed", String(r.seed));
  if (r.guidance !== undefined) await page.fill("#guidance", String(r.guidance));
  if (r.frames !== undefined) await page.fill("#frames", String(r.frames));
  if (r.gpu !== undefined) await page.selectOption("#gpu", r.gpu);
  if (r.gpuPrice !== undefined) await page.fill("#gpu-price", String(r.gpuPrice));
  if (r.localPrice !== undefined) await page.fill("#local-price", String(r.localPrice));
  await page.click("#generate");
}

/** Waits until the page has its options (the status line says "ready"). */
export async function waitForReady(page: Page): Promise<void> {
  await page.locator("#status", { hasText: "ready" }).waitFor();
}

/** Waits until the page's run has ended (Generate is enabled again). */
export async function waitForRunEnd(page: Page, timeoutMs = 60_000): Promise<void> {
  // a selector, not a predicate function: the page's Content-Security-Policy forbids eval
  await page.waitForSelector("#generate:enabled", { timeout: timeoutMs });
}

/** The counters as shown: text and exact value (data-value) of each. */
export async function readCounters(page: Page): Promise<Record<string, { text: string; value: string }>> {
  return page.$$eval("#counters dd", (dds) =>
    Object.fromEntries(
      dds.map((d) => [d.id, { text: d.textContent ?? "", value: d.getAttribute("data-value") ?? "" }]),
    ),
  );
}
