// Service worker: keeps the app shell, the vendored libraries and the wasm packages available offline.
// Network first for same-origin app files (so development is never stale), the cached copy when the
// network fails. Backbone weights are NOT handled here: the client caches them itself in Cache
// Storage, and caching them twice would double the storage used. Nothing cross-origin is touched.
//
// It also makes the page cross-origin isolated where the host cannot send the headers (GitHub
// Pages): every response it hands out carries COOP/COEP (the coi-serviceworker technique), so
// once it controls the page (main.js reloads once for that) the threaded pkg-cpu/ can run.

const CACHE = 'sortwise-app-v2';
const SHELL = [
  './',
  './index.html',
  './style.css',
  './main.js',
  './app.js',
  './i18n.js',
  './store.js',
  './project-zip.js',
  './camera.js',
  './charts.js',
  './sortwise-client.js',
  './worker.js',
  './weights.js',
  './weights/manifest.json',
  './vendor/uPlot.esm.js',
  './vendor/uPlot.min.css',
  './vendor/fflate.js',
  '../pkg/sortwise.js',
  '../pkg/sortwise_bg.wasm',
  '../pkg-cpu/sortwise.js',
  '../pkg-cpu/sortwise_bg.wasm',
];
// pkg-cpu/sortwise.js imports wasm-bindgen-rayon's worker helper from a hash-named snippets/
// directory: found by reading the file, so the list never goes stale after a rebuild.
const SNIPPET_IMPORT = /from\s+['"](\.\/snippets\/[^'"]+)['"]/g;

async function precache(cache, path) {
  try {
    const res = await fetch(path, { cache: 'no-cache' });
    if (!res.ok) return;
    if (path.endsWith('pkg-cpu/sortwise.js')) {
      const text = await res.clone().text();
      for (const [, rel] of text.matchAll(SNIPPET_IMPORT)) await precache(cache, new URL(rel, new URL(path, self.location)).href);
    }
    await cache.put(path, res);
  } catch { /* offline or missing: cached on first successful fetch instead */ }
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // One by one: a file that is missing (e.g. a module not built yet) must not fail the install.
    await Promise.all(SHELL.map((path) => precache(cache, path)));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('sortwise-app-') && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

function handled(url) {
  if (url.origin !== self.location.origin) return false;
  if (/\.safetensors$/i.test(url.pathname)) return false; // weights: cached by the client
  const scope = new URL(self.registration.scope);
  return [scope, new URL('../pkg/', scope), new URL('../pkg-cpu/', scope)]
    .some((dir) => url.pathname.startsWith(dir.pathname));
}

// The same response with the cross-origin isolation headers (same-origin responses only: an
// opaque one cannot be rebuilt). COEP require-corp is satisfied by same-origin subresources.
function isolated(res) {
  if (!res || res.status === 0 || res.type === 'opaque') return res;
  const headers = new Headers(res.headers);
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (!handled(url)) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const res = await fetch(req);
      if (res.ok && res.type === 'basic') cache.put(req, res.clone()).catch(() => {});
      return isolated(res);
    } catch (err) {
      const hit = await cache.match(req, { ignoreSearch: true })
        || (req.mode === 'navigate' ? await cache.match('./index.html') : undefined);
      if (hit) return isolated(hit);
      throw err;
    }
  })());
});
