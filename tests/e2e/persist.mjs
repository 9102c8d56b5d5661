#!/usr/bin/env node
// The saved project survives every injected fault: end-to-end in headless Chromium (playwright-core)
// with the fake engine (tests/e2e/fake-client.js; the engine itself is not under test here).
//
//   node tests/e2e/persist.mjs        (after scripts/vendor.sh; no wasm build needed)
//
// A trained two-class project is saved, then, one at a time: the weights manifest fails to
// download, the engine fails to start (a failed weights download), the restore traps, a saved
// model is refused by the backbone check, a save is written by a newer page, an IndexedDB request
// fails inside the save transaction, the quota runs out mid-save, the tab is closed mid-save, a
// project zip lists one file many times or carries a bad report, an import is cancelled and then
// undone, and two tabs open the project (with and without the Web Locks API). After each, every
// IndexedDB record is read directly in the page and compared, record by record (sha-256 of every
// blob and typed array), with the save from before the fault, and the page restored from it is
// compared with what is stored. Exit code 0 on success, 1 with a message on failure.

import { zipSync, unzipSync, strToU8, strFromU8 } from 'fflate';
import { RULES } from '../../www/engine/rules.js';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, DATA, serveRepo, launchChromium } from './serve.mjs';

const T0 = Date.now();
function log(...args) { console.log(`[persist ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...args); }
class Failure extends Error {}
function check(cond, msg) { if (!cond) throw new Failure(msg); }

function photos(cls, n, split = 'train') {
  const dir = join(DATA, split, cls);
  check(existsSync(dir), `no data in ${dir} (set SORTWISE_DATA to the trashnet-mini folder)`);
  return readdirSync(dir).filter((f) => /\.jpe?g$/i.test(f)).sort().slice(0, n)
    .map((f) => ({ name: f, mimeType: 'image/jpeg', buffer: readFileSync(join(dir, f)) }));
}

// Runs before every page script: fault switches, counters, and the record-by-record reader.
const INIT = `(() => {
  try {
    const f = localStorage.getItem('sortwise-test-faults');
    if (f) globalThis.__sortwiseFaults = JSON.parse(f);
    if (localStorage.getItem('sortwise-test-nolocks')) Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined, configurable: true });
    if (localStorage.getItem('sortwise-test-lockrefused')) LockManager.prototype.request = () => Promise.reject(new DOMException('refused for the test', 'SecurityError'));
  } catch { /* about:blank */ }
  window.__puts = [];
  window.__txStarted = 0;
  const put = IDBObjectStore.prototype.put;
  IDBObjectStore.prototype.put = function (value, key) {
    window.__puts.push(this.name + ':' + (key ?? value?.key));
    // an asynchronous failure inside the transaction: 'project' exists, so add() fails with ConstraintError
    if (window.__idbFail === 'project' && this.name === 'meta' && key === 'project') return this.add(value, key);
    return put.apply(this, arguments);
  };
  const transaction = IDBDatabase.prototype.transaction;
  IDBDatabase.prototype.transaction = function (names, mode) {
    const tx = transaction.apply(this, arguments);
    if (mode === 'readwrite') {
      window.__txStarted += 1;
      // reads only: they keep the transaction open longer without changing what it writes
      for (let i = 0; i < (window.__slowSave || 0); i += 1) tx.objectStore(tx.objectStoreNames[0]).count();
    }
    return tx;
  };
  const hex = async (buf) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', buf))].map((b) => b.toString(16).padStart(2, '0')).join('');
  const canon = async (v) => {
    // A thumbnail is the same photo whether saved as a Blob (older saves) or as bytes (now).
    if (v instanceof Blob) return 'Uint8Array:' + v.size + ':' + await hex(await v.arrayBuffer());
    if (ArrayBuffer.isView(v)) return v.constructor.name + ':' + v.byteLength + ':' + await hex(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
    if (Array.isArray(v)) { const out = []; for (const x of v) out.push(await canon(x)); return out; }
    if (v && typeof v === 'object') {
      const out = {};
      for (const k of Object.keys(v).sort()) if (k !== 'saved') out[k] = await canon(v[k]);
      return out;
    }
    return v;
  };
  window.__canon = canon;
  window.__dbSnapshot = async () => {
    const dbs = await indexedDB.databases();
    if (!dbs.some((d) => d.name === 'sortwise')) return null;
    const db = await new Promise((res, rej) => { const r = indexedDB.open('sortwise'); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
    try {
      const tx = db.transaction(['meta', 'images'], 'readonly');
      const reqs = ['meta', 'images'].flatMap((s) => [tx.objectStore(s).getAllKeys(), tx.objectStore(s).getAll()]);
      await new Promise((res, rej) => { tx.oncomplete = res; tx.onabort = () => rej(tx.error); });
      const [mk, mv, ik, iv] = reqs.map((r) => r.result);
      const out = { meta: {}, images: {} };
      for (let i = 0; i < mk.length; i += 1) out.meta[mk[i]] = await canon(mv[i]);
      for (let i = 0; i < ik.length; i += 1) out.images[ik[i]] = await canon(iv[i]);
      return out;
    } finally { db.close(); }
  };
  // Rewrites the stored 'project' record with edit(record) in one transaction, as another
  // (older or newer) page could have left it.
  window.__editStoredProject = async (edit) => {
    const db = await new Promise((res, rej) => { const r = indexedDB.open('sortwise'); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
    try {
      const tx = db.transaction('meta', 'readwrite');
      const meta = tx.objectStore('meta');
      meta.get('project').onsuccess = (ev) => { meta.put(edit(ev.target.result), 'project'); };
      await new Promise((res, rej) => { tx.oncomplete = res; tx.onabort = () => rej(tx.error); });
    } finally { db.close(); }
  };
  window.__stateSnapshot = async () => {
    const r = window.sortwiseDebug.records();
    const out = { meta: { project: await canon(r.project) }, images: {} };
    if (r.model) out.meta.model = await canon(r.model);
    if (r.shelved) out.meta.shelved = await canon(r.shelved);
    for (const im of r.images) out.images[im.key] = await canon(im);
    return out;
  };
})();`;

const FAKE_CLIENT = readFileSync(join(ROOT, 'tests/e2e/fake-client.js'));
const MANIFEST = JSON.stringify({ backbones: [
  { arch: 'efficientnet_lite0', file: 'efficientnet_lite0.safetensors', bytes: 9410256, sha256: '' },
  { arch: 'resnet18', file: 'resnet18.safetensors', bytes: 23400000, sha256: '' },
] });

let browser;
let server;
const pageErrors = [];

async function newContext() {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, serviceWorkers: 'block', locale: 'en-US', acceptDownloads: true });
  ctx.failManifest = false;
  await ctx.route('**/www/weights/manifest.json', (route) => (ctx.failManifest
    ? route.fulfill({ status: 404, contentType: 'text/plain', body: 'not found' })
    : route.fulfill({ status: 200, contentType: 'application/json', body: MANIFEST })));
  await ctx.route('**/www/engine/client.js', (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body: FAKE_CLIENT }));
  await ctx.addInitScript(INIT);
  return ctx;
}

async function openPage(ctx, name = 'tab') {
  const page = await ctx.newPage();
  page.dialogAnswer = true;
  page.dialogs = [];
  page.on('dialog', (d) => { page.dialogs.push(d.message()); (page.dialogAnswer ? d.accept() : d.dismiss()).catch(() => {}); });
  page.on('pageerror', (e) => { pageErrors.push(`${name}: ${e.message}`); log(`PAGE ERROR (${name}): ${e.message}`); });
  return page;
}

async function waitReady(page, expect = '1') {
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 60000, polling: 100 });
  const ready = await page.evaluate(() => document.body.dataset.ready);
  const text = await page.evaluate(() => `${document.getElementById('status-text').textContent} | ${document.getElementById('error').hidden ? '' : document.getElementById('error-text').textContent}`);
  check(ready === expect, `the page started with ready=${ready}, expected ${expect}: ${text}`);
}

async function waitIdle(page) {
  await page.waitForFunction(() => document.getElementById('embed-progress').hidden, null, { timeout: 60000, polling: 100 });
  await page.evaluate(() => window.sortwiseDebug.idle());
}

const debugState = (page) => page.evaluate(() => window.sortwiseDebug.state);
const autosaveState = (page) => page.evaluate(() => window.sortwiseDebug.autosave);
const dbSnapshot = (page) => page.evaluate(() => window.__dbSnapshot());
const stateSnapshot = (page) => page.evaluate(() => window.__stateSnapshot());
const errorText = (page) => page.evaluate(() => (document.getElementById('error').hidden ? '' : document.getElementById('error-text').textContent));
const noticeText = (page, id) => page.evaluate((n) => document.querySelector(`[data-notice="${n}"] .notice-text`)?.textContent ?? '', id);

/**
 * Record keys where `a` and `b` differ (meta keys by name, images by key); `skipMeta` are not
 * compared, nor the project fields in `skipProject`.
 */
function diff(a, b, { skipMeta = [], imagesOf = null, skipProject = [] } = {}) {
  check(a && b, `a snapshot is missing (${a ? 'ok' : 'null'} / ${b ? 'ok' : 'null'})`);
  const out = [];
  const keys = new Set([...Object.keys(a.meta), ...Object.keys(b.meta)]);
  const strip = (k, v) => (k === 'project' && v && skipProject.length ? Object.fromEntries(Object.entries(v).filter(([f]) => !skipProject.includes(f))) : v);
  for (const k of keys) {
    if (skipMeta.includes(k)) continue;
    if (JSON.stringify(strip(k, a.meta[k])) !== JSON.stringify(strip(k, b.meta[k]))) out.push(`meta:${k}`);
  }
  const imgKeys = imagesOf ? imagesOf : new Set([...Object.keys(a.images), ...Object.keys(b.images)]);
  for (const k of imgKeys) if (JSON.stringify(a.images[k]) !== JSON.stringify(b.images[k])) out.push(`image:${k}`);
  return out;
}

function sameRecords(a, b, what, opts) {
  const d = diff(a, b, opts);
  check(d.length === 0, `${what}: ${d.length} records differ: ${d.slice(0, 8).join(', ')}`);
  return Object.keys(a.images).length;
}

/** The keys the stored project lists. */
function projectKeys(snap) {
  return new Set(snap.meta.project.classes.flatMap((c) => c.keys.map(String)));
}

/** Reloads and checks that the page restored exactly what is stored, and that it is `expected`. */
async function reloadIntact(page, expected, what) {
  await page.reload();
  await waitReady(page);
  await waitIdle(page);
  const db = await dbSnapshot(page);
  const n = sameRecords(db, expected, `${what}: the stored project after a reload`, { skipMeta: ['backup'] });
  // the page now holds what is stored (project, model, every image it lists)
  sameRecords(await stateSnapshot(page), db, `${what}: the restored page against the stored records`, { skipMeta: ['backup'], imagesOf: projectKeys(db) });
  const st = await debugState(page);
  log(`${what}: reload restored ${st.classes.map((c) => `${c.label}:${c.count}`).join(' ')}, model ${st.hasModel}; ${n} image records equal`);
  return db;
}

/** A tab switch (visibilitychange to hidden) and a page hide: what makes the autosave flush. */
async function tabSwitch(page) {
  await page.evaluate(() => {
    Object.defineProperty(document, 'hidden', { value: true, configurable: true });
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
    window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false }));
  });
  const r = await page.evaluate(() => window.sortwiseDebug.save().then((x) => x, (e) => ({ error: e.message })));
  await page.waitForTimeout(400);
  return r;
}

async function setFaults(page, faults) {
  await page.evaluate((f) => { if (f) localStorage.setItem('sortwise-test-faults', JSON.stringify(f)); else localStorage.removeItem('sortwise-test-faults'); }, faults);
}

async function addClass(page, label) {
  await page.fill('#new-class', label);
  await page.press('#new-class', 'Enter');
  await page.waitForFunction((l) => window.sortwiseDebug.state.classes.some((c) => c.label === l), label, { timeout: 10000 });
}

async function addPhotos(page, label, files) {
  const before = (await debugState(page)).classes.find((c) => c.label === label).count;
  await page.locator(`.class-card[data-label="${label}"] input.file-input`).setInputFiles(files);
  await page.waitForFunction(({ l, n }) => window.sortwiseDebug.state.classes.find((c) => c.label === l)?.count === n, { l: label, n: before + files.length }, { timeout: 60000 });
  await waitIdle(page);
}

async function saved(page) {
  const r = await page.evaluate(() => window.sortwiseDebug.save().then((x) => x, (e) => ({ error: e.message })));
  check(r && r.saved === true, `the save did not go through: ${JSON.stringify(r)}`);
}

// ---- the scenarios ------------------------------------------------------------------------------

async function buildProject(page) {
  await page.goto(`${server.base}/www/`);
  await waitReady(page);
  check((await autosaveState(page)).enabled, 'autosave is on after a normal start');
  await page.selectOption('#preset', 'empty');
  await page.click('#apply-preset');
  await page.waitForFunction(() => window.sortwiseDebug.state.classes.length === 0);
  for (const l of ['glass', 'metal']) await addClass(page, l);
  for (const l of ['glass', 'metal']) await addPhotos(page, l, photos(l, 3));
  await page.click('#advanced summary');
  await page.fill('#set-epochs', '5');
  await page.dispatchEvent('#set-epochs', 'change');
  await page.click('#advanced summary');
  await page.click('#train-btn');
  await page.waitForFunction(() => /Trained/.test(document.getElementById('train-text').textContent) || !document.getElementById('error').hidden, null, { timeout: 60000 });
  check(!(await errorText(page)), `training failed: ${await errorText(page)}`);
  await saved(page);
  const db = await dbSnapshot(page);
  check(db.meta.project && db.meta.model && Object.keys(db.images).length === 6, `the trained project is stored: ${JSON.stringify(Object.keys(db.meta))}, ${Object.keys(db.images).length} images`);
  check(db.meta.project.version === 2 && db.meta.project.hasModel === true, `project record: ${JSON.stringify(db.meta.project).slice(0, 200)}`);
  sameRecords(await stateSnapshot(page), db, 'the page against what it saved', { imagesOf: projectKeys(db) });
  // 8: after its first save the page asks the browser to keep its storage (navigator.storage.persist())
  await page.waitForFunction(() => window.sortwiseDebug.autosave.persistent !== null, null, { timeout: 5000 });
  log(`trained 2-class project saved: ${Object.keys(db.images).length} images, model ${db.meta.model.bytes}; storage persistent: ${(await autosaveState(page)).persistent}`);
  return db;
}

/** 1: a failed manifest download, then a tab switch: nothing is written; a normal reload restores it all. */
async function failedManifest(ctx, page, s0) {
  ctx.failManifest = true;
  await page.reload();
  await waitReady(page, 'error');
  const a = await autosaveState(page);
  const notice = await noticeText(page, 'autosave');
  log(`manifest 404: status "${await page.locator('#status-text').textContent()}"; notice "${notice}"`);
  check(!a.enabled && a.off === 'autosaveOffStart', `autosave after a failed manifest: ${JSON.stringify(a)}`);
  check(/Autosave is off/.test(notice), `the page says autosave is off: "${notice}"`);
  const r = await tabSwitch(page);
  check(r.saved === false, `a save after the failed start: ${JSON.stringify(r)}`);
  check((await page.evaluate(() => window.__txStarted)) === 0, 'a write transaction was started after the failed start');
  sameRecords(await dbSnapshot(page), s0, 'after the failed manifest and a tab switch');
  ctx.failManifest = false;
  return reloadIntact(page, s0, 'failed manifest');
}

/** 1: the engine does not start (a failed weights download): the same. */
async function failedEngine(page, s0) {
  await setFaults(page, { create: 'weights download failed: HTTP 503' });
  await page.reload();
  await waitReady(page, 'error');
  await setFaults(page, null);
  const a = await autosaveState(page);
  check(!a.enabled && a.off === 'autosaveOffStart', `autosave after a failed engine start: ${JSON.stringify(a)}`);
  log(`engine start failed: "${await errorText(page)}"; notice "${await noticeText(page, 'autosave')}"`);
  // the way out: what is saved downloads as a project zip, read from storage with no engine
  check(/Nothing saved in this browser was changed/.test(await noticeText(page, 'rescue')), `the rescue notice: "${await noticeText(page, 'rescue')}"`);
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-notice="rescue"] [data-action="downloadSaved"]')]);
  const files = unzipSync(new Uint8Array(readFileSync(await dl.path())));
  const pj = JSON.parse(strFromU8(files['project.json']));
  const listed = pj.classes.map((c) => `${c.label}:${c.images.length}`).join(' ');
  const stored = s0.meta.project.classes.map((c) => `${c.label}:${c.keys.length}`).join(' ');
  check(dl.suggestedFilename() === 'sortwise-saved-project.zip' && listed === stored && files[pj.model]?.length > 0 && pj.settings.epochs === s0.meta.project.settings.epochs,
    `the rescued zip holds the saved project: ${dl.suggestedFilename()} ${listed} (stored ${stored}), model ${pj.model}`);
  log(`rescue: the saved project downloaded as ${dl.suggestedFilename()} (${listed}, model, settings) with no engine`);
  const r = await tabSwitch(page);
  check(r.saved === false, `a save after the failed engine start: ${JSON.stringify(r)}`);
  sameRecords(await dbSnapshot(page), s0, 'after the failed engine start and a tab switch');
  return reloadIntact(page, s0, 'failed engine start');
}

/** 1: the restore traps: the page says so, never writes, even after the user edits. */
async function restoreTrap(page, s0) {
  await setFaults(page, { addEmbedding: 'RuntimeError: unreachable executed' });
  await page.reload();
  await waitReady(page);
  await setFaults(page, null);
  const a = await autosaveState(page);
  check(!a.enabled && a.off === 'autosaveOffRestore', `autosave after a trapped restore: ${JSON.stringify(a)}`);
  check(/unreachable/.test(await errorText(page)), `the restore failure is shown: "${await errorText(page)}"`);
  log(`restore trapped: notice "${await noticeText(page, 'autosave')}"`);
  await page.click('#error-close');
  await addClass(page, 'edited after the trap');
  const r = await tabSwitch(page);
  check(r.saved === false, `a save after the trapped restore: ${JSON.stringify(r)}`);
  sameRecords(await dbSnapshot(page), s0, 'after the trapped restore, an edit and a tab switch');
  return reloadIntact(page, s0, 'restore trap');
}

/** 8: a save from a newer page is neither read nor touched. */
async function newerVersion(page, s0) {
  await page.evaluate(() => window.__editStoredProject((p) => ({ ...p, version: 99 })));
  const s99 = await dbSnapshot(page);
  await page.reload();
  await waitReady(page);
  const a = await autosaveState(page);
  const notice = await noticeText(page, 'autosave');
  log(`version 99: notice "${notice}"`);
  check(!a.enabled && a.off === 'savedNewer' && /newer version/.test(notice), `a newer save: ${JSON.stringify(a)}, "${notice}"`);
  await addClass(page, 'edited over a newer save');
  await tabSwitch(page);
  sameRecords(await dbSnapshot(page), s99, 'a newer save after an edit and a tab switch');
  // put the version back (as the newer page would have left it) for the next scenario
  await page.evaluate(() => window.__editStoredProject((p) => ({ ...p, version: 2 })));
  return reloadIntact(page, s0, 'newer version');
}

/** 5: an IndexedDB request fails inside the save transaction: nothing of that save is written. */
async function failedRequest(page, s0) {
  await page.evaluate(() => { window.__idbFail = 'project'; });
  await addPhotos(page, 'glass', photos('glass', 5).slice(3));
  await page.waitForFunction(() => !document.getElementById('error').hidden, null, { timeout: 10000 });
  const msg = await errorText(page);
  log(`request failed in the transaction: "${msg}"`);
  check(/could not be saved/.test(msg), `the failed save is reported: "${msg}"`);
  const a = await autosaveState(page);
  check(a.pending >= 2, `the unsaved changes stay to be saved: ${JSON.stringify(a)}`);
  const db = await dbSnapshot(page);
  sameRecords(db, s0, 'after a request failed inside the transaction (the two image puts must be rolled back)');
  await page.evaluate(() => { window.__idbFail = null; });
  await page.click('#error-close');
  await saved(page);
  const s1 = await dbSnapshot(page);
  check(Object.keys(s1.images).length === 8, `the retried save wrote the two images: ${Object.keys(s1.images).length}`);
  sameRecords(await stateSnapshot(page), s1, 'the page against the retried save', { imagesOf: projectKeys(s1) });
  return reloadIntact(page, s1, 'failed request');
}

/** 9: moving the threshold rewrites the project record only, not the model nor the images. */
async function thresholdOnly(page) {
  await page.evaluate(() => { window.__puts = []; });
  await page.locator('#threshold').fill('0.42');
  await saved(page);
  const puts = await page.evaluate(() => window.__puts);
  log(`threshold moved: puts ${JSON.stringify(puts)}`);
  check(puts.length === 1 && puts[0] === 'meta:project', `a threshold change wrote ${JSON.stringify(puts)}`);
  return dbSnapshot(page);
}

/**
 * 5: the quota runs out in the middle of a save: the previous save stays whole. A context of its
 * own, because Chromium applies a quota override only before the origin first touches storage.
 */
async function quotaMidSave() {
  const ctx = await newContext();
  const page = await openPage(ctx, 'quota');
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: server.base, quotaSize: 500 * 1024 });
  let last = await buildProject(page);
  let failed = null;
  for (let batch = 0; batch < 60 && !failed; batch += 1) {
    await page.locator('.class-card[data-label="metal"] input.file-input').setInputFiles(photos('metal', 12).slice(3).map((p) => ({ ...p, name: `q${batch}-${p.name}` })));
    await page.waitForFunction((n) => window.sortwiseDebug.state.classes.reduce((s, c) => s + c.count, 0) === n, Object.keys(last.images).length + 9, { timeout: 60000 });
    await waitIdle(page);
    const r = await page.evaluate(() => window.sortwiseDebug.save().then((x) => x, (e) => ({ error: `${e.name}: ${e.message}` })));
    if (r.saved) last = await dbSnapshot(page);
    else failed = r.error;
  }
  check(failed, 'the quota never ran out');
  const msg = await errorText(page);
  const usage = await page.evaluate(async () => (await navigator.storage.estimate()).usage);
  log(`quota 500 KB exceeded mid-save (${failed}; usage ${usage}): "${msg}"`);
  check(/Quota/.test(failed) && /storage is full/.test(msg), `the quota error is explained: "${msg}"`);
  check((await autosaveState(page)).pending >= 9, 'the unsaved images stay to be saved');
  sameRecords(await dbSnapshot(page), last, 'after the quota ran out mid-save (the previous save, whole)');
  await reloadIntact(page, last, 'quota mid-save');
  await ctx.close();
}

/** 5: the tab is closed in the middle of a save: the store holds the old save or the new one, whole. */
async function closedMidSave(ctx, page, before) {
  let current = before;
  let outcomes = [];
  for (let round = 0; round < 3; round += 1) {
    await page.locator('.class-card[data-label="glass"] input.file-input').setInputFiles(photos('paper', 10).map((p, i) => ({ ...p, name: `r${round}-${i}-${p.name}` })));
    await page.waitForFunction((n) => window.sortwiseDebug.state.classes.reduce((s, c) => s + c.count, 0) === n, Object.keys(current.images).length + 10, { timeout: 60000 });
    // what the save about to start will write, then the save, then the tab goes
    const expected = await stateSnapshot(page);
    const tx0 = await page.evaluate(() => window.__txStarted);
    // rounds 1 and 2 keep the save transaction busy with reads, so that the close lands inside it
    await page.evaluate((slow) => { window.__slowSave = slow; window.sortwiseDebug.save().catch(() => {}); }, round ? 30000 : 0);
    await page.waitForFunction((n) => window.__txStarted > n, tx0, { timeout: 5000, polling: 'raf' }).catch(() => {});
    await page.close({ runBeforeUnload: false });
    page = await openPage(ctx, `reopened ${round}`);
    await page.goto(`${server.base}/www/`);
    await waitReady(page);
    await waitIdle(page);
    const db = await dbSnapshot(page);
    const old = diff(db, current, { skipMeta: ['backup'] }).length === 0;
    const neu = diff(db, expected, { skipMeta: ['backup'], imagesOf: new Set([...Object.keys(db.images), ...Object.keys(expected.images)]) }).length === 0;
    check(old || neu, `after closing mid-save the store is neither the old save nor the new one: ${diff(db, current).slice(0, 5)} / ${diff(db, expected).slice(0, 5)}`);
    sameRecords(await stateSnapshot(page), db, 'the reopened page against the stored records', { skipMeta: ['backup'], imagesOf: projectKeys(db) });
    outcomes.push(old ? 'old' : 'new');
    current = db;
  }
  log(`tab closed mid-save, 3 rounds: the store held the ${outcomes.join(', ')} save, whole, each time`);
  return { page, snap: current };
}

/** 6: hostile project zips are refused before anything is touched; an import asks first, undo restores. */
async function projectZips(page, s) {
  const thumb = new Uint8Array(photos('glass', 1)[0].buffer);
  const emb = new Uint8Array(new Float32Array(48).fill(0.5).buffer);
  const project = (images, report) => ({
    format: 'sortwise-project', version: 1, arch: 'resnet18', dim: 48, settings: {}, model: report ? 'model.sortwise' : null, report,
    classes: [{ label: 'a', images: images.slice(0, 1) }, { label: 'b', images: images.slice(1) }],
  });
  const fakeModel = strToU8(JSON.stringify({ fake: 'sortwise', labels: ['a', 'b'], centroids: [new Array(48).fill(0.4), new Array(48).fill(0.6)] }));
  const same = { thumbnail: 'images/1.jpg', embedding: 'embeddings/1.f32', length: 48 };
  const cases = [
    ['one file listed 3,000 times', zipSync({ 'project.json': strToU8(JSON.stringify(project(new Array(3000).fill(same), null))), 'images/1.jpg': thumb, 'embeddings/1.f32': emb }), /listed more than once/],
    ['report.seconds = "x"', zipSync({
      'project.json': strToU8(JSON.stringify(project([same, { thumbnail: 'images/2.jpg', embedding: 'embeddings/2.f32' }], { labels: ['a', 'b'], confusion: [[1, 0], [0, 1]], seconds: 'x' }))),
      'images/1.jpg': thumb, 'embeddings/1.f32': emb, 'images/2.jpg': thumb, 'embeddings/2.f32': emb, 'model.sortwise': fakeModel,
    }), /report\.seconds/],
    ['report.misclassified[0].image out of range', zipSync({
      'project.json': strToU8(JSON.stringify(project([same, { thumbnail: 'images/2.jpg', embedding: 'embeddings/2.f32' }], { labels: ['a', 'b'], confusion: [[1, 0], [0, 1]], misclassified: [{ label: 'a', predicted: 'b', confidence: 0.9, image: 7 }] }))),
      'images/1.jpg': thumb, 'embeddings/1.f32': emb, 'images/2.jpg': thumb, 'embeddings/2.f32': emb, 'model.sortwise': fakeModel,
    }), /report\.misclassified/],
  ];
  const stateBefore = JSON.stringify(await debugState(page));
  for (const [what, zip, re] of cases) {
    await page.setInputFiles('#import-project', { name: 'hostile.zip', mimeType: 'application/zip', buffer: Buffer.from(zip) });
    await page.waitForFunction(() => !document.getElementById('error').hidden, null, { timeout: 30000 });
    const msg = await errorText(page);
    log(`project zip with ${what}: "${msg}"`);
    check(re.test(msg) && /unchanged/.test(msg), `refused with a message naming the problem: "${msg}"`);
    await page.click('#error-close');
    check(JSON.stringify(await debugState(page)) === stateBefore, `${what}: the page state changed`);
    sameRecords(await dbSnapshot(page), s, `${what}: the stored project`);
  }
  // a good project: cancelling the confirmation changes nothing; accepting imports; undo restores
  const good = zipSync({
    'project.json': strToU8(JSON.stringify(project([same, { thumbnail: 'images/2.jpg', embedding: 'embeddings/2.f32' }], { labels: ['a', 'b'], confusion: [[1, 0], [0, 1]], seconds: 1.5, valAccuracy: 1, history: [{ epoch: 1, loss: 0.5, valLoss: 0.4, valAccuracy: 1 }] }))),
    'images/1.jpg': thumb, 'embeddings/1.f32': emb, 'images/2.jpg': thumb, 'embeddings/2.f32': emb, 'model.sortwise': fakeModel,
  });
  page.dialogAnswer = false;
  page.dialogs.length = 0;
  await page.setInputFiles('#import-project', { name: 'good.zip', mimeType: 'application/zip', buffer: Buffer.from(good) });
  await page.waitForTimeout(500);
  page.dialogAnswer = true;
  check(page.dialogs.some((d) => /Replace the current project/.test(d)), `the import asked first: ${JSON.stringify(page.dialogs)}`);
  check(JSON.stringify(await debugState(page)) === stateBefore, 'a cancelled import changed the page');
  sameRecords(await dbSnapshot(page), s, 'after a cancelled import');
  await page.setInputFiles('#import-project', { name: 'good.zip', mimeType: 'application/zip', buffer: Buffer.from(good) });
  await page.waitForFunction(() => /Project imported/.test(document.getElementById('status-text').textContent) || !document.getElementById('error').hidden, null, { timeout: 30000 });
  check(!(await errorText(page)), `the good project was refused: ${await errorText(page)}`);
  const st = await debugState(page);
  check(st.classes.map((c) => `${c.label}:${c.count}`).join(' ') === 'a:1 b:1' && st.hasModel, `imported: ${JSON.stringify(st.classes)}`);
  const imported = await dbSnapshot(page);
  check(imported.meta.backup, 'the replaced project is kept as a backup');
  const oldKeys = projectKeys(s);
  const newKeys = [...projectKeys(imported)];
  check(newKeys.every((k) => !oldKeys.has(k) && Number(k) >= s.meta.project.nextKey), `imported images got new keys (${newKeys}) past ${s.meta.project.nextKey}`);
  for (const k of oldKeys) check(JSON.stringify(imported.images[k]) === JSON.stringify(s.images[k]), `backup image ${k} kept as it was`);
  log(`import: asked first, imported ${newKeys.length} images under new keys, the previous project kept as a backup`);
  await Promise.all([page.waitForEvent('load'), page.click('[data-notice="undo"] .notice-action')]);
  await waitReady(page);
  await waitIdle(page);
  // the restored page moves nextKey past the imported (now backup) images and saves that
  await page.waitForFunction(() => window.sortwiseDebug.autosave.pending === 0, null, { timeout: 10000 });
  await page.evaluate(() => window.sortwiseDebug.save());
  const back = await dbSnapshot(page);
  sameRecords(back, s, 'after undoing the import (the project as before)', { skipMeta: ['backup'], imagesOf: oldKeys, skipProject: ['nextKey'] });
  check(back.meta.project.nextKey > Math.max(...newKeys.map(Number)), `after undo nextKey ${back.meta.project.nextKey} is past the imported keys ${newKeys}`);
  sameRecords(await stateSnapshot(page), back, 'the page after undo', { skipMeta: ['backup'], imagesOf: oldKeys });
  log('undo: the previous project is back, record by record');
  return back;
}

// Values of the wrong type or out of range for one setting (RULES.settings: the engine's ranges).
function badValues(setting) {
  const out = ['x', true, [], { v: 1 }, -1e308, 1e308];
  if (!setting.optional) out.push(null);
  if (setting.type === 'int') out.push(setting.min - 1, setting.max + 1, setting.min + 0.5);
  if (setting.type === 'number') out.push(setting.min - 1e-3, setting.max + 1e-3);
  if (setting.type === 'choice') out.push(`${setting.choices[0]}x`, '');
  if (setting.type === 'bool') out.push(0, 1, 'true');
  return out.filter((v) => !(setting.type === 'bool' && v === true));
}

/**
 * 6b: a generated family of crafted projects: settings of every wrong type and range for every
 * setting, unknown keys, labels of every refused kind. Each is refused with a message (the
 * stored project unchanged) or imported with its settings reset to defaults; after each the
 * stored settings are ones the engine takes, and the page starts again after a reload.
 * Then a stored setting the engine refuses (written by an older page) and a start that fails:
 * the page starts, and "Start with default settings" starts it.
 */
async function craftedProjects(page) {
  const thumb = new Uint8Array(photos('glass', 1)[0].buffer);
  const emb = new Uint8Array(new Float32Array(48).fill(0.5).buffer);
  const zip = (settings, labels = ['a', 'b']) => Buffer.from(zipSync({
    'project.json': strToU8(JSON.stringify({
      format: 'sortwise-project', version: 1, arch: 'resnet18', dim: 48, settings, model: null, report: null,
      classes: labels.map((label, i) => ({ label, images: [{ thumbnail: `images/${i}.jpg`, embedding: `embeddings/${i}.f32`, length: 48 }] })),
    })),
    ...Object.fromEntries(labels.flatMap((_, i) => [[`images/${i}.jpg`, thumb], [`embeddings/${i}.f32`, emb]])),
  }));
  const fits = (st, v) => {
    if (v === null) return st.optional;
    if (st.type === 'int') return Number.isInteger(v) && v >= st.min && v <= st.max;
    if (st.type === 'number') return Number.isFinite(v) && v >= st.min && v <= st.max;
    if (st.type === 'choice') return st.choices.includes(v);
    return typeof v === 'boolean';
  };
  const storedSettingsOk = async () => {
    const db = await dbSnapshot(page);
    const settings = db.meta.project.settings;
    for (const [k, v] of Object.entries(settings)) {
      const st = RULES.settings.find((x) => x.key === k);
      check(st && fits(st, v), `stored setting ${k} = ${JSON.stringify(v)} is not one the engine takes`);
    }
    return db;
  };
  const importZip = async (buffer) => {
    await page.evaluate(() => { document.getElementById('status-text').textContent = ''; });
    await page.setInputFiles('#import-project', { name: 'crafted.zip', mimeType: 'application/zip', buffer });
    await page.waitForFunction(() => /Project imported/.test(document.getElementById('status-text').textContent) || !document.getElementById('error').hidden, null, { timeout: 30000 });
    const err = await errorText(page);
    if (err) await page.click('#error-close');
    await waitIdle(page);
    return err;
  };
  const cases = [];
  for (const st of RULES.settings) for (const v of badValues(st)) cases.push({ what: `settings.${st.key} = ${JSON.stringify(v)}`, buffer: zip({ [st.key]: v }), reset: `${st.key}: ${JSON.stringify(v)} →` });
  cases.push({ what: 'the issue\'s augment 1.5', buffer: zip({ augment: 1.5, epochs: 7 }), reset: 'augment: 1.5 → 0' });
  cases.push({ what: 'unknown keys', buffer: zip(JSON.parse('{"__proto__": {"polluted": 1}, "constructor": 1, "batchsize": 9, "epochs": 3}')), reset: null });
  cases.push({ what: 'settings not an object', buffer: zip([1, 2]), reset: null });
  const badLabels = [
    ['empty', ''], ['spaces only', '   '], ['101 characters', 'x'.repeat(101)], ['a control character', 'a\u0007b'],
    ['a right-to-left override', 'glass\u202Ecipsalp'], ['a zero-width space', 'gla\u200Bss'], ['a byte-order mark inside', 'gla\uFEFFss'],
    ['a bidi isolate', 'a\u2066b\u2069'], ['not a string', 42],
  ];
  for (const [what, label] of badLabels) cases.push({ what: `a label with ${what}`, buffer: zip({}, [label, 'b']), refused: true });
  cases.push({ what: 'duplicate labels after trimming', buffer: zip({}, ['a', ' a ']), refused: true });
  // JavaScript's trim() takes a leading U+FEFF as a space: imported as 'glass', never with it
  cases.push({ what: 'a leading byte-order mark', buffer: zip({}, ['\uFEFFglass', 'b']), reset: null });
  let refused = 0;
  let imported = 0;
  for (const [i, c] of cases.entries()) {
    const before = await dbSnapshot(page);
    const err = await importZip(c.buffer);
    if (err) {
      refused += 1;
      check(/unchanged/.test(err), `${c.what}: refused without saying the project is unchanged: "${err}"`);
      sameRecords(await dbSnapshot(page), before, `${c.what}: refused, the stored project`);
    } else {
      imported += 1;
      check(!c.refused, `${c.what}: imported, expected a refusal`);
      if (c.reset) check((await noticeText(page, 'settings')).includes(c.reset), `${c.what}: no notice of the reset: "${await noticeText(page, 'settings')}"`);
      const labels = (await storedSettingsOk()).meta.project.classes.map((x) => x.label);
      check(labels.every((l) => !/[\p{Cc}\u200B\u202A-\u202E\u2066-\u2069\uFEFF]/u.test(l)), `${c.what}: a stored label holds a refused character: ${JSON.stringify(labels)}`);
    }
    // every few cases, and after the last: the page starts again from what is stored
    if (i % 12 === 11 || i === cases.length - 1) {
      const stored = await storedSettingsOk();
      await page.reload();
      await waitReady(page);
      await waitIdle(page);
      sameRecords(await dbSnapshot(page), stored, `${c.what}: after a reload`, { skipMeta: ['backup'] });
    }
  }
  log(`crafted projects: ${cases.length} generated (${refused} refused with a message, ${imported} imported with bad settings reset); the page started after each batch`);

  // a stored setting the engine refuses (as an older page wrote it): reset, said, and the page starts
  const stored = await dbSnapshot(page);
  await page.evaluate(() => window.__editStoredProject((p) => ({ ...p, settings: { ...p.settings, augment: 1.5, epochs: 'many' } })));
  await page.reload();
  await waitReady(page);
  await waitIdle(page);
  const notice = await noticeText(page, 'settings');
  check(/augment/.test(notice) && /epochs/.test(notice), `a stored bad setting is reset with a notice: "${notice}"`);
  await saved(page);
  const after = await storedSettingsOk();
  sameRecords(after, stored, 'the stored project after its bad settings were reset', { skipMeta: ['backup'], skipProject: ['settings'] });
  log(`a stored augment 1.5 and epochs "many": the page started, reset them ("${notice}")`);

  // a start that fails, then "Start with default settings": the page starts, the project whole
  await setFaults(page, { create: 'weights download failed: HTTP 503' });
  await page.reload();
  await waitReady(page, 'error');
  await setFaults(page, null);
  await Promise.all([page.waitForEvent('load'), page.click('[data-notice="rescue"] [data-action="startWithDefaults"]')]);
  await waitReady(page);
  await waitIdle(page);
  await saved(page);
  const defaults = await storedSettingsOk();
  sameRecords(defaults, after, 'after starting with default settings', { skipMeta: ['backup'], skipProject: ['settings'] });
  check(defaults.meta.project.settings.epochs === RULES.train.epochs, `started with the default settings: ${JSON.stringify(defaults.meta.project.settings)}`);
  log('a failed start, then "Start with default settings": started, every record kept');

  // a class name saved before the label rule refused text-direction marks: renamed, and it loads
  await page.evaluate(() => window.__editStoredProject((p) => { p.classes[0].label += '\u200F'; return p; }));
  const marked = await dbSnapshot(page);
  await page.reload();
  await waitReady(page);
  await waitIdle(page);
  const renamedNotice = await noticeText(page, 'labels');
  const clean = marked.meta.project.classes[0].label.replace('\u200F', '');
  check(renamedNotice.includes(`→ ${clean}`), `a refused stored label is renamed with a notice: "${renamedNotice}"`);
  await saved(page);
  const fixed = await dbSnapshot(page);
  check(fixed.meta.project.classes[0].label === clean && fixed.meta.project.classes[0].keys.length === marked.meta.project.classes[0].keys.length,
    `the renamed class keeps its photos: ${JSON.stringify(fixed.meta.project.classes[0]).slice(0, 200)}`);
  log(`a stored class name with U+200F: the page started and renamed it ("${renamedNotice}")`);
}

/** 8: a saved model the backbone check refuses is kept (shelved), said, and survives later saves. */
async function refusedModel(page, s) {
  await setFaults(page, { importModel: 'this model was trained on another backbone (sha256 mismatch)' });
  await page.reload();
  await waitReady(page);
  await waitIdle(page);
  await setFaults(page, null);
  const notice = await noticeText(page, 'shelved');
  log(`refused model: notice "${notice}"`);
  check(/kept in this browser/.test(notice) && /another backbone/.test(notice), `the refused model is reported: "${notice}"`);
  check(!(await debugState(page)).hasModel && (await autosaveState(page)).enabled, 'the refused model is not used, autosave stays on');
  await addClass(page, 'after refusal');
  await saved(page);
  await page.reload();
  await waitReady(page);
  await waitIdle(page);
  const db = await dbSnapshot(page);
  check(!db.meta.model && Array.isArray(db.meta.shelved) && db.meta.shelved.length === 1, `stored: ${Object.keys(db.meta)}`);
  check(db.meta.shelved[0].bytes === s.meta.model.bytes && JSON.stringify(db.meta.shelved[0].report) === JSON.stringify(s.meta.model.report), 'the shelved model is the saved one, byte for byte');
  for (const k of projectKeys(s)) check(JSON.stringify(db.images[k]) === JSON.stringify(s.images[k]), `image ${k} unchanged`);
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-notice="shelved"] .notice-action')]);
  const path = await dl.path();
  const got = readFileSync(path);
  const sha = (await import('node:crypto')).createHash('sha256').update(got).digest('hex');
  check(db.meta.shelved[0].bytes.endsWith(sha), `the downloaded model is the kept one (${sha.slice(0, 12)})`);
  log(`refused model kept through a save and a reload, downloadable (${got.length} bytes)`);
}

/** A version 1 save (model inline in the project record, as the previous page wrote it) is read and migrated whole. */
async function migrateV1() {
  const ctx = await newContext();
  const page = await openPage(ctx, 'v1');
  await page.goto(`${server.base}/tests/e2e/harness.html`);
  const thumb = [...photos('glass', 1)[0].buffer];
  const model = [...strToU8(JSON.stringify({ fake: 'sortwise', labels: ['a', 'b'], centroids: [new Array(48).fill(0.4), new Array(48).fill(0.6)] }))];
  await page.evaluate(({ thumb, model }) => new Promise((res, rej) => {
    const r = indexedDB.open('sortwise', 1);
    r.onupgradeneeded = () => { r.result.createObjectStore('meta'); r.result.createObjectStore('images', { keyPath: 'key' }); };
    r.onsuccess = () => {
      const db = r.result;
      const tx = db.transaction(['meta', 'images'], 'readwrite');
      const blob = new Blob([new Uint8Array(thumb)], { type: 'image/jpeg' });
      tx.objectStore('images').put({ key: 4, label: 'a', thumb: blob, emb: new Float32Array(48).fill(0.4) });
      tx.objectStore('images').put({ key: 7, label: 'b', thumb: blob, emb: new Float32Array(48).fill(0.6) });
      tx.objectStore('meta').put({
        version: 1, arch: 'resnet18', settings: { epochs: 7, threshold: 0.5 }, classes: [{ label: 'a', keys: [4] }, { label: 'b', keys: [7] }],
        model: new Uint8Array(model), modelLabels: ['a', 'b'], report: { labels: ['a', 'b'], confusion: [[1, 0], [0, 1]], valAccuracy: 1, seconds: 1, history: [] },
        stale: false, nextKey: 5, activeLabel: 'b', saved: Date.now(),
      }, 'project');
      tx.oncomplete = () => { db.close(); res(); };
      tx.onabort = () => rej(tx.error);
    };
  }), { thumb, model });
  const v1 = await dbSnapshot(page);
  await page.goto(`${server.base}/www/`);
  await waitReady(page);
  await waitIdle(page);
  const st = await debugState(page);
  check(st.classes.map((c) => `${c.label}:${c.count}`).join(' ') === 'a:1 b:1' && st.hasModel, `the v1 project is restored: ${JSON.stringify(st)}`);
  await page.waitForFunction(() => window.sortwiseDebug.autosave.saves >= 1, null, { timeout: 10000 });
  const v2 = await dbSnapshot(page);
  check(v2.meta.project.version === 2 && v2.meta.project.model === undefined && v2.meta.project.hasModel === true, `migrated project record: ${JSON.stringify(v2.meta.project).slice(0, 160)}`);
  check(v2.meta.model.bytes === v1.meta.project.model && JSON.stringify(v2.meta.model.report) === JSON.stringify(v1.meta.project.report), 'the inline model moved to the model record, byte for byte');
  check(v2.meta.project.nextKey === 8, `nextKey ${v2.meta.project.nextKey}: past the highest stored key 7, although the v1 record said 5`);
  for (const k of ['4', '7']) check(JSON.stringify(v2.images[k]) === JSON.stringify(v1.images[k]), `image ${k} unchanged by the migration`);
  sameRecords(await stateSnapshot(page), v2, 'the migrated page against the store', { imagesOf: projectKeys(v2) });
  log('a version 1 save is restored and migrated: the model moved to its own record, images untouched, nextKey past every stored key');
  await ctx.close();
}

/** 7: two tabs: one owns the project; the other says so, can take over, and the first stops saving. */
async function twoTabs({ noLocks = false } = {}) {
  const ctx = await newContext();
  const tag = noLocks ? 'two tabs (no Web Locks)' : 'two tabs';
  const a = await openPage(ctx, 'tab A');
  await a.goto(`${server.base}/www/`);
  if (noLocks) { await a.evaluate(() => localStorage.setItem('sortwise-test-nolocks', '1')); await a.reload(); }
  await waitReady(a);
  await addClass(a, 'A1');
  await addPhotos(a, 'A1', photos('glass', 2));
  await saved(a);
  const aState = await autosaveState(a);
  check(aState.owner && aState.enabled && aState.lockMode === (noLocks ? 'channel' : 'locks'), `${tag}: tab A owns the project: ${JSON.stringify(aState)}`);
  const b = await openPage(ctx, 'tab B');
  await b.goto(`${server.base}/www/`);
  await waitReady(b);
  await waitIdle(b);
  const bState = await autosaveState(b);
  const notice = await noticeText(b, 'autosave');
  check(!bState.owner && !bState.enabled && /open in another tab/.test(notice), `${tag}: tab B does not own it: ${JSON.stringify(bState)} "${notice}"`);
  await b.setViewportSize({ width: 360, height: 780 });
  const overflow = await b.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 1, `${tag}: the notice overflows a phone-width page by ${overflow}px`);
  await b.screenshot({ path: join(ROOT, 'artifacts/screenshots', `persist-${noLocks ? 'nolocks' : 'locks'}-notice-phone.png`) }).catch(() => {});
  await b.setViewportSize({ width: 1280, height: 900 });
  const s1 = await dbSnapshot(b);
  await addClass(b, 'B-unsaved');
  await tabSwitch(b);
  sameRecords(await dbSnapshot(b), s1, `${tag}: tab B's edit is not saved`);
  await addClass(a, 'A2');
  await saved(a);
  // B takes over: A writes its last changes and stops; B reloads and owns the project
  await Promise.all([b.waitForEvent('load'), b.click('[data-notice="autosave"] .notice-action')]);
  await waitReady(b);
  await waitIdle(b);
  await a.waitForFunction(() => window.sortwiseDebug.autosave.off === 'autosaveTakenOver', null, { timeout: 10000 });
  const aNotice = await noticeText(a, 'autosave');
  check(/took over/.test(aNotice), `${tag}: tab A says it was taken over: "${aNotice}"`);
  const bAfter = await autosaveState(b);
  check(bAfter.owner && bAfter.enabled, `${tag}: tab B owns the project after taking over: ${JSON.stringify(bAfter)}`);
  const labels = (await debugState(b)).classes.map((c) => c.label);
  check(labels.includes('A2') && !labels.includes('B-unsaved'), `${tag}: tab B has tab A's last save: ${labels}`);
  const s2 = await dbSnapshot(b);
  await addClass(a, 'A3-after-takeover');
  await addPhotos(a, 'A1', photos('metal', 1));
  await tabSwitch(a);
  sameRecords(await dbSnapshot(b), s2, `${tag}: tab A no longer writes`);
  await addPhotos(b, 'A1', photos('paper', 2));
  await saved(b);
  const s3 = await dbSnapshot(b);
  const keys = s3.meta.project.classes.flatMap((c) => c.keys);
  check(new Set(keys).size === keys.length && keys.every((k) => String(k) in s3.images), `${tag}: every image key once and stored: ${keys}`);
  const newKeys = keys.filter((k) => !(String(k) in s2.images));
  check(newKeys.length === 2 && newKeys.every((k) => k >= s2.meta.project.nextKey), `${tag}: tab B's new images got fresh keys ${newKeys} (from ${s2.meta.project.nextKey})`);
  sameRecords(await stateSnapshot(b), s3, `${tag}: tab B against the store`, { imagesOf: projectKeys(s3) });
  log(`${tag}: B saw "${notice}", took over; A says "${aNotice}" and writes nothing; B's new keys ${newKeys}`);
  if (!noLocks) {
    // a third tab waits; when the owner closes it is told, and a reload makes it the owner
    const c = await openPage(ctx, 'tab C');
    await c.goto(`${server.base}/www/`);
    await waitReady(c);
    check(!(await autosaveState(c)).owner, 'tab C does not own the project while B is open');
    await b.close();
    await c.waitForFunction(() => /no longer has this project open/.test(document.querySelector('[data-notice="autosave"] .notice-text')?.textContent || ''), null, { timeout: 10000 });
    await Promise.all([c.waitForEvent('load'), c.click('[data-notice="autosave"] .notice-action')]);
    await waitReady(c);
    await waitIdle(c);
    const cState = await autosaveState(c);
    check(cState.owner && cState.enabled, `tab C owns the project after the owner closed and a reload: ${JSON.stringify(cState)}`);
    sameRecords(await stateSnapshot(c), s3, 'tab C against the store', { imagesOf: projectKeys(s3) });
    log('two tabs: a waiting tab is told when the owner closes, and owns the project after a reload');
  }
  await ctx.close();
}

/** 7: where the Web Locks API exists but refuses, the page falls back to the channel and still saves. */
async function locksRefused() {
  const ctx = await newContext();
  const page = await openPage(ctx, 'locks refused');
  await page.goto(`${server.base}/www/`);
  await page.evaluate(() => localStorage.setItem('sortwise-test-lockrefused', '1'));
  await page.reload();
  await waitReady(page);
  const a = await autosaveState(page);
  check(a.owner && a.enabled && a.lockMode === 'channel', `with Web Locks refusing, the page owns the project over the channel: ${JSON.stringify(a)}`);
  await addClass(page, 'saved anyway');
  await saved(page);
  log(`Web Locks refusing (SecurityError): ${JSON.stringify(a)}, saves go through`);
  await ctx.close();
}

/** 9: thousands of skipped files: the list shows the first 200 and a count. */
async function manySkipped(page) {
  const files = {};
  for (let i = 0; i < 1500; i += 1) files[`junk/note-${i}.txt`] = strToU8('x');
  const t = Date.now();
  await page.setInputFiles('#zip-input', { name: 'junk.zip', mimeType: 'application/zip', buffer: Buffer.from(zipSync(files)) });
  await page.waitForFunction(() => document.getElementById('skipped-more'), null, { timeout: 30000 });
  const n = await page.locator('#skipped-list > li').count();
  const more = await page.locator('#skipped-more').textContent();
  log(`1,500 skipped files in ${Date.now() - t} ms: ${n} list items, "${more}"`);
  check(n === 201 && /1300 more/.test(more), `the skipped list has ${n} items ("${more}")`);
  await page.click('#skipped-clear');
  // a zip read entry by entry: one entry whose deflate data is cut short is skipped, the others added
  const good = new Uint8Array(photos('glass', 1)[0].buffer);
  const zip = zipSync({ 'cut/glass/a.jpg': [good, { level: 0 }], 'cut/glass/b.txt.jpg': [strToU8('x'.repeat(5000) + Math.random()), { level: 9 }] });
  const name = strToU8('cut/glass/b.txt.jpg');
  let at = -1;
  for (let i = 0; i < zip.length && at < 0; i += 1) if (zip[i] === 0x50 && zip[i + 1] === 0x4b && zip[i + 2] === 3 && zip[i + 3] === 4 && zip[i + 26] === name.length && strToU8(String.fromCharCode(...zip.subarray(i + 30, i + 30 + name.length))).every((c, k) => c === name[k])) at = i;
  check(at >= 0, 'the second entry of the test zip');
  const dataAt = at + 30 + name.length + (zip[at + 28] | (zip[at + 29] << 8));
  zip.fill(0xff, dataAt, dataAt + 8); // not a valid deflate block any more
  const before = (await debugState(page)).classes.find((c) => c.label === 'glass')?.count ?? 0;
  await page.setInputFiles('#zip-input', { name: 'cut.zip', mimeType: 'application/zip', buffer: Buffer.from(zip) });
  await page.waitForFunction((n) => window.sortwiseDebug.state.classes.find((c) => c.label === 'glass')?.count === n + 1, before, { timeout: 30000 });
  await waitIdle(page);
  const listed = await page.locator('#skipped-list').textContent();
  log(`a zip with a corrupt entry: the good photo added, skipped "${listed}"`);
  check(/b\.txt\.jpg/.test(listed), `the corrupt entry is listed: "${listed}"`);
  await page.click('#skipped-clear');
  await page.locator('.class-card[data-label="glass"] .thumb-del').last().click({ force: true });
  await page.waitForFunction((n) => window.sortwiseDebug.state.classes.find((c) => c.label === 'glass')?.count === n, before, { timeout: 30000 });
  await saved(page);
  return dbSnapshot(page);
}

async function main() {
  check(existsSync(join(ROOT, 'www/vendor/fflate.js')), 'www/vendor/fflate.js missing: run scripts/vendor.sh');
  server = await serveRepo('/www/index.html');
  browser = await launchChromium();
  try {
    const ctx = await newContext();
    let page = await openPage(ctx);
    const s0 = await buildProject(page);
    await failedManifest(ctx, page, s0);
    await failedEngine(page, s0);
    await restoreTrap(page, s0);
    await newerVersion(page, s0);
    let s = await failedRequest(page, s0);
    s = await thresholdOnly(page);
    ({ page, snap: s } = await closedMidSave(ctx, page, s));
    s = await manySkipped(page);
    s = await projectZips(page, s);
    await refusedModel(page, s);
    await craftedProjects(page);
    await ctx.close();
    await quotaMidSave();
    await migrateV1();
    await twoTabs();
    await twoTabs({ noLocks: true });
    await locksRefused();
  } finally {
    await browser.close().catch(() => {});
    server.stop();
  }
  check(pageErrors.length === 0, `uncaught page errors: ${pageErrors.join(' | ')}`);
}

main().then(() => {
  log('PASS');
  process.exit(0);
}, (e) => {
  console.error(`\nPERSIST E2E FAILED: ${e instanceof Failure ? e.message : (e.stack || e.message)}`);
  process.exit(1);
});
