// Entry point: registers the service worker (sw.js: offline second visits, cross-origin
// isolation on hosts that cannot send the headers), then starts the page (app.js). No inline
// scripts anywhere: the CSP forbids them.

import { followLanguage, openLaunchView } from './install.js';

const KEY = 'sortwise-coi-reload';
// How long a first visit waits for sw.js to take over before starting without it.
const TAKEOVER_MS = 10000;

/** Resolves to true when the page is about to reload (and must not start). */
async function serviceWorker() {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return false;
  const controlled = Boolean(navigator.serviceWorker.controller);
  let reloading = false;
  const takeover = new Promise((resolve) => {
    navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true });
  });
  const registered = navigator.serviceWorker.register('sw.js', { scope: './' }).catch((e) => {
    console.info('[sortwise] service worker not registered:', e.message);
    return null;
  });
  // A host that cannot send COOP/COEP (GitHub Pages) gets them from sw.js, but only once it
  // controls the page: reload once when it takes over, for the threaded CPU build. The flag
  // stops a second reload where isolation still fails (the page then runs single-threaded).
  if (window.crossOriginIsolated) {
    sessionStorage.removeItem(KEY);
  } else if (!sessionStorage.getItem(KEY)) {
    // First visit: sw.js installs and claims the page. Already controlled by an older sw.js
    // (no headers): this one replaces it and claims the page in turn.
    takeover.then(() => {
      if (sessionStorage.getItem(KEY)) return;
      sessionStorage.setItem(KEY, '1');
      reloading = true;
      window.location.reload();
    });
  }
  if (controlled) return false;
  // First visit: start only once sw.js controls the page, so that the worker and the one wasm
  // build it picks load through sw.js (kept for offline visits) and, on a header-less host, so
  // that the page does not download the single-threaded build only to reload into the threaded one.
  const reg = await registered;
  // Nothing is coming to take over: no registration (blocked), or an active worker that does not
  // control this load (a hard reload bypasses it).
  const incoming = reg?.installing || reg?.waiting;
  if (!incoming) return reloading;
  const failed = new Promise((resolve) => {
    incoming.addEventListener('statechange', () => { if (incoming.state === 'redundant') resolve(); });
  });
  await Promise.race([takeover, failed, new Promise((r) => setTimeout(r, TAKEOVER_MS))]);
  await Promise.resolve(); // let the reload decision above run first
  return reloading;
}

// "Build it with ./run serve" only where a file of the page is missing; any other failure is
// shown as it is, so that the message names the real cause.
function missingFile(e) {
  return e instanceof TypeError && /(import|fetch|load).*module|module script|dynamically imported/i.test(e.message);
}

try {
  followLanguage();
  if (!(await serviceWorker())) {
    const { start } = await import('./app.js');
    await start();
    openLaunchView();
  }
} catch (e) {
  console.error(e);
  document.body.dataset.ready = 'error';
  const text = document.getElementById('status-text');
  const hint = missingFile(e) ? ' A file of the page is missing: build it with ./run serve.' : '';
  if (text) text.textContent = `sortwise could not start: ${e.message || e}.${hint}`;
}
