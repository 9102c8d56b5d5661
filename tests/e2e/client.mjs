#!/usr/bin/env node
// End-to-end test of www/engine/client.js + www/engine/worker.js (the page's engine) in headless
// Chromium, below the UI: the WebGPU device lost mid-session (destroyed for real through the
// WebGPU API) between calls and in the middle of training switches to the CPU backend keeping
// images and model, cancel stops training between epochs on the CPU backend, weights come from
// Cache Storage on a second load, weights with the wrong sha256 are refused, and bad input
// rejects with a message. The page is cross-origin isolated, so the CPU side is pkg-cpu-relaxed/
// (threads, relaxed SIMD).
// Needs pkg/, pkg-cpu-relaxed/ and www/weights/ (./run test builds them).
//
//   node tests/e2e/client.mjs

import { launchChromium, openHarness, photos, serveRepo } from './serve.mjs';

const T0 = Date.now();
const log = (...a) => console.log(`[client ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...a);

const server = await serveRepo();
const browser = await launchChromium();
let failed = false;
try {
  const page = await openHarness(browser, server, log, () => { failed = true; });
  const data = { glass: photos('glass', 8), metal: photos('metal', 8), held: [...photos('glass', 3, 'val'), ...photos('metal', 3, 'val')] };

  const r = await page.evaluate(async ({ glass, metal, held }) => {
    const { Sortwise } = await import('/www/engine/client.js');
    const u8 = (a) => new Uint8Array(a);
    const out = { statuses: [] };
    const onStatus = (s) => out.statuses.push(s.phase === 'weights' ? `weights ${s.cached ? 'cached' : s.loaded}` : `${s.backend}: ${s.reason}`);

    // 1. Forced WebGPU (SwiftShader here), one image embedded on it, then the device is destroyed.
    const sw = await Sortwise.create({ arch: 'efficientnet_lite0', device: 'webgpu', onStatus });
    out.first = sw.backend;
    out.firstPackage = sw.wasmPackage;
    let t = performance.now();
    const a = await sw.addImage('glass', u8(glass[0]));
    out.gpuEmbedMs = performance.now() - t;
    out.destroyed = await sw.debugLoseDevice();
    t = performance.now();
    const b = await sw.addImage('metal', u8(metal[0])); // retried on the CPU after the loss
    out.cpuEmbedMs = performance.now() - t;
    out.afterLoss = { backend: sw.backend, reason: sw.backendReason, wasmPackage: sw.wasmPackage, threads: sw.threads };
    // Several photos in one call, one of them not an image: it is reported, the others added.
    const batch = await sw.addImages('glass', [...glass.slice(1).map(u8), u8([1, 2, 3])]);
    out.batch = batch.map((r) => (r.error !== undefined ? `error: ${r.error}` : r.embedding.length));
    const batchEmbedding = batch[0].embedding;
    for (const m of metal.slice(1)) await sw.addImage('metal', u8(m));
    out.counts = await sw.counts();
    // The engine's rules and its class-name check, through the worker (rules asked once).
    const rules = await sw.rules();
    out.rules = { maxLabelChars: rules.maxLabelChars, maxAugment: rules.maxAugment, unsureLabel: rules.unsureLabel, epochs: rules.train?.epochs, lr: rules.train?.lr, cached: (await sw.rules()) === rules };
    out.label = await sw.validateLabel('  glass  ');
    out.badLabel = await sw.validateLabel('   ').then(() => 'accepted', (e) => e.message);
    out.ids = [a.id, b.id];
    out.dims = [a.embedding.length, sw.dim];
    const report = await sw.train({ epochs: 30, valSplit: 0 });
    out.epochsRun = report.epochsRun;
    out.held = [];
    for (const h of held) out.held.push((await sw.predict(u8(h))).label);
    out.predict = await sw.predict(u8(held[0]));

    // 2. Cancel on the CPU backend: the worker yields between epochs, so the message arrives.
    let epochs = 0;
    try {
      // The worker does not wait for the page between epochs, so a few more may run while the
      // cancel message travels (a 2-thread epoch here takes ~2 ms): what counts is how soon after
      // cancel() training stops.
      await sw.train({ epochs: 10000, patience: 0, valSplit: 0 }, () => { // the most rules().settings allows
        epochs += 1;
        if (epochs === 3) { out.cancelAt = performance.now(); sw.cancel(); }
      });
      out.cancel = 'not cancelled';
    } catch (e) {
      out.cancel = e.message;
      out.cancelMs = performance.now() - out.cancelAt;
    }
    out.cancelEpochs = epochs;
    out.afterCancel = await sw.predict(u8(held[0])); // the previous model is kept

    // 3. Bad input rejects with a message; the trainer keeps working.
    try { await sw.addImage('glass', u8([1, 2, 3])); } catch (e) { out.badImage = e.message; }
    try { await sw.importModel(u8([1, 2, 3])); } catch (e) { out.badModel = e.message; }
    out.countsAfterBad = await sw.counts();
    sw.terminate();

    // 4. A second trainer gets the weights from Cache Storage.
    out.statuses.push('--- second');
    const again = await Sortwise.create({ arch: 'efficientnet_lite0', device: 'cpu', onStatus });

    // 5. Device lost in the middle of training: the embeddings go to a WebGPU trainer as saved
    // embeddings (embedding on SwiftShader is slow), the device is destroyed at epoch 2, and the
    // same train() call finishes on the CPU.
    const saved = [];
    for (const g of glass.slice(0, 4)) saved.push(['glass', (await again.addImage('glass', u8(g))).embedding]);
    // glass[1] on its own against the same photo embedded in the batch above.
    out.batchDiff = Math.max(...saved[1][1].map((v, i) => Math.abs(v - batchEmbedding[i])));
    for (const m of metal.slice(0, 4)) saved.push(['metal', (await again.addImage('metal', u8(m))).embedding]);
    again.terminate();
    const gpu = await Sortwise.create({ arch: 'efficientnet_lite0', device: 'webgpu' });
    for (const [label, e] of saved) await gpu.addEmbedding(label, e);
    let lostAt = 0;
    const epochsSeen = [];
    const midReport = await gpu.train({ epochs: 6, patience: 0, valSplit: 0 }, (p) => {
      epochsSeen.push(p.epoch);
      if (p.epoch === 2 && !lostAt) {
        lostAt = p.epoch;
        gpu.debugLoseDevice();
      }
    });
    out.midTraining = { backend: gpu.backend, epochsRun: midReport.epochsRun, lostAt, epochsSeen, counts: await gpu.counts() };
    gpu.terminate();

    // 5b. A caller that keeps its images (`restore`, as the page's project does): the client keeps
    // none, ids are the engine's, and a call the loss interrupted rejects with EngineLost once the
    // images are back. A restore that fails leaves no half-loaded engine answering: the next call
    // restarts and restores again.
    const { EngineLost } = await import('/www/engine/client.js');
    const kept = [];
    let restores = 0;
    const own = await Sortwise.create({
      arch: 'efficientnet_lite0',
      device: 'webgpu',
      restore: async (engine) => {
        restores += 1;
        for (const k of kept) k.id = await engine.addEmbedding(k.label, k.embedding);
        if (restores === 1) throw new Error('a restore that fails once');
      },
    });
    for (const [label, bytes] of [['glass', glass[0]], ['metal', metal[0]]]) {
      const a = await own.addImage(label, u8(bytes));
      kept.push({ label, id: a.id, embedding: a.embedding });
    }
    const idsBefore = kept.map((k) => k.id);
    await own.debugLoseDevice();
    const settle = (p) => p.then((v) => ({ v }), (e) => ({ e: e.message, lost: e instanceof EngineLost, retry: e.retry ?? null }));
    const first = await settle(own.addImage('glass', u8(glass[1])));
    const second = await settle(own.counts());
    const third = await settle(own.counts());
    out.restore = { backend: own.backend, idsBefore, idsAfter: kept.map((k) => k.id), restores, first, second, third };
    own.terminate();

    // 6. Weights whose sha256 does not match the manifest are refused, cached or not.
    try {
      const bad = await Sortwise.create({ arch: 'efficientnet_lite0', device: 'cpu', sha256: '0'.repeat(64) });
      bad.terminate();
      out.tampered = 'accepted';
    } catch (e) {
      out.tampered = e.message;
    }
    return out;
  }, data);

  log(JSON.stringify({ ...r, predict: r.predict.label, afterCancel: r.afterCancel.label, statuses: r.statuses.filter((s) => !/^weights \d/.test(s)) }));
  const check = (c, m) => { if (!c) throw new Error(m); };
  check(r.first === 'webgpu' && r.firstPackage === 'pkg', `forced WebGPU: got ${r.first} from ${r.firstPackage}`);
  check(r.destroyed >= 1, 'no WebGPU device was captured to destroy');
  check(r.afterLoss.backend === 'cpu' && /WebGPU stopped working/.test(r.afterLoss.reason) && /kept/.test(r.afterLoss.reason),
    `after the device loss: ${JSON.stringify(r.afterLoss)}`);
  // The page is cross-origin isolated (scripts/serve.py): the CPU worker loads the threaded build
  // (with relaxed SIMD: Chromium has it).
  check(r.afterLoss.wasmPackage === 'pkg-cpu-relaxed' && r.afterLoss.threads >= 2, `after the device loss, the CPU build: ${JSON.stringify(r.afterLoss)}`);
  check(JSON.stringify(r.counts) === '[8,8]', `images kept across the switch: counts ${r.counts}`);
  check(r.rules.maxLabelChars === 100 && r.rules.maxAugment === 16 && r.rules.unsureLabel === 'unsure' && r.rules.epochs === 100 && r.rules.lr === null && r.rules.cached,
    `rules(): ${JSON.stringify(r.rules)}`);
  check(r.label === 'glass' && /empty/.test(r.badLabel), `validateLabel: '${r.label}', empty name: ${r.badLabel}`);
  check(r.dims[0] === 1280 && r.dims[1] === 1280, `embedding size ${r.dims}`);
  check(r.batch.length === 8 && r.batch.slice(0, 7).every((n) => n === 1280) && /image|format/.test(r.batch[7]),
    `addImages: one entry per photo, the bad one an error: ${JSON.stringify(r.batch)}`);
  check(r.batchDiff <= 1e-4, `a photo embedded in a batch vs alone: max |diff| ${r.batchDiff}`);
  const truth = ['glass', 'glass', 'glass', 'metal', 'metal', 'metal'];
  const right = r.held.filter((l, i) => l === truth[i]).length;
  check(right >= 4, `held-out photos: ${right}/6 right (${r.held}); chance is 3/6`);
  check(r.cancel === 'cancelled' && r.cancelEpochs >= 3 && r.cancelMs < 1000,
    `cancel: ${r.cancel} after ${r.cancelEpochs} epochs, ${r.cancelMs?.toFixed(0)} ms after cancel()`);
  check(r.afterCancel.label === r.predict.label && Math.abs(r.afterCancel.confidence - r.predict.confidence) < 1e-6, 'the model before cancel is kept');
  check(/image|format/.test(r.badImage ?? ''), `bad image: ${r.badImage}`);
  check(/safetensors|model|header|truncat/i.test(r.badModel ?? ''), `bad model: ${r.badModel}`);
  check(JSON.stringify(r.countsAfterBad) === '[8,8]', 'bad input changed nothing');
  check(r.midTraining.backend === 'cpu' && r.midTraining.epochsRun === 6 && r.midTraining.lostAt === 2,
    `device lost mid-training: ${JSON.stringify(r.midTraining)}`);
  check(JSON.stringify(r.midTraining.counts) === '[4,4]', 'images kept after a mid-training loss');
  const rs = r.restore;
  check(rs.backend === 'cpu' && rs.restores === 2 && /^WebGPU device lost \(.*\); the images could not be loaded back \(a restore that fails once\)$/.test(rs.first.e) && !rs.first.lost
    && rs.second.lost && rs.second.retry === false && JSON.stringify(rs.third.v) === '[1,1]',
  `restore: a failed restore, then a restart that restores the caller's 2 images: ${JSON.stringify(rs)}`);
  check(/^the images could not be loaded back \(a restore that fails once\); the trainer was restarted/.test(rs.second.e), `restore: the second call's message: ${rs.second.e}`);
  check(/damaged/.test(r.tampered), `tampered weights: ${r.tampered}`);
  const second = r.statuses.slice(r.statuses.indexOf('--- second'));
  check(second.includes('weights cached'), `second load did not use Cache Storage: ${second}`);
  log(`ok: held-out ${right}/6; WebGPU (SwiftShader) embed ${r.gpuEmbedMs.toFixed(0)} ms, after loss on CPU ${r.cpuEmbedMs.toFixed(0)} ms (includes the restart)`);
} catch (e) {
  failed = true;
  log('FAILED:', e.message);
} finally {
  await browser.close();
  server.stop();
}
process.exit(failed ? 1 : 0);
