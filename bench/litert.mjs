#!/usr/bin/env node
// The runs of bench/litert.sh (issue 35): sortwise, ONNX Runtime Web and Google's LiteRT.js in one
// headless Chromium, one page, for ResNet-18, ResNet-50 and EfficientNet-Lite0, batch 8 and 1.
// Per round and arch, close in time (each engine in a worker of its own, a fresh one per run):
//   sortwise pkg-cpu-relaxed/, pkg-cpu/ (wasm threads, a pool of THREADS),
//   ORT-web (bench/ort-worker.js) on THREADS threads, LiteRT.js (bench/litert-worker.js) on THREADS,
//   sortwise pkg/ (single-threaded), pkg-cpu-relaxed/ on a pool of 1,
//   ORT-web on 1 thread, LiteRT.js on 1 thread (its single-threaded wasm).
// sortwise's figure is bench/browser-worker.js's `embed8`: `addImages` of the 8 photos at once
// (decoding and resizing included), and of 1 photo for batch 1; with batch 1 also its forward pass
// alone (`forward1`: predictPixels on a 224×224 frame, after a head trained on a few synthetic
// embeddings: no JPEG decoding, no resize), rows with `forward: true`; ORT and LiteRT get ready random
// tensors (NCHW for ORT, NHWC for LiteRT: the .tflite files are onnx2tf's conversions of the same
// ONNX files, batch fixed at 8 and at 1). Each: WARMUP untimed calls (default 1), then RUNS8 (batch 8)
// or RUNS1 (batch 1) timed calls, the median. Also, once: LiteRT.js's output on the input
// bench/litert_check.py wrote, against onnxruntime's (Python) output of the ONNX model.
// Prints one JSON object on stdout; progress on stderr.
// Env: ROUNDS (default 2), RUNS8 (default 3), RUNS1 (default 8), WARMUP (untimed calls first, default 1), THREADS (default
//      navigator.hardwareConcurrency), ARCHS (default resnet18,resnet50,efficientnet_lite0),
//      BATCHES (default 8,1), CHROMIUM, SORTWISE_DATA (trashnet-mini).

import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DATA, launchChromium, serveRepo } from '../tests/e2e/serve.mjs';
import { ORT_DIST, WEIGHTS } from './paths.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = Number(process.env.ROUNDS || 2);
const RUNS = { 8: Number(process.env.RUNS8 || 3), 1: Number(process.env.RUNS1 || 8) };
// Untimed calls before the timed ones, the same for every engine: V8 compiles wasm's hot
// functions again, optimised, while they run, and a big module (sortwise's) takes more calls to
// get there (the page warms its engine while idle: www/engine/worker.js).
const WARMUP = Number(process.env.WARMUP || 1);
const ARCHS = (process.env.ARCHS || 'resnet18,resnet50,efficientnet_lite0').split(',');
const BATCHES = (process.env.BATCHES || '8,1').split(',').map(Number);
const LITERT_DIR = '/bench/.cache/litert/';
const T0 = Date.now();
const log = (...a) => console.error(`[litert ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...a);

for (const f of [`${ORT_DIST}ort.wasm.min.mjs`, `${LITERT_DIR}worker.js`, `${LITERT_DIR}core.mjs`, ...Object.values(WEIGHTS)]) {
  if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: run bench/litert.sh`);
}
for (const arch of ARCHS) {
  for (const b of BATCHES) if (!existsSync(join(ROOT, `bench/.cache/tflite/${arch}-b${b}.tflite`))) throw new Error(`bench/.cache/tflite/${arch}-b${b}.tflite is missing: run bench/litert.sh`);
}

// The same 8 photos as bench/browser.mjs's `embed8`: the first of the class-interleaved list.
mkdirSync(join(ROOT, 'bench/.cache'), { recursive: true });
const link = join(ROOT, 'bench/.cache/data');
rmSync(link, { force: true });
symlinkSync(DATA, link);
const byClass = {};
for (const split of ['train', 'val']) {
  if (!existsSync(join(DATA, split))) continue;
  for (const cls of readdirSync(join(DATA, split)).sort()) {
    for (const f of readdirSync(join(DATA, split, cls)).sort()) (byClass[cls] ??= []).push(`/bench/.cache/data/${split}/${cls}/${f}`);
  }
}
const mixed = [];
const total = Object.values(byClass).reduce((a, l) => a + l.length, 0);
for (let i = 0; mixed.length < total; i += 1) for (const c of Object.keys(byClass)) if (byClass[c][i]) mixed.push(byClass[c][i]);
if (mixed.length < 8) throw new Error(`fewer than 8 photos under ${DATA}/{train,val}/<class>/`);
const urls = mixed.slice(0, 8);

const server = await serveRepo();
const browser = await launchChromium();
const out = { chromium: browser.version(), rounds: ROUNDS, runs: RUNS, sortwise: [], ort: [], litert: [], check: {}, errors: [] };
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => log('page error:', e.message));
  // LiteRT.js logs its INFO lines, and its NPU and WebGPU probes' warnings, as console errors.
  const chatter = /^(INFO: |WARNING: \[npu_registry|No GPU adapter)/;
  page.on('console', (m) => { if (m.type() === 'error' && !/favicon/.test(m.location().url) && !chatter.test(m.text())) log('console error:', m.text()); });
  await page.goto(`${server.base}/tests/e2e/harness.html`);
  await page.evaluate(() => {
    // A fresh worker per call group; `type` 'module' for sortwise's and ORT's, classic for LiteRT's.
    window.inWorker = (url, type, calls) => new Promise((resolve, reject) => {
      const w = new Worker(url, { type, name: 'bench' });
      const results = [];
      const next = () => {
        if (results.length === calls.length) { w.terminate(); resolve(results); return; }
        const [op, args] = calls[results.length];
        w.postMessage({ id: results.length, op, args });
      };
      w.onmessage = ({ data }) => {
        if (!data.ok) { w.terminate(); reject(new Error(`${calls[results.length][0]}: ${data.error}`)); return; }
        results.push(data.value);
        next();
      };
      w.onerror = (e) => { w.terminate(); reject(new Error(`worker ${url}: ${e.message}`)); };
      next();
    });
  });
  const inWorker = (url, type, calls) => page.evaluate(([u, t, c]) => window.inWorker(u, t, c), [url, type, calls]);
  const fail = (what, e) => { out.errors.push(`${what}: ${e.message}`); log(`FAILED ${what}: ${e.message}`); };
  const fmt = (r) => `${r.imgPerS.toFixed(2)} img/s (median ${r.medianMs.toFixed(0)} ms a batch of ${r.batch})`;

  // sortwise: one worker (one wasm instance) per build and pool size, batch 8 then batch 1.
  const sortwise = async (arch, round, pkg, threads) => {
    log(`--- sortwise ${pkg}/ ${arch}${threads ? `, pool of ${threads}` : ''}`);
    try {
      const calls = [['init', { pkg, threads }], ['create', { arch, weightsUrl: WEIGHTS[arch], device: 'cpu' }]];
      for (const b of BATCHES) calls.push(['embed8', { urls: urls.slice(0, b), n: RUNS[b], warmup: WARMUP }]);
      const forward = BATCHES.includes(1);
      if (forward) calls.push(['head', { n: 64, classes: 2, epochs: 1 }], ['forward1', { n: RUNS[1], warmup: WARMUP }]);
      const [init, create, ...results] = await inWorker('/bench/browser-worker.js', 'module', calls);
      const byBatch = results.slice(0, BATCHES.length);
      const threadsUsed = init.threads;
      for (const r of byBatch) {
        out.sortwise.push({ arch, round, pkg, threads: threadsUsed, batch: r.batch, imgPerS: r.imgPerS, medianMs: r.medianMs, ms: r.ms, warmupMs: r.warmupMs, createMs: create.createMs });
        log(`sortwise ${pkg}/ ${arch} ${threadsUsed}t: ${fmt(r)}`);
      }
      if (forward) {
        const r = { ...results[results.length - 1], batch: 1 };
        r.imgPerS = 1000 / r.medianMs;
        out.sortwise.push({ arch, round, pkg, threads: threadsUsed, batch: 1, forward: true, imgPerS: r.imgPerS, medianMs: r.medianMs, ms: r.ms });
        log(`sortwise ${pkg}/ ${arch} ${threadsUsed}t, forward pass alone: ${fmt(r)}`);
      }
    } catch (e) { fail(`sortwise ${pkg} ${arch}`, e); }
  };
  const ort = async (arch, round, threads) => {
    for (const batch of BATCHES) {
      log(`--- onnxruntime-web ${arch}, ${threads} thread(s), batch ${batch}`);
      try {
        const [r] = await inWorker('/bench/ort-worker.js', 'module', [['run', { dist: ORT_DIST, model: `/bench/.cache/onnx/${arch}.onnx`, threads, batch, n: RUNS[batch], warmup: WARMUP }]]);
        out.ort.push({ arch, round, ...r });
        log(`onnxruntime-web ${arch} ${threads}t: ${fmt(r)}`);
      } catch (e) { fail(`ort ${arch} ${threads}t b${batch}`, e); }
    }
  };
  const litert = async (arch, round, threads) => {
    for (const batch of BATCHES) {
      log(`--- LiteRT.js ${arch}, ${threads} thread(s), batch ${batch}`);
      try {
        const [r] = await inWorker(`${LITERT_DIR}worker.js`, 'classic', [['run', { dir: LITERT_DIR, model: `/bench/.cache/tflite/${arch}-b${batch}.tflite`, threads, n: RUNS[batch], warmup: WARMUP }]]);
        out.litert.push({ arch, round, ...r });
        log(`LiteRT.js ${arch} ${threads}t (${r.wasm}): ${fmt(r)}`);
      } catch (e) { fail(`litert ${arch} ${threads}t b${batch}`, e); }
    }
  };

  const threads = Number(process.env.THREADS) || await page.evaluate(() => navigator.hardwareConcurrency);
  out.threads = threads;
  out.crossOriginIsolated = await page.evaluate(() => self.crossOriginIsolated);

  // LiteRT.js's output against onnxruntime's (bench/litert_check.py's input and output), per arch,
  // on both of its wasm builds.
  for (const arch of ARCHS) {
    const ref = join(ROOT, `bench/.cache/tflite/check-${arch}.json`);
    if (!existsSync(ref)) { out.errors.push(`check ${arch}: ${ref} is missing`); continue; }
    const want = JSON.parse(readFileSync(ref, 'utf8'));
    for (const t of [threads, 1]) {
      try {
        const [r] = await inWorker(`${LITERT_DIR}worker.js`, 'classic', [['check', { dir: LITERT_DIR, model: `/bench/.cache/tflite/${arch}-b1.tflite`, threads: t, input: `/bench/.cache/tflite/check-${arch}-input-nhwc.f32` }]]);
        let maxAbs = 0;
        if (r.output.length !== want.onnx_output.length) throw new Error(`${r.output.length} outputs, ONNX ${want.onnx_output.length}`);
        r.output.forEach((v, i) => { maxAbs = Math.max(maxAbs, Math.abs(v - want.onnx_output[i])); });
        out.check[`${arch} ${t}t`] = { wasm: r.wasm, maxAbsDiff: maxAbs, maxAbsOnnx: Math.max(...want.onnx_output.map(Math.abs)), n: r.output.length };
        log(`check ${arch} LiteRT.js (${r.wasm}) vs onnxruntime: max |diff| ${maxAbs.toExponential(2)}`);
      } catch (e) { fail(`check ${arch} ${t}t`, e); }
    }
  }

  for (let round = 1; round <= ROUNDS; round += 1) {
    for (const arch of ARCHS) {
      await sortwise(arch, round, 'pkg-cpu-relaxed', threads);
      await sortwise(arch, round, 'pkg-cpu', threads);
      await ort(arch, round, threads);
      await litert(arch, round, threads);
      await sortwise(arch, round, 'pkg', undefined);
      await sortwise(arch, round, 'pkg-cpu-relaxed', 1);
      await ort(arch, round, 1);
      await litert(arch, round, 1);
    }
  }
} catch (e) {
  fail('run', e);
} finally {
  await browser.close();
  server.stop();
}
out.seconds = (Date.now() - T0) / 1000;
console.log(JSON.stringify(out));
