// The browser page in a real headless Chromium (Debian's, driven by playwright-core): `attfc serve` for a
// model on a free port, a fresh profile, one page with its errors collected, and the clean-up.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';

export const CHROMIUM = process.env.ATTFC_CHROMIUM ?? '/usr/bin/chromium';
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Why the browser tests cannot run here, or null; with ATTFC_REQUIRE_CHROMIUM set a missing Chromium is an error. */
export function chromiumMissing(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const why = `${CHROMIUM} is not installed (apt-get install chromium; .ci/run does); set ATTFC_CHROMIUM to use another Chromium`;
  if (process.env.ATTFC_REQUIRE_CHROMIUM) throw new Error(`ATTFC_REQUIRE_CHROMIUM is set but ${why}`);
  return why;
}

export interface ServedPage {
  url: string;
  page: Page;
  /** Uncaught errors the page threw. */
  pageErrors: string[];
  close(): Promise<void>;
}

/** Starts `attfc serve <modelDir>` and opens a page in headless Chromium (not yet navigated). */
export async function openServedPage(modelDir: string, viewport: { width: number; height: number }): Promise<ServedPage> {
  const { chromium } = await import('playwright-core');
  const server = spawn(process.execPath, ['bin/attfc.js', 'serve', modelDir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'attfc-chromium-profile-'));
  let browser: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | null = null;
  const close = async () => {
    await browser?.close();
    server.kill('SIGTERM');
    rmSync(userDataDir, { recursive: true, force: true });
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        const m = / at (http:\/\/\S+) /.exec(out);
        if (m) resolve(m[1]);
      });
      server.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      server.on('exit', (code) => reject(new Error(`attfc serve exited (${code}): ${out}`)));
    });
    browser = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS, viewport });
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    return { url, page, pageErrors, close };
  } catch (e) {
    await close();
    throw e;
  }
}
