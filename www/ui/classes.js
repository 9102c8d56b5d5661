// The classes: one card per class with its thumbnails (paged as they scroll into view), rename,
// delete, add photos from files or the webcam; the new-class field and the presets.

import { t } from '../i18n.js';
import { $, el, thumbUrl } from './dom.js';
import { clearError, showError } from './status.js';
import { openCamera } from './intake.js';
import { offerUndo } from './save.js';
import { soon } from './repaint.js';

// A class of hundreds of photos: the card renders THUMB_PAGE thumbnails and then more as its
// sentinel (the last grid cell) scrolls into view, so a 500-photo class does not build 500 <img>
// up front. "Show all" lets the card span the grid's width without a height limit.
const THUMB_PAGE = 40;
const SHOW_ALL_FROM = 16;
const expandedCards = new Set(); // labels whose card shows all its photos

let project = null;

const thumbObserver = typeof IntersectionObserver === 'function'
  ? new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      const card = e.target.closest('.class-card');
      if (card) showMoreThumbs(card);
    }
  }, { rootMargin: '200px' })
  : null;

// A card whose thumbnails are all rendered gets a photo streaming in as a new count and a
// sentinel observed again (in view, it renders the next page), not before the next repaint.
function refreshCard(label) {
  const card = cardFor(label);
  const c = project.classOf(label);
  if (!card || !c) return;
  const sentinel = card.querySelector('.thumbs > .thumb-more');
  if (thumbObserver && sentinel) { thumbObserver.unobserve(sentinel); thumbObserver.observe(sentinel); }
  updateCardCount(card, c);
}

function countText(n) { return n === 1 ? t('image1') : t('images', { n }); }

export function renderClasses() {
  const grid = $('classes');
  grid.replaceChildren(...project.classes.map((c) => buildCard(c)));
  $('no-classes').hidden = project.classes.length > 0;
}

function cardFor(label) {
  return [...$('classes').children].find((x) => x.dataset.label === label) || null;
}

function renderCard(label) {
  const c = project.classOf(label);
  const old = cardFor(label);
  if (!c) { old?.remove(); return; }
  const card = buildCard(c);
  if (old) old.replaceWith(card); else $('classes').append(card);
  $('no-classes').hidden = project.classes.length > 0;
}

function thumbFigure(rec) {
  const img = el('img', { src: thumbUrl(rec), alt: rec.label, loading: 'lazy', decoding: 'async' });
  const del = el('button', { type: 'button', class: 'thumb-del', text: '×', title: t('removeImage'), aria: { label: t('removeImage') } });
  del.addEventListener('click', () => project.removeImage(rec.key));
  return el('figure', { class: 'thumb', dataset: { key: String(rec.key) } }, img, del);
}

/** Adds one thumbnail to a card that is already shown (cheaper than rebuilding the card). */
function appendThumb(rec) {
  const card = cardFor(rec.label);
  if (!card) { renderCard(rec.label); return; }
  const c = project.classOf(rec.label);
  const thumbs = card.querySelector('.thumbs');
  thumbs.querySelector(':scope > .empty')?.remove();
  // The rendered thumbnails are always the first ones of the class: a photo is appended only
  // when all before it are shown, else the sentinel renders it when the user scrolls there.
  const shown = renderedThumbs(thumbs);
  const sentinel = thumbs.querySelector(':scope > .thumb-more');
  if (shown === c.keys.length - 1 && shown < THUMB_PAGE) thumbs.insertBefore(thumbFigure(rec), sentinel);
  else if (thumbObserver && sentinel) { soon(`card ${rec.label}`, () => refreshCard(rec.label)); return; }
  else showMoreThumbs(card);
  updateCardCount(card, c);
}

/** A photo was removed: its thumbnail goes, and the focus moves to a neighbour's delete button. */
function removeThumb({ key, label }) {
  const card = cardFor(label);
  const fig = card?.querySelector(`.thumb[data-key="${key}"]`);
  const c = project.classOf(label);
  if (fig && c && c.keys.length) {
    const after = fig.nextElementSibling;
    const next = after?.classList.contains('thumb') ? after : fig.previousElementSibling;
    fig.remove();
    updateCardCount(card, c);
    next?.querySelector('.thumb-del')?.focus({ preventScroll: true });
  } else renderCard(label);
}

function renderedThumbs(thumbs) { return thumbs.querySelectorAll(':scope > .thumb').length; }

function showMoreThumbs(card, n = THUMB_PAGE) {
  const c = project.classOf(card.dataset.label);
  const thumbs = card.querySelector('.thumbs');
  const sentinel = thumbs?.querySelector(':scope > .thumb-more');
  if (!c || !sentinel) return;
  const from = renderedThumbs(thumbs);
  const end = Math.min(c.keys.length, from + n);
  const frag = document.createDocumentFragment();
  for (let i = from; i < end; i++) {
    const rec = project.images.get(c.keys[i]);
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
  updateCardCount(card, project.classOf(label));
  if (on) showMoreThumbs(card);
  else card.scrollIntoView({ block: 'nearest' });
}

function startRename(head, label) {
  const input = el('input', { type: 'text', class: 'rename-input', value: label, aria: { label: t('renameTo', { label }) } });
  if (project.rules) input.maxLength = project.rules.maxLabelChars;
  const form = el('form', { class: 'rename-form' }, input, el('button', { type: 'submit', class: 'small', text: 'OK' }));
  let done = false;
  const finish = async (commit) => {
    if (done) return;
    done = true;
    if (commit && !(await project.renameClass(label, input.value))) { done = false; input.focus(); return; }
    if (!commit) renderCard(label);
  };
  form.addEventListener('submit', (ev) => { ev.preventDefault(); finish(true); });
  input.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') finish(false); });
  head.querySelector('.title-wrap').replaceChildren(form);
  input.focus();
  input.select();
}

function deleteClass(label) {
  const c = project.classOf(label);
  if (!c) return;
  if (c.keys.length && !window.confirm(t('deleteClassConfirm', { label, n: c.keys.length }))) { project.forgetIntakeUndo(); return; }
  project.deleteClass(label);
}

function buildCard(c) {
  const label = c.label;
  const title = el('h3', { class: 'class-title', text: label, dir: 'auto' });
  const count = el('span', { class: 'count', text: countText(c.keys.length) });
  const renameBtn = el('button', { type: 'button', class: 'small rename', text: t('rename'), aria: { label: `${t('rename')}: ${label}` } });
  const deleteBtn = el('button', { type: 'button', class: 'small danger delete-class', text: t('deleteClass'), aria: { label: `${t('deleteClass')}: ${label}` } });
  const head = el('header', { class: 'card-head' }, el('div', { class: 'title-wrap' }, title, count), el('div', { class: 'card-tools' }, renameBtn, deleteBtn));
  renameBtn.addEventListener('click', () => startRename(head, label));
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
    project.addImages(files.map((file) => ({ label, name: file.name, file })));
  });
  const addBtn = el('label', { class: 'btn file-btn small' }, el('span', { text: t('addFiles') }), input);
  const camBtn = el('button', { type: 'button', class: 'small webcam', text: t('webcam') });
  camBtn.addEventListener('click', () => openCamera(label));
  const actions = el('div', { class: 'card-actions' }, addBtn, camBtn, showAll);

  const card = el('article', { class: 'class-card', dataset: { label }, tabIndex: -1 }, head, thumbs, actions);
  card.setAttribute('aria-label', label);
  if (project.activeLabel === label) card.classList.add('active');
  if (expandedCards.has(label)) card.classList.add('expanded');
  showMoreThumbs(card);
  card.addEventListener('focusin', () => project.setActive(label));
  card.addEventListener('pointerdown', () => project.setActive(label));
  return card;
}

async function addClassFromInput() {
  clearError();
  const input = $('new-class');
  const raw = input.value;
  try {
    await project.addClass(raw);
    // the engine answered the name check: clear the field unless the next name is being typed
    if (input.value === raw) input.value = '';
  } catch (e) { showError('addClass', e); }
}

async function applyPreset(name) {
  project.forgetIntakeUndo();
  if (project.totalImages() && !window.confirm(t('presetConfirm'))) return;
  if (await project.applyPreset(name)) offerUndo('presetUndo');
}

export function bindClasses(p) {
  project = p;
  $('apply-preset').addEventListener('click', () => applyPreset($('preset').value));
  $('new-class-form').addEventListener('submit', (ev) => { ev.preventDefault(); addClassFromInput(); });
  const on = (type, fn) => project.addEventListener(type, (ev) => fn(ev.detail));
  on('classes', renderClasses);
  on('replaced', renderClasses);
  on('image-added', ({ rec }) => appendThumb(rec));
  on('image-removed', removeThumb);
  on('active', ({ label }) => {
    for (const card of $('classes').children) card.classList.toggle('active', card.dataset.label === label);
  });
  on('renamed', ({ from, to }) => { if (expandedCards.delete(from)) expandedCards.add(to); });
  on('left-out', ({ labels }) => { for (const l of labels) expandedCards.delete(l); });
  $('new-class').maxLength = project.rules.maxLabelChars;
}
