// The engine's workers, started from a page of this site or of another one: TurboWarp (the
// Scratch extension, scratch/sortwise.js) or a p5.js editor importing the package from this
// site. Browsers start a worker only from a script of the page's own origin, so for another
// origin the worker is a one-line blob: module that imports this site's worker.js (which then
// needs CORS headers on this site, as GitHub Pages and most static hosts send).

/** A module Web Worker running `url` (a URL of this site's engine/). */
export function engineWorker(url, name) {
  const href = String(url);
  const page = globalThis.location?.origin;
  if (!page || new URL(href).origin === page) return new Worker(href, { type: 'module', name });
  const blob = new Blob([`import ${JSON.stringify(href)};\n`], { type: 'text/javascript' });
  return new Worker(URL.createObjectURL(blob), { type: 'module', name });
}
