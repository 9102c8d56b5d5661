#!/usr/bin/env node
// Issue 35, "200 photos dropped → trained in the page": the real page (www/ at `?device=cpu`, the
// engine the page picks: pkg-cpu-relaxed/ on every core in Chromium), a zip of 200 trashnet-mini
// photos in 4 class folders (50 a class, train/ then val/; deflated as an OS "compress" would),
// dropped on a fresh page as a file from disk, then Train pressed the moment the 200th photo is
// in (the page's default settings). Timed inside the page (performance.now(), checked every
// 10 ms): the drop → the 200th photo in the project, Train → the model, and their sum; and how
// much of the drop the engine was busy with `addImages` calls.
//
// ResNet-18 runs the seeded random-weight file that
// `cargo run --release --example bench_embed -- --write-weights bench/.cache` writes (speed does
// not depend on the values), served to the page through its weight manifest; Lite0 its real
// weights (www/weights/).
//
//   node bench/drop200.mjs            (after ./run serve)
// Env: ARCHS (default efficientnet_lite0,resnet18), ROUNDS (default 2), N (default 200), IDLE_MS
//      (default 0: the drop the moment the page is ready; e.g. 3000: after 3 s, as a person would),
//      SORTWISE_DATA (trashnet-mini), CHROMIUM, ZIP (another zip of N photos in class folders). Prints one JSON object on stdout, a table on stderr.

import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { DATA, launchChromium, serveRepo } from '../tests/e2e/serve.mjs';

const ROOT = new URL('..', import.meta.url).pathname;
const ARCHS = (process.env.ARCHS || 'efficientnet_lite0,resnet18').split(',');
const ROUNDS = Number(process.env.ROUNDS || 2);
const IDLE_MS = Number(process.env.IDLE_MS || 0);
const N = Number(process.env.N || 200);
const CACHE = join(ROOT, 'bench/.cache/drop200');
// ZIP=path: another zip of class folders instead (e.g. one that lists the classes photo by photo)
const ZIP = process.env.ZIP || join(CACHE, `photos-${N}-by-folder.zip`);
const WEIGHTS = {
  efficientnet_lite0: join(ROOT, 'www/weights/efficientnet_lite0.safetensors'),
  resnet18: join(ROOT, 'bench/.cache/resnet18-random.safetensors'),
};
const T0 = Date.now();
const log = (...a) => console.error(`[drop200 ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...a);

/** The zip: N photos, taken from the classes in turn so that any N is balanced, one folder a class. */
function makeZip() {
  const byClass = {};
  for (const split of ['train', 'val']) {
    if (!existsSync(join(DATA, split))) continue;
    for (const cls of readdirSync(join(DATA, split)).filter((c) => !c.startsWith('.')).sort()) {
      for (const f of readdirSync(join(DATA, split, cls)).filter((f) => /\.jpe?g$/i.test(f)).sort()) {
        (byClass[cls] ??= []).push(join(DATA, split, cls, f));
      }
    }
  }
  const picked = [];
  for (let i = 0; picked.length < N; i += 1) {
    const before = picked.length;
    for (const cls of Object.keys(byClass)) if (byClass[cls][i] && picked.length < N) picked.push([cls, byClass[cls][i]]);
    if (picked.length === before) throw new Error(`only ${picked.length} photos under ${DATA}`);
  }
  // listed folder by folder, as a zip tool writes them (the page sends a class's photos RULES.addBatch at a time)
  picked.sort(([a], [b]) => a.localeCompare(b));
  const entries = {};
  for (const [cls, path] of picked) entries[`photos/${cls}/${path.split('/').pop()}`] = [readFileSync(path), { level: 6 }];
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(ZIP, zipSync(entries));
  log(`zip: ${ZIP} (${N} photos, ${(statSync(ZIP).size / 1048576).toFixed(1)} MB)`);
}

async function run(browser, base, arch) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    // this backbone only, so that the page starts with it
    const weights = readFileSync(WEIGHTS[arch]);
    await context.route('**/www/weights/manifest.json', (route) => route.fulfill({
      status: 200, contentType: 'application/json',
      body: JSON.stringify({ backbones: [{ arch, file: `${arch}.safetensors`, bytes: weights.length, sha256: '' }] }),
    }));
    await context.route(`**/www/weights/${arch}.safetensors`, (route) => route.fulfill({ status: 200, contentType: 'application/octet-stream', body: weights }));
    const page = await context.newPage();
    // The engine's `addImages` calls as the page's main thread sees them (posted, answered), to
    // tell the engine's time from the page's. (The answer is seen after the client's own
    // handler, which may already have posted the next call: so no gaps are reported.)
    await page.addInitScript(() => {
      const calls = (window.__engineCalls = []);
      const post = Worker.prototype.postMessage;
      Worker.prototype.postMessage = function (msg, ...rest) {
        if (msg && msg.op === 'addImages') {
          calls.push({ id: msg.id, n: msg.args?.[1]?.length ?? 0, posted: performance.now(), answered: null });
          if (!this.__watched) {
            this.__watched = true;
            this.addEventListener('message', ({ data }) => {
              const c = calls.find((x) => x.id === data?.id && x.answered == null && data.ok !== undefined);
              if (c) c.answered = performance.now();
            });
          }
        }
        return post.call(this, msg, ...rest);
      };
    });
    page.on('pageerror', (e) => log('page error:', e.message));
    await page.goto(`${base}/www/?device=cpu`);
    await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 240000 });
    if (await page.evaluate(() => document.body.dataset.ready) !== '1') throw new Error('the page did not start');
    const st = await page.evaluate(() => window.sortwiseDebug.state);
    if (st.arch !== arch) throw new Error(`the page started with ${st.arch}, not ${arch}`);
    await page.evaluate(() => {
      const input = Object.assign(document.createElement('input'), { type: 'file', id: 'bench-zip', hidden: true });
      document.body.append(input);
    });
    await page.setInputFiles('#bench-zip', ZIP);
    // a person takes a moment between the page appearing and dropping a zip on it
    if (IDLE_MS) await page.waitForTimeout(IDLE_MS);
    const r = await page.evaluate(async (n) => {
      const dbg = window.sortwiseDebug;
      const count = () => dbg.state.classes.reduce((k, c) => k + c.count, 0);
      const until = (ok, what, timeoutMs = 300000) => new Promise((resolve, reject) => {
        const t = performance.now();
        const tick = () => {
          if (ok()) resolve(performance.now());
          else if (performance.now() - t > timeoutMs) reject(new Error(`timed out waiting for ${what}`));
          else setTimeout(tick, 10);
        };
        tick();
      });
      const file = document.getElementById('bench-zip').files[0];
      const dt = new DataTransfer();
      dt.items.add(file);
      const t0 = performance.now();
      document.getElementById('data-h').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      const t1 = await until(() => count() >= n, `${n} photos`);
      document.getElementById('train-btn').click();
      const t2 = await until(() => dbg.state.hasModel && !dbg.state.training, 'the model');
      const s = dbg.state;
      // Engine time: each call from when it was posted (or the one before answered) to its answer;
      // the rest of the drop is the page's (reading the zip, answers waiting on the main thread).
      const calls = window.__engineCalls.filter((c) => c.posted >= t0 && c.answered != null);
      let engineMs = 0;
      let prev = t0;
      const firstPostS = calls.length ? (calls[0].posted - t0) / 1000 : null;
      for (const c of calls) {
        engineMs += c.answered - Math.max(c.posted, prev);
        prev = c.answered;
      }
      return { engineS: engineMs / 1000, calls: calls.length, firstPostS, embedS: (t1 - t0) / 1000, trainS: (t2 - t1) / 1000, totalS: (t2 - t0) / 1000, photos: count(), skipped: s.skipped.length, engine: s.engine, valAccuracy: s.report?.valAccuracy ?? null };
    }, N);
    return { arch, ...r };
  } finally {
    await context.close();
  }
}

if (!existsSync(ZIP)) makeZip();
for (const arch of ARCHS) if (!existsSync(WEIGHTS[arch])) throw new Error(`${WEIGHTS[arch]} is missing (see the header)`);
const server = await serveRepo('/www/index.html');
const browser = await launchChromium();
const out = { chromium: browser.version(), n: N, runs: [], errors: [] };
try {
  for (let round = 1; round <= ROUNDS; round += 1) {
    for (const arch of ARCHS) {
      try {
        const r = await run(browser, server.base, arch);
        out.runs.push({ round, ...r });
        log(`${arch} round ${round}: the engine busy ${r.engineS.toFixed(2)} s of it, ${r.calls} calls, the first ${r.firstPostS?.toFixed(2)} s after the drop`);
        log(`${arch} round ${round}: ${r.photos} photos in ${r.embedS.toFixed(2)} s, trained in ${r.trainS.toFixed(2)} s, dropped → trained ${r.totalS.toFixed(2)} s (${r.engine?.wasmPackage}, ${r.engine?.threads} threads)`);
      } catch (e) {
        out.errors.push(`${arch} round ${round}: ${e.message}`);
        log(`FAILED ${arch} round ${round}: ${e.message}`);
      }
    }
  }
} finally {
  await browser.close();
  server.stop();
}
const cpu = (() => { try { return execSync("lscpu | sed -n 's/^Model name: *//p'", { encoding: 'utf8' }).trim(); } catch { return '?'; } })();
console.log(JSON.stringify({ cpu, ...out }));
console.error(`\nProcessor: ${cpu}; Chromium ${out.chromium}; ${N} photos; seconds per round\n`);
console.error('| backbone | build, threads | drop → last photo in | the engine busy | Train → model | dropped → trained |');
console.error('|---|---|---|---|---|---|');
for (const arch of ARCHS) {
  const rs = out.runs.filter((r) => r.arch === arch);
  if (!rs.length) continue;
  const col = (k) => rs.map((r) => r[k].toFixed(2)).join(', ');
  console.error(`| ${arch} | ${rs[0].engine?.wasmPackage}, ${rs[0].engine?.threads} | ${col('embedS')} | ${col('engineS')} | ${col('trainS')} | ${col('totalS')} |`);
}
process.exit(out.errors.length ? 1 : 0);
