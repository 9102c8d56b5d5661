// Language tags as browsers hand them to the page: whatever the process locale was, the page
// must pick English or Chinese and never throw (WebKitGTK under LANG=C reports `C`).
import test from 'node:test';
import assert from 'node:assert/strict';
import { langFromTag, defaultLang } from '../../www/i18n.js';

test('odd and POSIX-style tags map to a supported language or to none', () => {
  const cases = {
    C: null, POSIX: null, 'C.UTF-8': null, und: null, '': null, ' ': null,
    'zh_CN.UTF-8': 'zh-CN', 'zh-CN': 'zh-CN', 'zh-Hans-CN': 'zh-CN', zh: 'zh-CN', 'ZH_tw': 'zh-CN',
    'en_US.UTF-8': 'en', 'en-GB': 'en', en: 'en', 'de-DE': null, 'english': null, 'zhx': null,
    'sr@latin': null, 'zh_CN@pinyin': 'zh-CN',
  };
  for (const [tag, want] of Object.entries(cases)) assert.equal(langFromTag(tag), want, `tag ${JSON.stringify(tag)}`);
  assert.equal(langFromTag(undefined), null);
  assert.equal(langFromTag(42), null);
});

test('defaultLang takes the first supported tag and falls back to English', (t) => {
  const set = (languages, language) => {
    Object.defineProperty(globalThis, 'navigator', { value: { languages, language }, configurable: true });
  };
  t.after(() => { delete globalThis.navigator; });
  set(['C'], 'C');
  assert.equal(defaultLang(), 'en');
  set(['POSIX', 'zh_CN.UTF-8'], 'POSIX');
  assert.equal(defaultLang(), 'zh-CN');
  set([], '');
  assert.equal(defaultLang(), 'en');
  set(undefined, 'zh-TW');
  assert.equal(defaultLang(), 'zh-CN');
  Object.defineProperty(globalThis, 'navigator', { get() { throw new Error('no navigator'); }, configurable: true });
  assert.equal(defaultLang(), 'en');
});

test('the collect strings exist in both languages, and every key the collect page names is one', async () => {
  const { readFileSync } = await import('node:fs');
  const { COLLECT_STRINGS } = await import('../../www/collect/i18n-collect.js');
  const en = Object.keys(COLLECT_STRINGS.en).sort();
  assert.deepEqual(Object.keys(COLLECT_STRINGS['zh-CN']).sort(), en);
  for (const l of ['en', 'zh-CN']) {
    for (const [k, v] of Object.entries(COLLECT_STRINGS[l])) {
      const want = (COLLECT_STRINGS.en[k].match(/\{\w+\}/g) || []).sort();
      assert.deepEqual((v.match(/\{\w+\}/g) || []).sort(), want, `${l} ${k}: the same placeholders`);
    }
  }
  const { t } = await import('../../www/i18n.js');
  const html = readFileSync(new URL('../../www/collect.html', import.meta.url), 'utf8');
  for (const [, key] of html.matchAll(/data-i18n(?:-aria|-placeholder|-title)?="([^"]+)"/g)) {
    assert.notEqual(t(key), key, `collect.html names ${key}, which has no string`);
  }
});

test('seconds keep two decimals under a second, one above', async () => {
  const { formatSeconds } = await import('../../www/i18n.js');
  assert.equal(formatSeconds(0.043), '0.04');
  assert.equal(formatSeconds(0.999), '1.00');
  assert.equal(formatSeconds(12.34), '12.3');
  assert.equal(formatSeconds(undefined), '0.00');
});
