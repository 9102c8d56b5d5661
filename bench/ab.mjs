#!/usr/bin/env node
// Two or more wasm builds side by side in one Chromium page, their calls interleaved: one
// benchmark worker per build (bench/browser-worker.js), each warmed up, then ROUNDS rounds of
// one timed call per build, the order rotating each round. On a shared VM whose speed drifts
// by 20–30% within a minute, builds timed a minute apart (bench/profile.mjs PROFILE=0 run in
// turn) differ by more than a kernel change does; calls a fraction of a second apart see the
// same drift, so the ratio of each round's pair is steadier than either time. The entry
// `litert` is Google's LiteRT.js on the same backbone (bench/litert.sh's .tflite conversion at
// BATCH, a ready random tensor, THREADS threads): issue 35's reference, timed the same way.
//
//   PKGS="bench/.cache/before pkg-cpu-relaxed" node bench/ab.mjs
//   PKGS="litert pkg-cpu-relaxed" ARCH=efficientnet_lite0 BATCH=1 node bench/ab.mjs
// Env: PKGS (build folders under the repo, or `litert`; the first is the baseline), ARCH
//      (default resnet18), OP (embed, the default: `addImages` of BATCH photos, decoding and
//      resizing included; forward1: predictPixels on one 224×224 frame), BATCH (1 to 32, default
//      8; LiteRT.js has .tflite files for 8 and 1), THREADS (pool size; default all cores), ROUNDS (default 20), WARMUP (untimed calls
//      each first, default 6).
// Prints each entry's median and minimum ms a photo (a call's time over its batch), and the median of the per-round ratios
// entry / baseline (below 1: faster than the baseline); for each sortwise build after the first,
// the largest |difference| of its embeddings of the batch's photos from the first build's (0 for a
// change that only moves data: gathers, layouts, which thread computes what).

import puppeteer from 'puppeteer-core';
import { copyFileSync, existsSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { CHROMIUM_LAUNCH, DATA, ROOT, serveRepo } from '../tests/e2e/serve.mjs';
import { WEIGHTS } from './paths.mjs';
import { BENCH_WORKER, harnessPage, startWorkers } from './workers.mjs';

const LITERT_DIR = '/bench/.cache/litert/';

// An entry `dir@16` is that build with its own batch: times are then compared per photo.
const ENTRIES = (process.env.PKGS || 'pkg-cpu-relaxed').split(/\s+/).filter(Boolean);
const PKGS = ENTRIES.map((e) => e.split('@')[0]);
const ARCH = process.env.ARCH || 'resnet18';
const OP = process.env.OP || 'embed';
const BATCH = Number(process.env.BATCH || 8);
const BATCHES = ENTRIES.map((e) => Number(e.split('@')[1] || BATCH));
const THREADS = process.env.THREADS ? Number(process.env.THREADS) : undefined;
const ROUNDS = Number(process.env.ROUNDS || 20);
const WARMUP = Number(process.env.WARMUP || 6);

const link = join(ROOT, 'bench/.cache/data');
rmSync(link, { force: true });
symlinkSync(DATA, link);
// bench/profile.mjs's 8 photos (two a class), then two more a class at a time, up to a batch of 32.
const classes = readdirSync(join(DATA, 'train')).sort();
const urls = [0, 2, 4, 6].flatMap((from) => classes.flatMap((cls) => readdirSync(join(DATA, 'train', cls)).sort().slice(from, from + 2).map((f) => `/bench/.cache/data/train/${cls}/${f}`)));

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

if (PKGS.includes('litert')) {
  // bench/litert.sh installed LiteRT.js and the .tflite files; its copy of the worker may predate
  // `open`/`time`, so it is refreshed here.
  const dir = join(ROOT, LITERT_DIR);
  if (!existsSync(join(dir, 'core.mjs'))) throw new Error('LiteRT.js is not installed: run bench/litert.sh');
  copyFileSync(join(ROOT, 'bench/litert-worker.js'), join(dir, 'worker.js'));
}

const server = await serveRepo();
const browser = await puppeteer.launch({ ...CHROMIUM_LAUNCH, headless: true });
try {
  const page = await harnessPage(browser, server.base);
  // LiteRT.js's worker is a classic one (it loads its glue with importScripts).
  const call = await startWorkers(page, PKGS.map((e) => (e === 'litert' ? { url: `${LITERT_DIR}worker.js` } : BENCH_WORKER)));
  const once = async (i) => {
    if (PKGS[i] === 'litert') return (await call(i, 'time', { n: 1 })).ms[0] / (OP === 'forward1' ? 1 : BATCHES[i]);
    const r = OP === 'forward1' ? await call(i, 'forward1', { n: 1, warmup: 0 }) : await call(i, 'embed8', { urls: urls.slice(0, BATCHES[i]), n: 1, warmup: 0 });
    return r.ms[0] / (OP === 'forward1' ? 1 : BATCHES[i]);
  };

  const threads = THREADS || await page.evaluate(() => navigator.hardwareConcurrency);
  for (let i = 0; i < PKGS.length; i += 1) {
    if (PKGS[i] === 'litert') {
      await call(i, 'open', { dir: LITERT_DIR, model: `/bench/.cache/tflite/${ARCH}-b${OP === 'forward1' ? 1 : BATCHES[i]}.tflite`, threads });
      for (let k = 0; k < WARMUP; k += 1) await once(i);
      continue;
    }
    await call(i, 'init', { pkg: PKGS[i], threads });
    await call(i, 'create', { arch: ARCH, weightsUrl: WEIGHTS[ARCH], device: 'cpu' });
    if (OP === 'forward1') {
      await call(i, 'embed8', { urls, n: 1, warmup: 0 });
      await call(i, 'head', { n: 40, classes: 2, epochs: 2 });
    }
    for (let k = 0; k < WARMUP; k += 1) await once(i);
  }

  const ms = PKGS.map(() => []);
  for (let r = 0; r < ROUNDS; r += 1) {
    for (let j = 0; j < PKGS.length; j += 1) {
      const i = (j + r) % PKGS.length;
      ms[i].push(await once(i));
    }
  }
  // Each build's embeddings of the same photos, against the first build's.
  const builds = PKGS.map((_, i) => i).filter((i) => PKGS[i] !== 'litert');
  const embeddings = [];
  for (const i of builds) embeddings[i] = (await call(i, 'embeddings', { urls: urls.slice(0, BATCH) })).flat();
  const diff = (i) => {
    const [a, b] = [embeddings[builds[0]], embeddings[i]];
    if (a.length !== b.length) return 'different lengths';
    return a.reduce((m, v, k) => Math.max(m, Math.abs(v - b[k])), 0).toExponential(1);
  };
  console.log(`${ARCH} ${OP === 'forward1' ? 'forward1' : `batch ${BATCH}`}, ${threads} thread(s), ${ROUNDS} interleaved rounds`);
  for (let i = 0; i < PKGS.length; i += 1) {
    const ratio = ms[i].map((v, r) => v / ms[0][r]);
    const same = builds.includes(i) && i !== builds[0] ? `; embeddings max |diff| to ${ENTRIES[builds[0]]} ${diff(i)}` : '';
    console.log(`${ENTRIES[i].padEnd(32)} median ${median(ms[i]).toFixed(1)} ms, min ${Math.min(...ms[i]).toFixed(1)} ms a photo, ratio to ${ENTRIES[0]} ${median(ratio).toFixed(3)}${same}`);
  }
} finally {
  await browser.close();
  server.stop();
}
