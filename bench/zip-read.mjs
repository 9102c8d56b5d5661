#!/usr/bin/env node
// How fast the page's zip reader (www/project/project-zip.js) gives back a class-folder zip's
// photos, in a module worker of headless Chromium as zip-worker.js runs it: the browser's
// DecompressionStream (what the page uses) against fflate alone (`useNativeInflate(false)`: a
// browser without it), each round in the same Chromium, one after the other.
//
//   node bench/zip-read.mjs          (after `node bench/zip5000.mjs` made its zip; N=1500 entries)
//
// Env: ZIP (default: bench/zip5000.mjs's 5,000-photo zip), N (entries read), ROUNDS (default 2).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { launchChromium, serveRepo, ROOT } from '../tests/e2e/serve.mjs';

const ZIP = process.env.ZIP || join(ROOT, 'bench/.cache/zip5000/photos-5000-640x480-g0.12.zip');
const N = Number(process.env.N || 1500);
const ROUNDS = Number(process.env.ROUNDS || 2);
if (!existsSync(ZIP)) throw new Error(`${ZIP} is missing: run \`ZIP_ONLY=1 node bench/zip5000.mjs\` first`);

const server = await serveRepo();
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(`${server.base}/tests/e2e/harness.html`);
  await page.evaluate(() => { const i = document.createElement('input'); i.type = 'file'; i.id = 'zip'; document.body.append(i); });
  await page.setInputFiles('#zip', ZIP);
  for (let round = 1; round <= ROUNDS; round += 1) {
    for (const native of [true, false]) {
      const r = await page.evaluate(async ({ native, N }) => {
        const src = `onmessage = async (ev) => {
          const z = await import(ev.data.base + '/www/project/project-zip.js');
          z.useNativeInflate(ev.data.native);
          const t = performance.now();
          const zip = await z.openZipFile(ev.data.file);
          let n = 0; let bytes = 0;
          for await (const x of zip.entries()) { if (x.entry) { n += 1; bytes += x.entry.bytes.length; } if (n >= ev.data.N) break; }
          postMessage({ n, bytes, ms: performance.now() - t });
        };`;
        const w = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })), { type: 'module' });
        const out = await new Promise((res) => { w.onmessage = (e) => res(e.data); w.postMessage({ file: document.getElementById('zip').files[0], native, N, base: location.origin }); });
        w.terminate();
        return out;
      }, { native, N });
      console.log(`round ${round}, ${native ? 'DecompressionStream' : 'fflate alone'}: ${r.n} entries, ${(r.bytes / 1e6).toFixed(1)} MB in ${r.ms.toFixed(0)} ms (${(r.n / r.ms * 1000).toFixed(0)} entries/s)`);
    }
  }
} finally {
  await browser.close();
  server.stop();
}
