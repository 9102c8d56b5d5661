// Photos coming in: drag and drop (files, folders, zips) anywhere on the page, paste, the zip
// and folder pickers, and the webcam for training photos; the list of skipped files, the
// embedding progress bar and the Undo of a drop that replaced the empty classes.

import { t } from '../i18n.js';
import { LIMITS } from '../project/project.js';
import { streamDatasetZip, isImageName, ZipError } from '../project/project-zip.js';
import { Camera } from '../camera.js';
import { isContributionZip, mergeContributionFiles } from './collect.js';
import { $, el } from './dom.js';
import { showError, status, setNotice } from './status.js';
import { flush, soon } from './repaint.js';

let project = null;

// ---- skipped files ------------------------------------------------------------------------

// The skipped list shows its first SKIPPED_SHOWN entries and a count of the rest: a drop of
// thousands of unusable files appends one line each (until the cap), never rebuilds the list.
const SKIPPED_SHOWN = 200;
export let skipped = [];

function skippedItem(s) {
  const reason = s.reason.startsWith('msg:') ? s.reason.slice(4) : t(s.reason, s.params || {});
  return el('li', {}, el('span', { class: 'skip-name', text: s.name, dir: 'auto' }), el('span', { class: 'skip-reason', text: ` — ${reason}` }));
}

function renderSkippedMore() {
  const more = skipped.length - SKIPPED_SHOWN;
  let li = $('skipped-more');
  if (more <= 0) { li?.remove(); return; }
  if (!li) { li = el('li', { id: 'skipped-more', class: 'skip-more' }); $('skipped-list').append(li); }
  li.textContent = t('skippedMore', { n: more });
}

function addSkipped(name, reason, params) {
  skipped.push({ name, reason, params });
  if (skipped.length <= SKIPPED_SHOWN) {
    const list = $('skipped-list');
    const li = skippedItem(skipped[skipped.length - 1]);
    const more = $('skipped-more');
    if (more) list.insertBefore(li, more); else list.append(li);
  } else renderSkippedMore();
  $('skipped').hidden = false;
}

export function renderSkipped() {
  $('skipped-list').replaceChildren(...skipped.slice(0, SKIPPED_SHOWN).map(skippedItem));
  renderSkippedMore();
  $('skipped').hidden = skipped.length === 0;
}

// The bar shows and hides at once; in between it moves with the page's other live updates.
function renderEmbedProgress(p) {
  if (p.shown && !$('embed-progress').hidden) { soon('progress', () => drawEmbedProgress(p)); return; }
  if (!p.shown) flush(); // the add ended: what waits (the cards' counts) is shown now, before the bar hides
  drawEmbedProgress(p);
}

function drawEmbedProgress({ shown, done, total, text }) {
  const row = $('embed-progress');
  row.hidden = !shown;
  if (!shown) return;
  $('embed-bar').max = Math.max(1, total);
  $('embed-bar').value = done;
  $('embed-text').textContent = text;
}

// ---- drag and drop, paste, folders, zips --------------------------------------------------

function readAllEntries(reader) {
  return new Promise((resolve, reject) => {
    const out = [];
    const next = () => reader.readEntries((batch) => {
      if (!batch.length) { resolve(out); return; }
      out.push(...batch);
      next();
    }, reject);
    next();
  });
}

const entryFile = (entry) => new Promise((resolve, reject) => entry.file(resolve, reject));

async function walkEntry(entry, path, out, depth = 0) {
  if (depth > 16 || out.length > LIMITS.maxImages * 2) return;
  if (entry.isFile) {
    out.push({ path: [...path, entry.name], file: await entryFile(entry) });
  } else if (entry.isDirectory) {
    if (entry.name.startsWith('.') || entry.name === '__MACOSX') return;
    const children = await readAllEntries(entry.createReader());
    for (const child of children) await walkEntry(child, [...path, entry.name], out, depth + 1);
  }
}

/** Turns files with their folder paths into add items: the class is the parent folder (or `target`). */
function itemsFromPaths(files, target) {
  const items = [];
  for (const { path, file } of files) {
    const name = path.join('/');
    if (path[path.length - 1].startsWith('.')) continue;
    if (/\.zip$/i.test(file.name)) continue;
    if (!isImageName(file.name) && !(file.type || '').startsWith('image/')) { addSkipped(name, 'skipNotImage'); continue; }
    const label = target || (path.length >= 2 ? path[path.length - 2] : null);
    items.push({ label, name, file });
  }
  return items;
}

// The page sends consecutive photos of one class to the engine together (project.js, 8 a call):
// a zip that lists its classes photo by photo would be embedded one photo a call. Each zip batch
// (32 photos) goes on grouped by class, in the order the classes first appear in it, each class's
// photos in the zip's order.
function groupedByClass(items) {
  const groups = new Map();
  for (const it of items) {
    if (!groups.has(it.label)) groups.set(it.label, []);
    groups.get(it.label).push(it);
  }
  return [...groups.values()].flat();
}

/**
 * A zip of class folders, opened (its directory read and checked, nothing inflated yet):
 * `{count, labelled, batches, close}` where `batches` yields its photos as add items a batch at a time,
 * as the zip worker inflates them (project-zip.js `streamDatasetZip`); `target` is the class of
 * the photos outside any folder. Entries refused are listed as skipped as they are met; a zip
 * refused whole is listed and gives nothing (null), one found crafted while being read stops there.
 */
async function openZip(file, target) {
  if (file.size > 2 * 1024 * 1024 * 1024) { addSkipped(file.name, 'skipTooBig', { n: 2048 }); return null; }
  const refused = (e) => {
    if (e instanceof ZipError) addSkipped(file.name, e.code, e.params);
    else addSkipped(file.name, `msg:${e.message}`);
  };
  let zip;
  try {
    zip = await streamDatasetZip(file);
  } catch (e) {
    refused(e);
    return null;
  }
  for (const s of zip.skipped) addSkipped(`${file.name}: ${s.name}`, s.reason, s.params);
  async function* batches() {
    try {
      for await (const b of zip.batches) {
        for (const s of b.skipped) addSkipped(`${file.name}: ${s.name}`, s.reason, s.params);
        yield groupedByClass(b.items.map((it) => ({ label: it.label ?? target, name: `${file.name}: ${it.name}`, bytes: it.bytes })));
      }
    } catch (e) {
      refused(e);
    } finally {
      zip.close();
    }
  }
  return { count: zip.count, labelled: target != null || zip.unlabelled === 0, batches: batches(), close: zip.close };
}

/**
 * The photos of `items` (an array) then of each opened zip, as one stream of arrays for
 * project.addClassFolders, with its count and whether every photo has a class.
 */
function intakeStream(items, zips) {
  async function* all() {
    try {
      if (items.length) yield items;
      for (const z of zips) yield* z.batches;
    } finally {
      for (const z of zips) z.close(); // the zip readers not read to the end, when the add stopped early
    }
  }
  return {
    stream: all(),
    count: items.length + zips.reduce((n, z) => n + z.count, 0),
    labelled: items.every((it) => it.label) && zips.every((z) => z.labelled),
  };
}

/** Adds a drop's or a picker's photos and zips (`addClassFolders`): zips are read as they are embedded. */
async function addIntake(items, zipFiles, target, opts = {}) {
  // A phone's contribution (its manifest says who took it) is merged by class name, never as
  // class folders that could replace the project's empty classes.
  const datasets = [];
  const contributions = [];
  for (const f of zipFiles) (await isContributionZip(f) ? contributions : datasets).push(f);
  if (contributions.length) {
    await mergeContributionFiles(contributions);
    if (!items.length && !datasets.length) return;
  }
  const zips = [];
  for (const f of datasets) {
    const z = await openZip(f, target);
    if (z) zips.push(z);
  }
  if (!zips.length) { await project.addClassFolders(items, opts); return; }
  const { stream, count, labelled } = intakeStream(items, zips);
  await project.addClassFolders(stream, { ...opts, count, labelled });
}

async function handleDrop(ev) {
  const dt = ev.dataTransfer;
  if (!dt) return;
  const cardEl = ev.target.closest?.('.class-card');
  const target = cardEl ? cardEl.dataset.label : null;
  const entries = [...(dt.items || [])].filter((i) => i.kind === 'file').map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  const plainFiles = [...dt.files];
  const paths = [];
  const zips = [];
  if (entries.length && entries.every(Boolean)) {
    for (const entry of entries) {
      if (entry.isFile && /\.zip$/i.test(entry.name)) {
        zips.push(await entryFile(entry));
      } else if (entry.isDirectory) {
        await walkEntry(entry, [], paths);
      } else {
        const file = await entryFile(entry);
        paths.push({ path: [file.name], file, loose: true });
      }
    }
  } else {
    for (const file of plainFiles) {
      if (/\.zip$/i.test(file.name)) zips.push(file);
      else paths.push({ path: [file.name], file, loose: true });
    }
  }
  const fallback = target || project.activeLabel || null;
  const loose = paths.filter((p) => p.loose);
  const nested = paths.filter((p) => !p.loose);
  const items = [...itemsFromPaths(loose, fallback), ...itemsFromPaths(nested, target)];
  // onto a card, or loose photos: they go to that class, nothing is replaced
  await addIntake(items, zips, target, { loose: target != null || loose.length > 0 });
}

function bindDragDrop() {
  let depth = 0;
  const overlay = (on) => document.body.classList.toggle('dragging', on);
  const clearTargets = () => { for (const c of document.querySelectorAll('.class-card.drop-target')) c.classList.remove('drop-target'); };
  const hasFiles = (ev) => [...(ev.dataTransfer?.types || [])].includes('Files');
  document.addEventListener('dragenter', (ev) => {
    if (!hasFiles(ev)) return;
    depth += 1;
    overlay(true);
  });
  document.addEventListener('dragleave', () => { depth = Math.max(0, depth - 1); if (!depth) overlay(false); });
  document.addEventListener('dragover', (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = 'copy';
    clearTargets();
    ev.target.closest?.('.class-card')?.classList.add('drop-target');
  });
  document.addEventListener('drop', (ev) => {
    // A view that takes a drop itself cancels it first (a test photo on the Test step, ui/testing.js).
    const taken = ev.defaultPrevented;
    ev.preventDefault();
    depth = 0;
    overlay(false);
    clearTargets();
    if (!taken) handleDrop(ev).catch((e) => showError('addFailed', e));
  });
  document.addEventListener('paste', (ev) => {
    if (ev.target.closest?.('input, textarea')) return;
    const files = [...(ev.clipboardData?.files || [])].filter((f) => f.type.startsWith('image/'));
    if (!files.length) return;
    ev.preventDefault();
    const label = project.activeLabel || project.classes[0]?.label;
    if (!label) { status(t('pasteNoTarget')); return; }
    project.addImages(files.map((file, i) => ({ label, name: file.name || `pasted-${i + 1}.png`, file })));
  });
  $('zip-input').addEventListener('change', (ev) => {
    const f = ev.target.files[0];
    ev.target.value = '';
    if (f) addIntake([], [f], null).catch((e) => showError('addFailed', e));
  });
  $('folder-input').addEventListener('change', (ev) => {
    const files = [...ev.target.files];
    ev.target.value = '';
    const paths = files.map((file) => ({ path: (file.webkitRelativePath || file.name).split('/'), file }));
    project.addClassFolders(itemsFromPaths(paths, null)).catch((e) => showError('addFailed', e));
  });
}

// ---- webcam for training images -----------------------------------------------------------

let trainCam = null;
let camTarget = null;
let camTimer = null;
let camFrames = 0;
let camPending = 0; // frames grabbed and still being encoded

/** Frames being taken or encoded (for the tests: sortwiseDebug.state.cameraPending). */
export function cameraPending() { return camPending + (camTimer ? 1 : 0); }

export async function openCamera(label) {
  camTarget = label;
  camFrames = 0;
  $('camera-panel').hidden = false;
  $('camera-title').textContent = t('camTitle', { label });
  $('camera-count').textContent = '';
  $('camera-panel').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  trainCam ??= new Camera($('camera-video'));
  try {
    if (!trainCam.running) await trainCam.start();
    $('camera-hold').focus();
  } catch (e) {
    showError('camError', e);
    closeCamera();
  }
}

function closeCamera() {
  stopBurst();
  trainCam?.stop();
  $('camera-panel').hidden = true;
}

function startBurst() {
  if (camTimer || !trainCam?.running || !camTarget) return;
  $('camera-hold').classList.add('recording');
  const grab = async () => {
    camPending += 1;
    try {
      const bytes = await trainCam.frameJpeg(480);
      if (bytes && project.classOf(camTarget)) {
        camFrames += 1;
        $('camera-count').textContent = t('camShot', { n: camFrames });
        project.addImages([{ label: camTarget, name: `webcam-${camFrames}.jpg`, bytes }]);
      }
    } finally {
      camPending -= 1;
    }
  };
  grab();
  camTimer = setInterval(grab, 250);
}

function stopBurst() {
  clearInterval(camTimer);
  camTimer = null;
  $('camera-hold').classList.remove('recording');
}

function bindCamera() {
  const hold = $('camera-hold');
  hold.addEventListener('pointerdown', (ev) => { ev.preventDefault(); hold.setPointerCapture?.(ev.pointerId); startBurst(); });
  for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) hold.addEventListener(type, stopBurst);
  hold.addEventListener('keydown', (ev) => { if ((ev.key === ' ' || ev.key === 'Enter') && !ev.repeat) { ev.preventDefault(); startBurst(); } });
  hold.addEventListener('keyup', (ev) => { if (ev.key === ' ' || ev.key === 'Enter') stopBurst(); });
  hold.addEventListener('blur', stopBurst);
  $('camera-switch').addEventListener('click', async () => {
    try { await trainCam?.switch(); } catch (e) { showError('camError', e); }
  });
  $('camera-close').addEventListener('click', closeCamera);
}

export function bindIntake(p) {
  project = p;
  bindDragDrop();
  bindCamera();
  $('skipped-clear').addEventListener('click', () => { skipped = []; renderSkipped(); });
  const on = (type, fn) => project.addEventListener(type, (ev) => fn(ev.detail));
  on('skipped', ({ name, reason, params }) => addSkipped(name, reason, params));
  on('embed-progress', renderEmbedProgress);
  on('intake-undo', ({ prev }) => {
    setNotice('undo', prev && { key: 'intakeReplaced', params: { labels: prev.labels.join(', ') }, action: { key: 'undo', run: () => project.undoIntake() } });
  });
}
