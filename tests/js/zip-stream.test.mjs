// A class-folder zip read as it is inflated (www/project/project-zip.js `openDatasetZip`, which
// zip-worker.js runs for a dropped zip): its photos come in batches of at most DATASET_BATCH
// photos or bytes, in the archive's order, each once, with the entries that do not inflate listed
// in the batch where they were met; the count and the photos outside any folder are known before
// anything is inflated. Read whole, it is the 'dataset' job (runJob) as before.
import test from 'node:test';
import assert from 'node:assert/strict';
import { zipSync } from '../../www/vendor/fflate.js';
import { DATASET_BATCH, openDatasetZip, runJob } from '../../www/project/project-zip.js';

/** `n` bytes that start with `tag` (so that a photo can be found in the archive) and do not repeat. */
function photo(tag, n) {
  const out = new Uint8Array(n);
  out.set(new TextEncoder().encode(tag));
  let x = tag.length * 2654435761 + n;
  for (let i = tag.length; i < n; i += 1) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x & 255; }
  return out;
}

/** A zip of class folders: `per` photos of `size` bytes in each of `classes`, one at the top, a README. */
function classZip({ classes = ['cats', 'dogs', 'owls'], per = 40, size = 1000 } = {}) {
  const files = {};
  for (const c of classes) for (let i = 0; i < per; i += 1) files[`set/${c}/${c}-${i}.jpg`] = photo(`${c}-${i}|`, size);
  files['top.jpg'] = photo('top|', size);
  files['set/README.txt'] = photo('readme|', 10);
  return zipSync(files, { level: 0 });
}

async function readAll(zip, batch) {
  const z = await openDatasetZip(new Blob([zip]), batch);
  const batches = [];
  for await (const b of z.batches) batches.push(b);
  return { z, batches };
}

test('a class-folder zip comes in batches of at most DATASET_BATCH photos, in order, each once', async () => {
  assert.deepEqual(DATASET_BATCH, { photos: 32, bytes: 16 * 1024 * 1024 });
  const zip = classZip();
  const { z, batches } = await readAll(zip);
  assert.equal(z.count, 121, 'the photos to be read, known before any is inflated');
  assert.equal(z.unlabelled, 1, 'top.jpg lies outside any folder');
  assert.deepEqual(z.skipped.map((s) => [s.name, s.reason]), [['set/README.txt', 'skipNotImage']]);
  assert.deepEqual(batches.map((b) => b.items.length), [32, 32, 32, 25]);
  const items = batches.flatMap((b) => b.items);
  const whole = await runJob('dataset', new Blob([zip]));
  assert.deepEqual(items.map((it) => [it.label, it.name]), whole.items.map((it) => [it.label, it.name]), 'the same photos as the zip read whole, in order');
  assert.deepEqual(items.map((it) => [...it.bytes]), whole.items.map((it) => [...it.bytes]));
  assert.equal(items.find((it) => it.name === 'top.jpg').label, null);
  assert.equal(items.find((it) => it.name === 'set/owls/owls-3.jpg').label, 'owls');
  // each photo its own buffer, so that the worker can transfer it and the page let it go alone
  for (const it of items) assert.equal(it.bytes.byteLength, it.bytes.buffer.byteLength);
});

test('a batch also ends at DATASET_BATCH bytes; an entry that does not inflate is listed in its batch', async () => {
  const zip = classZip({ classes: ['big'], per: 10, size: 100 * 1024 });
  // one byte of big-6.jpg changed: its CRC-32 no longer matches
  const at = Buffer.from(zip).indexOf('big-6|');
  zip[at + 10] ^= 0xff;
  const { z, batches } = await readAll(zip, { photos: 32, bytes: 250 * 1024 });
  assert.equal(z.count, 11);
  assert.deepEqual(batches.map((b) => b.items.length), [3, 3, 3, 1], 'three photos of 100 KB pass 250 KB');
  const skipped = batches.map((b) => b.skipped.map((s) => s.name));
  assert.deepEqual(skipped, [[], [], ['set/big/big-6.jpg'], []]);
  assert.match(batches[2].skipped[0].reason, /^msg:corrupt zip entry \(CRC-32/);
  assert.equal(batches.flatMap((b) => b.items).length, 10);
});

test('a zip refused whole is refused before any batch', async () => {
  await assert.rejects(openDatasetZip(new Blob([new Uint8Array(100)])), (e) => e.code === 'zipBroken');
});
