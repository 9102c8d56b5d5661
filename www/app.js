// The sortwise page, wired together: the project (project.js, with its engine operations in
// project-engine.js), its autosave (persist.js) and tab ownership (ownership.js), and the views
// (ui/*), each owning its part of the DOM. Everything runs in this tab; the engine (wasm, in a
// Web Worker) is reached through engine/client.js. Views import the rest, never the reverse.

import { t, setLang, defaultLang, onLangChange } from './i18n.js';
import { Project, PRESETS } from './project/project.js';
import { defaultArch, loadManifest, startEngine } from './project/project-engine.js';
import { readSaved, restore, savedProjectZips, snapshot, SAVE_VERSION } from './project/persist.js';
import { cleanSettings, PAGE_DEFAULTS } from './project/settings.js';
import { Ownership } from './project/ownership.js';
import { $, download } from './ui/dom.js';
import { bindStatus, renderNotices, setNotice, showError, status } from './ui/status.js';
import { bindTopbar, renderArchPicker, renderDevice } from './ui/topbar.js';
import { bindClasses, renderClasses } from './ui/classes.js';
import { bindIntake, cameraPending, renderSkipped, skipped } from './ui/intake.js';
import { bindTraining, relabelCharts, renderSettings } from './ui/training.js';
import { bindDoctor, rerenderDoctor } from './ui/doctor.js';
import { bindResults, renderResults } from './ui/results.js';
import { bindTesting, clearPrediction, relabelLive, renderTestState, rerenderPrediction, shownPrediction } from './ui/testing.js';
import { bindSave, createAutosave, renderSaveStatus, showShelved, storagePersistent } from './ui/save.js';
import { bindShare, rerenderShare, shareState } from './ui/share.js';
import { bindDeviceOut, deviceOutState, rerenderDeviceOut } from './ui/device-out.js';
import { bindCollect, collectState, rerenderCollect } from './ui/collect.js';
import { correctionsState, rerenderCorrections } from './ui/corrections.js';
import { openShared, rerenderShared, sharedState } from './ui/shared-view.js';
import { readLink } from './share/share-link.js';

// `?device=webgpu` or `?device=cpu` overrides the automatic choice (for testing and comparison).
const param = new URLSearchParams(location.search).get('device');
const project = new Project({ device: ['webgpu', 'cpu'].includes(param) ? param : 'auto' });
const autosave = createAutosave(project);

const ownership = new Ownership({
  onHandOver: () => autosave.handOver({ key: 'autosaveTakenOver' }),
  onLost: () => autosave.disable({ key: 'autosaveTakenOver' }),
  onFree: () => {
    if (autosave.off?.key !== 'autosaveOtherTab') return;
    setNotice('autosave', { key: 'autosaveOtherTabGone', action: { key: 'reload', run: () => window.location.reload() } });
  },
});

function bindUi() {
  bindStatus(project);
  bindTopbar(project);
  bindClasses(project);
  bindIntake(project);
  bindTraining(project);
  bindResults(project);
  bindDoctor(project);
  bindTesting(project);
  bindSave(project);
  bindShare(project);
  bindDeviceOut(project);
  bindCollect(project);
  onLangChange(() => {
    rerenderCollect();
    rerenderCorrections();
    rerenderDeviceOut();
    rerenderShare();
    rerenderShared();
    renderDevice(project.sw);
    renderClasses();
    renderResults();
    rerenderDoctor();
    renderSkipped();
    renderNotices();
    renderSaveStatus();
    renderTestState();
    rerenderPrediction();
    relabelCharts();
    relabelLive();
  });
}

// Set by "Start with default settings" for the one reload it asks for.
const DEFAULTS_ONCE = 'sortwise-start-with-defaults';

/**
 * Start failed: the saved project is left exactly as it is and nothing is ever saved. The way
 * out loses nothing: the saved project (and its backup) can be downloaded as project zips, read
 * from storage without an engine, and the page can start once more ignoring its saved settings.
 */
function startFailed(key, params) {
  autosave.disable({ key, params });
  document.body.dataset.ready = 'error';
  offerRescue();
}

function offerRescue() {
  const downloadSaved = async () => {
    try {
      for (const f of await savedProjectZips()) download(f.bytes, f.name, 'application/zip');
    } catch (e) { showError('restoreFailed', e); }
  };
  const withDefaults = () => {
    try { sessionStorage.setItem(DEFAULTS_ONCE, '1'); } catch { /* private mode: the reload still tries */ }
    window.location.reload();
  };
  setNotice('rescue', { key: 'startRescue', actions: [{ key: 'downloadSaved', run: downloadSaved }, { key: 'startWithDefaults', run: withDefaults }] });
}

/** Whether this start was asked to ignore the saved settings (once). */
function defaultsOnce() {
  try {
    const on = sessionStorage.getItem(DEFAULTS_ONCE) === '1';
    sessionStorage.removeItem(DEFAULTS_ONCE);
    return on;
  } catch { return false; }
}

// A link's model is in the fragment, which changes without a reload: a pasted link, or one of the
// kept classifiers opened from this page, loads as a page of its own.
const isLink = (url) => /^#[mn]=/.test(new URL(url).hash);
window.addEventListener('hashchange', (e) => {
  if (isLink(e.newURL) || isLink(e.oldURL)) window.location.reload();
});

/**
 * A shared link's classifier: no ownership claimed and the autosave off before anything runs, so
 * the project saved in this browser is neither read nor written (ui/shared-view.js).
 */
async function startShared(bytes, linkError) {
  autosave.disable({ key: 'sharedNoSave' });
  try {
    await loadManifest(project);
  } catch (e) {
    status(t('noManifest', { reason: e.message }));
    document.body.dataset.ready = 'error';
    return;
  }
  if (await openShared(project, bytes, linkError)) document.body.dataset.ready = '1';
}

export async function start() {
  setLang(defaultLang());
  bindUi();
  renderSettings();
  renderClasses();
  renderTestState();
  let linkBytes = null;
  let linkError = null;
  try {
    linkBytes = readLink(window.location.hash);
  } catch (e) { linkError = e; }
  if (linkBytes || linkError) {
    await startShared(linkBytes, linkError);
    return;
  }
  const owner = await ownership.claim();
  try {
    await loadManifest(project);
  } catch (e) {
    status(t('noManifest', { reason: e.message }));
    startFailed('autosaveOffStart', { reason: e.message });
    return;
  }
  let found;
  try {
    found = await readSaved();
  } catch (e) {
    showError('restoreFailed', e);
    autosave.disable({ key: 'autosaveOffRestore', params: { reason: e?.message || String(e) } });
    found = null;
  }
  if (found?.status === 'newer') {
    autosave.disable({ key: 'savedNewer', params: { version: String(found.version), supported: SAVE_VERSION } });
    found = null;
  }
  const saved = found?.status === 'ok' ? found.saved : null;
  const savedArch = saved?.project?.arch;
  // Saved settings pass the engine's ranges before anything uses them: one it would refuse is
  // reset (and said so), never a reason for the engine not to start.
  const ignoreSaved = defaultsOnce();
  const { settings: savedSettings, reset } = cleanSettings(ignoreSaved ? {} : saved?.project?.settings, project.rules);
  if (reset.length) project.emit('settings-reset', { reset });
  let settingsChanged = reset.length > 0 || (ignoreSaved && saved != null);
  const arch = project.knownArch(savedArch) ? savedArch : defaultArch(project);
  project.arch = arch;
  project.setSettings(project.withDefaults(savedSettings));
  renderArchPicker(project);
  try {
    try {
      await startEngine(project, arch, project.settings.augment);
    } catch (e) {
      // Defence in depth: the one setting the engine starts with, at its default, once.
      if (project.settings.augment === PAGE_DEFAULTS.augment) throw e;
      project.emit('settings-reset', { reset: [{ key: 'augment', value: String(project.settings.augment), default: String(PAGE_DEFAULTS.augment) }] });
      project.setSettings({ ...project.settings, augment: PAGE_DEFAULTS.augment });
      settingsChanged = true;
      await startEngine(project, arch, project.settings.augment);
    }
  } catch (e) {
    status('');
    showError('engineFailed', e);
    startFailed('autosaveOffStart', { reason: e?.message || String(e) });
    return;
  }
  $('arch').disabled = false;
  let restoredImages = null;
  let restoreOk = !autosave.off;
  if (saved) {
    try {
      restoredImages = await project.serial(() => restore(project, autosave, found));
      showShelved();
    } catch (e) {
      restoreOk = false;
      showError('restoreFailed', e);
      autosave.disable({ key: 'autosaveOffRestore', params: { reason: e?.message || String(e) } });
      offerRescue();
    }
  } else if (!autosave.off) {
    project.classes = PRESETS.garbage.map((label) => ({ label, keys: [] }));
    project.activeLabel = project.classes[0].label;
    renderClasses();
  }
  const backend = project.sw.backend === 'webgpu' ? t('deviceWebgpu') : t('deviceCpu');
  status(restoredImages != null
    ? t('restored', { classes: project.classes.length, images: restoredImages })
    : t('engineReady', { arch: project.arch, backend }));
  if (restoreOk && !ownership.owner) {
    autosave.disable({
      key: owner ? 'autosaveTakenOver' : 'autosaveOtherTab',
      action: owner ? null : {
        key: 'takeOver',
        run: async () => {
          setNotice('autosave', { key: 'takingOver' });
          await ownership.takeOver();
          window.location.reload();
        },
      },
    });
  } else if (restoreOk) {
    autosave.enable();
    // the checked settings replace the stored ones that were reset
    if (settingsChanged) project.emit('save');
    if (autosave.pending) autosave.schedule();
  }
  document.body.dataset.ready = '1';
}

// For the end-to-end test and debugging: a read-only view of the page state.
window.sortwiseDebug = {
  get state() {
    const p = project;
    const prediction = shownPrediction();
    return {
      mode: document.body.dataset.mode || 'project',
      shared: sharedState(),
      share: shareState(),
      arch: p.arch,
      backend: p.sw?.backend,
      classes: p.classes.map((c) => ({ label: c.label, count: c.keys.length })),
      hasModel: !!p.model,
      modelLabels: p.modelLabels,
      report: p.report && { valAccuracy: p.report.valAccuracy, labels: p.report.labels, confusion: p.report.confusion, valSize: p.report.valSize, finetune: p.report.finetune ?? null, refit: p.report.refit ?? null, refitEpochs: p.report.refitEpochs ?? null, bestEpoch: p.report.bestEpoch },
      finetune: { setting: p.settings.finetuneLast, engine: !!p.sw?.finetune },
      skipped: skipped.map((s) => ({ name: s.name, reason: s.reason })),
      training: p.training,
      cameraPending: cameraPending(),
      startSteps: p.startSteps ?? [],
      engine: p.sw && { threads: p.sw.threads, wasmPackage: p.sw.wasmPackage, addBatch: p.sw.addBatch, measurement: p.sw.measurement },
      deviceOut: deviceOutState(),
      collect: collectState(),
      corrections: correctionsState(),
      prediction: prediction && { label: prediction.label, confidence: prediction.confidence, unsure: prediction.unsure, probs: prediction.probs, heatmap: prediction.heatmap },
    };
  },
  // The cross-engine test waits for each photo's own prediction.
  clearPrediction,
  save: () => autosave.save(),
  get autosave() { return { enabled: autosave.enabled, off: autosave.off?.key ?? null, saves: autosave.saves, pending: autosave.pending, owner: ownership.owner, lockMode: ownership.mode, persistent: storagePersistent() }; },
  /** What a save would write now, in the stored form (for comparing with IndexedDB). */
  records: () => { const s = snapshot(project); return { project: s.project, model: s.model, shelved: s.shelved, images: [...project.images.keys()].map((k) => s.image(k)) }; },
  idle: () => project.idle(),
  loseDevice: () => project.sw?.debugLoseDevice?.(),
};
