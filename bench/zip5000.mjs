#!/usr/bin/env node
// Issue 37, "Scale": 5,000 photos (the page's limit) in one dropped zip, on the real page
// (www/, no fake engine) with EfficientNet-Lite0 on the CPU (`?device=cpu`), in headless Chromium.
//
//   node bench/zip5000.mjs                 (after ./run serve: pkg-cpu-relaxed/ and the weights)
//   DOCS=1 node bench/zip5000.mjs          (also appends the section to docs/BENCHMARKS.md)
//
// 1. The zip: bench/.cache/zip5000/ (gitignored), made once and reused. Its photos are
//    trashnet-mini's train/<class>/ photos (SORTWISE_DATA), each entry a new variant drawn in
//    Chromium (no image library needed): a random 4:3 crop, maybe mirrored, scaled to SIZE
//    (default 640x480), a film grain (so that the JPEGs weigh about what camera photos of that
//    size do, ~50 KB), JPEG quality 0.75-0.92; deflated (level 6) as an OS "compress" would, one folder per
//    class (photos/<class>/...), the classes one after another.
// 2. The engine's own throughput, in the same Chromium, before and after the drops: the wasm
//    Trainer of pkg-cpu-relaxed/ in a dedicated worker (bench/browser-worker.js, as
//    bench/browser.mjs), `addImages` of 8 photos of one class at a time over ENGINE_PHOTOS of the
//    zip's photos, with the thumbnails and embeddings read back as www/engine/worker.js does.
// 3. The drop: a fresh page in a Chromium of its own with a new profile on disk (empty storage,
//    and IndexedDB on disk as in a user's browser: an incognito context, playwright's
//    `browser.newContext()`, keeps IndexedDB in the browser process's memory, ~23 KB a photo
//    here, which a normal profile does not; measured 2026-12-07), the zip dropped on it as
//    a file from disk (a DataTransfer holding the File of an <input type=file>, the event
//    intake.mjs sends); photos/s from the drop to the 5,000th photo in the project.
// 4. Memory: the resident memory of every Chromium process (the browser's whole process tree;
//    each step runs in its own Chromium, closed before the next, so only the one measured runs),
//    summed, every 500 ms from the start: the sum of RSS (what the issue asks; counts shared
//    pages once per process) and of PSS (shared pages split between their processes).
// 5. A reload in the middle: another fresh page, the zip dropped, reloaded once RELOAD_AT photos
//    are in; the photos restored are compared with those in the project just before the reload.
//    Target: at most one zip batch (project-zip.js DATASET_BATCH, 32 photos) lost.
//
// Prints one JSON object on stdout (progress on stderr) and a markdown section (stderr, and
// docs/BENCHMARKS.md with DOCS=1).
// Env: SORTWISE_DATA, CHROMIUM, N (photos, default 5000), SIZE (default 640x480), GRAIN (0-1,
//      default 0.12: ~50 KB a photo), ENGINE_PHOTOS (default 240), RELOAD_AT (default 1000; 0 skips the reload
//      run), DOCS=1, ZIP_ONLY=1 (make the zip, measure nothing).

import { execSync } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Zip, ZipDeflate } from 'fflate';
import { chromium } from 'playwright-core';
import { CHROMIUM_LAUNCH, launchChromium, serveRepo } from '../tests/e2e/serve.mjs';
import { BENCH_WORKER, startWorkers } from './workers.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DATA = resolve(process.env.SORTWISE_DATA || join(ROOT, '../shared/data/trashnet-mini'));
const N = Number(process.env.N || 5000);
const [W, H] = (process.env.SIZE || '640x480').split('x').map(Number);
const GRAIN = Number(process.env.GRAIN ?? 0.12);
const ENGINE_PHOTOS = Number(process.env.ENGINE_PHOTOS || 240);
const RELOAD_AT = Number(process.env.RELOAD_AT ?? 1000);
const ZIP_BATCH = 32; // www/project/project-zip.js DATASET_BATCH.photos
const CACHE = join(ROOT, 'bench/.cache/zip5000');
const ZIP = join(CACHE, `photos-${N}-${W}x${H}-g${GRAIN}.zip`);
const SAMPLE = join(CACHE, `sample-${N}-${W}x${H}-g${GRAIN}`);
const T0 = Date.now();
const log = (...a) => console.error(`[zip5000 ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...a);
const MB = 1024 * 1024;

// ---- the zip ---------------------------------------------------------------------------------

const CLASSES = readdirSync(join(DATA, 'train')).filter((c) => !c.startsWith('.')).sort();
if (!CLASSES.length) throw new Error(`no class folders under ${DATA}/train`);
/** Entry i: its class and its index in that class (classes one after another, as a zip tool lists folders). */
const perClass = CLASSES.map((_, c) => Math.floor(N / CLASSES.length) + (c < N % CLASSES.length ? 1 : 0));
function entryAt(i) {
  let c = 0;
  while (i >= perClass[c]) { i -= perClass[c]; c += 1; }
  return { c, k: i, name: `photos/${CLASSES[c]}/${CLASSES[c]}-${String(i).padStart(4, '0')}.jpg` };
}

// Runs in the page: variants of the source photos, as base64 JPEGs.
async function variantsInPage({ sources, jobs, W, H, GRAIN }) {
  if (!window.benchSources) {
    window.benchSources = await Promise.all(sources.map((list) => Promise.all(list.map((b64) => createImageBitmap(new Blob([Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0))]))))));
    window.benchGrain = Array.from({ length: 4 }, (_, g) => {
      const c = new OffscreenCanvas(W, H);
      const ctx = c.getContext('2d');
      const img = ctx.createImageData(W, H);
      let x = 0x9e3779b9 ^ g;
      for (let p = 0; p < img.data.length; p += 4) {
        x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
        img.data[p] = img.data[p + 1] = img.data[p + 2] = x & 255;
        img.data[p + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
      return c;
    });
  }
  const canvas = new OffscreenCanvas(W, H);
  const ctx = canvas.getContext('2d');
  const out = [];
  for (const { c, k, seed } of jobs) {
    let s = seed >>> 0;
    const rnd = () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32; };
    const list = window.benchSources[c];
    const bmp = list[k % list.length];
    const frac = 0.7 + 0.3 * rnd();
    let cw = bmp.width * frac;
    let ch = (cw * H) / W;
    if (ch > bmp.height) { ch = bmp.height; cw = (ch * W) / H; }
    const cx = rnd() * (bmp.width - cw);
    const cy = rnd() * (bmp.height - ch);
    ctx.save();
    if (rnd() < 0.5) { ctx.translate(W, 0); ctx.scale(-1, 1); }
    ctx.drawImage(bmp, cx, cy, cw, ch, 0, 0, W, H);
    ctx.restore();
    ctx.globalAlpha = GRAIN;
    ctx.globalCompositeOperation = 'overlay';
    ctx.drawImage(window.benchGrain[seed % 4], 0, 0);
    ctx.globalAlpha = 1;
    ctx.globalCompositeOperation = 'source-over';
    const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.75 + 0.17 * rnd() });
    const url = await new Promise((res) => { const r = new FileReader(); r.onload = () => res(r.result); r.readAsDataURL(blob); });
    out.push(url.slice(url.indexOf(',') + 1));
  }
  return out;
}

async function makeZip(browser) {
  mkdirSync(CACHE, { recursive: true });
  rmSync(SAMPLE, { recursive: true, force: true });
  mkdirSync(SAMPLE, { recursive: true });
  const sources = CLASSES.map((cls) => readdirSync(join(DATA, 'train', cls)).filter((f) => /\.jpe?g$/i.test(f)).sort()
    .map((f) => readFileSync(join(DATA, 'train', cls, f)).toString('base64')));
  const page = await browser.newPage();
  await page.goto('about:blank');
  const tmp = `${ZIP}.partial`;
  const fd = openSync(tmp, 'w');
  let bytes = 0;
  let photoBytes = 0;
  const zip = new Zip((err, data) => { if (err) throw err; writeSync(fd, data); bytes += data.length; });
  const sampleEvery = Math.max(1, Math.floor(N / ENGINE_PHOTOS));
  let sampled = 0;
  const CHUNK = 100;
  for (let from = 0; from < N; from += CHUNK) {
    const jobs = [];
    for (let i = from; i < Math.min(N, from + CHUNK); i += 1) jobs.push({ ...entryAt(i), seed: 1 + i, i });
    const b64 = await page.evaluate(variantsInPage, { sources, jobs, W, H, GRAIN });
    jobs.forEach((j, n) => {
      const data = Buffer.from(b64[n], 'base64');
      photoBytes += data.length;
      const f = new ZipDeflate(j.name, { level: 6 });
      zip.add(f);
      f.push(data, true);
      // the engine's sample: runs of 8 of one class spread over the zip
      if (sampled < ENGINE_PHOTOS && Math.floor(j.i / 8) % Math.max(1, Math.floor(sampleEvery)) === 0) {
        writeFileSync(join(SAMPLE, `${String(sampled).padStart(4, '0')}-${CLASSES[j.c]}.jpg`), data);
        sampled += 1;
      }
    });
    if ((from / CHUNK) % 10 === 0) log(`zip: ${Math.min(N, from + CHUNK)} of ${N} photos, ${(photoBytes / MB).toFixed(0)} MB`);
  }
  zip.end();
  closeSync(fd);
  renameSync(tmp, ZIP);
  await page.close();
  log(`zip written: ${ZIP} (${(bytes / MB).toFixed(1)} MB, photos ${(photoBytes / MB).toFixed(1)} MB, ${sampled} sample photos)`);
}

// ---- memory: every Chromium process ----------------------------------------------------------

/** Pids of the processes under `root` (children, theirs, ...), from /proc. */
function descendants(root) {
  const kids = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch { /* gone */ }
  }
  const out = [];
  const walk = (p) => { for (const k of kids.get(p) || []) { out.push(k); walk(k); } };
  walk(root);
  return out;
}

const kb = (text, key) => Number((text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm')) || [])[1] || 0);

/** {rss, pss, n, byType} in bytes over this script's Chromium processes (not scripts/serve.py). */
function chromiumMemory() {
  let rss = 0;
  let pss = 0;
  let n = 0;
  const byType = {};
  for (const pid of descendants(process.pid)) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (/python/.test(comm)) continue;
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const type = (cmd.match(/--type=([a-z-]+)/) || [null, 'browser'])[1] + (/--utility-sub-type=([\w.]+)/.exec(cmd)?.[1].replace(/^.*\./, ' ') ?? '');
      const roll = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      const r = kb(roll, 'Rss') * 1024;
      const p = kb(roll, 'Pss') * 1024;
      rss += r;
      pss += p;
      n += 1;
      const t = (byType[type] ??= { n: 0, rss: 0, pss: 0 });
      t.n += 1;
      t.rss += r;
      t.pss += p;
    } catch { /* gone */ }
  }
  return { rss, pss, n, byType };
}

/**
 * CPU seconds so far of every thread of this script's Chromium processes, by process type and
 * thread name ('renderer CrRendererMain', 'renderer DedicatedWorker', 'browser ...'), from /proc.
 */
function chromiumCpu() {
  const hz = 100; // USER_HZ
  const out = {};
  for (const pid of descendants(process.pid)) {
    try {
      if (/python/.test(readFileSync(`/proc/${pid}/comm`, 'utf8'))) continue;
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const type = (cmd.match(/--type=([a-z-]+)/) || [null, 'browser'])[1];
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        try {
          const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
          const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/\d+$/, '');
          const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          const key = `${type} ${comm}`;
          out[key] = (out[key] || 0) + (Number(f[11]) + Number(f[12])) / hz;
        } catch { /* gone */ }
      }
    } catch { /* gone */ }
  }
  return out;
}

/** CPU seconds spent between two `chromiumCpu()` snapshots, the largest first (threads gone since count from 0). */
function cpuSpent(a, b) {
  return Object.entries(b).map(([k, v]) => [k, v - (a[k] || 0)]).filter(([, v]) => v >= 0.05)
    .sort((x, y) => y[1] - x[1]).map(([k, v]) => [k, Number(v.toFixed(2))]);
}

class MemorySampler {
  constructor() {
    this.peak = { rss: 0, pss: 0 };
    this.phase = 'start';
    this.peaks = {};
    this.timer = setInterval(() => this.sample(), 500);
    this.sample();
  }

  sample() {
    const m = chromiumMemory();
    this.last = m;
    const p = (this.peaks[this.phase] ??= { rss: 0, pss: 0, processes: 0 });
    if (m.rss > p.rss) p.atPeak = Object.fromEntries(Object.entries(m.byType).map(([k, v]) => [k, `${v.n}: RSS ${Math.round(v.rss / 1048576)} MB, PSS ${Math.round(v.pss / 1048576)} MB`]));
    p.rss = Math.max(p.rss, m.rss);
    p.pss = Math.max(p.pss, m.pss);
    p.processes = Math.max(p.processes, m.n);
    this.peak.rss = Math.max(this.peak.rss, m.rss);
    this.peak.pss = Math.max(this.peak.pss, m.pss);
  }

  stop() { clearInterval(this.timer); this.sample(); }
}

// ---- the engine's own throughput ---------------------------------------------------------------

async function engineThroughput(base) {
  const browser = await launchChromium();
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => log('engine page error:', e.message));
  await page.goto(`${base}/tests/e2e/harness.html`);
  const callWorker = await startWorkers(page, [BENCH_WORKER]);
  const call = (op, args) => callWorker(0, op, args);
  try {
    const init = await call('init', { pkg: 'pkg-cpu-relaxed' });
    await call('create', { arch: 'efficientnet_lite0', weightsUrl: '/www/weights/efficientnet_lite0.safetensors', device: 'cpu' });
    const urls = readdirSync(SAMPLE).sort().map((f) => `/bench/.cache/zip5000/${SAMPLE.split('/').pop()}/${f}`);
    // the sample in runs of 8 of one class (files are named <n>-<class>.jpg, 8 in a row of a class)
    const cpu0 = chromiumCpu();
    const r = await call('embedStream', { urls, batch: 8, warmup: 2 });
    const cpu = cpuSpent(cpu0, chromiumCpu());
    return { pkg: init.pkg, threads: init.threads, photos: r.photos, imgPerS: r.imgPerS, medianBatchMs: r.medianMs, wasmMemory: r.memory, cpuSeconds: cpu, chromium: browser.version() };
  } finally {
    await browser.close();
  }
}

// ---- the page ----------------------------------------------------------------------------------

async function openApp(context, base) {
  // the tab the profile opened with (another tab would be another renderer in the figures)
  const page = context.pages()[0] ?? await context.newPage();
  page.on('pageerror', (e) => log('page error:', e.message));
  page.on('console', (m) => { if (m.type() === 'error' && !/favicon/.test(m.location().url)) log('console error:', m.text()); });
  await page.goto(`${base}/www/?device=cpu`);
  await page.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: 180000 });
  return page;
}

/** Drops the zip on the page as a file from disk (the File of an <input type=file>, in a DataTransfer). */
async function dropZip(page) {
  await page.evaluate(() => {
    const input = document.createElement('input');
    input.type = 'file';
    input.id = 'bench-zip';
    input.hidden = true;
    document.body.append(input);
  });
  await page.setInputFiles('#bench-zip', ZIP);
  return page.evaluate(() => {
    const file = document.getElementById('bench-zip').files[0];
    const dt = new DataTransfer();
    dt.items.add(file);
    document.getElementById('data-h').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    return file.size;
  });
}

const photosIn = (page) => page.evaluate(() => window.sortwiseDebug.state.classes.reduce((n, c) => n + c.count, 0));

async function waitPhotos(page, n, { timeoutS = 3600, onTick = () => {} } = {}) {
  const t = Date.now();
  for (;;) {
    const got = await photosIn(page);
    onTick(got);
    if (got >= n) return got;
    const st = await page.evaluate(() => ({ skipped: window.sortwiseDebug.state.skipped.length, bar: !document.getElementById('embed-progress').hidden }));
    if (!st.bar && got > 0 && Date.now() - t > 5000) throw new Error(`the add ended at ${got} photos (${st.skipped} skipped)`);
    if (Date.now() - t > timeoutS * 1000) throw new Error(`timed out at ${got} photos`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A Chromium of its own with a new profile on disk, as a user's browser (see 3. above); `close()` also deletes the profile. */
async function userBrowser() {
  const dir = mkdtempSync(join(tmpdir(), 'sortwise-zip5000-'));
  const context = await chromium.launchPersistentContext(dir, { ...CHROMIUM_LAUNCH, viewport: { width: 1280, height: 800 } });
  return { context, close: async () => { await context.close(); rmSync(dir, { recursive: true, force: true }); } };
}

async function fullDrop(base, mem) {
  const { context, close } = await userBrowser();
  try {
    const page = await openApp(context, base);
    const st = await page.evaluate(() => window.sortwiseDebug.state);
    log(`page ready: ${st.arch}, ${st.backend}, ${st.engine?.wasmPackage}, ${st.engine?.threads} threads`);
    const before = mem.last;
    mem.phase = 'drop';
    const cpu0 = chromiumCpu();
    const t0 = Date.now();
    const size = await dropZip(page);
    let first = null;
    const marks = {};
    let lastLog = 0;
    const got = await waitPhotos(page, N, {
      onTick: (n) => {
        const s = (Date.now() - t0) / 1000;
        if (n > 0 && first == null) first = s;
        for (const m of [500, 4500]) if (n >= m && marks[m] == null) marks[m] = s;
        if (s - lastLog >= 15) { lastLog = s; log(`drop: ${n} photos in ${s.toFixed(0)} s, Chromium RSS ${(mem.last.rss / MB).toFixed(0)} MB`); }
      },
    });
    const seconds = (Date.now() - t0) / 1000;
    const cpu = cpuSpent(cpu0, chromiumCpu());
    await page.evaluate(() => window.sortwiseDebug.idle());
    const end = await page.evaluate(() => {
      const images = window.sortwiseDebug.records().images.filter(Boolean);
      const sum = (f) => images.reduce((n, r) => n + f(r), 0);
      return {
        state: window.sortwiseDebug.state,
        autosave: window.sortwiseDebug.autosave,
        held: { images: images.length, thumbBytes: sum((r) => r.thumb.byteLength), embBytes: sum((r) => r.emb.byteLength) },
      };
    });
    return {
      zipBytes: size, photos: got, seconds, imgPerS: got / seconds, firstPhotoS: first,
      steadyImgPerS: marks[500] != null && marks[4500] != null ? 4000 / (marks[4500] - marks[500]) : null,
      skipped: end.state.skipped.length, classes: end.state.classes, engine: end.state.engine, backend: end.state.backend, arch: end.state.arch,
      autosaves: end.autosave.saves, memoryBefore: before, cpuSeconds: cpu, held: end.held,
    };
  } finally {
    mem.phase = 'after drop';
    await close();
  }
}

async function reloadRun(base, mem) {
  const { context, close } = await userBrowser();
  try {
    const page = await openApp(context, base);
    mem.phase = 'reload';
    await dropZip(page);
    await waitPhotos(page, RELOAD_AT);
    const before = await photosIn(page);
    const t = Date.now();
    await page.reload();
    await page.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: 180000 });
    const restoreS = (Date.now() - t) / 1000;
    await page.evaluate(() => window.sortwiseDebug.idle());
    const restored = await photosIn(page);
    const lost = before - restored;
    return { reloadAt: before, restored, lost, restoreS, allowed: ZIP_BATCH, met: lost <= ZIP_BATCH };
  } finally {
    mem.phase = 'after reload';
    await close();
  }
}

// ---- the run -----------------------------------------------------------------------------------

const server = await serveRepo('/www/index.html');
const out = { chromium: null, n: N, size: `${W}x${H}`, errors: [] };
let mem = null;
try {
  if (!existsSync(ZIP) || !existsSync(SAMPLE) || readdirSync(SAMPLE).length < Math.min(N, ENGINE_PHOTOS)) {
    const browser = await launchChromium();
    try { await makeZip(browser); } finally { await browser.close(); }
  } else log(`zip: ${ZIP} (cached)`);
  if (process.env.ZIP_ONLY === '1') throw new Error('ZIP_ONLY=1: the zip is made, nothing measured');
  for (const need of ['pkg-cpu-relaxed/sortwise_bg.wasm', 'www/weights/efficientnet_lite0.safetensors']) {
    if (!existsSync(join(ROOT, need))) throw new Error(`${need} is missing: run ./run serve first`);
  }
  mem = new MemorySampler();
  log('engine throughput (before the drops)');
  out.engineBefore = await engineThroughput(server.base);
  out.chromium = out.engineBefore.chromium;
  log(`engine: ${out.engineBefore.imgPerS.toFixed(2)} photos/s`);
  mem.phase = 'idle';
  await new Promise((r) => setTimeout(r, 1000));
  out.idleMemory = mem.last;
  out.drop = await fullDrop(server.base, mem);
  log(`drop: ${out.drop.photos} photos in ${out.drop.seconds.toFixed(1)} s, ${out.drop.imgPerS.toFixed(2)} photos/s`);
  if (RELOAD_AT > 0) {
    out.reload = await reloadRun(server.base, mem);
    log(`reload at ${out.reload.reloadAt}: ${out.reload.restored} restored (${out.reload.lost} lost), restore ${out.reload.restoreS.toFixed(1)} s`);
  }
  mem.phase = 'engine after';
  out.engineAfter = await engineThroughput(server.base);
  log(`engine after: ${out.engineAfter.imgPerS.toFixed(2)} photos/s`);
} catch (e) {
  out.errors.push(e.message);
  log('FAILED:', e.stack || e.message);
} finally {
  mem?.stop();
  server.stop();
}

// ---- verdicts and the section ------------------------------------------------------------------

const GB = 1024 * MB;
if (mem) out.memory = { peakRss: mem.peak.rss, peakPss: mem.peak.pss, byPhase: mem.peaks };
if (out.drop && out.engineBefore && out.engineAfter) {
  const engine = (out.engineBefore.imgPerS + out.engineAfter.imgPerS) / 2;
  out.targets = {
    throughput: { ratio: out.drop.imgPerS / engine, engineImgPerS: engine, met: out.drop.imgPerS >= 0.9 * engine && out.drop.photos === N },
    memory: { peakRssGB: out.memory.byPhase.drop.rss / GB, met: out.memory.byPhase.drop.rss <= 1.5 * GB },
    reload: out.reload ? { lost: out.reload.lost, met: out.reload.met } : null,
  };
}
console.log(JSON.stringify(out));

if (out.targets) {
  const cpu = (() => { try { return execSync("lscpu | sed -n 's/^Model name: *//p'", { encoding: 'utf8' }).trim(); } catch { return 'unknown'; } })();
  const cores = (() => { try { return execSync('nproc', { encoding: 'utf8' }).trim(); } catch { return '?'; } })();
  const d = out.drop;
  const tg = out.targets;
  const mbs = (b) => `${(b / MB).toFixed(0)} MB`;
  const yes = (m) => (m ? '**met**' : '**not met**');
  const phase = (p) => out.memory.byPhase[p];
  const section = `
### 5,000 photos in one dropped zip (issue 37, "Scale") — ${new Date().toISOString().slice(0, 10)}

Machine: ${cpu}, ${cores} cores; Chromium ${out.chromium} headless. Command: \`node bench/zip5000.mjs\`
(the page at \`/www/?device=cpu\`, EfficientNet-Lite0, ${d.engine?.wasmPackage} on ${d.engine?.threads} threads; a zip of
${N} photos of ${out.size} (${(d.zipBytes / MB).toFixed(0)} MB, deflated, ${CLASSES.length} class folders) made from
trashnet-mini's train/ photos, dropped on a fresh page in a Chromium of its own with a new profile on disk; the engine's
own figure in another Chromium, closed before the drop).

| | figure | target | |
|---|---|---|---|
| the drop, photos/s (drop → ${N}th photo in the project) | ${d.imgPerS.toFixed(2)} (${d.seconds.toFixed(1)} s; photos 500–4,500: ${d.steadyImgPerS?.toFixed(2) ?? '–'}; first photo after ${d.firstPhotoS?.toFixed(1)} s) | | |
| the engine's own, photos/s (\`addImages\` of 8 in a worker, same build, same photos; before / after the drops) | ${out.engineBefore.imgPerS.toFixed(2)} / ${out.engineAfter.imgPerS.toFixed(2)} | | |
| drop ÷ engine (mean of before and after) | ${(tg.throughput.ratio * 100).toFixed(1)}% | ≥ 90% | ${yes(tg.throughput.met)} |
| Chromium's peak memory during the drop, sum of RSS (of PSS) over its ${phase('drop').processes} processes | ${mbs(phase('drop').rss)} (${mbs(phase('drop').pss)}); idle page before: ${mbs(d.memoryBefore.rss)} | ≤ 1.5 GB | ${yes(tg.memory.met)} |
${out.reload ? `| a reload at ${out.reload.reloadAt} photos: photos restored | ${out.reload.restored} (${out.reload.lost} lost; restore ${out.reload.restoreS.toFixed(1)} s) | ≥ ${out.reload.reloadAt} − ${ZIP_BATCH} (one zip batch) | ${yes(tg.reload.met)} |\n` : ''}
At the drop's peak, by process type (count: RSS, PSS): ${Object.entries(phase('drop').atPeak).map(([k, v]) => `${k} ${v}`).join('; ')}.
Photos skipped: ${d.skipped}; autosaves during the drop: ${d.autosaves}. The page holds per photo a ${(d.held.thumbBytes / d.held.images / 1024).toFixed(1)} KB
thumbnail and a ${(d.held.embBytes / d.held.images / 1024).toFixed(1)} KB embedding (${mbs(d.held.thumbBytes + d.held.embBytes)} for the ${d.held.images}); the engine's wasm memory
keeps the embedding (its training data), not the thumbnail (the page takes it: Trainer.takeThumbnail). Chromium's CPU time during the drop, by thread: ${d.cpuSeconds.slice(0, 5).map(([k, v]) => `${k} ${v} s`).join(', ')}. Peak sum of RSS over the whole run, engine runs and
reload included: ${mbs(out.memory.peakRss)}.
`;
  console.error(section);
  if (process.env.DOCS === '1') appendFileSync(join(ROOT, 'docs/BENCHMARKS.md'), section);
}
process.exit(out.errors.length ? 1 : 0);
