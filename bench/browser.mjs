#!/usr/bin/env node
// Browser benchmark for bench/run.sh (issue 7): the wasm Trainer in a dedicated Web Worker
// (bench/browser-worker.js) in headless Chromium, per wasm build, backend and arch:
// pkg/ 'cpu' = wasm burn-flex + SIMD128, single-threaded; pkg/ 'webgpu' = SwiftShader here;
// pkg-cpu/ 'cpu' = the CPU-only build with wasm threads (one rayon worker per core; the page is
// served cross-origin isolated). Prints one JSON object on stdout (runs carry `pkg`; `sizes` has
// both builds' raw and gzip -9 sizes); progress on stderr.
// Needs pkg/ and pkg-cpu/ built (scripts/wasm_pkg.sh), www/weights/efficientnet_lite0.safetensors,
// and the random-weight ResNet files that
// `cargo run --release --example bench_embed -- --write-weights bench/.cache` writes.
//
//   node bench/browser.mjs
// Env: SORTWISE_DATA (trashnet-mini), CHROMIUM, N_EMBED (cpu images per arch, default 8),
//      N_DROP (images for dropped->trained, default 240), DROP_BATCH (photos per addImages call
//      there, default 8 as the page; 1 = addImage per photo), GPU=0 to skip SwiftShader,
//      GPU_EMBED (SwiftShader images, default 2), GPU_EPOCHS (SwiftShader head epochs, default 1),
//      PKGS=pkg,pkg-cpu,pkg-cpu-relaxed (the builds to measure; one not built is skipped;
//      pkg-cpu-relaxed/ is pkg-cpu/ with relaxed SIMD's multiply-add), ROUNDS (times
//      the CPU plan runs, default 1; runs carry `round`), THREADS (pkg-cpu/'s pool size, default
//      navigator.hardwareConcurrency),
//      ONLY=device:arch,... or pkg:device:arch,... (e.g. ONLY=pkg-cpu:cpu:resnet18),
//      ORT=1: after each CPU run, ONNX Runtime Web's wasm backend on the same arch in the same
//      Chromium (bench/ort-worker.js; bench/ort.sh exports the models and installs it), on the
//      pool's thread count after pkg-cpu/ and on 1 thread after pkg/; sortwise's runs then also
//      time `addImages` of the 8 photos at once (`embed8`). Results in `ort`.
//      BEFORE=dir: a folder of earlier builds under the same names (dir/pkg-cpu/, ...), each run
//      right after the same build's run on the same arch and round, for a before/after in one
//      run (such runs have `before: true`, `pkg` dir/name and `build` the name; ORT does not run
//      after them; bench/ort_report.py adds their table).

import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, serveRepo } from '../tests/e2e/serve.mjs';
import { ORT_DIST, WEIGHTS } from './paths.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DATA = resolve(process.env.SORTWISE_DATA || join(ROOT, '../shared/data/trashnet-mini'));
const N_EMBED = Number(process.env.N_EMBED || 8);
const N_DROP = Number(process.env.N_DROP || 240);
// Photos per `addImages` call in the drop run (the page's 8; 1 = one `addImage` per photo).
const DROP_BATCH = Number(process.env.DROP_BATCH || 8);
const GPU = process.env.GPU !== '0';
const GPU_EMBED = Number(process.env.GPU_EMBED || 2);
const GPU_EPOCHS = Number(process.env.GPU_EPOCHS || 1);
// Every build there is, in the order each arch runs them.
const BUILDS = ['pkg', 'pkg-cpu', 'pkg-cpu-relaxed'];
const PKGS = (process.env.PKGS || BUILDS.join(',')).split(',');
const ROUNDS = Number(process.env.ROUNDS || 1);
// pkg-cpu/'s pool size; default navigator.hardwareConcurrency, as the page uses.
const THREADS = process.env.THREADS ? Number(process.env.THREADS) : undefined;
const ORT = process.env.ORT === '1';
const ORT_RUNS = Number(process.env.ORT_RUNS || 3);
const BEFORE = process.env.BEFORE;
const T0 = Date.now();
const log = (...a) => console.error(`[browser ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...a);

// The photos are served through a link in bench/.cache (gitignored) to the data directory.
mkdirSync(join(ROOT, 'bench/.cache'), { recursive: true });
const link = join(ROOT, 'bench/.cache/data');
rmSync(link, { force: true });
symlinkSync(DATA, link);
const files = [];
for (const split of ['train', 'val']) {
  if (!existsSync(join(DATA, split))) continue;
  for (const cls of readdirSync(join(DATA, split)).sort()) {
    for (const f of readdirSync(join(DATA, split, cls)).sort()) {
      files.push({ label: cls, url: `/bench/.cache/data/${split}/${cls}/${f}` });
    }
  }
}
if (!files.length) throw new Error(`no photos under ${DATA}/{train,val}/<class>/`);
// Interleave classes so any prefix is balanced.
const byClass = {};
for (const f of files) (byClass[f.label] ??= []).push(f);
const mixed = [];
for (let i = 0; mixed.length < files.length; i += 1) {
  for (const c of Object.keys(byClass)) if (byClass[c][i]) mixed.push(byClass[c][i]);
}
const dropFiles = mixed.slice(0, N_DROP);
const embedUrls = mixed.slice(0, 8).map((f) => f.url);

// Download sizes of each build: the wasm and its JS glue (and pkg-cpu's thread helper snippet).
function sizes(pkg) {
  const dir = join(ROOT, pkg);
  if (!existsSync(join(dir, 'sortwise_bg.wasm'))) return null;
  const size = (f) => {
    const b = readFileSync(f);
    return { raw: b.length, gzip: gzipSync(b, { level: 9 }).length };
  };
  const r = { wasm: size(join(dir, 'sortwise_bg.wasm')), js: size(join(dir, 'sortwise.js')) };
  const snippets = join(dir, 'snippets');
  if (existsSync(snippets)) {
    const all = readdirSync(snippets, { recursive: true }).filter((f) => f.endsWith('.js'));
    r.snippets = all.map((f) => size(join(snippets, f))).reduce((a, b) => ({ raw: a.raw + b.raw, gzip: a.gzip + b.gzip }), { raw: 0, gzip: 0 });
  }
  return r;
}

const server = await serveRepo();
const browser = await launchChromium();
const out = { chromium: browser.version(), files: files.length, sizes: {}, runs: [], ort: [], errors: [] };
if (ORT && !existsSync(join(ROOT, ORT_DIST, 'ort.wasm.min.mjs'))) throw new Error(`ORT=1: ${ORT_DIST} is missing: run bench/ort.sh`);
for (const pkg of BUILDS) out.sizes[pkg] = sizes(pkg);
const pkgs = PKGS.filter((p) => out.sizes[p] || (log(`${p}/ is not built: skipped`), false));
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => log('page error:', e.message));
  page.on('console', (m) => { if (m.type() === 'error' && !/favicon/.test(m.location().url)) log('console error:', m.text()); });
  await page.goto(`${server.base}/tests/e2e/harness.html`);
  // One worker (one wasm instance) per measurement group, so wasm memory figures are that group's.
  await page.evaluate(() => {
    let w = null;
    const pending = new Map();
    let next = 1;
    window.benchRestart = () => {
      w?.terminate();
      w = new Worker('/bench/browser-worker.js', { type: 'module' });
      w.onmessage = ({ data }) => {
        const p = pending.get(data.id);
        pending.delete(data.id);
        if (data.ok) p.resolve(data.value); else p.reject(new Error(data.error));
      };
      w.onerror = (e) => { for (const p of pending.values()) p.reject(new Error(`worker: ${e.message}`)); };
    };
    // ONNX Runtime Web, in a worker of its own per run (it reads its thread count once).
    window.ortRun = (args) => new Promise((resolve, reject) => {
      const ow = new Worker('/bench/ort-worker.js', { type: 'module' });
      ow.onmessage = ({ data }) => { ow.terminate(); if (data.ok) resolve(data.value); else reject(new Error(data.error)); };
      ow.onerror = (e) => { ow.terminate(); reject(new Error(`ort worker: ${e.message}`)); };
      ow.postMessage({ id: 1, op: 'run', args });
    });
    window.benchCall = (op, args) => new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      w.postMessage({ id, op, args });
    });
  });
  const call = async (op, args) => {
    const t = Date.now();
    const v = await page.evaluate(([o, a]) => window.benchCall(o, a), [op, args]);
    log(`${op} ${JSON.stringify(args ?? {}).slice(0, 80)} -> ${((Date.now() - t) / 1000).toFixed(1)} s`);
    return v;
  };
  const restart = () => page.evaluate(() => window.benchRestart());
  await restart();
  out.init = await call('init', { pkg: 'pkg' });
  out.gpu = await page.evaluate(async () => {
    const a = await navigator.gpu?.requestAdapter();
    return a ? { vendor: a.info?.vendor, architecture: a.info?.architecture, description: a.info?.description, fallback: a.info?.isFallbackAdapter ?? a.isFallbackAdapter } : null;
  });

  // What `device: 'auto'` picks here (it must not pick a software WebGPU adapter).
  try {
    const a = await call('create', { arch: 'efficientnet_lite0', weightsUrl: WEIGHTS.efficientnet_lite0, device: 'auto' });
    out.auto = { backend: a.backend, reason: a.reason };
    await call('free');
  } catch (e) {
    out.auto = { error: e.message };
  }
  const step = async (run, name, fn) => {
    try {
      run[name] = await fn();
    } catch (e) {
      run[name] = { error: e.message };
      out.errors.push(`${run.device} ${run.arch} ${name}: ${e.message}`);
      log(`FAILED ${run.device} ${run.arch} ${name}: ${e.message}`);
    }
  };
  const cpuPlan = (build, before = false) => {
    const pkg = before ? `${BEFORE}/${build}` : build;
    return [
      { pkg, build, before, device: 'cpu', arch: 'efficientnet_lite0', embed: N_EMBED, batchProbe: true, drop: true },
      { pkg, build, before, device: 'cpu', arch: 'resnet18', embed: N_EMBED, drop: true },
      { pkg, build, before, device: 'cpu', arch: 'resnet50', embed: Math.max(2, N_EMBED >> 1) },
    ];
  };
  const hasBefore = (build) => BEFORE && existsSync(join(ROOT, BEFORE, build, 'sortwise_bg.wasm'));
  // The builds alternate arch by arch, so that the two measurements compared sit close in time on
  // a shared machine; pkg/ first: bench/report.py reads the first run of each device and arch.
  // ROUNDS repeats the CPU plan (the report takes the median over rounds).
  const cpuRuns = [];
  for (let round = 1; round <= ROUNDS; round += 1) {
    const perPkg = BUILDS.filter((p) => pkgs.includes(p)).flatMap((b) => (hasBefore(b) ? [cpuPlan(b), cpuPlan(b, true)] : [cpuPlan(b)]));
    for (let i = 0; i < (perPkg[0]?.length ?? 0); i += 1) for (const list of perPkg) cpuRuns.push({ ...list[i], round });
  }
  const plan = cpuRuns;
  // SwiftShader is CPU emulation (one head epoch ~40 s here): a few images, one epoch, one predict.
  if (GPU && pkgs.includes('pkg')) plan.push({ pkg: 'pkg', device: 'webgpu', arch: 'efficientnet_lite0', embed: GPU_EMBED, epochs: GPU_EPOCHS, predictN: 1 });
  const only = process.env.ONLY?.split(',');
  for (const p of plan) {
    const build = p.build ?? p.pkg;
    if (only && !only.includes(`${p.device}:${p.arch}`) && !only.includes(`${build}:${p.device}:${p.arch}`)) continue;
    const run = { pkg: p.pkg, device: p.device, arch: p.arch, round: p.round ?? 1 };
    if (p.before) Object.assign(run, { build, before: true });
    out.runs.push(run);
    log(`--- ${p.pkg} ${p.device} ${p.arch}`);
    await restart();
    run.init = await call('init', { pkg: p.pkg, threads: THREADS });
    await step(run, 'create', () => call('create', { arch: p.arch, weightsUrl: WEIGHTS[p.arch], device: p.device }));
    if (run.create.error) continue;
    // Head first, so its memory figures are the backbone's plus 1,000 embeddings' (and training's).
    await step(run, 'head', () => call('head', { n: 1000, epochs: p.epochs ?? 100 }));
    if (run.head) run.head.epochs = p.epochs ?? 100;
    await step(run, 'forward1', () => call('forward1', { n: p.predictN ?? 3 }));
    await step(run, 'predict', () => call('predict', { url: embedUrls[0], n: p.predictN ?? 3 }));
    await step(run, 'embed', () => call('embed', { urls: embedUrls, n: p.embed }));
    if (ORT && p.device === 'cpu') await step(run, 'embed8', () => call('embed8', { urls: embedUrls, n: ORT_RUNS }));
    if (p.drop) await step(run, 'drop', () => call('drop', { files: dropFiles, batch: DROP_BATCH }));
    if (p.batchProbe) {
      // One addImage with 15 augmented views runs the backbone once on a batch of 16.
      await step(run, 'batch16', async () => {
        await restart();
        await call('init', { pkg: p.pkg, threads: THREADS });
        await call('create', { arch: p.arch, weightsUrl: WEIGHTS[p.arch], device: p.device, augment: 15 });
        return call('embed', { urls: embedUrls, n: 3 });
      });
    }
    await call('free');
    if (ORT && p.device === 'cpu' && !p.before) {
      // The threaded builds against ORT on as many threads; pkg/ (single-threaded) against ORT on one.
      const threads = build !== 'pkg' ? run.init?.threads ?? THREADS ?? 2 : 1;
      const o = { arch: p.arch, next: p.pkg, round: p.round ?? 1, threads };
      out.ort.push(o);
      log(`--- onnxruntime-web wasm ${p.arch}, ${threads} thread(s)`);
      try {
        Object.assign(o, await page.evaluate((a) => window.ortRun(a), { dist: ORT_DIST, model: `/bench/.cache/onnx/${p.arch}.onnx`, threads, batch: 8, n: ORT_RUNS }));
        log(`onnxruntime-web ${p.arch} ${threads}t: ${o.imgPerS.toFixed(2)} img/s (median ${o.medianMs.toFixed(0)} ms a batch of 8)`);
      } catch (e) {
        o.error = e.message;
        out.errors.push(`ort ${p.arch} ${threads}t: ${e.message}`);
        log(`FAILED ort ${p.arch}: ${e.message}`);
      }
    }
  }
} catch (e) {
  out.errors.push(e.message);
  log('FAILED:', e.message);
} finally {
  await browser.close();
  server.stop();
}
console.log(JSON.stringify(out));
