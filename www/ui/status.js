// The status line, the error box and the notices (lasting messages with an optional action:
// autosave off, another tab, undo), and the project's own reports to them.

import { t } from '../i18n.js';
import { $, el } from './dom.js';

export function status(text, progress) {
  $('status-text').textContent = text || '';
  const bar = $('status-progress');
  if (progress == null) { bar.hidden = true; return; }
  bar.hidden = false;
  if (progress === 'indeterminate') bar.removeAttribute('value');
  else { bar.max = 1; bar.value = progress; }
}

export function showError(contextKey, err, params) {
  const msg = err instanceof Error ? err.message : String(err ?? '');
  $('error-text').textContent = msg ? `${t(contextKey, params)}: ${msg}` : t(contextKey, params);
  $('error').hidden = false;
  console.warn(`[sortwise] ${t(contextKey, params)}:`, msg);
}

export function clearError() { $('error').hidden = true; }

const notices = new Map(); // id -> {key, params, action: {key, run}}

export function setNotice(id, notice) {
  if (notice) notices.set(id, notice); else notices.delete(id);
  renderNotices();
}

export function renderNotices() {
  const box = $('notices');
  box.replaceChildren(...[...notices].map(([id, n]) => {
    const p = el('div', { class: `notice notice-${id}`, dataset: { notice: id } }, el('span', { class: 'notice-text', text: t(n.key, n.params || {}) }));
    for (const a of n.actions ?? (n.action ? [n.action] : [])) {
      p.append(el('button', { type: 'button', class: 'small notice-action', dataset: { action: a.key }, text: t(a.key), onclick: () => a.run() }));
    }
    return p;
  }));
  box.hidden = notices.size === 0;
}

/** The project's status and error reports (project.js `status` and `error` events). */
export function bindStatus(project) {
  $('error-close').addEventListener('click', clearError);
  project.addEventListener('status', ({ detail }) => status(detail.text, detail.progress));
  project.addEventListener('error', ({ detail }) => showError(detail.key, detail.error, detail.params));
  // Saved class names the engine's label rule now refuses were renamed so that the project loads.
  project.addEventListener('labels-renamed', ({ detail }) => {
    const list = detail.renamed.map((r) => `${JSON.stringify(r.from)} → ${r.to}`).join('; ');
    setNotice('labels', { key: 'labelsRenamed', params: { list } });
  });
  // Settings the engine would refuse (a project zip's, a saved project's) were reset to defaults.
  project.addEventListener('settings-reset', ({ detail }) => {
    const list = detail.reset.map((r) => `${r.key}: ${r.value} → ${r.default}`).join('; ');
    setNotice('settings', { key: 'settingsReset', params: { list } });
  });
}
