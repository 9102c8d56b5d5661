// Shared by the browser tests and benchmarks: serve the repository with scripts/serve.py on a
// free loopback port, and launch Debian's Chromium with the flags that make WebGPU work through
// SwiftShader (without them it reports no adapter).

import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DATA = resolve(process.env.SORTWISE_DATA || join(ROOT, '../shared/data/trashnet-mini'));

/** The first `n` photos of a trashnet-mini class, as plain arrays (they cross page.evaluate). */
export const photos = (cls, n, split = 'train') => readdirSync(join(DATA, split, cls)).sort().slice(0, n)
  .map((f) => [...readFileSync(join(DATA, split, cls, f))]);

/** A page on `path` (the test harness) that logs console errors and hands uncaught ones to `onError`. */
export async function openHarness(browser, server, log, onError, path = '/tests/e2e/harness.html') {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error' && !/favicon/.test(m.location().url)) log('console error:', m.text()); });
  page.on('pageerror', (e) => { onError(); log('page error:', e.message); });
  await page.goto(server.base + path);
  return page;
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

/**
 * Starts scripts/serve.py; resolves to `{base, stop}` once `probe` (a repo path) answers.
 * Cross-origin isolated (COOP + COEP), as `./run serve`, unless `isolated: false`: a plain
 * static host, where the worker falls back to the single-threaded pkg/.
 */
export async function serveRepo(probe = '/tests/e2e/harness.html', { isolated = true } = {}) {
  const port = await freePort();
  const args = [join(ROOT, 'scripts/serve.py'), String(port), ...(isolated ? [] : ['--no-isolation'])];
  const proc = spawn('python3', args, { cwd: ROOT, stdio: 'ignore' });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i += 1) {
    try {
      if ((await fetch(base + probe)).ok) return { base, stop: () => proc.kill() };
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill();
  throw new Error('scripts/serve.py did not start');
}

/** How the tests and benches start Chromium: the apt build (or CHROMIUM), no sandbox, WebGPU through SwiftShader. */
export const CHROMIUM_LAUNCH = {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader'],
};

export function launchChromium() {
  return chromium.launch(CHROMIUM_LAUNCH);
}

/**
 * The fake engine (tests/e2e/fake-client.js) and a one-backbone manifest for a playwright context:
 * page logic in seconds, no wasm build or weights needed.
 */
export async function useFakeEngine(context) {
  await context.route('**/www/weights/manifest.json', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ backbones: [{ arch: 'efficientnet_lite0', file: 'efficientnet_lite0.safetensors', bytes: 9410256, sha256: '' }] }) }));
  await context.route('**/www/engine/client.js', (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body: readFileSync(join(ROOT, 'tests/e2e/fake-client.js')) }));
}
