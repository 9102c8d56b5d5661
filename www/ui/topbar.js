// The top bar: the backbone picker, the device badge (what the engine runs on, and why) and the
// language buttons; also the engine's start-up reports (weights download, backend changes).

import { t, setLang } from '../i18n.js';
import { switchArch } from '../project/project-engine.js';
import { $, el } from './dom.js';
import { status, clearError } from './status.js';

const backendName = (backend) => (backend === 'webgpu' ? t('deviceWebgpu') : t('deviceCpu'));
const mb = (x) => (x / 1e6).toFixed(1);

export function renderDevice(sw) {
  const name = $('device-name');
  name.removeAttribute('data-i18n');
  if (!sw) { name.textContent = t('deviceStarting'); return; }
  name.textContent = backendName(sw.backend);
  $('device-badge').dataset.backend = sw.backend;
  $('device-badge').title = sw.backendReason || '';
  $('device-reason').textContent = sw.backendReason || '';
}

export function renderArchPicker(project) {
  const sel = $('arch');
  sel.replaceChildren(...project.manifest.map((b) => el('option', { value: b.arch, text: `${b.arch} (${(b.bytes / 1e6).toFixed(1)} MB)` })));
  sel.value = project.arch;
}

export function bindTopbar(project) {
  for (const b of document.querySelectorAll('[data-lang]')) {
    b.addEventListener('click', () => setLang(b.dataset.lang));
  }
  $('arch').addEventListener('change', (ev) => { clearError(); switchArch(project, ev.target.value); });
  project.addEventListener('engine-status', ({ detail: s }) => {
    if (s.phase === 'loading') status(t('loadingEngine'), 'indeterminate');
    else if (s.phase === 'weights') {
      status(t('loadingWeights', { arch: s.arch, loaded: mb(s.loaded || 0), total: mb(s.total) }), s.total ? (s.loaded || 0) / s.total : 'indeterminate');
    } else if (s.phase === 'backend') {
      renderDevice(project.sw);
      status(t('backendChanged', { backend: backendName(s.backend), reason: s.reason || '' }));
    }
  });
  project.addEventListener('engine', () => renderDevice(project.sw));
  project.addEventListener('arch-kept', ({ detail }) => { $('arch').value = detail.arch; });
  project.addEventListener('replaced', () => {
    $('arch').value = project.arch;
    renderDevice(project.sw);
  });
}
