// The sortwise page: classes and images, training, results, testing, save/restore, export/import.
// Everything runs in this tab; the engine (wasm, in a Web Worker) is reached through
// engine/client.js. User-provided text (class names, file names, error messages) is only ever
// rendered with textContent, never as HTML.

import { Sortwise } from './engine/client.js';
import { readManifest } from './engine/weights.js';
import { t, setLang, getLang, defaultLang, onLangChange, formatPct } from './i18n.js';
import { Autosave, Ownership, readSaved, persistStorage, undoReplace, SAVE_VERSION, QuotaError } from './persist.js';
import { datasetFromZipFile, exportProjectZip, importProjectZip, isImageName, ZipError } from './project-zip.js';
import { Camera } from './camera.js';
import { TrainCharts } from './charts.js';

export const LIMITS = {
  maxClasses: 100,
  maxImages: 5000,
  maxLabel: 80,
  maxFileBytes: 50 * 1024 * 1024,
};

const PRESETS = {
  garbage: ['可回收物 Recyclable', '有害垃圾 Hazardous', '厨余垃圾 Kitchen', '其他垃圾 Other'],
  trashnet: ['cardboard', 'glass', 'metal', 'paper', 'plastic', 'trash'],
  empty: [],
};

const DEFAULT_SETTINGS = {
  epochs: 100, lr: 0.001, optimizer: 'adam', valSplit: 0.2, balance: 'auto', labelSmoothing: 0.1,
  seed: 0, patience: 20, augment: 0, finetuneLast: false, l2sp: 0.1, threshold: 0.6, refit: true,
};

// `?device=webgpu` or `?device=cpu` overrides the automatic choice (for testing and comparison).
const DEVICE = ['webgpu', 'cpu'].includes(new URLSearchParams(location.search).get('device'))
  ? new URLSearchParams(location.search).get('device') : 'auto';

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'aria') for (const [a, av] of Object.entries(v)) e.setAttribute(`aria-${a}`, av);
    else e[k] = v;
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

// ---- state --------------------------------------------------------------------------------------

const state = {
  manifest: [],
  arch: null,
  sw: null,
  classes: [], // [{label, keys: [imageKey...]}]
  images: new Map(), // key -> {key, label, thumb: Uint8Array, emb: Float32Array, id, url}
  idToKey: new Map(),
  nextKey: 1,
  settings: { ...DEFAULT_SETTINGS },
  model: null, // Uint8Array of the trained or imported .sortwise
  modelLabels: null,
  report: null, // last training report, misclassified entries carry image keys
  stale: false,
  training: false,
  activeLabel: null,
  lastPrediction: null,
  skipped: [],
  shelved: [], // saved models this page could not use: kept in storage, never dropped by a save
};

// One engine operation at a time (adds, removals, training, switching); predictions bypass it.
let queue = Promise.resolve();
function serial(fn) {
  const run = queue.then(fn, fn);
  queue = run.catch(() => {});
  return run;
}

// ---- status, errors -----------------------------------------------------------------------------

function status(text, progress) {
  $('status-text').textContent = text || '';
  const bar = $('status-progress');
  if (progress == null) { bar.hidden = true; return; }
  bar.hidden = false;
  if (progress === 'indeterminate') bar.removeAttribute('value');
  else { bar.max = 1; bar.value = progress; }
}

function showError(contextKey, err, params) {
  const msg = err instanceof Error ? err.message : String(err ?? '');
  $('error-text').textContent = msg ? `${t(contextKey, params)}: ${msg}` : t(contextKey, params);
  $('error').hidden = false;
  console.warn(`[sortwise] ${t(contextKey, params)}:`, msg);
}

function clearError() { $('error').hidden = true; }

// The skipped list shows its first SKIPPED_SHOWN entries and a count of the rest: a drop of
// thousands of unusable files appends one line each (until the cap), never rebuilds the list.
const SKIPPED_SHOWN = 200;

function skippedItem(s) {
  const reason = s.reason.startsWith('msg:') ? s.reason.slice(4) : t(s.reason, s.params || {});
  return el('li', {}, el('span', { class: 'skip-name', text: s.name, dir: 'auto' }), el('span', { class: 'skip-reason', text: ` — ${reason}` }));
}

function renderSkippedMore() {
  const more = state.skipped.length - SKIPPED_SHOWN;
  let li = $('skipped-more');
  if (more <= 0) { li?.remove(); return; }
  if (!li) { li = el('li', { id: 'skipped-more', class: 'skip-more' }); $('skipped-list').append(li); }
  li.textContent = t('skippedMore', { n: more });
}

function addSkipped(name, reason, params) {
  state.skipped.push({ name, reason, params });
  if (state.skipped.length <= SKIPPED_SHOWN) {
    const list = $('skipped-list');
    const li = skippedItem(state.skipped[state.skipped.length - 1]);
    const more = $('skipped-more');
    if (more) list.insertBefore(li, more); else list.append(li);
  } else renderSkippedMore();
  $('skipped').hidden = false;
}

function renderSkipped() {
  $('skipped-list').replaceChildren(...state.skipped.slice(0, SKIPPED_SHOWN).map(skippedItem));
  renderSkippedMore();
  $('skipped').hidden = state.skipped.length === 0;
}

// ---- notices: lasting messages with an optional action (autosave off, another tab, undo) -------

const notices = new Map(); // id -> {key, params, action: {key, run}}

function setNotice(id, notice) {
  if (notice) notices.set(id, notice); else notices.delete(id);
  renderNotices();
}

function renderNotices() {
  const box = $('notices');
  box.replaceChildren(...[...notices].map(([id, n]) => {
    const p = el('div', { class: `notice notice-${id}`, dataset: { notice: id } }, el('span', { class: 'notice-text', text: t(n.key, n.params || {}) }));
    if (n.action) {
      p.append(el('button', { type: 'button', class: 'small notice-action', text: t(n.action.key), onclick: () => n.action.run() }));
    }
    return p;
  }));
  box.hidden = notices.size === 0;
}

// ---- engine -------------------------------------------------------------------------------------

function renderDevice(sw) {
  const name = $('device-name');
  name.removeAttribute('data-i18n');
  if (!sw) { name.textContent = t('deviceStarting'); return; }
  name.textContent = sw.backend === 'webgpu' ? t('deviceWebgpu') : t('deviceCpu');
  $('device-badge').dataset.backend = sw.backend;
  $('device-badge').title = sw.backendReason || '';
  $('device-reason').textContent = sw.backendReason || '';
}

// `finetune`: the engine also keeps each image's stage input, which fine-tuning the last stage
// trains on (88-800 KB per view instead of 2-8 KB), so it is only on while the setting is.
async function createEngine(arch, augment, finetune = state.settings.finetuneLast) {
  const entry = state.manifest.find((b) => b.arch === arch);
  const mb = (x) => (x / 1e6).toFixed(1);
  status(t('loadingEngine'), 'indeterminate');
  let sw = null;
  sw = await Sortwise.create({
    arch,
    device: DEVICE,
    augment,
    finetune: Boolean(finetune),
    onStatus: (s) => {
      if (s.phase === 'weights') {
        const total = s.total || entry?.bytes || 0;
        status(t('loadingWeights', { arch, loaded: mb(s.loaded || 0), total: mb(total) }), total ? (s.loaded || 0) / total : 'indeterminate');
      } else if (s.phase === 'backend' && sw && state.sw === sw) {
        renderDevice(sw);
        status(t('backendChanged', { backend: s.backend === 'webgpu' ? t('deviceWebgpu') : t('deviceCpu'), reason: s.reason || '' }));
      }
    },
  });
  return sw;
}

function archLabel(b) {
  return `${b.arch} (${(b.bytes / 1e6).toFixed(1)} MB)`;
}

function renderArchPicker() {
  const sel = $('arch');
  sel.replaceChildren(...state.manifest.map((b) => el('option', { value: b.arch, text: archLabel(b) })));
  sel.value = state.arch;
}

function defaultArch() {
  const names = state.manifest.map((b) => b.arch);
  if (names.includes('resnet18')) return 'resnet18';
  if (names.includes('efficientnet_lite0')) return 'efficientnet_lite0';
  return names[0];
}

// ---- images and classes -------------------------------------------------------------------------

function classOf(label) { return state.classes.find((c) => c.label === label); }
function totalImages() { return state.images.size; }

function validateLabel(raw, { except = null } = {}) {
  const label = String(raw ?? '').trim();
  if (!label) throw new Error(t('errEmptyLabel'));
  if ([...label].length > LIMITS.maxLabel) throw new Error(t('errLabelLong', { n: LIMITS.maxLabel }));
  if (label !== except && classOf(label)) throw new Error(t('errDuplicateLabel', { label }));
  return label;
}

function ensureClass(label) {
  let c = classOf(label);
  if (c) return c;
  if (state.classes.length >= LIMITS.maxClasses) throw new Error(t('errTooManyClasses', { n: LIMITS.maxClasses }));
  c = { label, keys: [] };
  state.classes.push(c);
  renderClasses();
  return c;
}

function thumbUrl(rec) {
  if (!rec.url) rec.url = URL.createObjectURL(new Blob([rec.thumb], { type: 'image/jpeg' }));
  return rec.url;
}

function addRecord(label, id, thumb, emb, key = state.nextKey++) {
  const rec = { key, label, thumb, emb, id, url: null };
  state.images.set(key, rec);
  state.idToKey.set(id, key);
  classOf(label).keys.push(key);
  autosave.markImage(key);
  return rec;
}

function dropRecord(key) {
  const rec = state.images.get(key);
  if (!rec) return;
  if (rec.url) URL.revokeObjectURL(rec.url);
  state.images.delete(key);
  state.idToKey.delete(rec.id);
  autosave.dropImage(key);
  const c = classOf(rec.label);
  if (c) c.keys = c.keys.filter((k) => k !== key);
}

function markStale() {
  if (state.model || state.report) state.stale = true;
  $('train-stale').hidden = !state.stale;
}

// The add queue: [{label, name, file|bytes}] embedded one by one with a progress bar.
const addJob = { total: 0, done: 0, running: false };

function updateAddProgress() {
  const row = $('embed-progress');
  if (!addJob.running) { row.hidden = true; return; }
  row.hidden = false;
  $('embed-bar').max = Math.max(1, addJob.total);
  $('embed-bar').value = addJob.done;
  $('embed-text').textContent = t('embedding', { done: addJob.done, total: addJob.total });
}

async function readBytes(item) {
  if (item.bytes) return item.bytes;
  return new Uint8Array(await item.file.arrayBuffer());
}

// Photos of one class go to the engine this many at a time: one backbone pass over several is
// faster per photo than one each (batched convolutions, and work for every thread), while the
// progress bar still moves every few photos.
const ADD_BATCH = 8;

function addImages(items, { intake = false } = {}) {
  items = items.filter(Boolean);
  if (!intake) forgetIntakeUndo();
  if (!items.length) return Promise.resolve();
  addJob.total += items.length;
  addJob.running = true;
  updateAddProgress();
  return serial(async () => {
    const advance = (n) => { addJob.done += n; updateAddProgress(); };
    let batch = []; // [{item, label}] admitted, same class, not yet embedded
    const flush = async () => {
      const group = batch;
      batch = [];
      if (!group.length) return;
      try {
        await addBatch(group);
      } catch (e) {
        for (const { item } of group) addSkipped(item.name, `msg:${e.message}`);
      } finally {
        advance(group.length);
      }
    };
    try {
      for (const item of items) {
        const label = admit(item, batch.length);
        if (!label) { advance(1); continue; }
        if (batch.length && (batch[0].label !== label || batch.length >= ADD_BATCH)) await flush();
        batch.push({ item, label });
      }
      await flush();
    } finally {
      if (addJob.done >= addJob.total) {
        addJob.running = false;
        addJob.done = 0;
        addJob.total = 0;
        updateAddProgress();
      }
      scheduleSave();
    }
  });
}

// The class `item` goes to, creating it if needed; null when it is skipped (and listed so).
// `pending`: photos admitted before it but not added yet, which count toward the limit.
function admit(item, pending) {
  if (!item.label) { addSkipped(item.name, 'skipNoClass'); return null; }
  const size = item.bytes ? item.bytes.byteLength : item.file.size;
  if (size === 0) { addSkipped(item.name, 'skipEmpty'); return null; }
  if (size > LIMITS.maxFileBytes) { addSkipped(item.name, 'skipTooBig', { n: LIMITS.maxFileBytes / 1048576 }); return null; }
  if (totalImages() + pending >= LIMITS.maxImages) { addSkipped(item.name, 'skipTooMany', { n: LIMITS.maxImages }); return null; }
  try {
    const label = validateLabel(item.label, { except: item.label.trim() });
    ensureClass(label);
    return label;
  } catch (e) {
    addSkipped(item.name, `msg:${e.message}`);
    return null;
  }
}

// Embed admitted photos of one class in one engine call; a file that cannot be read or decoded
// is listed as skipped and the others are still added.
async function addBatch(group) {
  const { label } = group[0];
  const ready = [];
  const bytes = [];
  for (const g of group) {
    try {
      bytes.push(await readBytes(g.item));
      ready.push(g);
    } catch (e) {
      addSkipped(g.item.name, `msg:${e.message}`);
    }
  }
  if (!ready.length) return;
  const results = await state.sw.addImages(label, bytes);
  if (!classOf(label)) ensureClass(label); // deleted meanwhile: keep the engine and the page in step
  let added = 0;
  results.forEach((r, k) => {
    if (r.error !== undefined) { addSkipped(ready[k].item.name, `msg:${r.error}`); return; }
    appendThumb(addRecord(label, r.id, r.thumbnail, r.embedding));
    added += 1;
  });
  if (added) markStale();
}

async function removeImage(key) {
  const rec = state.images.get(key);
  if (!rec) return;
  await serial(async () => {
    try {
      await state.sw.removeImage(rec.id);
    } catch (e) { showError('addFailed', e); return; }
    dropRecord(key);
    markStale();
    const card = cardFor(rec.label);
    const fig = card?.querySelector(`.thumb[data-key="${key}"]`);
    const c = classOf(rec.label);
    if (fig && c && c.keys.length) {
      const after = fig.nextElementSibling;
      const next = after?.classList.contains('thumb') ? after : fig.previousElementSibling;
      fig.remove();
      updateCardCount(card, c);
      next?.querySelector('.thumb-del')?.focus({ preventScroll: true });
    } else renderCard(rec.label);
    scheduleSave();
  });
}

async function addClassFromInput() {
  clearError();
  forgetIntakeUndo();
  try {
    const label = validateLabel($('new-class').value);
    ensureClass(label);
    state.activeLabel = label;
    $('new-class').value = '';
    renderClasses();
    scheduleSave();
  } catch (e) { showError('addClass', e); }
}

async function renameClass(oldLabel, raw) {
  let label;
  try { label = validateLabel(raw, { except: oldLabel }); } catch (e) { showError('rename', e); return false; }
  if (label === oldLabel) return true;
  forgetIntakeUndo();
  return serial(async () => {
    const c = classOf(oldLabel);
    if (!c) return false;
    try {
      if (c.keys.length) await state.sw.renameClass(oldLabel, label);
    } catch (e) { showError('rename', e); return false; }
    c.label = label;
    if (expandedCards.delete(oldLabel)) expandedCards.add(label);
    for (const k of c.keys) { state.images.get(k).label = label; autosave.markImage(k); }
    if (state.activeLabel === oldLabel) state.activeLabel = label;
    markStale();
    renderClasses();
    scheduleSave();
    return true;
  });
}

async function deleteClass(label, { ask = true } = {}) {
  const c = classOf(label);
  if (!c) return;
  forgetIntakeUndo();
  if (ask && c.keys.length && !window.confirm(t('deleteClassConfirm', { label, n: c.keys.length }))) return;
  await serial(async () => {
    try {
      if (c.keys.length) await state.sw.removeClass(label);
    } catch (e) { showError('deleteClass', e); return; }
    for (const k of [...c.keys]) dropRecord(k);
    state.classes = state.classes.filter((x) => x !== c);
    if (state.activeLabel === label) state.activeLabel = state.classes[0]?.label ?? null;
    markStale();
    renderClasses();
    scheduleSave();
  });
}

async function applyPreset(name) {
  forgetIntakeUndo();
  const had = totalImages();
  if (had && !window.confirm(t('presetConfirm'))) return;
  await serial(async () => {
    if (had) await saveNow().catch(() => {}); // the project as it is now becomes the backup
    for (const c of [...state.classes]) {
      if (c.keys.length) {
        try { await state.sw.removeClass(c.label); } catch (e) { showError('deleteClass', e); return; }
      }
      for (const k of [...c.keys]) dropRecord(k);
    }
    state.classes = PRESETS[name].map((label) => ({ label, keys: [] }));
    state.activeLabel = state.classes[0]?.label ?? null;
    markStale();
    renderClasses();
    if (!had) { scheduleSave(); return; }
    autosave.replaceAll([]);
    const res = await saveNow().catch(() => null);
    if (res?.saved) offerUndo('presetUndo');
  });
}

// ---- class cards --------------------------------------------------------------------------------

function countText(n) { return n === 1 ? t('image1') : t('images', { n }); }

function renderClasses() {
  const grid = $('classes');
  const cards = state.classes.map((c) => buildCard(c));
  grid.replaceChildren(...cards);
  $('no-classes').hidden = state.classes.length > 0;
}

function cardFor(label) {
  return [...$('classes').children].find((x) => x.dataset.label === label) || null;
}

function renderCard(label) {
  const c = classOf(label);
  const old = cardFor(label);
  if (!c) { old?.remove(); return; }
  const card = buildCard(c);
  if (old) old.replaceWith(card); else $('classes').append(card);
  $('no-classes').hidden = state.classes.length > 0;
}

function thumbFigure(rec) {
  const img = el('img', { src: thumbUrl(rec), alt: rec.label, loading: 'lazy', decoding: 'async' });
  const del = el('button', { type: 'button', class: 'thumb-del', text: '×', title: t('removeImage'), aria: { label: t('removeImage') } });
  del.addEventListener('click', () => removeImage(rec.key));
  return el('figure', { class: 'thumb', dataset: { key: String(rec.key) } }, img, del);
}

/** Adds one thumbnail to a card that is already shown (cheaper than rebuilding the card). */
function appendThumb(rec) {
  const card = cardFor(rec.label);
  if (!card) { renderCard(rec.label); return; }
  const c = classOf(rec.label);
  const thumbs = card.querySelector('.thumbs');
  thumbs.querySelector(':scope > .empty')?.remove();
  // The rendered thumbnails are always the first ones of the class: a photo is appended only
  // when all before it are shown, else the sentinel renders it when the user scrolls there.
  const shown = renderedThumbs(thumbs);
  const sentinel = thumbs.querySelector(':scope > .thumb-more');
  if (shown === c.keys.length - 1 && shown < THUMB_PAGE) thumbs.insertBefore(thumbFigure(rec), sentinel);
  else if (thumbObserver && sentinel) { thumbObserver.unobserve(sentinel); thumbObserver.observe(sentinel); }
  else showMoreThumbs(card);
  updateCardCount(card, c);
}

// A class of hundreds of photos: the card renders THUMB_PAGE thumbnails and then more as its
// sentinel (the last grid cell) scrolls into view, so a 500-photo class does not build 500 <img>
// up front. "Show all" lets the card span the grid's width without a height limit.
const THUMB_PAGE = 40;
const SHOW_ALL_FROM = 16;
const expandedCards = new Set(); // labels whose card shows all its photos

const thumbObserver = typeof IntersectionObserver === 'function'
  ? new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      const card = e.target.closest('.class-card');
      if (card) showMoreThumbs(card);
    }
  }, { rootMargin: '200px' })
  : null;

function renderedThumbs(thumbs) { return thumbs.querySelectorAll(':scope > .thumb').length; }

function showMoreThumbs(card, n = THUMB_PAGE) {
  const c = classOf(card.dataset.label);
  const thumbs = card.querySelector('.thumbs');
  const sentinel = thumbs?.querySelector(':scope > .thumb-more');
  if (!c || !sentinel) return;
  const from = renderedThumbs(thumbs);
  const end = Math.min(c.keys.length, from + n);
  const frag = document.createDocumentFragment();
  for (let i = from; i < end; i++) {
    const rec = state.images.get(c.keys[i]);
    if (rec) frag.append(thumbFigure(rec));
  }
  thumbs.insertBefore(frag, sentinel);
  if (thumbObserver) {
    // observing again reports the sentinel's current state: still in view renders the next page
    thumbObserver.unobserve(sentinel);
    if (end < c.keys.length) thumbObserver.observe(sentinel);
  } else if (end < c.keys.length) showMoreThumbs(card, c.keys.length - end);
  updateCardCount(card, c);
}

function updateCardCount(card, c) {
  card.querySelector('.count').textContent = countText(c.keys.length);
  const btn = card.querySelector('.show-all');
  if (!btn) return;
  btn.hidden = c.keys.length < SHOW_ALL_FROM;
  const expanded = expandedCards.has(c.label);
  btn.textContent = expanded ? t('showFewer') : t('showAll', { n: c.keys.length });
  btn.setAttribute('aria-expanded', String(expanded));
}

function toggleShowAll(card) {
  const label = card.dataset.label;
  const on = !expandedCards.has(label);
  if (on) expandedCards.add(label); else expandedCards.delete(label);
  card.classList.toggle('expanded', on);
  updateCardCount(card, classOf(label));
  if (on) showMoreThumbs(card);
  else card.scrollIntoView({ block: 'nearest' });
}

function buildCard(c) {
  const label = c.label;
  const title = el('h3', { class: 'class-title', text: label, dir: 'auto' });
  const count = el('span', { class: 'count', text: countText(c.keys.length) });
  const renameBtn = el('button', { type: 'button', class: 'small rename', text: t('rename'), aria: { label: `${t('rename')}: ${label}` } });
  const deleteBtn = el('button', { type: 'button', class: 'small danger delete-class', text: t('deleteClass'), aria: { label: `${t('deleteClass')}: ${label}` } });
  const head = el('header', { class: 'card-head' }, el('div', { class: 'title-wrap' }, title, count), el('div', { class: 'card-tools' }, renameBtn, deleteBtn));

  renameBtn.addEventListener('click', () => {
    const input = el('input', { type: 'text', class: 'rename-input', value: label, maxLength: LIMITS.maxLabel, aria: { label: t('renameTo', { label }) } });
    const form = el('form', { class: 'rename-form' }, input, el('button', { type: 'submit', class: 'small', text: 'OK' }));
    let done = false;
    const finish = async (commit) => {
      if (done) return;
      done = true;
      if (commit && !(await renameClass(label, input.value))) { done = false; input.focus(); return; }
      if (!commit) renderCard(label);
    };
    form.addEventListener('submit', (ev) => { ev.preventDefault(); finish(true); });
    input.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') finish(false); });
    head.querySelector('.title-wrap').replaceChildren(form);
    input.focus();
    input.select();
  });
  deleteBtn.addEventListener('click', () => deleteClass(label));

  const thumbs = el('div', { class: 'thumbs' });
  if (!c.keys.length) thumbs.append(el('p', { class: 'empty', text: t('emptyClass') }));
  const sentinel = el('div', { class: 'thumb-more', aria: { hidden: 'true' } });
  thumbs.append(sentinel);
  // Tabbing onto one of the last rendered thumbnails renders the next ones, so the keyboard
  // reaches every photo's delete button, not only the first page's.
  thumbs.addEventListener('focusin', (ev) => {
    const fig = ev.target.closest?.('.thumb');
    if (!fig) return;
    const figs = thumbs.querySelectorAll(':scope > .thumb');
    if (figs[figs.length - 1] === fig || figs[figs.length - 2] === fig) showMoreThumbs(card);
  });
  const showAll = el('button', { type: 'button', class: 'small show-all', hidden: true });
  showAll.addEventListener('click', () => toggleShowAll(card));

  const input = el('input', { type: 'file', multiple: true, accept: 'image/*', class: 'visually-hidden file-input' });
  input.addEventListener('change', () => {
    const files = [...input.files];
    input.value = '';
    addImages(files.map((file) => ({ label, name: file.name, file })));
  });
  const addBtn = el('label', { class: 'btn file-btn small' }, el('span', { text: t('addFiles') }), input);
  const camBtn = el('button', { type: 'button', class: 'small webcam', text: t('webcam') });
  camBtn.addEventListener('click', () => openCamera(label));
  const actions = el('div', { class: 'card-actions' }, addBtn, camBtn, showAll);

  const card = el('article', { class: 'class-card', dataset: { label }, tabIndex: -1 }, head, thumbs, actions);
  card.setAttribute('aria-label', label);
  if (state.activeLabel === label) card.classList.add('active');
  if (expandedCards.has(label)) card.classList.add('expanded');
  showMoreThumbs(card);
  card.addEventListener('focusin', () => setActive(label));
  card.addEventListener('pointerdown', () => setActive(label));
  return card;
}

function setActive(label) {
  if (state.activeLabel === label) return;
  state.activeLabel = label;
  for (const card of $('classes').children) card.classList.toggle('active', card.dataset.label === label);
}

// ---- drag and drop, paste, folders, zips --------------------------------------------------------

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

async function walkEntry(entry, path, out, depth = 0) {
  if (depth > 16 || out.length > LIMITS.maxImages * 2) return;
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ path: [...path, entry.name], file });
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

/** The add items of a zip of class folders (a refused zip is listed as skipped: no items). */
async function zipItems(file, target) {
  if (file.size > 2 * 1024 * 1024 * 1024) { addSkipped(file.name, 'skipTooBig', { n: 2048 }); return []; }
  let data;
  try {
    data = await datasetFromZipFile(file);
  } catch (e) {
    if (e instanceof ZipError) addSkipped(file.name, e.code, e.params);
    else addSkipped(file.name, `msg:${e.message}`);
    return [];
  }
  for (const s of data.skipped) addSkipped(`${file.name}: ${s.name}`, s.reason, s.params);
  return data.items.map((it) => ({ label: it.label ?? target, name: `${file.name}: ${it.name}`, bytes: it.bytes }));
}

// ---- intake: class folders into a page whose classes are all empty ------------------------------

// The undo of the last replacement of empty classes: {labels, active}; null when there is none.
// Kept in memory, not in the storage backup: the replaced classes held no photos, and store.js
// keeps a backup only of a project with photos or a model (its older backup would come back).
let intakeUndo = null;

/** The user changed the project otherwise: the replacement is no longer what Undo would undo. */
function forgetIntakeUndo() {
  if (!intakeUndo) return;
  intakeUndo = null;
  setNotice('undo', null);
}

/**
 * Adds `items`, the photos of a drop or a picked zip/folder. When every class is empty (the fresh
 * page's four presets, say) and all photos come with their class folder, those folders replace the
 * empty classes instead of landing beside them, with an Undo in the notices.
 */
async function addClassFolders(items, { loose = false } = {}) {
  forgetIntakeUndo();
  const replace = !loose && items.length > 0 && items.every((it) => it.label)
    && state.classes.length > 0 && totalImages() === 0 && !addJob.running
    && state.classes.every((c) => !c.keys.length);
  if (!replace) { await addImages(items); return; }
  const prev = { labels: state.classes.map((c) => c.label), active: state.activeLabel };
  state.classes = [];
  state.activeLabel = null;
  renderClasses();
  await addImages(items, { intake: true });
  if (!state.classes.length) {
    // nothing of it could be added: the empty classes come back as they were
    state.classes = prev.labels.map((label) => ({ label, keys: [] }));
    state.activeLabel = prev.active;
    renderClasses();
    scheduleSave();
    return;
  }
  if (!classOf(state.activeLabel)) setActive(state.classes[0].label);
  intakeUndo = prev;
  setNotice('undo', { key: 'intakeReplaced', params: { labels: prev.labels.join(', ') }, action: { key: 'undo', run: undoIntake } });
}

async function undoIntake() {
  const prev = intakeUndo;
  forgetIntakeUndo();
  if (!prev) return;
  await serial(async () => {
    for (const c of [...state.classes]) {
      if (c.keys.length) {
        try { await state.sw.removeClass(c.label); } catch (e) { showError('deleteClass', e); return; }
      }
      for (const k of [...c.keys]) dropRecord(k);
    }
    state.classes = prev.labels.map((label) => ({ label, keys: [] }));
    state.activeLabel = classOf(prev.active) ? prev.active : state.classes[0]?.label ?? null;
    markStale();
    renderClasses();
    scheduleSave();
    status(t('intakeUndone'));
  });
}

async function handleDrop(ev) {
  const dt = ev.dataTransfer;
  if (!dt) return;
  const cardEl = ev.target.closest?.('.class-card');
  const target = cardEl ? cardEl.dataset.label : null;
  if (ev.target.closest?.('#test-drop')) {
    const f = [...dt.files].find((x) => x.type.startsWith('image/') || isImageName(x.name));
    if (f) predictFile(f);
    return;
  }
  const entries = [...(dt.items || [])].filter((i) => i.kind === 'file').map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  const plainFiles = [...dt.files];
  const paths = [];
  const zips = [];
  if (entries.length && entries.every(Boolean)) {
    for (const entry of entries) {
      if (entry.isFile && /\.zip$/i.test(entry.name)) {
        zips.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
      } else if (entry.isDirectory) {
        await walkEntry(entry, [], paths);
      } else {
        const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
        paths.push({ path: [file.name], file, loose: true });
      }
    }
  } else {
    for (const file of plainFiles) {
      if (/\.zip$/i.test(file.name)) zips.push(file);
      else paths.push({ path: [file.name], file, loose: true });
    }
  }
  const fallback = target || state.activeLabel || null;
  const loose = paths.filter((p) => p.loose);
  const nested = paths.filter((p) => !p.loose);
  const items = [...itemsFromPaths(loose, fallback), ...itemsFromPaths(nested, target)];
  for (const z of zips) items.push(...await zipItems(z, target));
  // onto a card, or loose photos: they go to that class, nothing is replaced
  await addClassFolders(items, { loose: target != null || loose.length > 0 });
}

function setupDragDrop() {
  let depth = 0;
  const overlay = (on) => document.body.classList.toggle('dragging', on);
  document.addEventListener('dragenter', (ev) => {
    if (![...(ev.dataTransfer?.types || [])].includes('Files')) return;
    depth += 1;
    overlay(true);
  });
  document.addEventListener('dragleave', () => { depth = Math.max(0, depth - 1); if (!depth) overlay(false); });
  document.addEventListener('dragover', (ev) => {
    if (![...(ev.dataTransfer?.types || [])].includes('Files')) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = 'copy';
    for (const c of document.querySelectorAll('.class-card.drop-target')) c.classList.remove('drop-target');
    ev.target.closest?.('.class-card')?.classList.add('drop-target');
  });
  document.addEventListener('drop', (ev) => {
    ev.preventDefault();
    depth = 0;
    overlay(false);
    for (const c of document.querySelectorAll('.class-card.drop-target')) c.classList.remove('drop-target');
    handleDrop(ev).catch((e) => showError('addFailed', e));
  });
  document.addEventListener('paste', (ev) => {
    if (ev.target.closest?.('input, textarea')) return;
    const files = [...(ev.clipboardData?.files || [])].filter((f) => f.type.startsWith('image/'));
    if (!files.length) return;
    ev.preventDefault();
    const label = state.activeLabel || state.classes[0]?.label;
    if (!label) { status(t('pasteNoTarget')); return; }
    addImages(files.map((file, i) => ({ label, name: file.name || `pasted-${i + 1}.png`, file })));
  });
  $('zip-input').addEventListener('change', (ev) => {
    const f = ev.target.files[0];
    ev.target.value = '';
    if (f) zipItems(f, null).then((items) => addClassFolders(items)).catch((e) => showError('addFailed', e));
  });
  $('folder-input').addEventListener('change', (ev) => {
    const files = [...ev.target.files];
    ev.target.value = '';
    const paths = files.map((file) => ({ path: (file.webkitRelativePath || file.name).split('/'), file }));
    addClassFolders(itemsFromPaths(paths, null)).catch((e) => showError('addFailed', e));
  });
}

// ---- webcam for training images -----------------------------------------------------------------

let trainCam = null;
let camTarget = null;
let camTimer = null;
let camFrames = 0;
let camPending = 0; // frames grabbed and still being encoded

async function openCamera(label) {
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
      if (bytes && classOf(camTarget)) {
        camFrames += 1;
        $('camera-count').textContent = t('camShot', { n: camFrames });
        addImages([{ label: camTarget, name: `webcam-${camFrames}.jpg`, bytes }]);
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

function setupCamera() {
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

// ---- training -----------------------------------------------------------------------------------

let charts = null;

function chartLabels() { return { train: t('trainLoss'), val: t('valLoss'), acc: t('chartAcc') }; }

function readSettings() {
  const s = state.settings;
  const num = (id, fallback, { int = false, min = -Infinity, max = Infinity } = {}) => {
    const v = Number($(id).value);
    if (!Number.isFinite(v) || $(id).value === '') return fallback;
    return Math.min(max, Math.max(min, int ? Math.round(v) : v));
  };
  s.epochs = num('set-epochs', DEFAULT_SETTINGS.epochs, { int: true, min: 1, max: 1000 });
  s.lr = num('set-lr', DEFAULT_SETTINGS.lr, { min: 1e-7, max: 10 });
  s.optimizer = $('set-optimizer').value;
  s.valSplit = num('set-valSplit', DEFAULT_SETTINGS.valSplit, { min: 0, max: 0.9 });
  s.balance = $('set-balance').value;
  s.seed = num('set-seed', DEFAULT_SETTINGS.seed, { int: true, min: 0, max: 2 ** 32 - 1 });
  s.patience = num('set-patience', DEFAULT_SETTINGS.patience, { int: true, min: 1, max: 1000 });
  s.labelSmoothing = num('set-labelSmoothing', DEFAULT_SETTINGS.labelSmoothing, { min: 0, max: 0.9 });
  s.augment = num('set-augment', DEFAULT_SETTINGS.augment, { int: true, min: 0, max: 16 });
  s.finetuneLast = $('set-finetuneLast').checked;
  s.refit = $('set-refit').checked;
  s.l2sp = num('set-l2sp', DEFAULT_SETTINGS.l2sp, { min: 0, max: 100 });
  return s;
}

function renderSettings() {
  const s = state.settings;
  for (const k of ['epochs', 'lr', 'valSplit', 'seed', 'patience', 'labelSmoothing', 'augment', 'l2sp']) $(`set-${k}`).value = String(s[k]);
  $('set-optimizer').value = s.optimizer;
  $('set-balance').value = s.balance;
  $('set-finetuneLast').disabled = false;
  $('set-finetuneLast').checked = Boolean(s.finetuneLast);
  $('set-refit').checked = s.refit !== false;
  $('set-l2sp').disabled = !s.finetuneLast;
  $('threshold').value = String(s.threshold);
  $('threshold-value').textContent = Number(s.threshold).toFixed(2);
}

function setTraining(on) {
  state.training = on;
  document.body.classList.toggle('training', on);
  $('train-btn').disabled = on;
  $('cancel-btn').hidden = !on;
  for (const id of ['arch', 'apply-preset', 'new-project', 'import-project']) $(id).disabled = on;
}

async function train() {
  clearError();
  if (state.training) return;
  const withImages = state.classes.filter((c) => c.keys.length);
  const empty = state.classes.filter((c) => !c.keys.length);
  if (withImages.length < 2) { showError('trainFailed', new Error(t('trainNeedClasses'))); return; }
  const leftOut = empty.map((c) => c.label);
  if (empty.length && !window.confirm(t('trainLeaveOutEmpty', { labels: leftOut.join(', '), n: withImages.length }))) {
    status(t('trainEmptyClass', { label: leftOut[0] }));
    return;
  }
  const s = readSettings();
  const opts = {
    epochs: s.epochs, optimizer: s.optimizer, lr: s.lr, valSplit: s.valSplit, balance: s.balance,
    labelSmoothing: s.labelSmoothing, seed: s.seed, patience: s.patience,
    finetuneLast: s.finetuneLast, l2sp: s.l2sp, refit: s.refit !== false,
  };
  setTraining(true);
  $('train-progress').hidden = false;
  $('charts').hidden = false;
  $('train-bar').removeAttribute('value');
  $('train-text').textContent = t('trainStarting');
  charts ??= new TrainCharts($('loss-chart'), $('acc-chart'), chartLabels());
  charts.reset();
  try {
    // Epochs can arrive every few milliseconds: record them all, draw at most once a frame.
    let latest = null;
    let frame = 0;
    const draw = () => {
      frame = 0;
      const p = latest;
      if (!p || !state.training) return;
      if ((p.phase === 'train' || p.phase === 'finetune') && p.epochs) {
        $('train-bar').max = p.epochs;
        $('train-bar').value = p.epoch;
        const loss = Number.isFinite(p.loss) ? p.loss.toFixed(3) : '—';
        const key = p.phase === 'finetune' ? 'finetuneEpoch' : 'trainEpoch';
        $('train-text').textContent = t(key, { epoch: p.epoch, epochs: p.epochs, loss, acc: formatPct(p.valAccuracy) });
        charts.redraw();
      } else if ((p.phase === 'refit' || p.phase === 'refit-finetune') && p.epochs) {
        // The final model on every photo: no validation left, so nothing for the charts.
        $('train-bar').max = p.epochs;
        $('train-bar').value = p.epoch;
        $('train-text').textContent = t('refitProgress', { done: p.epoch, total: p.epochs });
      } else if (p.total) {
        $('train-bar').max = p.total;
        $('train-bar').value = p.done;
        $('train-text').textContent = t('trainFeatures', { done: p.done, total: p.total });
      }
    };
    const report = await serial(async () => {
      if (leftOut.length) await leaveOutEmptyClasses(leftOut);
      return state.sw.train(opts, (p) => {
        latest = p;
        if ((p.phase === 'train' || p.phase === 'finetune') && p.epochs) charts.record(p);
        if (!frame) frame = requestAnimationFrame(draw);
      });
    });
    cancelAnimationFrame(frame);
    const model = await state.sw.exportModel();
    setModel(model, report.labels, keyedReport(report));
    state.stale = false;
    $('train-stale').hidden = true;
    $('train-bar').max = 1;
    $('train-bar').value = 1;
    $('train-text').textContent = t('trainDone', { s: (report.seconds ?? 0).toFixed(1), acc: formatPct(report.valAccuracy) });
    charts.setHistory(report.history);
    renderResults();
    renderTestState();
    scheduleSave();
    if (state.lastPrediction) rerenderPrediction();
  } catch (e) {
    if (e && e.message === 'cancelled') {
      $('train-text').textContent = t('trainCancelled');
      status(t('trainCancelled'));
      showHistory(state.report?.history); // the previous model is kept: show its curves again
    } else {
      $('train-text').textContent = '';
      $('train-progress').hidden = true;
      showError('trainFailed', e);
    }
  } finally {
    setTraining(false);
  }
}

/**
 * The user agreed to train without the classes that have no photos: they are deleted (the engine
 * refuses to train with a class that has none, and a model's labels are the project's classes).
 * Runs inside the engine queue, before training.
 */
async function leaveOutEmptyClasses(labels) {
  forgetIntakeUndo();
  for (const label of labels) {
    const c = classOf(label);
    if (!c || c.keys.length) continue; // photos arrived meanwhile: it trains with them
    // the engine holds a class whose last photo was removed; one never added it does not know
    try { await state.sw.removeClass(label); } catch { /* not in the engine */ }
    state.classes = state.classes.filter((x) => x !== c);
    expandedCards.delete(label);
  }
  if (!classOf(state.activeLabel)) state.activeLabel = state.classes[0]?.label ?? null;
  renderClasses();
  scheduleSave();
  status(t('trainLeftOut', { labels: labels.join(', ') }));
}

function showHistory(history) {
  if (!history?.length) { charts?.setHistory([]); $('charts').hidden = true; return; }
  $('charts').hidden = false;
  charts ??= new TrainCharts($('loss-chart'), $('acc-chart'), chartLabels());
  charts.setHistory(history);
}

function keyedReport(report) {
  const r = structuredClone(report);
  r.misclassified = (report.misclassified || []).map((m) => ({ ...m, key: state.idToKey.get(m.id) ?? null }));
  return r;
}

// ---- results ------------------------------------------------------------------------------------

function renderResults() {
  const r = state.report;
  $('results-body').hidden = !r;
  $('results-empty').hidden = !!r;
  if (!r) return;
  const hasVal = (r.valSize ?? 1) > 0 && Number.isFinite(r.valAccuracy);
  $('val-acc').textContent = hasVal ? formatPct(r.valAccuracy) : '—';
  $('results-meta').textContent = hasVal
    ? t('resultsMeta', { train: r.trainSize ?? '?', val: r.valSize ?? '?', best: r.bestEpoch ?? '?', run: r.epochsRun ?? '?', s: (r.seconds ?? 0).toFixed(1) })
    : t('noValidation');

  const pc = $('per-class');
  const head = el('thead', {}, el('tr', {}, ...['colClass', 'colPrecision', 'colRecall', 'colF1', 'colSupport'].map((k) => el('th', { scope: 'col', text: t(k) }))));
  const body = el('tbody');
  for (const row of r.perClass || []) {
    body.append(el('tr', {},
      el('th', { scope: 'row', text: row.label }),
      el('td', { text: formatPct(row.precision) }),
      el('td', { text: formatPct(row.recall) }),
      el('td', { text: Number.isFinite(row.f1) ? row.f1.toFixed(2) : '—' }),
      el('td', { text: String(row.support ?? '') })));
  }
  pc.replaceChildren(head, body);

  const labels = r.labels || [];
  const conf = r.confusion || [];
  const max = Math.max(1, ...conf.flat());
  const cm = $('confusion');
  const chead = el('thead', {}, el('tr', {},
    el('th', { class: 'corner', text: `${t('actual')} \\ ${t('predicted')}` }),
    ...labels.map((l) => el('th', { scope: 'col', text: l }))));
  const cbody = el('tbody');
  conf.forEach((row, i) => {
    const tr = el('tr', {}, el('th', { scope: 'row', text: labels[i] ?? '' }));
    row.forEach((v, j) => {
      const td = el('td', { class: i === j ? 'diag' : (v ? 'off' : '') });
      td.dataset.level = String(Math.min(4, Math.ceil((v / max) * 4)));
      if (i !== j && v > 0) {
        const b = el('button', { type: 'button', class: 'cell-btn', text: String(v) });
        b.setAttribute('aria-label', `${labels[i]} → ${labels[j]}: ${v}`);
        b.addEventListener('click', () => showMisclassified(labels[i], labels[j]));
        td.append(b);
      } else td.textContent = String(v);
      tr.append(td);
    });
    cbody.append(tr);
  });
  cm.replaceChildren(chead, cbody);
  $('mis-view').hidden = true;
}

function showMisclassified(actual, predicted) {
  const view = $('mis-view');
  view.hidden = false;
  $('mis-title').textContent = t('misTitle', { actual, predicted });
  const thumbs = $('mis-thumbs');
  const items = (state.report?.misclassified || []).filter((m) => m.label === actual && m.predicted === predicted);
  const figs = [];
  for (const m of items) {
    const rec = m.key != null ? state.images.get(m.key) : null;
    if (!rec) continue;
    figs.push(el('figure', { class: 'thumb' },
      el('img', { src: thumbUrl(rec), alt: `${actual} → ${predicted}` }),
      el('figcaption', { text: formatPct(m.confidence) })));
  }
  if (!figs.length) figs.push(el('p', { class: 'empty', text: t('misNone') }));
  thumbs.replaceChildren(...figs);
  view.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

// ---- testing ------------------------------------------------------------------------------------

let testCam = null;
let liveTimer = null;
let liveInFlight = false;

function hasModel() { return !!state.model; }

function renderTestState() {
  const msg = $('test-message');
  if (!hasModel()) {
    msg.hidden = false;
    msg.textContent = t('testNeedModel');
  } else if (!state.lastPrediction) msg.hidden = true;
}

function renderPrediction(r) {
  state.lastPrediction = r;
  const th = state.settings.threshold;
  const probs = [...(r.probs || [])].sort((a, b) => b.p - a.p);
  const top = probs[0];
  const unsure = !top || top.p < th;
  const label = $('test-label');
  label.hidden = false;
  label.classList.toggle('unsure', unsure);
  label.replaceChildren(
    el('span', { class: 'pred-label', text: unsure ? t('unsure') : top.label, dir: 'auto' }),
    el('span', { class: 'pred-conf', text: top ? ` ${formatPct(top.p)}` : '' }),
  );
  $('test-message').hidden = true;
  $('test-bars').replaceChildren(...probs.slice(0, 3).map((p) => {
    const fill = el('span', { class: 'bar-fill' });
    fill.style.width = `${Math.max(0, Math.min(100, p.p * 100)).toFixed(1)}%`;
    return el('li', { class: 'bar' },
      el('span', { class: 'bar-label', text: p.label, dir: 'auto', title: p.label }),
      el('span', { class: 'bar-track' }, fill),
      el('span', { class: 'bar-value', text: formatPct(p.p) }));
  }));
}

function rerenderPrediction() { if (state.lastPrediction) renderPrediction(state.lastPrediction); }

async function predictFile(file) {
  clearError();
  if (!hasModel()) { renderTestState(); return; }
  stopLive();
  const bytes = new Uint8Array(await file.arrayBuffer());
  const img = $('test-img');
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(new Blob([bytes], { type: file.type || 'image/jpeg' }));
  img.alt = file.name;
  img.hidden = false;
  try {
    renderPrediction(await state.sw.predict(bytes, { threshold: state.settings.threshold }));
  } catch (e) { showError('testFailed', e); }
}

async function startLive() {
  if (!hasModel()) { renderTestState(); return; }
  testCam ??= new Camera($('test-video'));
  try {
    await testCam.start();
  } catch (e) { showError('camError', e); return; }
  $('test-img').hidden = true;
  $('test-live').textContent = t('testStop');
  $('test-live').dataset.live = '1';
  const tick = async () => {
    if (!testCam.running) return;
    if (!liveInFlight && !document.hidden && !state.training) {
      const frame = testCam.frameImageData(256);
      if (frame) {
        liveInFlight = true;
        try {
          renderPrediction(await state.sw.predictPixels(frame, { threshold: state.settings.threshold }));
        } catch (e) { showError('testFailed', e); stopLive(); } finally { liveInFlight = false; }
      }
    }
    if (testCam.running) liveTimer = setTimeout(tick, 200);
  };
  tick();
}

function stopLive() {
  clearTimeout(liveTimer);
  liveTimer = null;
  testCam?.stop();
  $('test-live').textContent = t('testLive');
  delete $('test-live').dataset.live;
}

// ---- saving -------------------------------------------------------------------------------------

// What a save writes (see store.js): the small project record every time, the model record and
// the images only when they changed (persist.js tracks that), so that moving the threshold
// slider does not rewrite a 60 MB model.
function snapshot() {
  return {
    project: {
      version: SAVE_VERSION,
      arch: state.arch,
      settings: { ...state.settings },
      classes: state.classes.map((c) => ({ label: c.label, keys: [...c.keys] })),
      hasModel: !!state.model,
      stale: state.stale,
      nextKey: state.nextKey,
      activeLabel: state.activeLabel,
      saved: Date.now(),
    },
    model: state.model ? { bytes: state.model, labels: state.modelLabels, report: state.report } : null,
    shelved: state.shelved.length ? state.shelved : null,
    image(key) {
      const rec = state.images.get(key);
      // Bytes, not a Blob: Safari's private windows and WebKit's ephemeral sessions refuse Blobs
      // in IndexedDB ("Error preparing Blob/File data to be stored in object store").
      return rec ? { key, label: rec.label, thumb: rec.thumb, emb: rec.emb } : null;
    },
  };
}

let lastSavedAt = null;
let persistent = null; // navigator.storage.persist(): true, false, or null (no such API)

const autosave = new Autosave({
  snapshot,
  onSaved: () => {
    lastSavedAt = new Date();
    renderSaveStatus();
    document.body.dataset.saved = String(Date.now());
    if (persistent === null && autosave.saves === 1) {
      persistStorage().then((p) => { persistent = p; renderSaveStatus(); });
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

function renderSaveStatus() {
  const el2 = $('save-status');
  if (autosave.off) { el2.textContent = t('autosaveOff'); return; }
  if (!lastSavedAt) return;
  const time = lastSavedAt.toLocaleTimeString(getLang());
  el2.textContent = persistent === false ? t('savedAtEvictable', { time }) : t('savedAt', { time });
}

function scheduleSave() { autosave.schedule(); }

/** Saves now (a no-op while the autosave is off); rejects when the write failed. */
function saveNow() { return autosave.save(); }

/** The model, its labels and report changed together: the model record is rewritten. */
function setModel(model, modelLabels, report) {
  state.model = model;
  state.modelLabels = modelLabels;
  state.report = report;
  autosave.markModel();
}

function download(bytes, name, type = 'application/octet-stream') {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function stamp() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}`;
}

async function exportModel() {
  clearError();
  if (!state.model) { showError('modelNone'); return; }
  download(state.model, `sortwise-${state.arch}-${stamp()}.sortwise`);
}

async function importModel(file) {
  clearError();
  const bytes = new Uint8Array(await file.arrayBuffer());
  await serial(async () => {
    try {
      const { labels } = await state.sw.importModel(bytes.slice());
      setModel(bytes, labels, null);
      state.stale = false;
      $('train-stale').hidden = true;
      renderResults();
      renderTestState();
      status(t('modelImported', { labels: labels.join(', ') }));
      scheduleSave();
    } catch (e) { showError('modelImportFailed', e); }
  });
}

async function exportProject() {
  clearError();
  try {
    const zip = exportProjectZip({
      arch: state.arch,
      dim: state.sw?.dim,
      settings: state.settings,
      classes: state.classes.map((c) => ({ label: c.label, images: c.keys.map((k) => state.images.get(k)).filter(Boolean) })),
      model: state.model,
      report: state.report,
    });
    download(zip, `sortwise-project-${stamp()}.zip`, 'application/zip');
  } catch (e) { showError('projectExportFailed', e); }
}

/**
 * Loads classes with images into a fresh engine `sw`: by embedding when `sameArch`, else by
 * re-embedding the thumbnails. Returns the new records (not yet in state). Throws on failure.
 * An engine that can fine-tune always re-embeds: it needs each image's stage input, which only
 * pixels give (the thumbnails are the pixels a project keeps).
 */
async function loadInto(sw, classes, sameArch, progressKey, arch) {
  if (sw.finetune) sameArch = false;
  const total = classes.reduce((n, c) => n + c.images.length, 0);
  let done = 0;
  const out = [];
  const show = () => {
    $('embed-progress').hidden = total === 0;
    $('embed-bar').max = Math.max(1, total);
    $('embed-bar').value = done;
    $('embed-text').textContent = t(progressKey, { done, total, arch });
  };
  show();
  try {
    for (const c of classes) {
      for (const im of c.images) {
        if (sameArch) {
          const id = await sw.addEmbedding(c.label, im.emb.slice(), im.thumb.slice());
          out.push({ label: c.label, id, thumb: im.thumb, emb: im.emb, key: im.key });
        } else {
          const r = await sw.addImage(c.label, im.thumb.slice());
          out.push({ label: c.label, id: r.id, thumb: im.thumb, emb: r.embedding, key: im.key });
        }
        done += 1;
        if (done % 8 === 0 || done === total) show();
      }
    }
  } finally {
    $('embed-progress').hidden = true;
  }
  return out;
}

/** Replaces the whole project (engine included) with `next`; used by import, restore and switching. */
function adoptProject(sw, arch, classes, records, { model = null, modelLabels = null, report = null, settings = null, stale = false, keepKeys = false }) {
  if (state.sw && state.sw !== sw) state.sw.terminate();
  for (const rec of state.images.values()) if (rec.url) URL.revokeObjectURL(rec.url);
  state.sw = sw;
  state.arch = arch;
  state.images = new Map();
  state.idToKey = new Map();
  state.classes = classes.map((c) => ({ label: c.label, keys: [] }));
  // keys only ever grow (never back to 1): a key names one image for the life of the storage
  for (const r of records) {
    const key = keepKeys && r.key != null ? r.key : state.nextKey++;
    if (keepKeys) state.nextKey = Math.max(state.nextKey, key + 1);
    addRecord(r.label, r.id, r.thumb, r.emb, key);
  }
  if (settings) state.settings = { ...DEFAULT_SETTINGS, ...settings };
  setModel(model, modelLabels, report);
  state.stale = stale;
  state.lastPrediction = null;
  if (!classOf(state.activeLabel)) state.activeLabel = state.classes[0]?.label ?? null;
  $('arch').value = arch;
  $('train-stale').hidden = !state.stale;
  $('test-label').hidden = true;
  $('test-bars').replaceChildren();
  $('test-img').hidden = true;
  if (!report) showHistory(null);
  renderDevice(sw);
  renderSettings();
  renderClasses();
  renderResults();
  renderTestState();
}

async function importProject(file) {
  clearError();
  forgetIntakeUndo();
  if (state.training) { showError('busy'); return; }
  if (file.size > 2 * 1024 * 1024 * 1024) { showError('projectImportFailed', new Error(t('skipTooBig', { n: 2048 }))); return; }
  if ((totalImages() || state.model) && !window.confirm(t('importConfirm'))) return;
  await serial(async () => {
    let parsed;
    let sw = null;
    try {
      // Everything is read, validated and loaded into a new engine before the current project
      // or its engine is touched: a refused file leaves both as they were.
      parsed = await importProjectZip(file, LIMITS);
      const known = state.manifest.some((b) => b.arch === parsed.arch);
      const arch = known ? parsed.arch : state.arch;
      const augment = Number.isInteger(parsed.settings.augment) ? parsed.settings.augment : state.settings.augment;
      sw = await createEngine(arch, augment, parsed.settings.finetuneLast);
      const sameArch = known && parsed.embLen != null ? parsed.embLen % sw.dim === 0 : false;
      if (known && parsed.embLen != null && !sameArch) throw new Error(`the embeddings have ${parsed.embLen} values, ${arch} gives ${sw.dim} per view`);
      const records = await loadInto(sw, parsed.classes, sameArch, progressKeyFor(sw, sameArch), arch);
      let model = null;
      let modelLabels = null;
      if (parsed.model && sameArch) {
        ({ labels: modelLabels } = await sw.importModel(parsed.model.slice()));
        model = parsed.model;
      }
      let report = null;
      if (model && parsed.report) {
        // misclassified entries point at images by their position in the file: map to the new ids
        const idAt = (i) => (Number.isInteger(i) && records[i] ? records[i].id : null);
        report = { ...parsed.report, misclassified: parsed.report.misclassified.map((m) => ({ ...m, id: idAt(m.image) })) };
      }
      // the project being replaced is saved as it is now: it becomes the backup that undo restores
      await saveNow().catch(() => {});
      adoptProject(sw, arch, parsed.classes, records, { model, modelLabels, settings: parsed.settings });
      if (report) {
        setModel(model, modelLabels, keyedReport(report));
        renderResults();
        showHistory(report.history);
      }
      autosave.replaceAll(state.images.keys());
      const res = await saveNow().catch(() => null);
      status(t('projectImported', { classes: parsed.classes.length, images: records.length }));
      if (res?.saved) offerUndo('importedUndo');
    } catch (e) {
      if (sw && sw !== state.sw) sw.terminate();
      showError('projectImportFailed', e);
      if (state.sw) renderDevice(state.sw);
      status('');
    }
  });
}

/** After an import or a new project: the replaced project is the stored backup; undo swaps back. */
function offerUndo(key) {
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

async function switchArch(arch, { force = false } = {}) {
  if (arch === state.arch && !force) return;
  clearError();
  const prev = state.arch;
  await serial(async () => {
    let sw = null;
    try {
      status(t('switchArch', { arch }), 'indeterminate');
      sw = await createEngine(arch, state.settings.augment);
      const classes = state.classes.map((c) => ({ label: c.label, images: c.keys.map((k) => state.images.get(k)).filter(Boolean) }));
      const records = await loadInto(sw, classes, false, 'reembedding', arch);
      const hadModel = !!state.model;
      adoptProject(sw, arch, classes, records, { settings: state.settings, keepKeys: true });
      for (const k of state.images.keys()) autosave.markImage(k);
      await saveNow().catch(() => {});
      status(t('engineReady', { arch, backend: sw.backend === 'webgpu' ? t('deviceWebgpu') : t('deviceCpu') }));
      if (hadModel) status(t('modelStaleArch'));
    } catch (e) {
      if (sw && sw !== state.sw) sw.terminate();
      $('arch').value = prev;
      showError('switchFailed', e);
      status('');
    }
  });
}

async function newProject() {
  forgetIntakeUndo();
  if ((totalImages() || state.model) && !window.confirm(t('newProjectConfirm'))) return;
  await serial(async () => {
    for (const c of state.classes) {
      if (c.keys.length) { try { await state.sw.removeClass(c.label); } catch { /* rebuilt below if needed */ } }
    }
    await saveNow().catch(() => {}); // the project as it is now becomes the backup
    for (const k of [...state.images.keys()]) dropRecord(k);
    state.classes = [];
    setModel(null, null, null);
    state.stale = false;
    state.lastPrediction = null;
    $('test-label').hidden = true;
    $('test-bars').replaceChildren();
    renderClasses();
    renderResults();
    renderTestState();
    autosave.replaceAll([]);
    const res = await saveNow().catch(() => null);
    if (res?.saved) offerUndo('newProjectUndo');
  });
}

// ---- start --------------------------------------------------------------------------------------

/**
 * Loads the saved project (`readSaved()`'s answer) into the engine. Throws when it cannot, with
 * the page's state untouched. A saved model the engine refuses (another backbone, a failed
 * backbone check) is not dropped: it is kept in storage as "shelved" and the user is told.
 */
async function restore({ saved, nextKey, migrate }) {
  const meta = saved.project;
  const classes = (meta.classes || []).map((c) => ({
    label: c.label,
    images: (c.keys || []).map((k) => saved.images.get(k)).filter(Boolean).map((r) => ({ key: r.key, thumb: r.thumb, emb: r.emb })),
  }));
  for (const c of classes) {
    // Saves before bytes were stored directly hold a Blob.
    for (const im of c.images) im.thumb = im.thumb instanceof Blob ? new Uint8Array(await im.thumb.arrayBuffer()) : new Uint8Array(im.thumb);
  }
  const sameArch = meta.arch === state.arch;
  const records = await loadInto(state.sw, classes, sameArch, progressKeyFor(state.sw, sameArch), state.arch);
  let model = null;
  let modelLabels = null;
  let report = null;
  let refused = null;
  const sm = saved.model;
  if (sm?.bytes) {
    if (sameArch) {
      try {
        ({ labels: modelLabels } = await state.sw.importModel(sm.bytes.slice()));
        model = sm.bytes;
        report = sm.report || null;
      } catch (e) { refused = e.message; }
    } else refused = t('shelvedOtherArch', { arch: meta.arch, current: state.arch });
  }
  state.nextKey = nextKey;
  state.shelved = Array.isArray(saved.shelved) ? saved.shelved : [];
  adoptProject(state.sw, state.arch, classes, records, { model, modelLabels, report, settings: meta.settings, stale: !!meta.stale, keepKeys: true });
  if (meta.activeLabel && classOf(meta.activeLabel)) { state.activeLabel = meta.activeLabel; renderClasses(); }
  if (sameArch && !state.sw.finetune) autosave.settled(); // already stored as they are
  // a version 1 save held the model inline: the next save writes it to its own record
  if (migrate) autosave.markModel();
  else if (model === (sm?.bytes ?? null)) autosave.modelDirty = false;
  if (nextKey !== meta.nextKey) autosave.markProject(); // advanced past stored keys: say so in storage
  if (refused != null) {
    state.shelved.push({ bytes: sm.bytes, labels: sm.labels ?? null, report: sm.report ?? null, arch: meta.arch, reason: refused, shelved: Date.now() });
    autosave.markShelved();
    autosave.markModel();
  }
  if (state.shelved.length) {
    const last = state.shelved[state.shelved.length - 1];
    setNotice('shelved', { key: 'modelShelved', params: { n: state.shelved.length, reason: last.reason }, action: { key: 'downloadShelved', run: downloadShelved } });
  }
  showHistory(report?.history);
  return records.length;
}

function downloadShelved() {
  for (const [i, m] of state.shelved.entries()) download(m.bytes, `sortwise-${m.arch || 'model'}-kept-${i + 1}.sortwise`);
}

function bindUi() {
  for (const b of document.querySelectorAll('[data-lang]')) {
    b.addEventListener('click', () => setLang(b.dataset.lang));
  }
  $('error-close').addEventListener('click', clearError);
  $('apply-preset').addEventListener('click', () => applyPreset($('preset').value));
  $('new-class-form').addEventListener('submit', (ev) => { ev.preventDefault(); addClassFromInput(); });
  $('skipped-clear').addEventListener('click', () => { state.skipped = []; renderSkipped(); });
  $('train-btn').addEventListener('click', () => train());
  $('cancel-btn').addEventListener('click', () => state.sw?.cancel());
  $('arch').addEventListener('change', (ev) => switchArch(ev.target.value));
  for (const input of document.querySelectorAll('#advanced input, #advanced select')) {
    input.addEventListener('change', () => {
      const before = { ...state.settings };
      readSettings();
      $('set-l2sp').disabled = !state.settings.finetuneLast;
      scheduleSave();
      if (input.id === 'set-augment' && state.settings.augment !== before.augment) rebuildForAugment();
      if (input.id === 'set-finetuneLast' && state.settings.finetuneLast !== before.finetuneLast) rebuildForFinetune(state.settings.finetuneLast);
    });
  }
  $('threshold').addEventListener('input', (ev) => {
    state.settings.threshold = Number(ev.target.value);
    $('threshold-value').textContent = state.settings.threshold.toFixed(2);
    rerenderPrediction();
    scheduleSave();
  });
  $('test-input').addEventListener('change', (ev) => {
    const f = ev.target.files[0];
    ev.target.value = '';
    if (f) predictFile(f);
  });
  $('test-live').addEventListener('click', () => (testCam?.running ? stopLive() : startLive()));
  $('export-model').addEventListener('click', exportModel);
  $('import-model').addEventListener('change', (ev) => {
    const f = ev.target.files[0];
    ev.target.value = '';
    if (f) importModel(f);
  });
  $('export-project').addEventListener('click', exportProject);
  $('import-project').addEventListener('change', (ev) => {
    const f = ev.target.files[0];
    ev.target.value = '';
    if (f) importProject(f);
  });
  $('new-project').addEventListener('click', newProject);
  setupDragDrop();
  setupCamera();
  // Flush when the tab is hidden or closed; a no-op until the project was loaded (persist.js).
  document.addEventListener('visibilitychange', () => { if (document.hidden) saveNow().catch(() => {}); });
  window.addEventListener('pagehide', () => { saveNow().catch(() => {}); });
  onLangChange(() => {
    renderDevice(state.sw);
    renderClasses();
    renderResults();
    renderSkipped();
    renderNotices();
    renderSaveStatus();
    renderTestState();
    rerenderPrediction();
    if (charts) charts.relabel(chartLabels());
    if (testCam?.running) $('test-live').textContent = t('testStop');
  });
}

/** What `loadInto` shows: restoring saved embeddings, or re-embedding (new arch, fine-tuning). */
function progressKeyFor(sw, sameArch) {
  if (sw.finetune) return 'finetunePreparing';
  return sameArch ? 'embedding' : 'reembedding';
}

/**
 * The fine-tune setting changed: a new engine with or without stage inputs, the images re-added
 * (from their thumbnails when it is switched on; from their embeddings when off, which is quick),
 * and the model carried over (a fine-tuned one still predicts through its own stage).
 */
async function rebuildForFinetune(on) {
  clearError();
  await serial(async () => {
    let sw = null;
    try {
      status(t('finetuneSwitching'), 'indeterminate');
      sw = await createEngine(state.arch, state.settings.augment, on);
      const classes = state.classes.map((c) => ({ label: c.label, images: c.keys.map((k) => state.images.get(k)).filter(Boolean) }));
      const records = await loadInto(sw, classes, true, progressKeyFor(sw, true), state.arch);
      let { model, modelLabels } = state;
      if (model) {
        try {
          ({ labels: modelLabels } = await sw.importModel(model.slice()));
        } catch { model = null; modelLabels = null; }
      }
      const report = model ? state.report : null;
      adoptProject(sw, state.arch, classes, records, { model, modelLabels, report, settings: state.settings, stale: state.stale, keepKeys: true });
      if (report) showHistory(report.history);
      for (const k of state.images.keys()) autosave.markImage(k);
      await saveNow().catch(() => {});
      status(t(on ? 'finetuneOn' : 'finetuneOff'));
    } catch (e) {
      if (sw && sw !== state.sw) sw.terminate();
      state.settings.finetuneLast = !on;
      renderSettings();
      scheduleSave();
      showError('switchFailed', e);
      status('');
    }
  });
}

function rebuildForAugment() {
  // The augmented views are made when an image is added: rebuild the engine and re-embed.
  return switchArch(state.arch, { force: true });
}

const ownership = new Ownership({
  onHandOver: () => autosave.handOver({ key: 'autosaveTakenOver' }),
  onLost: () => autosave.disable({ key: 'autosaveTakenOver' }),
  onFree: () => {
    if (autosave.off?.key !== 'autosaveOtherTab') return;
    setNotice('autosave', { key: 'autosaveOtherTabGone', action: { key: 'reload', run: () => window.location.reload() } });
  },
});

/** Start failed: the saved project is left exactly as it is and nothing is ever saved. */
function startFailed(key, params) {
  autosave.disable({ key, params });
  document.body.dataset.ready = 'error';
}

export async function start() {
  setLang(defaultLang());
  renderSettings();
  bindUi();
  renderClasses();
  renderTestState();
  const owner = await ownership.claim();
  try {
    state.manifest = await readManifest();
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
  state.arch = state.manifest.some((b) => b.arch === savedArch) ? savedArch : defaultArch();
  if (saved?.project?.settings) state.settings = { ...DEFAULT_SETTINGS, ...saved.project.settings };
  renderSettings();
  renderArchPicker();
  try {
    state.sw = await createEngine(state.arch, state.settings.augment);
  } catch (e) {
    status('');
    showError('engineFailed', e);
    startFailed('autosaveOffStart', { reason: e?.message || String(e) });
    return;
  }
  renderDevice(state.sw);
  $('arch').disabled = false;
  let restoredImages = null;
  let restoreOk = !autosave.off;
  if (saved) {
    try {
      restoredImages = await serial(() => restore(found));
    } catch (e) {
      restoreOk = false;
      showError('restoreFailed', e);
      autosave.disable({ key: 'autosaveOffRestore', params: { reason: e?.message || String(e) } });
    }
  } else if (!autosave.off) {
    state.classes = PRESETS.garbage.map((label) => ({ label, keys: [] }));
    state.activeLabel = state.classes[0].label;
    renderClasses();
  }
  const backend = state.sw.backend === 'webgpu' ? t('deviceWebgpu') : t('deviceCpu');
  status(restoredImages != null
    ? t('restored', { classes: state.classes.length, images: restoredImages })
    : t('engineReady', { arch: state.arch, backend }));
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
    if (autosave.pending) autosave.schedule();
  }
  document.body.dataset.ready = '1';
}

// For the end-to-end test and debugging: a read-only view of the page state.
window.sortwiseDebug = {
  get state() {
    return {
      arch: state.arch,
      backend: state.sw?.backend,
      classes: state.classes.map((c) => ({ label: c.label, count: c.keys.length })),
      hasModel: !!state.model,
      modelLabels: state.modelLabels,
      report: state.report && { valAccuracy: state.report.valAccuracy, labels: state.report.labels, confusion: state.report.confusion, valSize: state.report.valSize, finetune: state.report.finetune ?? null, refit: state.report.refit ?? null, refitEpochs: state.report.refitEpochs ?? null, bestEpoch: state.report.bestEpoch },
      finetune: { setting: state.settings.finetuneLast, engine: !!state.sw?.finetune },
      skipped: state.skipped.map((s) => ({ name: s.name, reason: s.reason })),
      training: state.training,
      cameraPending: camPending + (camTimer ? 1 : 0),
      engine: state.sw && { threads: state.sw.threads, wasmPackage: state.sw.wasmPackage, measurement: state.sw.measurement },
      prediction: state.lastPrediction && { label: state.lastPrediction.label, confidence: state.lastPrediction.confidence, unsure: state.lastPrediction.unsure, probs: state.lastPrediction.probs },
    };
  },
  // The cross-engine test waits for each photo's own prediction.
  clearPrediction: () => { state.lastPrediction = null; $('test-label').hidden = true; },
  save: () => saveNow(),
  get autosave() { return { enabled: autosave.enabled, off: autosave.off?.key ?? null, saves: autosave.saves, pending: autosave.pending, owner: ownership.owner, lockMode: ownership.mode, persistent }; },
  /** What a save would write now, in the stored form (for comparing with IndexedDB). */
  records: () => { const s = snapshot(); return { project: s.project, model: s.model, shelved: s.shelved, images: [...state.images.keys()].map((k) => s.image(k)) }; },
  idle: () => queue,
  loseDevice: () => state.sw?.debugLoseDevice?.(),
};
