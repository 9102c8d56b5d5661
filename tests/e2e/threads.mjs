#!/usr/bin/env node
// End-to-end test of the three wasm builds (scripts/wasm_pkg.sh) behind www/engine/client.js in
// headless Chromium (and one case in Firefox ESR):
//  - cross-origin isolated (scripts/serve.py, as `./run serve`): `device: 'cpu'` loads
//    pkg-cpu-relaxed/ (Chromium has relaxed SIMD) and runs on one rayon thread per core, trains
//    and predicts; `auto` on this machine (SwiftShader only) loads it too;
//  - the same host without pkg-cpu-relaxed/ (404): the SIMD128 pkg-cpu/ runs instead and trains;
//  - not isolated (`serve.py --no-isolation`, a plain static host): `cpu` falls back to the
//    single-threaded pkg/, says so, and still trains; its embedding of the same photo equals
//    both threaded builds' within 1e-4;
//  - the page on that header-less host: www/sw.js makes it cross-origin isolated with one reload,
//    and a second visit does not reload again;
//  - a thread pool that never starts (its workers never ready, or ready and never taking their
//    thread, which blocks the worker): after the client's 20 s deadline a fresh worker tries the
//    threads again, which run if only the first try stalled; after two stalls `cpu` falls back
//    to pkg/, says why, and still trains. A first-try stall again in Firefox ESR.
// Needs pkg/, pkg-cpu/, pkg-cpu-relaxed/ and www/weights/ (./run test builds them).
//
//   node tests/e2e/threads.mjs

import { launchChromium, openHarness, photos, serveRepo } from './serve.mjs';

const T0 = Date.now();
const log = (...a) => console.log(`[threads ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...a);
const data = { glass: photos('glass', 4), metal: photos('metal', 4), held: [...photos('glass', 2, 'val'), ...photos('metal', 2, 'val')] };

// In the harness page: a trainer on `device`, its build and threads, one photo's embedding, and a
// short training on 8 photos with predictions for 4 held-out ones.
async function session({ glass, metal, held, device }) {
  const { Sortwise } = await import('/www/engine/client.js');
  const u8 = (a) => new Uint8Array(a);
  const out = { isolated: self.crossOriginIsolated, cores: navigator.hardwareConcurrency };
  const t0 = performance.now();
  const sw = await Sortwise.create({ arch: 'efficientnet_lite0', device });
  out.createMs = performance.now() - t0;
  Object.assign(out, { backend: sw.backend, reason: sw.backendReason, threads: sw.threads, wasmPackage: sw.wasmPackage });
  if (device === 'cpu') {
    let t = performance.now();
    out.embedding = [...(await sw.addImage('glass', u8(glass[0]))).embedding];
    for (const g of glass.slice(1)) await sw.addImage('glass', u8(g));
    for (const m of metal) await sw.addImage('metal', u8(m));
    out.embedMs = (performance.now() - t) / (glass.length + metal.length);
    t = performance.now();
    const report = await sw.train({ epochs: 30, valSplit: 0 });
    out.trainMs = performance.now() - t;
    out.epochsRun = report.epochsRun;
    out.held = [];
    for (const h of held) out.held.push((await sw.predict(u8(h))).label);
  }
  sw.terminate();
  return out;
}

const check = (c, m) => { if (!c) throw new Error(m); };
const truth = ['glass', 'glass', 'metal', 'metal'];
const right = (r) => r.held.filter((l, i) => l === truth[i]).length;
const summary = (r) => JSON.stringify({ ...r, embedding: r.embedding ? `[${r.embedding.length}]` : undefined });

const isolatedServer = await serveRepo();
const plainServer = await serveRepo('/tests/e2e/harness.html', { isolated: false });
const browser = await launchChromium();
let failed = false;
try {
  const open = (server, path) => openHarness(browser, server, log, () => { failed = true; }, path);

  // 1. Isolated: `cpu` and `auto` load pkg-cpu-relaxed/ with one thread per core.
  let page = await open(isolatedServer);
  const threaded = await page.evaluate(session, { ...data, device: 'cpu' });
  log('isolated cpu:', summary(threaded));
  const auto = await page.evaluate(session, { ...data, device: 'auto' });
  log('isolated auto:', summary(auto));
  await page.close();

  // 1b. A host that left pkg-cpu-relaxed/ out: the worker moves on to pkg-cpu/.
  page = await browser.newPage();
  page.on('pageerror', (e) => { failed = true; log('page error:', e.message); });
  let refused = 0;
  await page.context().route('**/pkg-cpu-relaxed/**', (route) => { refused += 1; return route.fulfill({ status: 404, body: 'not here' }); });
  await page.goto(`${isolatedServer.base}/tests/e2e/harness.html`);
  const simd128 = await page.evaluate(session, { ...data, device: 'cpu' });
  await page.context().unrouteAll();
  await page.close();
  log(`isolated cpu without pkg-cpu-relaxed/ (${refused} requests refused):`, summary(simd128));

  // 2. Not isolated: the single-threaded pkg/.
  page = await open(plainServer);
  const single = await page.evaluate(session, { ...data, device: 'cpu' });
  log('not isolated cpu:', summary(single));
  await page.close();

  check(threaded.isolated && threaded.wasmPackage === 'pkg-cpu-relaxed' && threaded.backend === 'cpu', `isolated cpu: ${summary(threaded)}`);
  check(/relaxed SIMD/.test(threaded.reason), `backendReason names relaxed SIMD: ${threaded.reason}`);
  check(refused >= 1 && simd128.wasmPackage === 'pkg-cpu' && simd128.threads === threaded.threads && !/relaxed/.test(simd128.reason), `without pkg-cpu-relaxed/: ${summary(simd128)}`);
  check(threaded.threads >= 2 && threaded.threads === threaded.cores, `threads ${threaded.threads}, cores ${threaded.cores}`);
  check(new RegExp(`${threaded.threads} threads`).test(threaded.reason), `backendReason names the threads: ${threaded.reason}`);
  check(auto.wasmPackage === 'pkg-cpu-relaxed' && auto.backend === 'cpu' && /software|no WebGPU/.test(auto.reason), `isolated auto: ${summary(auto)}`);
  check(!single.isolated && single.wasmPackage === 'pkg' && single.backend === 'cpu' && single.threads === 1, `not isolated: ${summary(single)}`);
  check(/not cross-origin isolated/.test(single.reason), `the fallback says why: ${single.reason}`);
  for (const r of [threaded, simd128, single]) {
    check(r.epochsRun >= 1 && right(r) >= 3, `training on ${r.wasmPackage}: ${r.epochsRun} epochs, held-out ${r.held}`);
  }
  const maxDiff = (a, b) => Math.max(...a.embedding.map((v, i) => Math.abs(v - b.embedding[i])));
  const diff = maxDiff(threaded, single);
  const diff128 = maxDiff(simd128, single);
  check([threaded, simd128, single].every((r) => r.embedding.length === 1280) && diff <= 1e-4 && diff128 <= 1e-4,
    `embedding against pkg/: pkg-cpu-relaxed max |diff| ${diff}, pkg-cpu ${diff128}`);

  // 3. The page on a host without COOP/COEP: sw.js isolates it with one reload, and only one.
  page = await open(plainServer, '/www/');
  let navigations = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations += 1; });
  await page.waitForFunction(() => self.crossOriginIsolated, null, { timeout: 60000 });
  const reloadsFirst = navigations;
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 60000 });
  await new Promise((r) => setTimeout(r, 2000));
  const second = { isolated: await page.evaluate(() => self.crossOriginIsolated), navigations: navigations - reloadsFirst };
  await page.close();
  log(`www/ on a header-less host: isolated after ${reloadsFirst} reload(s); next visit isolated ${second.isolated} with ${second.navigations - 1} extra reload(s)`);
  check(reloadsFirst === 1, `sw.js isolation: ${reloadsFirst} reloads on the first visit`);
  check(second.isolated && second.navigations === 1, `second visit: ${JSON.stringify(second)}`);

  // 4. A thread pool that never starts, two ways: its workers never say they are ready (the
  // worker waits, its event loop free), or they say so and never take their thread (the pool's
  // build then blocks the worker's event loop for good, as Firefox now and then does). Past the
  // client's 20 s deadline a fresh worker tries the threads once more (`once`: only the first
  // try is stalled, and the second runs pkg-cpu-relaxed/), then the single-threaded pkg/ takes over.
  const NEVER_READY = ["postMessage({ type: 'wasm_bindgen_worker_ready' });", '/* never ready */'];
  const BLOCKED = ['pkg.wbg_rayon_start_worker(data.receiver);', '/* never takes its thread */'];
  // The first try's requests come within a second of the page's start, the second's after 20 s.
  const FIRST_TRY_MS = 10000;
  const expectStall = (what, once, stuck, waited) => {
    if (once) {
      check(stuck.wasmPackage === 'pkg-cpu-relaxed' && stuck.threads >= 1 && !/single-threaded/.test(stuck.reason), `${what}, once: the second try should run the threads: ${summary(stuck)}`);
      check(waited >= 20 && waited < 60, `${what}, once: ${waited.toFixed(1)} s`);
    } else {
      check(stuck.wasmPackage === 'pkg' && stuck.backend === 'cpu' && stuck.threads === 1, `stalled pool, ${what}: ${summary(stuck)}`);
      check(/single-threaded: the wasm thread pool did not start within 20 s, twice/.test(stuck.reason), `${what}: the fallback says why: ${stuck.reason}`);
      check(waited >= 40 && waited < 120, `${what}: ${waited.toFixed(1)} s`);
    }
    check(stuck.epochsRun >= 1, `${what}: after a stalled pool it still trains: ${stuck.epochsRun} epochs`);
  };
  const bounded = (promise, what) => Promise.race([
    promise,
    // So that a client without the deadline fails this test rather than hanging it.
    new Promise((_, reject) => setTimeout(() => reject(new Error(`a stalled thread pool (${what}) left the engine starting for 120 s`)), 120000)),
  ]);
  for (const [what, [line, instead], once] of [['never ready', NEVER_READY, false], ['ready, never started', BLOCKED, false], ['ready, never started', BLOCKED, true]]) {
    page = await browser.newPage();
    page.on('pageerror', (e) => { failed = true; log('page error:', e.message); });
    let stalled = 0;
    let missing = false;
    let t4 = Infinity;
    await page.context().route('**/workerHelpers.no-bundler.js', async (route) => {
      const real = await route.fetch();
      const text = await real.text();
      if (!text.includes(line)) missing = true;
      if (once && Date.now() - t4 > FIRST_TRY_MS) { await route.fulfill({ response: real, body: text }); return; }
      stalled += 1;
      await route.fulfill({ response: real, body: text.replace(line, instead) });
    });
    await page.goto(`${isolatedServer.base}/tests/e2e/harness.html`);
    t4 = Date.now();
    const stuck = await bounded(page.evaluate(session, { ...data, glass: data.glass.slice(0, 1), device: 'cpu' }), what);
    const waited = (Date.now() - t4) / 1000;
    await page.context().unrouteAll();
    await page.close();
    log(`stalled pool, ${what}${once ? ', first try only' : ''} (${stalled} requests rewritten): ${summary(stuck)} after ${waited.toFixed(1)} s`);
    check(!missing && stalled >= 1, `${what}: the thread pool's worker script was not intercepted, or no longer has ${line}`);
    expectStall(what, once, stuck, waited);
  }

  // 5. The blocked pool in Firefox, the browser that did it on its own, on the first try only:
  // terminating a worker blocked in the pool's build must work there too, and the second try
  // then runs the threads (puppeteer-core over WebDriver BiDi).
  {
    const { default: puppeteer } = await import('puppeteer-core');
    const firefox = await puppeteer.launch({ browser: 'firefox', executablePath: process.env.FIREFOX || '/usr/bin/firefox-esr', headless: true });
    try {
      const ff = await firefox.newPage();
      const [line, instead] = BLOCKED;
      let rewritten = 0;
      let served = 0;
      let t5 = Infinity;
      await ff.setRequestInterception(true);
      ff.on('request', async (req) => {
        if (!req.url().endsWith('workerHelpers.no-bundler.js')) { await req.continue(); return; }
        const text = await (await fetch(req.url())).text();
        const stall = text.includes(line) && Date.now() - t5 <= FIRST_TRY_MS;
        if (stall) rewritten += 1; else served += 1;
        // no-store: a response made here carries none of the server's cache headers, and Firefox
        // once served the second try the first try's stalled copy (CI: both tries stalled).
        await req.respond({ status: 200, contentType: 'text/javascript', headers: { 'cross-origin-resource-policy': 'same-origin', 'cache-control': 'no-store' }, body: stall ? text.replace(line, instead) : text });
      });
      await ff.goto(`${isolatedServer.base}/tests/e2e/harness.html`);
      t5 = Date.now();
      const stuck = await bounded(ff.evaluate(session, { ...data, glass: data.glass.slice(0, 1), device: 'cpu' }), 'Firefox');
      const waited = (Date.now() - t5) / 1000;
      log(`Firefox, stalled pool, ready, never started, first try only (${rewritten} requests rewritten, ${served} served as they are): ${summary(stuck)} after ${waited.toFixed(1)} s`);
      check(rewritten >= 1, 'Firefox: the thread pool\'s worker script was not intercepted');
      expectStall('Firefox, ready, never started', true, stuck, waited);
    } finally {
      await firefox.close();
    }
  }

  log(`ok: pkg-cpu-relaxed ${threaded.threads} threads ${threaded.embedMs.toFixed(0)} ms/photo, train ${threaded.trainMs.toFixed(0)} ms; `
    + `pkg-cpu ${simd128.embedMs.toFixed(0)} ms/photo; pkg single-threaded ${single.embedMs.toFixed(0)} ms/photo, train ${single.trainMs.toFixed(0)} ms; `
    + `embedding max |diff| against pkg/ ${diff.toExponential(1)} (relaxed), ${diff128.toExponential(1)} (SIMD128), between the threaded builds ${maxDiff(threaded, simd128).toExponential(1)}`);
} catch (e) {
  failed = true;
  log('FAILED:', e.message);
} finally {
  await browser.close();
  isolatedServer.stop();
  plainServer.stop();
}
process.exit(failed ? 1 : 0);
