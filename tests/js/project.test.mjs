// The page's project state (www/project/project.js) without a browser: it touches no DOM, so it runs
// here against a stand-in engine. What the views and the autosave rely on: the engine's rules as
// the defaults, the engine's name check, photos added in batches with the events announcing
// them, and one queue.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Project, PAGE_DEFAULTS } from '../../www/project/project.js';
import { restoreInto } from '../../www/project/project-engine.js';
import { EngineLost } from '../../www/engine/errors.js';
import { RULES, validateLabel } from '../e2e/fake-client.js';

// The engine's contract (engine/client.js): validateLabel trims or rejects with its reason (the
// fake engine's, which follows src/data/dataset.rs).
function fakeEngine() {
  let next = 1;
  const calls = [];
  return {
    calls,
    addBatch: 8,
    async validateLabel(name) { return validateLabel(name); },
    async addImages(label, list) {
      calls.push(['addImages', label, list.length]);
      return list.map((b) => (b[0] === 0 ? { error: 'not an image' } : { id: next++, thumbnail: new Uint8Array([1]), embedding: new Float32Array(4) }));
    },
    async removeImage(id) { calls.push(['removeImage', id]); return true; },
    async removeClass(label) { calls.push(['removeClass', label]); return 1; },
    async renameClass(from, to) { calls.push(['renameClass', from, to]); },
  };
}

function project() {
  const p = new Project();
  p.sw = fakeEngine();
  p.rules = RULES;
  const events = [];
  for (const type of ['classes', 'stored', 'dropped', 'image-added', 'image-removed', 'skipped', 'save', 'stale', 'renamed']) {
    p.addEventListener(type, (ev) => events.push([type, ev.detail]));
  }
  return { p, events };
}

const photo = (label, name, ok = true) => ({ label, name, bytes: new Uint8Array([ok ? 1 : 0, 2, 3]) });

test('training settings default to the engine rules, the page keeps only its own two', () => {
  const { p } = project();
  const s = p.withDefaults({ epochs: 7 });
  assert.equal(s.epochs, 7);
  assert.equal(s.lr, null);
  assert.equal(s.patience, 20);
  assert.equal(s.refit, true);
  assert.equal(s.threshold, PAGE_DEFAULTS.threshold);
  assert.equal(s.augment, 0);
  assert.equal('batchSize' in s, false, 'only the settings the page shows');
});

test('class names: the engine decides, the page translates its reasons and refuses duplicates', async () => {
  const { p } = project();
  assert.equal(await p.addClass('  glass '), 'glass');
  await assert.rejects(p.addClass('   '), /cannot be empty/);
  await assert.rejects(p.addClass('x'.repeat(101)), /at most 100 characters/);
  await assert.rejects(p.addClass('a\u0007b'), /control characters/);
  await assert.rejects(p.addClass('glass'), /already a class/);
  assert.equal(await p.addClass('x'.repeat(100)), 'x'.repeat(100));
});

test('a class\'s photos go to the engine in batches of its addBatch', async () => {
  const { p } = project();
  p.sw.addBatch = 16;
  await p.addImages(Array.from({ length: 20 }, (_, i) => photo('a', `${i}.jpg`)));
  assert.deepEqual(p.sw.calls, [['addImages', 'a', 16], ['addImages', 'a', 4]]);
});

test('photos go to the engine in full batches, across classes; refused ones are listed, the rest announced', async () => {
  const { p, events } = project();
  const items = [...Array.from({ length: 10 }, (_, i) => photo('metal', `m${i}.jpg`)), photo('glass', 'bad.jpg', false), photo('glass', 'g.jpg'),
    { label: 'glass', name: 'empty.jpg', bytes: new Uint8Array() }, { label: null, name: 'loose.jpg', bytes: new Uint8Array([1]) }];
  await p.addImages(items);
  // the second batch spans two classes: one name a photo
  assert.deepEqual(p.sw.calls, [['addImages', 'metal', 8], ['addImages', ['metal', 'metal', 'glass', 'glass'], 4]]);
  assert.deepEqual(p.classes.map((c) => [c.label, c.keys.length]), [['metal', 10], ['glass', 1]]);
  const skipped = events.filter(([type]) => type === 'skipped').map(([, d]) => [d.name, d.reason]);
  // listed as they are met; a refused decode once its batch went to the engine
  assert.deepEqual(skipped, [['empty.jpg', 'skipEmpty'], ['loose.jpg', 'skipNoClass'], ['bad.jpg', 'msg:not an image']]);
  assert.equal(events.filter(([type]) => type === 'stored').length, 11);
  assert.equal(events.filter(([type]) => type === 'image-added').length, 11);
  assert.equal(events.at(-1)[0], 'save');
  assert.equal(p.addJob.running, false);
});

test('remove, rename and delete go through the engine and keep the page in step', async () => {
  const { p, events } = project();
  await p.addImages([photo('a', '1.jpg'), photo('a', '2.jpg'), photo('b', '3.jpg')]);
  const [k1] = p.classOf('a').keys;
  await p.removeImage(k1);
  assert.equal(await p.renameClass('a', 'c'), true);
  await p.deleteClass('b');
  assert.deepEqual(p.sw.calls, [['addImages', ['a', 'a', 'b'], 3], ['removeImage', 1], ['renameClass', 'a', 'c'], ['removeClass', 'b']]);
  assert.deepEqual(p.classes.map((c) => [c.label, c.keys.length]), [['c', 1]]);
  assert.equal(p.images.get(p.classOf('c').keys[0]).label, 'c');
  assert.ok(events.some(([type, d]) => type === 'renamed' && d.from === 'a' && d.to === 'c'));
  assert.deepEqual(events.filter(([type]) => type === 'dropped').map(([, d]) => d.key).sort(), [k1, 3]);
  await p.idle();
});

test('class folders replace a fresh page\'s empty classes, with an undo that brings them back', async () => {
  const { p } = project();
  p.classes = [{ label: 'x', keys: [] }, { label: 'y', keys: [] }];
  p.activeLabel = 'y';
  const undo = [];
  p.addEventListener('intake-undo', (ev) => undo.push(ev.detail.prev));
  await p.addClassFolders([photo('cats', 'c.jpg'), photo('dogs', 'd.jpg')]);
  assert.deepEqual(p.classes.map((c) => c.label), ['cats', 'dogs']);
  assert.deepEqual(undo.at(-1), { labels: ['x', 'y'], active: 'y' });
  await p.undoIntake();
  assert.deepEqual(p.classes.map((c) => c.label), ['x', 'y']);
  assert.equal(p.activeLabel, 'y');
  assert.equal(p.images.size, 0);
  assert.equal(undo.at(-1), null);
});

test('a stream of photo batches (a zip read as it is inflated): embedded as it comes, each photo let go once embedded', async () => {
  const { p, events } = project();
  p.saveEveryMs = 0; // a save asked for after every engine batch
  const chunks = [];
  const held = []; // photos met so far whose bytes are still held, each time the next chunk is asked for
  let k = 0;
  async function* stream() {
    for (let c = 0; c < 4; c += 1) {
      held.push(chunks.flat().filter((it) => it.bytes).length);
      const chunk = Array.from({ length: 10 }, () => photo(k % 25 < 20 ? 'metal' : 'glass', `${k++}.jpg`));
      chunks.push(chunk);
      yield chunk;
    }
  }
  const progress = [];
  p.addEventListener('embed-progress', (ev) => progress.push([ev.detail.done, ev.detail.total]));
  // 50 announced, 40 come (10 did not inflate, say): the bar's total follows
  await p.addImages(stream(), { count: 50 });
  assert.deepEqual(p.classes.map((c) => [c.label, c.keys.length]), [['metal', 35], ['glass', 5]]);
  // engine batches stay full across the chunks' edges and the classes' (one name a photo there)
  const m = (n) => Array(n).fill('metal');
  const g = (n) => Array(n).fill('glass');
  assert.deepEqual(p.sw.calls.map((c) => c.slice(1)), [['metal', 8], ['metal', 8], [[...m(4), ...g(4)], 8], [[...g(1), ...m(7)], 8], ['metal', 8]]);
  // when a chunk is asked for, the photos before it are embedded and let go, but for the batch in
  // the engine and the one being filled
  assert.ok(held.every((n) => n < 16), `photos still held: ${held}`);
  assert.ok(chunks.flat().every((it) => it.bytes === null));
  assert.equal(progress[0][1], 50);
  assert.deepEqual(progress.at(-2), [40, 40]);
  assert.equal(p.addJob.running, false);
  // a save asked for during the add (here after each engine batch), not only at the end
  const kinds = events.map(([type]) => type);
  assert.ok(kinds.indexOf('save') < kinds.lastIndexOf('stored'), 'a save before the last photo was stored');
  assert.equal(kinds.at(-1), 'save');
});

test('a short add asks for one save, at its end', async () => {
  const { p, events } = project();
  await p.addImages(Array.from({ length: 20 }, (_, i) => photo('a', `${i}.jpg`)));
  assert.equal(events.filter(([type]) => type === 'save').length, 1);
  assert.equal(events.at(-1)[0], 'save');
});

test('a labelled stream replaces a fresh page\'s empty classes, as class folders do', async () => {
  const { p } = project();
  p.classes = [{ label: 'x', keys: [] }];
  async function* stream() { yield [photo('cats', 'c.jpg')]; yield [photo('dogs', 'd.jpg')]; }
  await p.addClassFolders(stream(), { count: 2, labelled: true });
  assert.deepEqual(p.classes.map((c) => c.label), ['cats', 'dogs']);
  assert.deepEqual(p.intakeUndo, { labels: ['x'], active: null });
  // one with photos outside any folder lands beside the classes
  async function* loose() { yield [photo('cats', 'c2.jpg'), { label: null, name: 'top.jpg', bytes: new Uint8Array([1]) }]; }
  await p.addClassFolders(loose(), { count: 2, labelled: false });
  assert.deepEqual(p.classes.map((c) => [c.label, c.keys.length]), [['cats', 2], ['dogs', 1]]);
});

test('the next batch goes to the engine before the last one\'s results are in; the limit counts both', async () => {
  const { p } = project();
  const calls = [];
  p.sw.addImages = (label, list) => new Promise((resolve) => {
    calls.push({ label, n: list.length, resolve: () => resolve(list.map((_, i) => ({ id: calls.length * 100 + i, thumbnail: new Uint8Array([1]), embedding: new Float32Array(4) }))) });
  });
  const tick = () => new Promise((r) => setTimeout(r, 0));
  // 5,000 photos at most: 4,985 there, 20 dropped -> 15 added, 5 skipped
  for (let i = 0; i < 4985; i += 1) p.images.set(-1 - i, {});
  const skipped = [];
  p.addEventListener('skipped', (ev) => skipped.push(ev.detail.reason));
  const done = p.addImages(Array.from({ length: 20 }, (_, i) => photo('a', `${i}.jpg`)));
  await tick();
  assert.equal(calls.length, 2, 'the second batch is handed over while the first is in the engine');
  assert.equal(p.images.size, 4985);
  calls[0].resolve();
  await tick();
  assert.equal(p.images.size, 4993);
  calls[1].resolve();
  await done;
  assert.deepEqual(calls.map((c) => c.n), [8, 7]);
  assert.equal(p.images.size, 5000);
  assert.deepEqual(skipped, Array(5).fill('skipTooMany'));
});

// A lost device, as engine/client.js reports it with `restore`: the worker restarted empty, the
// project (the page's one registry of photos) loads its photos and model back, then the call that
// failed rejects with EngineLost and the project makes it once more, with the ids it has now.
test('a lost device: the project loads its photos and model back once and remakes the call with the new ids', async () => {
  const { p, events } = project();
  await p.addImages([photo('a', '1.jpg'), photo('a', '2.jpg'), photo('b', '3.jpg')]);
  p.model = new Uint8Array([7, 7]);
  const eventsBefore = events.length;
  const [, k2] = p.classOf('a').keys;
  const before = [...p.images.values()].map((r) => [r.key, r.id]);
  const fresh = { finetune: false, loaded: [], next: 100 };
  fresh.addEmbedding = async (label, emb) => { fresh.loaded.push([label, emb.length]); return fresh.next++; };
  fresh.importModel = async (bytes) => { fresh.model = Array.from(bytes); return { labels: ['a', 'b'] }; };
  const sw = p.sw;
  let losses = 0;
  const remove = sw.removeImage;
  sw.removeImage = async (id) => {
    if (losses === 0) {
      losses += 1;
      await restoreInto(p, sw, fresh);
      throw new EngineLost('WebGPU device lost (destroyed)', true);
    }
    return remove(id);
  };
  await p.removeImage(k2);
  assert.equal(losses, 1);
  assert.deepEqual(fresh.loaded, [['a', 4], ['a', 4], ['b', 4]], 'every photo, class by class, by its embedding');
  assert.deepEqual(fresh.model, [7, 7], 'and the model');
  assert.deepEqual(before.map(([k]) => [k, p.images.get(k)?.id ?? 'removed']), [[1, 100], [k2, 'removed'], [3, 102]]);
  assert.deepEqual(sw.calls.at(-1), ['removeImage', 101], 'the call made again with the id the new engine gave');
  assert.deepEqual([...p.idToKey], [[100, 1], [102, 3]]);
  // engine ids are not saved: the restore marks no record changed, so the saved project is only
  // what the remade call changed (the one photo removed)
  assert.deepEqual(events.slice(eventsBefore).map(([type, d]) => `${type}${d.key != null ? ` ${d.key}` : ''}`), [`dropped ${k2}`, 'stale', `image-removed ${k2}`, 'save']);

  // a trap (retry false) is not remade: it would trap again; the photo stays
  const k3 = p.classOf('b').keys[0];
  const failures = [];
  p.addEventListener('error', (ev) => failures.push(ev.detail.error.message));
  sw.removeImage = async () => { throw new EngineLost('RuntimeError: unreachable; the trainer was restarted and your images are kept', false); };
  await p.removeImage(k3);
  assert.deepEqual(failures, ['RuntimeError: unreachable; the trainer was restarted and your images are kept']);
  assert.equal(p.images.has(k3), true);

  // an engine still being filled for a replacement is not the project's: its restart fails the load
  await assert.rejects(restoreInto(p, fakeEngine(), fresh), /the engine being prepared stopped/);
});
