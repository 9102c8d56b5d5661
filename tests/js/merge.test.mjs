// Merging phones' contributions into the project (www/collect/merge.js), against the stand-in engine of
// project.test.mjs: classes matched by the engine's name rule, new classes offered and never
// created silently, corrections queued even for a class the project has, the per-contributor
// cap over several files and over merges that overlap, undo by batch, removal, the roster.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Project } from '../../www/project/project.js';
import { Merger } from '../../www/collect/merge.js';
import { CONTRIBUTION_LIMITS } from '../../www/collect/contribution.js';
import { RULES, validateLabel } from '../e2e/fake-client.js';

function setup(labels = ['glass', 'paper']) {
  let next = 1;
  const p = new Project();
  p.rules = RULES;
  p.sw = {
    async validateLabel(name) { return validateLabel(name); },
    async addImages(label, list) {
      await new Promise((r) => setTimeout(r, 1)); // an engine takes its time: merges overlap
      return list.map(() => ({ id: next++, thumbnail: new Uint8Array([1]), embedding: new Float32Array(4) }));
    },
    async removeImage() { return true; },
  };
  p.classes = labels.map((label) => ({ label, keys: [] }));
  const skipped = [];
  p.addEventListener('skipped', (ev) => skipped.push(ev.detail));
  return { p, m: new Merger(p), skipped };
}

const c = (id, name, photos, kind = 'photos') => ({
  kind, session: 'ABCDEF', contributor: { id, name },
  photos: photos.map(([label, n = 1]) => Array.from({ length: n }, (_, i) => ({ label, name: `${label}-${i}.jpg`, bytes: new Uint8Array([1, 2, i]) }))).flat(),
});
const counts = (p) => Object.fromEntries(p.classes.map((k) => [k.label, k.keys.length]));

test('photos merge into the classes of the same name (the engine trims), a new class waits as an offer', async () => {
  const { p, m } = setup();
  const r = await m.merge(c('anaaaaaa01', 'Ana', [['glass', 2], ['  paper ', 1], ['plastic', 3]]));
  assert.deepEqual([r.added, r.offered], [3, 3]);
  assert.deepEqual(counts(p), { glass: 2, paper: 1 });
  assert.deepEqual(m.offers.map((o) => [o.label, o.photos.length, o.correction]), [['plastic', 3, false]]);
  for (const rec of p.images.values()) assert.deepEqual([rec.from.id, rec.from.name, rec.from.batch], ['anaaaaaa01', 'Ana', r.batch]);
  await m.acceptOffer(m.offers[0].id);
  assert.deepEqual(counts(p), { glass: 2, paper: 1, plastic: 3 });
  assert.equal(m.offers.length, 0);
  const roster = m.roster();
  assert.deepEqual(roster.map((x) => [x.name, x.total, x.perClass]), [['Ana', 6, { glass: 2, paper: 1, plastic: 3 }]]);
  assert.equal(m.merges().length, 2, 'the merge and the accepted offer, each undoable');
});

test('corrections wait for review even for a class the project has; discard drops them', async () => {
  const { p, m } = setup();
  const r = await m.merge(c('reseeeee01', 'Resident', [['glass', 2]], 'corrections'));
  assert.deepEqual([r.added, r.offered], [0, 2]);
  assert.deepEqual(counts(p), { glass: 0, paper: 0 });
  assert.equal(m.offers[0].correction, true);
  m.discardOffer(m.offers[0].id);
  assert.equal(m.offers.length, 0);
  assert.equal(p.images.size, 0);
});

test('undo removes one merge exactly; removing a contributor removes all of theirs', async () => {
  const { p, m } = setup();
  const a = await m.merge(c('anaaaaaa01', 'Ana', [['glass', 2]]));
  await m.merge(c('bobbbbbb01', 'Bob', [['glass', 1], ['paper', 2]]));
  await m.merge(c('anaaaaaa01', 'Ana', [['paper', 1]]));
  assert.deepEqual(counts(p), { glass: 3, paper: 3 });
  await m.undo(a.batch);
  assert.deepEqual(counts(p), { glass: 1, paper: 3 });
  assert.deepEqual(m.roster().map((x) => [x.name, x.total]), [['Bob', 3], ['Ana', 1]]);
  await m.removeContributor('bobbbbbb01');
  assert.deepEqual(counts(p), { glass: 0, paper: 1 });
  assert.deepEqual(m.roster().map((x) => x.name), ['Ana']);
});

test('one contributor adds at most maxPhotos, over several files and merges that overlap', async () => {
  const { p, m, skipped } = setup();
  const max = CONTRIBUTION_LIMITS.maxPhotos;
  await m.merge(c('anaaaaaa01', 'Ana', [['glass', max - 10]]));
  // two live batches at once: 8 + 8 photos for the last 10 places
  const batch = 'livebatch';
  const rs = await Promise.all([
    m.merge(c('anaaaaaa01', 'Ana', [['paper', 8]]), { batch }),
    m.merge(c('anaaaaaa01', 'Ana', [['paper', 8]]), { batch }),
  ]);
  assert.equal(rs[0].added + rs[1].added, 10, JSON.stringify(rs));
  assert.equal(m.roster()[0].total, max);
  assert.equal(skipped.filter((s) => s.reason === 'contribCap').length, 6);
  // another contributor is not held by Ana's cap
  assert.equal((await m.merge(c('bobbbbbb01', 'Bob', [['glass', 3]]))).added, 3);
  assert.equal(m.merges().find((x) => x.batch === batch).count, 10, 'a live connection is one merge');
});

test('a class name the engine refuses is skipped, never offered', async () => {
  const { p, m, skipped } = setup();
  const r = await m.merge(c('anaaaaaa01', 'Ana', [['glass', 1], ['bad\u202ename', 2]]));
  assert.deepEqual([r.added, r.offered, r.refused], [1, 0, 2]);
  assert.equal(skipped.filter((s) => s.reason === 'contribBadClass').length, 2);
  assert.equal(p.images.size, 1);
});
