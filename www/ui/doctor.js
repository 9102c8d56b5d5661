// The data's check-up (src/insight/doctor.rs through the engine's `diagnose`), under the results: near
// duplicates (label conflicts, validation leaks), photos whose label looks wrong, what each
// class needs next, and the class balance, which stays visible as the project changes (a
// teacher may keep a class small on purpose, so it is a note, not an error). Every listed
// photo can be removed with one click.

import { t, formatPct } from '../i18n.js';
import { $, el, thumbUrl } from './dom.js';
import { showError } from './status.js';

let project = null;
let last = null; // the last diagnosis shown, re-rendered when the language changes

/** The balance note from the project's own counts (no engine call). */
export function renderBalance() {
  const counts = project.classes.map((c) => c.keys.length).filter((n) => n > 0);
  const note = $('doctor-balance');
  if (counts.length < 2) { note.textContent = ''; return; }
  const smallest = Math.min(...counts);
  const largest = Math.max(...counts);
  note.textContent = t(largest >= 2 * smallest ? 'doctorImbalanced' : 'doctorBalanced', { smallest, largest });
}

function photo(id) {
  const rec = project.images.get(project.idToKey.get(id));
  if (!rec) return null;
  return el('figure', { class: 'thumb' }, el('img', { src: thumbUrl(rec), alt: rec.label }));
}

function removeButton(id, li) {
  const b = el('button', { type: 'button', class: 'small', text: t('doctorRemove') });
  b.addEventListener('click', async () => {
    b.disabled = true;
    await project.removeImage(project.idToKey.get(id));
    li.remove();
  });
  return b;
}

function flag(key, bad) {
  return el('span', { class: bad ? 'doctor-flag bad' : 'doctor-flag', text: t(key) });
}

function section(titleKey, items, emptyKey) {
  const list = el('ul', { class: 'doctor-list' }, ...items);
  return el('div', {}, el('h4', { text: t(titleKey, { n: items.length }) }),
    items.length ? list : el('p', { class: 'empty', text: t(emptyKey) }));
}

// Near duplicates from two senders (merge.js's `from`; the project's own photos are "you"):
// one phone's photos arriving again from another, or a class shot twice, is worth a look.
function acrossSenders(p) {
  const from = (id) => project.images.get(project.idToKey.get(id))?.from ?? null;
  const a = from(p.a);
  const b = from(p.b);
  if ((!a && !b) || a?.id === b?.id) return null;
  return el('span', { class: 'doctor-flag', dataset: { senders: 'two' }, text: t('doctorTwoSenders', { a: a?.name ?? t('doctorYou'), b: b?.name ?? t('doctorYou') }) });
}

function render(d) {
  last = d;
  const pairs = d.pairs.filter((p) => photo(p.a) && photo(p.b)).map((p) => {
    const li = el('li', {}, photo(p.a), photo(p.b),
      el('span', { text: formatPct(p.similarity) }),
      ...(p.identical ? [flag('doctorIdentical', false)] : []),
      ...(p.conflict ? [flag('doctorConflict', true)] : []),
      ...(p.leak ? [flag('doctorLeak', true)] : []),
      acrossSenders(p));
    li.append(removeButton(p.b, li));
    return li;
  });
  const suspects = d.suspects.filter((s) => photo(s.id)).map((s) => {
    const li = el('li', {}, photo(s.id), el('span', {
      dir: 'auto',
      text: t('doctorSuspect', { label: s.label, suggested: s.suggested, p: formatPct(s.pSuggested) }),
    }));
    li.append(removeButton(s.id, li));
    return li;
  });
  const classes = d.classes.map((c) => {
    const taken = c.confusedWith.slice(0, 2).map((x) => `${x.label} ${formatPct(x.share)}`).join(', ');
    return el('li', {},
      el('span', { dir: 'auto', text: t(taken ? 'doctorClassConfused' : 'doctorClass', { label: c.label, n: c.count, recall: formatPct(c.recall), taken }) }),
      ...c.boundary.map(photo).filter(Boolean));
  });
  $('doctor-out').replaceChildren(
    section('doctorPairs', pairs, 'doctorNoPairs'),
    section('doctorSuspects', suspects, d.folds ? 'doctorNoSuspects' : 'doctorTooFew'),
    section('doctorClasses', classes, 'doctorNoPairs'),
  );
}

async function run() {
  const button = $('doctor-run');
  button.disabled = true;
  try {
    await project.serial(async () => {
      const d = await project.withEngine((sw) => sw.diagnose({}, (p) => project.say(t('doctorProgress', { done: p.epoch, total: p.epochs }))));
      render(d);
      project.say('');
    });
  } catch (e) { showError('doctorFailed', e); } finally { button.disabled = false; }
}

/** The balance note and the last check-up again, in the current language. */
export function rerenderDoctor() {
  renderBalance();
  if (last) render(last);
}

export function bindDoctor(p) {
  project = p;
  $('doctor-run').addEventListener('click', run);
  for (const ev of ['stored', 'dropped', 'replaced', 'cleared']) project.addEventListener(ev, renderBalance);
  project.addEventListener('replaced', () => { last = null; $('doctor-out').replaceChildren(); });
  renderBalance();
}
