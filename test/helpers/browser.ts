/**
 * A real headless Chromium for the browser tests, with nothing to install by
 * hand: FRAMECOST_CHROMIUM names a binary (Debian's /usr/bin/chromium, say);
 * otherwise the one @sparticuz/chromium ships compressed inside its npm
 * tarball, unpacked once (with its fonts) into the system's temp folder.
 */
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sparticuz from "@sparticuz/chromium";
import { type Browser, chromium } from "playwright-core";

/** Flags for a root user on a machine with no network: no sandbox, no calls home. */
const QUIET_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

export interface BrowserSource {
  executablePath: string;
  args: string[];
  /** extra environment: the package's own fonts, so text renders without system fonts */
  env: Record<string, string>;
  /** where the binary came from, for the test's log line */
  from: "FRAMECOST_CHROMIUM" | "@sparticuz/chromium";
}

export async function chromiumSource(): Promise<BrowserSource> {
  const own = process.env.FRAMECOST_CHROMIUM;
  if (own) {
    if (!existsSync(own)) {
      throw new Error(`FRAMECOST_CHROMIUM=${own} does not exist: unset it to use @sparticuz/chromium`);
    }
    return { executablePath: own, args: QUIET_ARGS, env: {}, from: "FRAMECOST_CHROMIUM" };
  }
  const executablePath = await sparticuz.executablePath();
  // not sparticuz.args: they are tuned for AWS Lambda (--single-process, which dies
  // when a page closes, and --disable-web-security, which would hide what a test checks)
  // its fonts.conf lists <tmp>/fonts, where executablePath() unpacked the fonts
  const fonts = join(tmpdir(), "fonts");
  const env: Record<string, string> = existsSync(join(fonts, "fonts.conf")) ? { FONTCONFIG_PATH: fonts } : {};
  return { executablePath, args: QUIET_ARGS, env, from: "@sparticuz/chromium" };
}

export async function launchChromium(): Promise<Browser> {
  const src = await chromiumSource();
  return chromium.launch({
    executablePath: src.executablePath,
    args: src.args,
    env: { ...process.env, ...src.env } as Record<string, string>,
    headless: true,
  });
}
