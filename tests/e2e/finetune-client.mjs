#!/usr/bin/env node
// The worker client with fine-tuning on (www/engine/client.js `finetune: true`) in headless
// Chromium: images added on WebGPU (SwiftShader here), the device destroyed, and the client's
// replay on the CPU re-embeds them from their thumbnails (a saved embedding cannot give back the
// stage input fine-tuning trains on). Fine-tuning the last stage then trains, predicts, and
// exports a version 2 model that another trainer loads to the same prediction; a trainer created
// without the option refuses finetuneLast and says how to enable it.
// Needs pkg/ (and pkg-cpu/ where the page is cross-origin isolated) and www/weights/.
//
//   node tests/e2e/finetune-client.mjs

import { launchChromium, openHarness, photos, serveRepo } from './serve.mjs';

const T0 = Date.now();
const log = (...a) => console.log(`[finetune-client ${((Date.now() - T0) / 1000).toFixed(1).padStart(6)}s]`, ...a);

const server = await serveRepo();
const browser = await launchChromium();
let failed = false;
try {
  const page = await openHarness(browser, server, log, () => { failed = true; });
  const data = { glass: photos('glass', 4), metal: photos('metal', 3), held: photos('metal', 1, 'val')[0] };

  const r = await page.evaluate(async ({ glass, metal, held }) => {
    const { Sortwise } = await import('/www/engine/client.js');
    const u8 = (a) => new Uint8Array(a);
    const out = {};
    const statuses = [];
    const sw = await Sortwise.create({ arch: 'efficientnet_lite0', device: 'webgpu', finetune: true, onStatus: (s) => statuses.push(s.phase) });
    out.first = { backend: sw.backend, finetune: sw.finetune };
    for (const g of glass.slice(0, 3)) await sw.addImage('glass', u8(g));
    for (const m of metal) await sw.addImage('metal', u8(m));
    out.destroyed = await sw.debugLoseDevice();
    await sw.addImage('glass', u8(glass[3])); // retried on the CPU after the replay
    out.afterLoss = {
      backend: sw.backend,
      finetune: sw.finetune,
      counts: await sw.counts(),
      replayed: statuses.filter((p) => p === 'replay').length,
    };

    const phases = new Set();
    let t = performance.now();
    const report = await sw.train({ epochs: 20, valSplit: 0, finetuneLast: true, finetuneEpochs: 3 }, (p) => { phases.add(p.phase); });
    out.trainMs = performance.now() - t;
    out.report = { finetune: report.finetune, phases: [...phases] };
    out.predict = await sw.predict(u8(held));
    const file = await sw.exportModel();
    const n = Number(new DataView(file.buffer, file.byteOffset, 8).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n)));
    out.version = header.__metadata__.version;
    out.stageTensors = Object.keys(header).filter((k) => k.startsWith('stage.')).length;
    sw.terminate();

    // A trainer without the option: predicts with the imported stage, refuses to fine-tune.
    const plain = await Sortwise.create({ arch: 'efficientnet_lite0', device: 'cpu' });
    await plain.importModel(file);
    out.loaded = await plain.predict(u8(held));
    await plain.addImage('glass', u8(glass[0]));
    await plain.addImage('metal', u8(metal[0]));
    try {
      await plain.train({ finetuneLast: true });
      out.noOption = 'trained';
    } catch (e) {
      out.noOption = e.message;
    }
    plain.terminate();
    return out;
  }, data);

  log(JSON.stringify({ ...r, predict: [r.predict.label, r.predict.confidence], loaded: [r.loaded.label, r.loaded.confidence] }));
  const check = (c, m) => { if (!c) throw new Error(m); };
  check(r.first.backend === 'webgpu' && r.first.finetune, `forced WebGPU with finetune: ${JSON.stringify(r.first)}`);
  check(r.destroyed >= 1, 'no WebGPU device was captured to destroy');
  check(r.afterLoss.backend === 'cpu' && r.afterLoss.finetune && JSON.stringify(r.afterLoss.counts) === '[4,3]',
    `after the device loss: ${JSON.stringify(r.afterLoss)}`);
  check(r.afterLoss.replayed === 6, `the six images were replayed from their thumbnails: ${r.afterLoss.replayed}`);
  const ft = r.report.finetune;
  check(ft && ft.epochsRun === 3 && Number.isFinite(ft.distance), `fine-tuning stats: ${JSON.stringify(ft)}`);
  check(['features', 'train', 'finetune'].every((p) => r.report.phases.includes(p)), `progress phases: ${r.report.phases}`);
  check(r.version === '2' && r.stageTensors > 0, `exported model: version ${r.version}, ${r.stageTensors} stage tensors`);
  check(r.loaded.label === r.predict.label && Math.abs(r.loaded.confidence - r.predict.confidence) < 1e-4,
    `the loaded fine-tuned model predicts ${r.loaded.label} ${r.loaded.confidence}, the trainer ${r.predict.label} ${r.predict.confidence}`);
  check(/finetune: true/.test(r.noOption), `finetuneLast without the create option: ${r.noOption}`);
  log(`ok: fine-tuned after a device loss in ${(r.trainMs / 1000).toFixed(1)} s (best fine-tuning epoch ${ft.bestEpoch}, distance ${ft.distance.toFixed(4)})`);
} catch (e) {
  failed = true;
  log('FAILED:', e.message);
} finally {
  await browser.close().catch(() => {});
  server.stop();
}
process.exit(failed ? 1 : 0);
