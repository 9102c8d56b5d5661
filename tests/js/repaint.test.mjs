// www/ui/repaint.js: the view updates that wait while photos stream in run together, each key
// once with its latest update, within half a second or at once on flush; one failing update
// does not keep the others from running.
import test from 'node:test';
import assert from 'node:assert/strict';
import { flush, soon } from '../../www/ui/repaint.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('updates of one key collapse to the latest, all keys land in one task', async () => {
  const ran = [];
  const t0 = Date.now();
  for (let i = 1; i <= 20; i += 1) soon('progress', () => ran.push(['progress', i, Date.now() - t0]));
  soon('card glass', () => ran.push(['card glass', 1, Date.now() - t0]));
  soon('card paper', () => ran.push(['card paper', 1, Date.now() - t0]));
  await sleep(100);
  assert.equal(ran.length, 0, 'nothing before the interval');
  await sleep(600);
  assert.deepEqual(ran.map(([k, i]) => [k, i]), [['progress', 20], ['card glass', 1], ['card paper', 1]]);
  const [, , at] = ran[0];
  assert.ok(at >= 450 && at < 700, `ran after ${at} ms`);
  // one task: no timer of another key ran between them (Date.now() may tick once meanwhile)
  assert.ok(ran.every(([, , t]) => t - at <= 1), 'in the same task');
});

test('flush runs what waits at once, and nothing runs twice', async () => {
  let n = 0;
  soon('save-status', () => { n += 1; });
  flush();
  assert.equal(n, 1);
  await sleep(600);
  assert.equal(n, 1, 'the timer was cleared');
  flush();
  assert.equal(n, 1, 'nothing left to run');
});

test('one failing update leaves the others run', () => {
  const errors = [];
  const original = console.error;
  console.error = (e) => errors.push(e);
  let ok = false;
  try {
    soon('broken', () => { throw new Error('a view failed'); });
    soon('fine', () => { ok = true; });
    flush();
  } finally {
    console.error = original;
  }
  assert.equal(ok, true);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].message, 'a view failed');
});
