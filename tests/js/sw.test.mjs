// www/sw.js's fetch handler, run in a stand-in service worker scope (node:vm): which responses it
// re-wraps with the page's headers. A re-wrapped response counts as the page's own origin, so
// only a same-origin response that was not redirected may be (issue 37).
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const SOURCE = readFileSync(new URL('../../www/sw.js', import.meta.url), 'utf8');
const ORIGIN = 'https://school.example';

// A Response as fetch() gives it: `type` and `redirected` are read-only on real ones.
function fetched(body, { type = 'basic', redirected = false, url = `${ORIGIN}/www/app.js`, status = 200 } = {}) {
  const res = new Response(body, { status, headers: { 'content-type': 'text/javascript' } });
  Object.defineProperties(res, { type: { value: type }, redirected: { value: redirected }, url: { value: url } });
  return res;
}

function worker(answer) {
  const listeners = {};
  const cached = [];
  const scope = {
    self: null,
    location: new URL(`${ORIGIN}/www/sw.js`),
    registration: { scope: `${ORIGIN}/www/` },
    caches: { open: async () => ({ put: async (req) => { cached.push(req.url ?? String(req)); }, match: async () => undefined }) },
    fetch: async () => answer(),
    Response, Headers, URL, Request,
    addEventListener: (type, fn) => { listeners[type] = fn; },
  };
  scope.self = scope;
  vm.runInNewContext(SOURCE, scope);
  return {
    cached,
    async get(path, mode = 'same-origin') {
      let out;
      listeners.fetch({ request: { method: 'GET', url: `${ORIGIN}${path}`, mode }, respondWith: (p) => { out = p; } });
      return out;
    },
  };
}

test('a same-origin response gets the isolation and security headers, and is cached', async () => {
  const w = worker(() => fetched('ok'));
  const res = await w.get('/www/app.js');
  assert.equal(res.headers.get('cross-origin-embedder-policy'), 'require-corp');
  assert.equal(res.headers.get('cross-origin-opener-policy'), 'same-origin');
  assert.match(res.headers.get('content-security-policy'), /frame-ancestors 'none'/);
  assert.equal(await res.text(), 'ok');
  assert.deepEqual(w.cached, [`${ORIGIN}/www/app.js`]);
});

test('a redirected response is handed on as it is: not re-wrapped, not cached', async () => {
  const w = worker(() => fetched('elsewhere', { redirected: true, type: 'cors', url: 'https://cdn.example/x.js' }));
  const res = await w.get('/www/app.js');
  assert.equal(res.headers.get('cross-origin-embedder-policy'), null);
  assert.equal(res.redirected, true);
  assert.deepEqual(w.cached, []);
  // same origin but redirected, for a subresource: not re-wrapped either
  const w2 = worker(() => fetched('moved', { redirected: true }));
  const res2 = await w2.get('/www/app.js');
  assert.equal(res2.headers.get('cross-origin-embedder-policy'), null);
  assert.deepEqual(w2.cached, []);
});

test('a same-origin redirect of a page load is followed by the browser, through the worker', async () => {
  const w = worker(() => fetched('<!doctype html>', { redirected: true, url: `${ORIGIN}/www/index.html` }));
  const res = await w.get('/www/', 'navigate');
  assert.equal(res.status, 302);
  assert.equal(res.headers.get('location'), `${ORIGIN}/www/index.html`);
});

test('cors and opaque responses are not re-wrapped', async () => {
  for (const type of ['cors', 'opaque']) {
    const w = worker(() => fetched(type === 'opaque' ? null : 'x', { type }));
    const res = await w.get('/www/app.js');
    assert.equal(res.headers.get('cross-origin-embedder-policy'), null, type);
    assert.deepEqual(w.cached, [], type);
  }
});
