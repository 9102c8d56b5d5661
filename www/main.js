// Entry point: starts the page (app.js) and registers the service worker that lets a second visit
// work offline (sw.js). No inline scripts anywhere: the CSP forbids them.

if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('sw.js', { scope: './' }).catch((e) => {
    console.info('[sortwise] service worker not registered:', e.message);
  });
  // A host that cannot send COOP/COEP (GitHub Pages) gets them from sw.js, but only once it
  // controls the page: reload once when it takes over, for the threaded CPU build. The flag
  // stops a second reload where isolation still fails (the page then runs single-threaded).
  const KEY = 'sortwise-coi-reload';
  if (window.crossOriginIsolated) {
    sessionStorage.removeItem(KEY);
  } else if (!sessionStorage.getItem(KEY)) {
    const reload = () => {
      if (sessionStorage.getItem(KEY)) return;
      sessionStorage.setItem(KEY, '1');
      window.location.reload();
    };
    // First visit: sw.js installs and claims the page. Already controlled by an older sw.js
    // (no headers): this one replaces it and claims the page in turn.
    navigator.serviceWorker.addEventListener('controllerchange', reload, { once: true });
  }
}

// "Build it with ./run serve" only where a file of the page is missing; any other failure is
// shown as it is, so that the message names the real cause.
function missingFile(e) {
  return e instanceof TypeError && /(import|fetch|load).*module|module script|dynamically imported/i.test(e.message);
}

try {
  const { start } = await import('./app.js');
  await start();
} catch (e) {
  console.error(e);
  document.body.dataset.ready = 'error';
  const text = document.getElementById('status-text');
  const hint = missingFile(e) ? ' A file of the page is missing: build it with ./run serve.' : '';
  if (text) text.textContent = `sortwise could not start: ${e.message || e}.${hint}`;
}
