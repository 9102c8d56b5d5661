// Step 5 and the save status: export/import of the model and of the project zip, a new empty
// project, the Undo of a replacement, the shelved models' download, and what the autosave says
// (saved at, off, storage that may be evicted).

import { t, getLang } from '../i18n.js';
import { autosaveProject, exportProject, importProject, persistStorage, undoReplace, QuotaError } from '../project/persist.js';
import { $, download, onFilePicked, stamp } from './dom.js';
import { clearError, setNotice, showError, status } from './status.js';
import { soon } from './repaint.js';

let project = null;
let autosave = null;
let lastSavedAt = null;
let persistent = null; // navigator.storage.persist(): true, false, or null (no such API)

/** Whether the browser may evict the stored project (for sortwiseDebug.autosave). */
export function storagePersistent() { return persistent; }

export function renderSaveStatus() {
  const box = $('save-status');
  if (autosave.off) { box.textContent = t('autosaveOff'); return; }
  if (!lastSavedAt) return;
  const time = lastSavedAt.toLocaleTimeString(getLang());
  box.textContent = persistent === false ? t('savedAtEvictable', { time }) : t('savedAt', { time });
}

/** The project's autosave (persist.js), reporting to the page. */
export function createAutosave(p) {
  project = p;
  autosave = autosaveProject(project, {
    onSaved: () => {
      lastSavedAt = new Date();
      soon('save-status', renderSaveStatus); // saved twice a second during a long add
      document.body.dataset.saved = String(Date.now());
      if (persistent === null && autosave.saves === 1) {
        persistStorage().then((v) => { persistent = v; renderSaveStatus(); });
      }
    },
    onFailed: (e) => {
      if (e instanceof QuotaError || e?.name === 'QuotaExceededError') showError('saveFailed', new Error(t('quota')));
      else showError('saveFailed', e);
    },
    onOff: (reason) => {
      setNotice('autosave', reason);
      renderSaveStatus();
    },
  });
  return autosave;
}

/** After an import or a new project: the replaced project is the stored backup; undo swaps back. */
export function offerUndo(key) {
  setNotice('undo', {
    key,
    action: {
      key: 'undo',
      run: async () => {
        setNotice('undo', null);
        await autosave.handOver({ key: 'autosaveUndoing' });
        try {
          await undoReplace();
        } catch (e) { showError('undoFailed', e); return; }
        window.location.reload();
      },
    },
  });
}

/** Saved models the engine refused (another backbone, say) are kept; the notice offers them. */
export function showShelved() {
  const { shelved } = project;
  if (!shelved.length) return;
  const downloadShelved = () => {
    for (const [i, m] of shelved.entries()) download(m.bytes, `sortwise-${m.arch || 'model'}-kept-${i + 1}.sortwise`);
  };
  setNotice('shelved', { key: 'modelShelved', params: { n: shelved.length, reason: shelved[shelved.length - 1].reason }, action: { key: 'downloadShelved', run: downloadShelved } });
}

/** The model as a `.sortwise` download (step 5, and the share dialog for what no link holds). */
export function exportModel() {
  clearError();
  if (!project.model) { showError('modelNone'); return; }
  download(project.model, `sortwise-${project.arch}-${stamp()}.sortwise`);
}

/**
 * The model with its backbone as one ONNX file (the engine writes it: src/formats/onnx/), for onnxruntime
 * on a Raspberry Pi, a server or another page; in the queue, so it never overlaps training.
 */
async function exportOnnx() {
  clearError();
  if (!project.model) { showError('modelNone'); return; }
  const button = $('export-onnx');
  button.disabled = true;
  status(t('onnxExporting'));
  try {
    const bytes = await project.serial(() => project.withEngine((sw) => sw.exportOnnx()));
    download(bytes, `sortwise-${project.arch}-${stamp()}.onnx`);
    status(t('onnxExported', { mb: (bytes.byteLength / 1048576).toFixed(1) }));
  } catch (e) {
    status('');
    showError('onnxFailed', e);
  } finally {
    button.disabled = false;
  }
}

async function importModel(file) {
  clearError();
  await project.importModel(new Uint8Array(await file.arrayBuffer()));
}

function saveProject() {
  clearError();
  try {
    download(exportProject(project), `sortwise-project-${stamp()}.zip`, 'application/zip');
  } catch (e) { showError('projectExportFailed', e); }
}

async function loadProject(file) {
  clearError();
  project.forgetIntakeUndo();
  if (project.training) { showError('busy'); return; }
  if (file.size > 2 * 1024 * 1024 * 1024) { showError('projectImportFailed', new Error(t('skipTooBig', { n: 2048 }))); return; }
  if ((project.totalImages() || project.model) && !window.confirm(t('importConfirm'))) return;
  if (await importProject(project, file)) offerUndo('importedUndo');
}

async function newProject() {
  project.forgetIntakeUndo();
  if ((project.totalImages() || project.model) && !window.confirm(t('newProjectConfirm'))) return;
  if (await project.clear()) offerUndo('newProjectUndo');
}

export function bindSave() {
  $('export-model').addEventListener('click', exportModel);
  $('export-onnx').addEventListener('click', exportOnnx);
  onFilePicked($('import-model'), importModel);
  $('export-project').addEventListener('click', saveProject);
  onFilePicked($('import-project'), loadProject);
  $('new-project').addEventListener('click', newProject);
  // Flush when the tab is hidden or closed; a no-op until the project was loaded (persist.js).
  document.addEventListener('visibilitychange', () => { if (document.hidden) autosave.save().catch(() => {}); });
  window.addEventListener('pagehide', () => { autosave.save().catch(() => {}); });
}
