// Service worker: keeps the app shell and the vendored libraries available offline, and the wasm
// build the page runs once it has loaded it. Network first for same-origin app files (so
// development is never stale), the cached copy when the network fails. Backbone weights are NOT
// handled here: the client caches them itself in Cache Storage, and caching them twice would
// double the storage used. Nothing cross-origin is touched.
//
// It also makes the page cross-origin isolated where the host cannot send the headers (GitHub
// Pages): every response it hands out carries COOP/COEP (the coi-serviceworker technique), so
// once it controls the page (main.js reloads once for that) the threaded pkg-cpu/ can run. The
// same responses carry the page's security headers (CSP with frame-ancestors, nosniff), which a
// static host does not send either.
//
// The wasm builds are not precached: a visit downloads only the one build its worker picks
// (pkg-cpu-relaxed/ or pkg-cpu/, ~1.3 MB gzipped, or pkg/, ~4.6 MB), which then passes through
// here and is kept.
// main.js starts the page only once this worker controls it, so that download is seen here.

const CACHE = 'sortwise-app-v11';
// Where the pkg*/ builds sit relative to this file: beside www/ in the repository; in the folder
// `./run dist` makes, next to this file (scripts/dist.sh rewrites this line, and checks it did).
const PKG_ROOT = '../';
const SHELL = [
  './',
  './index.html',
  './style.css',
  './main.js',
  './install.js',
  './app.js',
  './project/project.js',
  './project/project-engine.js',
  './project/persist.js',
  './project/settings.js',
  './project/ownership.js',
  './ui/dom.js',
  './ui/repaint.js',
  './ui/status.js',
  './ui/topbar.js',
  './ui/classes.js',
  './ui/intake.js',
  './ui/training.js',
  './ui/results.js',
  './ui/testing.js',
  './ui/save.js',
  './ui/heatmap.js',
  './ui/doctor.js',
  './ui/share.js',
  './ui/shared-view.js',
  './ui/device-out.js',
  './ui/collect.js',
  './ui/qr.js',
  './ui/corrections.js',
  './collect.html',
  './collect/main.js',
  './collect/photos.js',
  './collect/live.js',
  './collect/identity.js',
  './collect/collect-link.js',
  './collect/peer-server.js',
  './collect/contribution.js',
  './collect/merge.js',
  './collect/peer.js',
  './collect/qr-scan.js',
  './collect/i18n-collect.js',
  './device-out.js',
  './share/share-link.js',
  './share/links-store.js',
  './i18n.js',
  './project/store.js',
  './project/project-zip.js',
  './camera.js',
  './charts.js',
  './engine/client.js',
  './engine/errors.js',
  './engine/journal.js',
  './engine/classifier.js',
  './engine/frame.js',
  './engine/spawn.js',
  './engine/operations.js',
  './engine/builds.js',
  './engine/device-choice.js',
  './engine/worker.js',
  './engine/weights.js',
  './engine/rules.js',
  './project/zip-worker.js',
  './weights/manifest.json',
  './vendor/uPlot.esm.js',
  './vendor/uPlot.min.css',
  './vendor/fflate.js',
  './vendor/qrcode.js',
  './vendor/barcode-detector.js',
  './vendor/zxing-exported.js',
  './vendor/peerjs.js',
  './manifest.json',
  './manifest.zh-CN.json',
  './icons/icon.svg',
  './icons/icon-192.png',
];

// The page's Content-Security-Policy (index.html's meta tag, which tests/e2e/headers.mjs checks
// this against) plus what only a header can say: no framing by other sites (clickjacking). As a
// header it also binds the workers: pkg-cpu/'s thread pool (wasm-bindgen-rayon) and its
// Atomics.waitAsync helper start from blob: URLs, hence worker-src blob:.
const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const HEADERS = {
  // SharedArrayBuffer (the threaded build's shared wasm memory) needs both.
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
};

async function precache(cache, path) {
  try {
    const res = await fetch(path, { cache: 'no-cache' });
    if (res.ok) await cache.put(path, res);
  } catch { /* offline or missing: cached on first successful fetch instead */ }
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // One by one: a file that is missing (e.g. not built yet) must not fail the install.
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
  return [scope, ...['pkg/', 'pkg-cpu/', 'pkg-cpu-relaxed/'].map((dir) => new URL(`${PKG_ROOT}${dir}`, scope))]
    .some((dir) => url.pathname.startsWith(dir.pathname));
}

// The same response with the isolation and security headers. Only a same-origin response that
// was not redirected is rebuilt: a rebuilt response counts as this origin's own, so a redirect
// to another origin (a CORS response) would otherwise pass as same-origin content under COEP,
// and an opaque one cannot be rebuilt at all. Cached responses were stored only when `basic`.
function withHeaders(res) {
  if (!res || res.type !== 'basic' || res.redirected) return res;
  const headers = new Headers(res.headers);
  for (const [k, v] of Object.entries(HEADERS)) headers.set(k, v);
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
      // A same-origin redirect (a host adding the trailing slash) is followed by the browser
      // itself, so that the page it lands on comes through here with its headers.
      if (res.redirected && res.type === 'basic' && req.mode === 'navigate') return Response.redirect(res.url, 302);
      if (res.ok && res.type === 'basic' && !res.redirected) cache.put(req, res.clone()).catch(() => {});
      return withHeaders(res);
    } catch (err) {
      const hit = await cache.match(req, { ignoreSearch: true })
        || (req.mode === 'navigate' ? await cache.match('./index.html') : undefined);
      if (hit) return withHeaders(hit);
      throw err;
    }
  })());
});
