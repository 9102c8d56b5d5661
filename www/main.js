// Entry point: starts the page (app.js) and registers the service worker that lets a second visit
// work offline (sw.js). No inline scripts anywhere: the CSP forbids them.

if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('sw.js', { scope: './' }).catch((e) => {
    console.info('[sortwise] service worker not registered:', e.message);
  });
}

try {
  const { start } = await import('./app.js');
  await start();
} catch (e) {
  console.error(e);
  document.body.dataset.ready = 'error';
  const text = document.getElementById('status-text');
  if (text) text.textContent = `sortwise could not start: ${e.message}. Build it with ./run serve.`;
}
