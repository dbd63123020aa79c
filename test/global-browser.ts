/**
 * vitest globalSetup: unpack @sparticuz/chromium once before any test file runs,
 * so that parallel browser tests do not race to unpack it into the same folder.
 */
import { chromiumSource } from "./helpers/browser.ts";

export default async function setup(): Promise<void> {
  await chromiumSource();
}
