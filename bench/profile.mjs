#!/usr/bin/env node
// Where a wasm build spends a forward pass, in Chromium: V8's sampling profiler on every worker
// (the benchmark worker and, in the threaded builds, its rayon pool's workers) while
// bench/browser-worker.js runs `addImages` of 8 photos (or the batch-1 forward), then the
// functions with the most self time over all of them. Kernel work goes where this says
// (issue 35); a profile of the native build is another machine's code (AVX-512, the `gemm`
// crate's x86 kernels).
//
// Function names need a build that kept wasm's name section (`strip = true` in Cargo.toml drops
// it): `bash bench/profile.sh` builds one into bench/.cache/pkg-prof/ and runs this.
//
//   node bench/profile.mjs
// Env: PKG (a build's folder under the repo, default bench/.cache/pkg-prof), ARCH (default
//      efficientnet_lite0), THREADS (pool size of a threaded build), N (timed calls, default 6),
//      OP (embed8, the default, or forward1: predictPixels on one 224x224 frame),
//      BATCH (photos per `addImages` for embed8, a multiple of 4, default 8; the page sends
//      `model::infer::add_batch`'s figure: 16 for ResNet-18 on 2 threads),
//      TOP (functions listed, default 40), OUT (a folder for the raw .cpuprofile files),
//      PROFILE=0 (time the calls without the profiler: a quick before/after of two builds).

import puppeteer from 'puppeteer-core';
import { mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHROMIUM_LAUNCH, DATA, ROOT, serveRepo } from '../tests/e2e/serve.mjs';
import { WEIGHTS } from './paths.mjs';
import { BENCH_WORKER, harnessPage, startWorkers } from './workers.mjs';

const PKG = process.env.PKG || 'bench/.cache/pkg-prof';
const ARCH = process.env.ARCH || 'efficientnet_lite0';
const THREADS = process.env.THREADS ? Number(process.env.THREADS) : undefined;
const N = Number(process.env.N || 6);
const OP = process.env.OP || 'embed8';
const BATCH = Number(process.env.BATCH || 8);
const TOP = Number(process.env.TOP || 40);
const OUT = process.env.OUT;
const PROFILE = process.env.PROFILE !== '0';

mkdirSync(join(ROOT, 'bench/.cache'), { recursive: true });
const link = join(ROOT, 'bench/.cache/data');
rmSync(link, { force: true });
symlinkSync(DATA, link);
const urls = [];
for (const cls of readdirSync(join(DATA, 'train')).sort()) {
  for (const f of readdirSync(join(DATA, 'train', cls)).sort().slice(0, BATCH / 4)) urls.push(`/bench/.cache/data/train/${cls}/${f}`);
}

const server = await serveRepo();
const browser = await puppeteer.launch({ ...CHROMIUM_LAUNCH, headless: true });
try {
  const page = await harnessPage(browser, server.base);
  const callWorker = await startWorkers(page, [BENCH_WORKER]);
  const call = (op, args) => callWorker(0, op, args);
  const init = await call('init', { pkg: PKG, threads: THREADS });
  await call('create', { arch: ARCH, weightsUrl: WEIGHTS[ARCH], device: 'cpu' });
  if (OP === 'forward1') {
    await call('embed8', { urls, n: 1, warmup: 0 });
    await call('head', { n: 40, classes: 2, epochs: 2 });
  }
  const run = () => (OP === 'forward1' ? call('forward1', { n: N }) : call('embed8', { urls, n: N, warmup: 1 }));
  await run(); // warm: the pool's threads have started and every kernel has run once

  // Every worker there is now: the benchmark's and its pool's.
  // (puppeteer lists the pool's workers, started from the benchmark's, with the page's)
  const workers = page.workers();
  const clients = PROFILE ? workers.map((w) => w.client) : [];
  for (const c of clients) {
    await c.send('Profiler.enable');
    await c.send('Profiler.setSamplingInterval', { interval: 100 });
    await c.send('Profiler.start');
  }
  const timed = await run();
  const profiles = [];
  for (const c of clients) profiles.push((await c.send('Profiler.stop')).profile);

  // Self time per function, over all workers, less idle time and a thread blocked waiting for
  // others (the benchmark's worker while the pool computes; a pool thread with nothing to do).
  const self = new Map();
  let total = 0;
  for (const p of profiles) {
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const dt = new Map();
    p.samples.forEach((id, i) => dt.set(id, (dt.get(id) || 0) + (p.timeDeltas[i] || 0)));
    for (const [id, us] of dt) {
      const name = byId.get(id).callFrame.functionName || '(anonymous)';
      if (name === '(idle)' || /Condvar>::wait$/.test(name)) continue;
      self.set(name, (self.get(name) || 0) + us);
      total += us;
    }
  }
  if (OUT) {
    mkdirSync(OUT, { recursive: true });
    profiles.forEach((p, i) => writeFileSync(join(OUT, `worker${i}.cpuprofile`), JSON.stringify(p)));
  }
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP);
  console.log(`${PKG} ${ARCH} ${OP}, ${init.threads} thread(s), ${workers.length} worker(s): ${JSON.stringify({ medianMs: timed.medianMs, minMs: Math.min(...timed.ms), imgPerS: timed.imgPerS })}`);
  console.log(`busy samples ${(total / 1000).toFixed(0)} ms over all workers`);
  for (const [name, us] of rows) console.log(`${(100 * us / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name.slice(0, 150)}`);
} finally {
  await browser.close();
  server.stop();
}
