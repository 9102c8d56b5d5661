// Service worker: keeps the app shell, the vendored libraries and the wasm package available offline.
// Network first for same-origin app files (so development is never stale), the cached copy when the
// network fails. Backbone weights are NOT handled here: the client caches them itself in Cache
// Storage, and caching them twice would double the storage used. Nothing cross-origin is touched.

const CACHE = 'sortwise-app-v1';
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
];

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // One by one: a file that is missing (e.g. a module not built yet) must not fail the install.
    await Promise.all(SHELL.map(async (path) => {
      try {
        const res = await fetch(path, { cache: 'no-cache' });
        if (res.ok) await cache.put(path, res);
      } catch { /* offline or missing: cached on first successful fetch instead */ }
    }));
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
  const pkg = new URL('../pkg/', scope);
  return url.pathname.startsWith(scope.pathname) || url.pathname.startsWith(pkg.pathname);
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
      return res;
    } catch (err) {
      const hit = await cache.match(req, { ignoreSearch: true })
        || (req.mode === 'navigate' ? await cache.match('./index.html') : undefined);
      if (hit) return hit;
      throw err;
    }
  })());
});
