#!/usr/bin/env node
// Share by link, end to end in Chromium with the real engine (EfficientNet-Lite0, the CPU):
//  - a model trained in the page on trashnet-mini (4 classes × 8 photos, dropped as a zip) opens
//    the share dialog: the compact head agrees with the full one on ≥ 99% of the validation
//    photos, 4 classes on Lite0 fit one QR code, and the code drawn on the page, read back by
//    jsQR, is the `#n=` link; the `#m=` link holds the same bytes;
//  - both links open the classify view in new tabs: the model's labels, the same class and
//    nearly the same confidence as the trained model for 8 held-out photos, the live camera
//    (Chromium's fake one) classifying frames, "Save to my projects" keeping it on the device;
//  - a damaged link says so; and through all of it the project saved in IndexedDB stays byte for
//    byte what it was (digest of every record), then restores in the main page, which lists the
//    kept classifier and opens it from there;
//  - at 390 px the classify view fits the phone (no sideways scrolling).
// Screenshots: artifacts/screenshots/share*.png; with SORTWISE_UPDATE_SCREENSHOT=1 also
// docs/share.png, docs/share-zh.png and docs/shared-phone.png.
//
//   node tests/e2e/share.mjs

import { chromium } from 'playwright-core';
import { zipSync } from 'fflate';
import jsQR from 'jsqr';
import { copyFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DATA, ROOT, serveRepo } from './serve.mjs';
import { readLink } from '../../www/share/share-link.js';

const T0 = Date.now();
const log = (...a) => console.log(`[share ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...a);
const SHOTS = join(ROOT, 'artifacts/screenshots');
mkdirSync(SHOTS, { recursive: true });
const UPDATE = process.env.SORTWISE_UPDATE_SCREENSHOT === '1';
const CLASSES = ['glass', 'metal', 'paper', 'plastic'];
const failures = [];
const check = (cond, msg) => { if (!cond) { failures.push(msg); log(`FAIL: ${msg}`); } return cond; };

const files = (split, cls, n) => readdirSync(join(DATA, split, cls)).sort().slice(0, n)
  .map((f) => ({ name: f, mimeType: 'image/jpeg', buffer: readFileSync(join(DATA, split, cls, f)) }));

async function waitReady(page, want = '1') {
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 240000, polling: 200 });
  const ready = await page.evaluate(() => document.body.dataset.ready);
  const text = await page.evaluate(() => `${document.getElementById('status-text').textContent} | ${document.getElementById('error').hidden ? '' : document.getElementById('error-text').textContent}`);
  if (ready !== want) throw new Error(`the page is "${ready}", not "${want}": ${text}`);
  return text;
}

const state = (page) => page.evaluate(() => window.sortwiseDebug.state);
/** A prediction's most probable class (its `label` is "unsure" under the threshold). */
const top = (p) => p.probs.reduce((a, b) => (b.p > a.p ? b : a)).label;

/** The shown prediction of one photo, picked through the Test step. */
async function predict(page, file) {
  await page.evaluate(() => window.sortwiseDebug.clearPrediction());
  await page.setInputFiles('#test-input', file);
  await page.waitForFunction(() => window.sortwiseDebug.state.prediction || !document.getElementById('error').hidden, null, { timeout: 60000 });
  return (await state(page)).prediction;
}

/** A digest of every record of the project's IndexedDB database, and how many each store has. */
const projectDigest = (page) => page.evaluate(async () => {
  const db = await new Promise((res, rej) => { const r = indexedDB.open('sortwise'); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  const done = (r) => new Promise((res, rej) => { r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  const out = {};
  for (const name of db.objectStoreNames) {
    const store = db.transaction(name, 'readonly').objectStore(name);
    const [keys, values] = await Promise.all([done(store.getAllKeys()), done(store.getAll())]);
    out[name] = keys.map((k, i) => [k, values[i]]);
  }
  db.close();
  const text = JSON.stringify(out, (_, v) => (ArrayBuffer.isView(v) ? Array.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) : v));
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return { hash: [...hash].map((b) => b.toString(16).padStart(2, '0')).join(''), counts: Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.length])) };
});

async function main() {
  const server = await serveRepo('/www/index.html');
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, permissions: ['camera', 'clipboard-read', 'clipboard-write'] });
  const watch = (page, name) => page.on('pageerror', (e) => check(false, `${name}: page error ${e.message}`));
  try {
    // ---- train in the page ----
    const page = await context.newPage();
    watch(page, 'main');
    await page.goto(`${server.base}/www/?device=cpu`);
    await waitReady(page);
    const zip = {};
    for (const c of CLASSES) for (const f of files('train', c, 8)) zip[`set/${c}/${f.name}`] = new Uint8Array(f.buffer);
    await page.setInputFiles('#zip-input', { name: 'set.zip', mimeType: 'application/zip', buffer: Buffer.from(zipSync(zip)) });
    await page.waitForFunction((n) => window.sortwiseDebug.state.classes.length === 4 && window.sortwiseDebug.state.classes.every((c) => c.count === n), 8, { timeout: 240000 });
    await page.click('#train-btn');
    await page.waitForFunction(() => window.sortwiseDebug.state.hasModel && !window.sortwiseDebug.state.training, null, { timeout: 300000 });
    let st = await state(page);
    log(`trained ${st.modelLabels.join(', ')} on ${st.arch}: val accuracy ${st.report.valAccuracy} on ${st.report.valSize}`);

    // ---- the share dialog ----
    await page.click('#share-model');
    await page.waitForFunction(() => document.getElementById('share-dialog').open && document.body.dataset.share, null, { timeout: 60000 });
    const share = (await state(page)).share;
    log(`share: ${share.precision}, agreement ${share.agreement} on ${share.n}, ${share.deflated} bytes deflated, QR ${share.modules} modules, link ${share.link.length} characters`);
    check(share.agreement >= 0.99 && share.n === st.report.valSize, `the compact head agrees on ${share.agreement} of ${share.n} validation photos (val set ${st.report.valSize})`);
    check(['int4', 'int8', 'f16'].includes(share.precision), `precision ${share.precision}`);
    check(share.modules >= 21 && share.modules <= 177, `Lite0 with 4 classes fits one QR code (${share.modules} modules)`);
    const summary = await page.locator('#share-summary').textContent();
    check(summary.includes(`of ${share.n} validation photos`), `the dialog says the agreement: "${summary}"`);
    check((await page.locator('#share-link').inputValue()) === share.link, 'the dialog shows the link');
    // The QR code as drawn, read back.
    const img = await page.evaluate(() => {
      const c = document.getElementById('share-qr');
      return { w: c.width, h: c.height, data: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data) };
    });
    const read = jsQR(Uint8ClampedArray.from(img.data), img.w, img.h);
    check(read && read.data === share.qrText, `jsQR reads the drawn code as the #n= link (${read ? read.data.length : 'nothing'} characters)`);
    const qrLink = read?.data ?? share.qrText;
    const viaQr = readLink(new URL(qrLink).hash);
    const viaLink = readLink(new URL(share.link).hash);
    check(viaQr.length > 0 && viaQr.length === viaLink.length && viaQr.every((b, i) => b === viaLink[i]), 'the #n= and #m= links hold the same bytes');
    await page.click('#share-copy');
    const copied = await page.evaluate(() => navigator.clipboard.readText()).catch(() => null);
    check(copied === share.link, 'Copy link puts the link on the clipboard');
    await page.locator('#share-dialog').screenshot({ path: join(SHOTS, 'share.png') });
    await page.evaluate(() => document.querySelector('[data-lang="zh-CN"]').click());
    const zhSummary = await page.locator('#share-summary').textContent();
    check(/验证照片/.test(zhSummary), `the dialog in Chinese: "${zhSummary}"`);
    await page.locator('#share-dialog').screenshot({ path: join(SHOTS, 'share-zh.png') });
    await page.evaluate(() => document.querySelector('[data-lang="en"]').click());
    const small = await page.locator('#share-qr').boundingBox();
    await page.click('#share-qr');
    const big = await page.locator('#share-qr').boundingBox();
    check(big.width > 1.5 * small.width, `a tap enlarges the QR code (${small.width} → ${big.width} px)`);
    await page.click('#share-close');
    if (UPDATE) for (const f of ['share.png', 'share-zh.png']) copyFileSync(join(SHOTS, f), join(ROOT, 'docs', f));

    // ---- what the trained model says of 8 held-out photos ----
    const held = CLASSES.flatMap((c) => files('val', c, 2));
    const full = [];
    for (const f of held) full.push(await predict(page, f));
    await page.evaluate(() => window.sortwiseDebug.save());
    // Closing the tab saves once more (its pagehide): the digest is taken after, from a page of
    // the same origin that runs no app.
    await page.close();
    const probe = await context.newPage();
    await probe.goto(`${server.base}/www/manifest.json`);
    const before = await projectDigest(probe);
    log(`saved project: ${JSON.stringify(before.counts)} ${before.hash.slice(0, 16)}`);

    // ---- the QR code's link in a new tab ----
    const shared = await context.newPage();
    watch(shared, 'shared');
    await shared.goto(qrLink);
    await waitReady(shared);
    st = await state(shared);
    check(st.mode === 'shared' && st.shared?.labels.join() === CLASSES.join(), `the classify view opens with the labels: ${JSON.stringify(st.shared)}`);
    check(await shared.locator('#shared-section').isVisible() && !(await shared.locator('#data-section').isVisible()) && !(await shared.locator('#train-section').isVisible()), 'only the shared classifier and the Test step show');
    const auto = await shared.evaluate(() => window.sortwiseDebug.autosave);
    check(auto.off === 'sharedNoSave' && !auto.enabled && !auto.owner && auto.saves === 0, `the classify view saves nothing and takes no ownership: ${JSON.stringify(auto)}`);
    let same = 0;
    for (const [i, f] of held.entries()) {
      const p = await predict(shared, f);
      const agree = top(p) === top(full[i]);
      same += agree ? 1 : 0;
      check(Math.abs(p.confidence - full[i].confidence) < 0.05, `${f.name}: confidence ${p.confidence} from the link, ${full[i].confidence} trained`);
      log(`${f.name}: ${top(p)} ${p.confidence.toFixed(3)} (trained: ${top(full[i])} ${full[i].confidence.toFixed(3)})`);
    }
    check(same === held.length, `the link's model gives the trained model's class for ${same} of ${held.length} held-out photos`);
    // The live camera (Chromium's fake one) classifies frames.
    await shared.evaluate(() => window.sortwiseDebug.clearPrediction());
    await shared.click('#test-live');
    await shared.waitForFunction(() => window.sortwiseDebug.state.prediction, null, { timeout: 60000 }).catch(() => {});
    check((await state(shared)).prediction, 'the live camera classifies frames in the classify view');
    await shared.click('#test-live');
    await shared.screenshot({ path: join(SHOTS, 'shared-view.png'), fullPage: true });
    await shared.click('#shared-keep');
    await shared.waitForFunction(() => document.getElementById('shared-keep').disabled, null, { timeout: 10000 }).catch(() => {});
    check(await shared.locator('#shared-keep').isDisabled(), '"Save to my projects" keeps it');
    await shared.close();
    check((await projectDigest(probe)).hash === before.hash, 'the saved project is unchanged after the classify view');

    // ---- the copied link, a damaged one, and the phone ----
    const linked = await context.newPage();
    watch(linked, 'linked');
    await linked.goto(share.link);
    await waitReady(linked);
    check((await state(linked)).shared?.labels.join() === CLASSES.join(), 'the #m= link opens the same classifier');
    await linked.close();
    const damaged = await context.newPage();
    await damaged.goto(share.link.replace(/#m=.*/, '#m=AAAAAAAA'));
    const broken = await waitReady(damaged, 'error');
    check(/does not hold a classifier/.test(broken), `a damaged link says so: "${broken}"`);
    await damaged.close();
    check((await projectDigest(probe)).hash === before.hash, 'the saved project is unchanged after a damaged link');
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const mobile = await phone.newPage();
    watch(mobile, 'phone');
    await mobile.goto(qrLink);
    await waitReady(mobile);
    const overflow = await mobile.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `the classify view fits 390 px (${overflow} px too wide)`);
    await mobile.setInputFiles('#test-input', held[0]);
    await mobile.waitForFunction(() => window.sortwiseDebug.state.prediction, null, { timeout: 60000 });
    await mobile.evaluate(() => window.scrollTo(0, 0));
    await mobile.screenshot({ path: join(SHOTS, 'shared-phone.png'), fullPage: true });
    if (UPDATE) copyFileSync(join(SHOTS, 'shared-phone.png'), join(ROOT, 'docs/shared-phone.png'));
    await phone.close();

    // ---- the main page: the project as it was, the kept classifier listed ----
    const back = await context.newPage();
    watch(back, 'back');
    await back.goto(`${server.base}/www/?device=cpu`);
    await waitReady(back);
    st = await state(back);
    check(st.hasModel && st.classes.map((c) => `${c.label}:${c.count}`).join() === CLASSES.map((c) => `${c}:8`).join(), `the project restores as trained: ${JSON.stringify(st.classes)}`);
    await back.waitForFunction(() => !document.getElementById('kept-links').hidden, null, { timeout: 10000 }).catch(() => {});
    check(await back.locator('#kept-list li').count() === 1, 'the kept classifier is listed once');
    // Only the fragment changes: the page reloads itself into the classify view.
    await Promise.all([back.waitForEvent('load', { timeout: 60000 }), back.locator('#kept-list a').click()]);
    await waitReady(back);
    check((await state(back)).shared?.labels.join() === CLASSES.join(), 'the kept classifier opens from the main page');
    await back.close();
  } finally {
    await browser.close();
    server.stop();
  }
  if (failures.length) {
    console.error(`share: ${failures.length} failure(s):\n  ${failures.join('\n  ')}`);
    process.exit(1);
  }
  log('all share checks passed');
}

main().catch((e) => { console.error(e); process.exit(1); });
