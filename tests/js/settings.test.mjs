// The one check of settings (www/project/settings.js) against the engine's ranges (www/engine/rules.js,
// generated from src/ and checked by `cargo test --lib rules_js`).
import test from 'node:test';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { cleanSettings, defaultOf, fromForm, PAGE_DEFAULTS } from '../../www/project/settings.js';
import { RULES } from '../../www/engine/rules.js';

const setting = (key) => RULES.settings.find((s) => s.key === key);

test('every setting the page offers has the engine\'s range and a default', () => {
  for (const key of ['epochs', 'lr', 'optimizer', 'valSplit', 'balance', 'labelSmoothing', 'seed', 'patience', 'finetuneLast', 'l2sp', 'refit', 'augment', 'threshold']) {
    const s = setting(key);
    assert.ok(s, key);
    assert.ok(key in RULES.train || key in PAGE_DEFAULTS, key);
    // each default is itself in range
    assert.deepEqual(cleanSettings({ [key]: defaultOf(key) }).reset, [], key);
  }
  assert.equal(setting('augment').max, RULES.maxAugment);
  // the engine's bounds, not the page's old ones: patience 0 means "never stop early"
  assert.equal(setting('patience').min, 0);
  assert.equal(setting('valSplit').max, 0.9);
});

test('the issue\'s augment 1.5 and friends are reset to defaults, valid values kept', () => {
  const { settings, reset, dropped } = cleanSettings({ augment: 1.5, epochs: 7, lr: null, valSplit: 0.95, optimizer: 'sgd', balance: 'most', refit: 'yes', seed: -1 });
  assert.deepEqual(settings, { augment: 0, epochs: 7, lr: null, valSplit: 0.2, optimizer: 'sgd', balance: 'auto', refit: true, seed: 0 });
  assert.deepEqual(reset.map((r) => r.key), ['augment', 'valSplit', 'balance', 'refit', 'seed']);
  assert.deepEqual(reset[0], { key: 'augment', value: '1.5', default: '0' });
  assert.deepEqual(dropped, []);
});

test('unknown keys are dropped, odd shapes give no settings, nothing throws', () => {
  const raw = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": 1, "batchsize": 9, "epochs": 3}');
  const { settings, dropped } = cleanSettings(raw);
  assert.deepEqual(settings, { epochs: 3 });
  assert.deepEqual(dropped.sort(), ['__proto__', 'batchsize', 'constructor']);
  assert.equal({}.polluted, undefined);
  for (const raw2 of [null, undefined, 5, 'x', [1, 2], true]) assert.deepEqual(cleanSettings(raw2), { settings: {}, reset: [], dropped: [] });
  const long = cleanSettings({ epochs: 'x'.repeat(10000) }).reset[0].value;
  assert.ok(long.length <= 40, long);
});

test('a typed number is clamped and rounded to the engine\'s range', () => {
  assert.equal(fromForm('epochs', '0'), 1);
  assert.equal(fromForm('epochs', '12.6'), 13);
  assert.equal(fromForm('augment', '99'), RULES.maxAugment);
  assert.equal(fromForm('valSplit', '0.95'), 0.9);
  assert.equal(fromForm('patience', '0'), 0);
  assert.equal(fromForm('lr', ''), null);
  assert.equal(fromForm('lr', 'abc'), null);
});

// The Settings form (index.html, ui/training.js) holds no copy of a bound: its number fields get
// min and max from the engine's rules when rendered, and its choices are the engine's.
test('the settings form copies no bound: number fields without min/max, choices equal to the engine\'s', async () => {
  const html = readFileSync(new URL('../../www/index.html', import.meta.url), 'utf8');
  const training = readFileSync(new URL('../../www/ui/training.js', import.meta.url), 'utf8');
  const numbers = JSON.parse(training.match(/const NUMBERS = (\[[^\]]*\])/)[1].replaceAll("'", '"'));
  const byKey = new Map(RULES.settings.map((s) => [s.key, s]));
  for (const key of numbers) {
    assert.ok(byKey.has(key), `${key} is a setting of the engine's`);
    const tag = html.match(new RegExp(`<input id="set-${key}"[^>]*>`))?.[0];
    assert.ok(tag, `index.html has #set-${key}`);
    assert.doesNotMatch(tag, / (min|max)=/, `#set-${key} takes its bounds from rules(), not index.html`);
  }
  for (const key of ['optimizer', 'balance']) {
    const select = html.match(new RegExp(`<select id="set-${key}">([\\s\\S]*?)</select>`))[1];
    const values = [...select.matchAll(/value="([^"]+)"/g)].map((m) => m[1]).sort();
    assert.deepEqual(values, [...byKey.get(key).choices].sort(), `#set-${key}'s options are the engine's choices`);
  }
});
