// The page's project state (www/project.js) without a browser: it touches no DOM, so it runs
// here against a stand-in engine. What the views and the autosave rely on: the engine's rules as
// the defaults, the engine's name check, photos added in batches with the events announcing
// them, and one queue.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Project, PAGE_DEFAULTS } from '../../www/project.js';
import { RULES, validateLabel } from '../e2e/fake-client.js';

// The engine's contract (engine/client.js): validateLabel trims or rejects with its reason (the
// fake engine's, which follows src/dataset.rs).
function fakeEngine() {
  let next = 1;
  const calls = [];
  return {
    calls,
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

test('photos go to the engine in batches of one class; refused ones are listed, the rest announced', async () => {
  const { p, events } = project();
  const items = [...Array.from({ length: 10 }, (_, i) => photo('metal', `m${i}.jpg`)), photo('glass', 'bad.jpg', false), photo('glass', 'g.jpg'),
    { label: 'glass', name: 'empty.jpg', bytes: new Uint8Array() }, { label: null, name: 'loose.jpg', bytes: new Uint8Array([1]) }];
  await p.addImages(items);
  assert.deepEqual(p.sw.calls, [['addImages', 'metal', 8], ['addImages', 'metal', 2], ['addImages', 'glass', 2]]);
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
  assert.deepEqual(p.sw.calls.slice(2), [['removeImage', 1], ['renameClass', 'a', 'c'], ['removeClass', 'b']]);
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
