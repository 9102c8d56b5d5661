// The package's example page (`./run dist` puts it in dist/example/): the worker client imported
// with a plain module script, no bundler. In an app that installed the package this line reads
// `import { Sortwise } from 'sortwise'` (with a bundler or an import map); here the page sits in
// the package folder itself. sortwise-example.ts is the typed version of the same calls.
import { Sortwise } from '../engine/client.js';

const $ = (id) => document.getElementById(id);
const log = (line) => { $('log').textContent += `${line}\n`; };
const bytes = async (file) => new Uint8Array(await file.arrayBuffer());

const sw = await Sortwise.create({
  device: 'auto',
  onStatus: (s) => { if (s.phase === 'backend') log(`backend: ${s.backend} (${s.reason})`); },
});
log(`ready: ${sw.arch} on ${sw.backend}, ${sw.threads} thread(s), ${sw.wasmPackage}`);
document.body.dataset.ready = '1';

let added = 0;
for (const side of ['a', 'b']) {
  $(`photos-${side}`).addEventListener('change', async (ev) => {
    const label = $(`name-${side}`).value.trim();
    const results = await sw.addImages(label, await Promise.all([...ev.target.files].map(bytes)));
    const ok = results.filter((r) => !('error' in r)).length;
    added += ok;
    log(`${label}: ${ok} added${results.length > ok ? `, ${results.length - ok} skipped` : ''}`);
    $('train').disabled = (await sw.counts()).filter((n) => n > 0).length < 2;
  });
}

$('train').addEventListener('click', async () => {
  $('train').disabled = true;
  const report = await sw.train({ epochs: 40, valSplit: 0 }, (p) => { $('train').textContent = `epoch ${p.epoch}/${p.epochs}`; });
  log(`trained on ${report.trainSize} photos, ${report.epochsRun} epochs, ${report.seconds.toFixed(1)} s`);
  $('train').textContent = 'Train';
  $('train').disabled = false;
  $('test').disabled = false;
  document.body.dataset.trained = String(added);
});

$('test').addEventListener('change', async (ev) => {
  const r = await sw.predict(await bytes(ev.target.files[0]), { threshold: 0.5 });
  log(`prediction: ${r.label} (${(r.confidence * 100).toFixed(0)}%)`);
  document.body.dataset.prediction = r.label;
});
