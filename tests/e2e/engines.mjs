#!/usr/bin/env node
// The page's end-to-end flow in the three browser engines classrooms run: Chromium (playwright-core),
// Firefox ESR (puppeteer-core over WebDriver BiDi) and WebKitGTK, Safari's engine (selenium-webdriver
// with WebKitWebDriver and MiniBrowser, under xvfb-run, with the process locale LANG=C.UTF-8, which
// hands the page the language tag `C`).
//
//   node tests/e2e/engines.mjs [chromium] [firefox] [webkit]      (default: all three)
//
// Flow, the same in each: start (the documented device fallback asserted: no WebGPU → CPU; no
// SharedArrayBuffer → pkg/ single-threaded, saying why), a zip of class folders → train → results →
// photo test → model export and import (same prediction) → reload restores the project (same classes,
// counts and prediction) → the share link opens the classify view (the held-out photos' classes
// as the full model's, but one at most) and the project is still the saved one → second visit offline where the engine's service worker controls the page.
// Files are built inside the page and handed over with a `change` event, the same in every driver.
// Every request must stay on the origin. Writes artifacts/engines.json: engine × feature as measured
// (docs/BROWSERS.md's table). Exit code 0 on success, 1 on failure.

import { zipSync } from 'fflate';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Failure, keepPageLog, launchFirefox, launchWebKit, waitForEvery } from './drivers.mjs';
import { CHROMIUM_LAUNCH, DATA, ROOT, serveRepo } from './serve.mjs';

const CLASSES = ['glass', 'metal', 'paper', 'plastic'];
const PER_CLASS = Number(process.env.SORTWISE_ENGINES_PER_CLASS || 20);
const T0 = Date.now();
const log = (...a) => console.log(`[engines ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...a);
const check = (cond, msg) => { if (!cond) throw new Failure(msg); };
const pageLog = [];
const poolStalls = [];

const jpegs = (split, cls) => readdirSync(join(DATA, split, cls)).filter((f) => /\.jpe?g$/i.test(f)).sort();

function trainingZip() {
  const files = {};
  for (const cls of CLASSES) {
    for (const f of jpegs('train', cls).slice(0, PER_CLASS)) files[`photos/${cls}/${f}`] = new Uint8Array(readFileSync(join(DATA, 'train', cls, f)));
  }
  return Buffer.from(zipSync(files, { level: 0 })).toString('base64');
}

// ---- drivers: open a URL, evaluate an async function of one JSON argument, reload, close ----

async function chromiumDriver() {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch(CHROMIUM_LAUNCH);
  const context = await browser.newContext({ locale: 'en-US' });
  // The context sees the workers' requests too.
  return pageDriver(browser, await context.newPage(), context);
}

// playwright-core and puppeteer-core pages have the same four calls the flow needs.
function pageDriver(browser, page, requestSource = page) {
  const requests = [];
  requestSource.on('request', (r) => requests.push(r.url()));
  // Shown when a step fails: what the page said on its way there.
  keepPageLog(page, pageLog);
  return {
    requests,
    open: (url) => page.goto(url),
    eval: (fn, arg) => page.evaluate(fn, arg),
    reload: () => page.reload(),
    screenshot: (path) => page.screenshot({ path, fullPage: true }),
    close: () => browser.close(),
  };
}

async function firefoxDriver() {
  const browser = await launchFirefox();
  return pageDriver(browser, await browser.newPage());
}

async function webkitDriver() {
  // LANG=C.UTF-8, as on many lab and kiosk images: WebKit then reports the language tag `C`.
  const env = { ...process.env, LANG: 'C.UTF-8' };
  delete env.LC_ALL;
  delete env.LANGUAGE;
  const w = await launchWebKit({ env, timeouts: { script: 600000, pageLoad: 120000 } });
  return {
    requests: null, // WebDriver classic has no network log: the page's own Resource Timing is read instead
    open: w.open,
    eval: w.eval,
    reload: () => w.driver.navigate().refresh(),
    screenshot: w.screenshot,
    close: w.close,
  };
}

const DRIVERS = { chromium: chromiumDriver, firefox: firefoxDriver, webkit: webkitDriver };

// ---- in-page steps (self-contained functions: they are serialised for WebDriver) ----

const waitFor = waitForEvery(250, { timeout: 240000 });

// What a page that never started shows: where it stopped.
const startState = () => ({
  readyState: document.readyState,
  status: document.getElementById('status-text')?.textContent ?? null,
  error: document.getElementById('error')?.hidden === false ? document.getElementById('error-text').textContent : null,
  app: Boolean(window.sortwiseDebug),
  startSteps: window.sortwiseDebug?.state.startSteps ?? null,
  controlled: Boolean(navigator.serviceWorker?.controller),
  crossOriginIsolated: self.crossOriginIsolated,
  resources: performance.getEntriesByType('resource').slice(-8).map((e) => `${e.name.replace(location.origin, '')} ${Math.round(e.duration)}ms`),
});

async function waitReady(d, timeout = 240000) {
  let ready;
  try {
    ready = await waitFor(d, () => document.body && document.body.dataset.ready, null, { timeout, what: 'the page to start' });
  } catch (e) {
    const state = await d.eval(startState).catch((x) => `unreadable: ${x.message}`);
    throw new Failure(`${e.message}: ${JSON.stringify(state)}`);
  }
  if (ready !== '1') {
    const text = await d.eval(() => `${document.getElementById('status-text').textContent} ${document.getElementById('error').hidden ? '' : document.getElementById('error-text').textContent} (start steps: ${(window.sortwiseDebug?.state.startSteps ?? []).join(', ')})`);
    throw new Failure(`the page did not start: ${text}`);
  }
  // A pool that did not start costs the page 20 s (or 40 s and its threads), not the start
  // (client.js): shown and counted rather than failed, so a browser doing it again is seen.
  const started = await d.eval(() => ({ steps: window.sortwiseDebug.state.startSteps, reason: document.getElementById('device-reason').textContent }));
  const tries = started.steps.filter((step) => step.startsWith('thread pool')).length;
  if (tries > 1 || /thread pool did not start/.test(started.reason)) {
    poolStalls.push(started);
    log(`the wasm thread pool did not start at the first try (${tries} tries): ${JSON.stringify(started)}`);
  }
}

const environment = async () => {
  const s = window.sortwiseDebug.state;
  const { threadedBuilds } = await import('/www/engine/builds.js');
  return {
    threadedBuilds: threadedBuilds(),
    crossOriginIsolated: self.crossOriginIsolated,
    sharedArrayBuffer: typeof SharedArrayBuffer === 'function',
    webgpu: Boolean(navigator.gpu),
    serviceWorker: 'serviceWorker' in navigator,
    controlled: Boolean(navigator.serviceWorker && navigator.serviceWorker.controller),
    indexedDB: typeof indexedDB === 'object' && indexedDB !== null,
    camera: Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia),
    language: navigator.language,
    pageLang: document.documentElement.lang,
    backend: s.backend,
    engine: s.engine,
    reason: document.getElementById('device-reason').textContent,
  };
};

// confirm() answered yes, and every exported file captured (a download cannot be read back the
// same way in three drivers).
const instrument = () => {
  window.confirm = () => true;
  window.__exports = [];
  const create = URL.createObjectURL.bind(URL);
  URL.createObjectURL = (blob) => {
    if (blob instanceof Blob && blob.type !== 'image/jpeg') window.__exports.push(blob);
    return create(blob);
  };
  return true;
};

const applyEmptyPreset = () => {
  document.getElementById('preset').value = 'empty';
  document.getElementById('apply-preset').click();
  return true;
};

const giveFile = async ({ input, name, type, b64 }) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], name, { type }));
  const el = document.getElementById(input);
  el.files = dt.files;
  el.dispatchEvent(new Event('change', { bubbles: true }));
  return true;
};

const giveExport = async ({ input, index }) => {
  const blob = window.__exports[index];
  const dt = new DataTransfer();
  dt.items.add(new File([blob], 'model.sortwise', { type: 'application/octet-stream' }));
  const el = document.getElementById(input);
  el.files = dt.files;
  el.dispatchEvent(new Event('change', { bubbles: true }));
  return blob.size;
};

const classesNow = () => window.sortwiseDebug.state.classes;
const idle = async () => {
  await window.sortwiseDebug.idle();
  return document.getElementById('embed-progress').hidden && !window.sortwiseDebug.state.training;
};
const errorShown = () => (document.getElementById('error').hidden ? '' : document.getElementById('error-text').textContent);

const prediction = () => {
  const label = document.getElementById('test-label');
  if (label.hidden) return null;
  const p = window.sortwiseDebug.state.prediction;
  if (!p) return null;
  const top = [...p.probs].sort((a, b) => b.p - a.p)[0];
  return { label: p.label, unsure: p.unsure, top: top.label, confidence: top.p, probs: p.probs, text: label.textContent.trim() };
};

// Resource Timing: every URL the page and its workers fetched that the page can see.
const resources = () => performance.getEntriesByType('resource').map((e) => e.name);

// ---- the flow ----

async function flow(name, server) {
  const d = await DRIVERS[name]();
  const result = { engine: name };
  const origin = new URL(server.base).origin;
  try {
    let t = Date.now();
    poolStalls.length = 0;
    await d.open(`${server.base}/www/`);
    await waitReady(d);
    const env = await d.eval(environment);
    Object.assign(result, env, { engine: name, wasm: env.engine, startSeconds: (Date.now() - t) / 1000 });
    log(`${name}: started in ${result.startSeconds}s — ${JSON.stringify(env)}`);
    check(env.pageLang === 'en' || env.pageLang === 'zh-CN', `${name}: page language ${env.pageLang} for tag ${env.language}`);
    // The documented fallbacks (docs/BROWSERS.md): each asserted as measured.
    if (!env.webgpu) check(env.backend === 'cpu', `${name}: no WebGPU, yet backend ${env.backend}`);
    // Relaxed SIMD as measured: Chromium 156 and Firefox ESR 153 have it, WebKitGTK 2.50 has not.
    const relaxed = name !== 'webkit';
    check(JSON.stringify(env.threadedBuilds) === JSON.stringify(relaxed ? ['pkg-cpu-relaxed', 'pkg-cpu'] : ['pkg-cpu']),
      `${name}: relaxed SIMD ${relaxed ? 'expected' : 'not expected'}, threaded builds ${JSON.stringify(env.threadedBuilds)}`);
    if (env.backend === 'cpu') {
      if (env.crossOriginIsolated && env.sharedArrayBuffer && !/thread pool did not start/.test(env.reason)) {
        check(env.engine.wasmPackage === env.threadedBuilds[0] && env.engine.threads >= 1, `${name}: isolated with SharedArrayBuffer, yet ${JSON.stringify(env.engine)}`);
      } else {
        check(env.engine.wasmPackage === 'pkg' && env.engine.threads === 1, `${name}: no shared memory, yet ${JSON.stringify(env.engine)}`);
        check(/single-threaded/.test(env.reason), `${name}: the reason does not say it is single-threaded: "${env.reason}"`);
      }
    }
    result.threads = env.engine.threads;

    await d.eval(instrument);
    await d.eval(applyEmptyPreset);
    await waitFor(d, () => document.querySelectorAll('.class-card').length === 0, null, { what: 'the empty preset' });

    // ---- a zip of class folders ----
    t = Date.now();
    await d.eval(giveFile, { input: 'zip-input', name: 'photos.zip', type: 'application/zip', b64: trainingZip() });
    await waitFor(d, (n) => {
      const c = window.sortwiseDebug.state.classes;
      return c.length === 4 && c.every((x) => x.count === n);
    }, PER_CLASS, { what: `4 classes of ${PER_CLASS} photos` });
    await waitFor(d, idle, null, { what: 'embedding to finish' });
    result.importSeconds = (Date.now() - t) / 1000;
    const classes = await d.eval(classesNow);
    log(`${name}: zip imported in ${result.importSeconds}s: ${JSON.stringify(classes)}`);
    check(JSON.stringify(classes.map((c) => c.label).sort()) === JSON.stringify(CLASSES), `${name}: classes ${JSON.stringify(classes)}`);

    // ---- train, results ----
    t = Date.now();
    await d.eval(() => { document.getElementById('train-btn').click(); return true; });
    await waitFor(d, () => window.sortwiseDebug.state.hasModel && !window.sortwiseDebug.state.training
      || !document.getElementById('error').hidden, null, { timeout: 600000, what: 'training' });
    check(!(await d.eval(errorShown)), `${name}: training failed: ${await d.eval(errorShown)}`);
    result.trainSeconds = (Date.now() - t) / 1000;
    const report = await d.eval(() => window.sortwiseDebug.state.report);
    const shown = await d.eval(() => ({ acc: document.getElementById('val-acc').textContent, cells: document.querySelectorAll('#confusion tbody td').length }));
    log(`${name}: trained in ${result.trainSeconds}s: val accuracy ${report.valAccuracy} ("${shown.acc}"), confusion ${JSON.stringify(report.confusion)}`);
    check(shown.cells === 16, `${name}: the confusion matrix shows ${shown.cells} cells`);
    check(report.labels.length === 4 && report.confusion.length === 4 && report.confusion.every((r) => r.length === 4), `${name}: confusion shape`);
    const valTotal = report.confusion.flat().reduce((a, b) => a + b, 0);
    check(valTotal === report.valSize && valTotal >= 4, `${name}: confusion holds ${valTotal} photos, valSize ${report.valSize}`);
    // The page's default (Advanced settings: refit on) reaches the engine, which refits for the
    // epochs the held-out run chose.
    check(report.refit === true && report.refitEpochs === report.bestEpoch, `${name}: refit ${report.refit}, ${report.refitEpochs} epochs for best epoch ${report.bestEpoch}`);
    check(report.valAccuracy > 0.25, `${name}: val accuracy ${report.valAccuracy} is not above chance (0.25)`);
    check(Math.abs(parseFloat(shown.acc) - report.valAccuracy * 100) < 0.06, `${name}: accuracy shown as "${shown.acc}"`);
    result.valAccuracy = report.valAccuracy;

    // ---- photo test on held-out photos ----
    // Three unseen photos a class: four alone were too few to tell a floor from noise.
    const heldOut = CLASSES.flatMap((cls) => jpegs('val', cls).slice(0, 3).map((file) => ({ cls, file })));
    const predictAll = async () => {
      const out = [];
      for (const { cls, file } of heldOut) {
        await d.eval(() => { window.sortwiseDebug.clearPrediction(); return true; });
        await d.eval(giveFile, { input: 'test-input', name: file, type: 'image/jpeg', b64: readFileSync(join(DATA, 'val', cls, file)).toString('base64') });
        const p = await waitFor(d, prediction, null, { timeout: 120000, what: `a prediction for ${file}` });
        out.push({ cls, ...p });
      }
      return out;
    };
    const before = await predictAll();
    const correct = before.filter((p) => p.top === p.cls).length;
    log(`${name}: held-out predictions ${before.map((p) => `${p.cls}→${p.top} ${p.confidence.toFixed(3)}${p.unsure ? ' (unsure)' : ''}`).join(', ')}`);
    for (const p of before) {
      const sum = p.probs.reduce((a, q) => a + q.p, 0);
      check(Math.abs(sum - 1) < 1e-4 && p.probs.length === 4, `${name}: probabilities of ${p.cls} sum to ${sum}`);
      check(CLASSES.includes(p.top), `${name}: top class ${p.top}`);
      check(p.unsure === (p.confidence < 0.6), `${name}: unsure is ${p.unsure} at confidence ${p.confidence} (threshold 0.6)`);
    }
    // Chance is 3 of 12; the held-out run's own validation accuracy here is ~0.6.
    check(correct >= 5, `${name}: only ${correct} of ${heldOut.length} held-out photos right`);
    result.heldOutCorrect = correct;
    const same = (a, b, what) => {
      for (let i = 0; i < a.length; i += 1) {
        check(a[i].top === b[i].top && Math.abs(a[i].confidence - b[i].confidence) < 1e-4, `${name}: ${what}: ${a[i].cls} was ${a[i].top} ${a[i].confidence}, now ${b[i].top} ${b[i].confidence}`);
      }
    };

    // The page as this engine draws it, after training and a prediction.
    mkdirSync(join(ROOT, 'artifacts/screenshots'), { recursive: true });
    await d.screenshot(join(ROOT, `artifacts/screenshots/engine-${name}.png`));

    // ---- export the model, import it back ----
    const n = await d.eval(() => { document.getElementById('export-model').click(); return window.__exports.length; });
    check(n >= 1, `${name}: exporting the model produced no file`);
    const size = await d.eval(giveExport, { input: 'import-model', index: n - 1 });
    await waitFor(d, () => /Model imported/.test(document.getElementById('status-text').textContent) || !document.getElementById('error').hidden, null, { timeout: 60000, what: 'the model import' });
    check(!(await d.eval(errorShown)), `${name}: model import failed: ${await d.eval(errorShown)}`);
    same(before, await predictAll(), 'after exporting and importing the model');
    log(`${name}: model exported (${size} bytes) and imported: same predictions`);

    // ---- reload: the project comes back from IndexedDB ----
    await d.eval(async () => { await window.sortwiseDebug.save(); return true; });
    await d.reload();
    await waitReady(d);
    await waitFor(d, idle, null, { what: 'the restore' });
    const restored = await d.eval(classesNow);
    check(JSON.stringify(restored) === JSON.stringify(classes), `${name}: restored ${JSON.stringify(restored)}, saved ${JSON.stringify(classes)}`);
    check(await d.eval(() => window.sortwiseDebug.state.hasModel), `${name}: the model was not restored`);
    same(before, await predictAll(), 'after a reload');
    log(`${name}: reload restored ${restored.length} classes and the model: same predictions`);

    // ---- share by link: the classify view opens the model from the link alone ----
    await d.eval(() => { document.getElementById('share-model').click(); return true; });
    const share = await waitFor(d, () => window.sortwiseDebug.state.share, null, { timeout: 60000, what: 'the share dialog' });
    check(!share.refused && share.agreement >= 0.99, `${name}: share ${JSON.stringify(share).slice(0, 200)}`);
    await d.open('about:blank');
    await d.open(share.link);
    await waitReady(d);
    const shared = await d.eval(() => ({ mode: window.sortwiseDebug.state.mode, labels: window.sortwiseDebug.state.shared?.labels }));
    check(shared.mode === 'shared' && JSON.stringify([...shared.labels].sort()) === JSON.stringify(CLASSES), `${name}: the link opened ${JSON.stringify(shared)}`);
    const linked = await predictAll();
    const agree = linked.filter((p, i) => p.top === before[i].top).length;
    log(`${name}: the ${share.precision} link (${share.link.length} characters) opens the classify view: ${agree} of ${linked.length} held-out photos as the full model`);
    check(agree >= linked.length - 1, `${name}: the link's model agrees on ${agree} of ${linked.length} held-out photos`);
    result.shareLink = { precision: share.precision, characters: share.link.length, agree };
    await d.open(`${server.base}/www/`);
    await waitReady(d);
    await waitFor(d, idle, null, { what: 'the restore after the link' });
    check(JSON.stringify(await d.eval(classesNow)) === JSON.stringify(classes) && await d.eval(() => window.sortwiseDebug.state.hasModel), `${name}: the project after the link is not the one saved`);

    // ---- resources: every request on the origin ----
    const urls = d.requests ?? await d.eval(resources);
    const foreign = urls.filter((u) => !u.startsWith(origin) && !/^(blob|data):/.test(u));
    check(foreign.length === 0, `${name}: requests to other origins: ${[...new Set(foreign)].slice(0, 5).join(', ')}`);
    result.requestsChecked = urls.length;

    // ---- second visit offline ----
    result.controlled = await d.eval(() => Boolean(navigator.serviceWorker && navigator.serviceWorker.controller));
    if (result.controlled) {
      server.stop();
      await d.reload();
      await waitReady(d);
      await waitFor(d, idle, null, { what: 'the offline restore' });
      const off = await d.eval(classesNow);
      check(JSON.stringify(off) === JSON.stringify(classes), `${name}: offline: ${JSON.stringify(off)}`);
      same(before, await predictAll(), 'offline');
      result.offline = true;
      log(`${name}: second visit offline works`);
    } else {
      result.offline = false;
      log(`${name}: no service worker controls the page here: the offline visit is not available (docs/BROWSERS.md table)`);
    }
    result.poolStalls = poolStalls.length;
    return result;
  } finally {
    await d.close().catch(() => {});
  }
}

const wanted = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(DRIVERS);
const results = [];
let failed = false;
for (const name of wanted) {
  if (!DRIVERS[name]) { console.error(`unknown engine ${name}`); process.exit(2); }
  // A server per engine: the offline step stops it.
  const server = await serveRepo('/www/index.html');
  pageLog.length = 0;
  try {
    results.push(await flow(name, server));
    log(`${name}: PASS`);
  } catch (e) {
    failed = true;
    log(`${name}: FAIL: ${e.message}`);
    if (pageLog.length) log(`${name}: the page's last console lines:\n  ${pageLog.slice(-25).join('\n  ')}`);
    if (!(e instanceof Failure)) console.error(e);
  } finally {
    server.stop();
  }
}
mkdirSync(join(ROOT, 'artifacts'), { recursive: true });
writeFileSync(join(ROOT, 'artifacts/engines.json'), `${JSON.stringify(results, null, 2)}\n`);
console.log(`${results.length} passed, ${wanted.length - results.length} failed`);
process.exit(failed ? 1 : 0);
