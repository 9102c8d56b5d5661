// Entry point: starts the page (app.js) and registers the service worker that lets a second visit
// work offline (sw.js). No inline scripts anywhere: the CSP forbids them.
import { start } from './app.js';

if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('sw.js', { scope: './' }).catch((e) => {
    console.info('[sortwise] service worker not registered:', e.message);
  });
}

start().catch((e) => {
  console.error(e);
  const text = document.getElementById('status-text');
  if (text) text.textContent = `sortwise could not start: ${e.message}`;
});
