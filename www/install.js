// Installed-app glue, kept out of app.js: the web app manifest follows the page's language (its
// name and description are in manifest.json and manifest.zh-CN.json), and an installed app,
// launched from its icon (the manifest's start_url carries ?launch=app), opens on the Test step
// when the saved project has a model: someone who installs it mostly wants to sort things.

const MANIFESTS = { en: 'manifest.json', 'zh-CN': 'manifest.zh-CN.json' };

function syncManifest() {
  const link = document.querySelector('link[rel="manifest"]');
  const href = MANIFESTS[document.documentElement.lang] ?? MANIFESTS.en;
  if (link && link.getAttribute('href') !== href) link.setAttribute('href', href);
}

/** Keep `<link rel="manifest">` on the manifest of the page's language (i18n.js sets `<html lang>`). */
export function followLanguage() {
  syncManifest();
  new MutationObserver(syncManifest).observe(document.documentElement, { attributes: true, attributeFilter: ['lang'] });
}

/**
 * After the page started: on an app launch (?launch=app) with a trained or imported model, show
 * the Test step and focus its photo picker. Whether there is a model is read from app.js's
 * read-only `sortwiseDebug.state`, which needs no hook in app.js. Returns whether it did.
 */
export function openLaunchView() {
  if (new URLSearchParams(window.location.search).get('launch') !== 'app') return false;
  if (!window.sortwiseDebug?.state?.hasModel) return false;
  const section = document.getElementById('test-section');
  if (!section) return false;
  section.scrollIntoView({ block: 'start' });
  document.getElementById('test-input')?.focus({ preventScroll: true });
  document.body.dataset.launch = 'test';
  return true;
}
