// The classify view a shared link opens (`#m=…` or `#n=…`): the model from the link, the
// backbone from this site, the Test step alone (camera first) and "Save to my projects". The
// project saved in this browser is never read nor written here: app.js turns the autosave off
// and takes no ownership before this runs, and what is kept goes to links-store.js.

import { t } from '../i18n.js';
import { keepLink } from '../share/links-store.js';
import { startEngine } from '../project/project-engine.js';
import { linkInfo, pageBase } from '../share/share-link.js';
import { bindCorrections } from './corrections.js';
import { $, el } from './dom.js';
import { showError, status } from './status.js';

let shown = null; // {labels, arch, precision, kept}

function render() {
  if (!shown) return;
  $('shared-labels').replaceChildren(...shown.labels.map((l) => el('li', { class: 'chip', text: l, dir: 'auto' })));
  $('shared-meta').textContent = t('sharedMeta', { arch: shown.arch, n: shown.labels.length });
  $('shared-keep').disabled = shown.kept;
  $('shared-keep').textContent = t(shown.kept ? 'sharedKept' : 'sharedKeep');
}

export function rerenderShared() { render(); }

/** Why the link cannot open here, shown in place of the classifier. */
function failed(key, e, params) {
  $('shared-meta').textContent = '';
  showError(key, e, params);
  document.body.dataset.ready = 'error';
}

/**
 * Opens the classifier of the link's `bytes` (www/share/share-link.js `readLink`) in `project`:
 * resolves to whether it runs. `linkError`: why the fragment could not be read, instead.
 */
export async function openShared(project, bytes, linkError) {
  document.body.dataset.mode = 'shared';
  $('shared-section').hidden = false;
  $('shared-actions').hidden = false;
  $('shared-home').href = pageBase(window.location);
  if (linkError) { failed('sharedBroken', linkError); return false; }
  let info;
  try {
    info = linkInfo(bytes);
  } catch (e) { failed('sharedBroken', e); return false; }
  if (!project.knownArch(info.arch)) {
    failed('sharedNoBackbone', null, { arch: info.arch });
    return false;
  }
  try {
    await startEngine(project, info.arch, 0);
  } catch (e) { failed('engineFailed', e); return false; }
  let file;
  try {
    file = await project.withEngine((sw) => sw.sharedModel(bytes));
  } catch (e) { failed('sharedBroken', e); return false; }
  await project.importModel(file);
  if (!project.model) { document.body.dataset.ready = 'error'; return false; }
  status(t('sharedReady', { labels: project.modelLabels.join(', ') }));
  shown = { labels: project.modelLabels, arch: info.arch, precision: info.precision, kept: false };
  render();
  $('shared-keep').onclick = async () => {
    try {
      await keepLink({ bytes, labels: shown.labels, arch: shown.arch });
      shown.kept = true;
      render();
      status(t('sharedKeptStatus'));
    } catch (e) { showError('sharedKeepFailed', e); }
  };
  await bindCorrections(project, bytes).catch((e) => console.warn('[sortwise] corrections unavailable:', e));
  document.getElementById('test-section').scrollIntoView({ block: 'start' });
  $('test-live').focus({ preventScroll: true });
  return true;
}

/** For sortwiseDebug: the open link's classifier, or null. */
export function sharedState() { return shown && { ...shown }; }
