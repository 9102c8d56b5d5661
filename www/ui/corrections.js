// "Wrong? Pick the right class" in the classify view a shared link opens (issue 33): the photo or
// camera frame just classified and the class its user says it is are kept on this phone (the
// collect store, collect/photos.js, never the project's), then sent to whoever maintains the
// classifier as a contribution file of kind 'corrections' (contribution.js), which their page
// queues for review (merge.js).

import { t } from '../i18n.js';
import { packContribution } from '../collect/contribution.js';
import { contributor as sender, saveName, savedName } from '../collect/identity.js';
import { addPhoto, markSent, photosOf } from '../collect/photos.js';
import { FRAME_SHORT_SIDE, frameSize } from '../engine/frame.js';
import { $, el, shareOrDownload, stamp } from './dom.js';
import { showError, status } from './status.js';

const KIND = 'corrections';

let project = null;
let linkKey = null; // which classifier the corrections are for: a digest of its link's bytes
let last = null; // {input, prediction}: what is shown
let pending = []; // this classifier's corrections not sent yet

/** A camera frame (ImageData) or a photo's bytes as JPEG bytes the engine reads alike. */
async function jpegOf(input) {
  if (input.bytes) return new Uint8Array(input.bytes);
  const f = input.frame;
  const [w, h] = frameSize(f.width, f.height, FRAME_SHORT_SIDE);
  const c = new OffscreenCanvas(w, h);
  const src = new OffscreenCanvas(f.width, f.height);
  src.getContext('2d').putImageData(f instanceof ImageData ? f : new ImageData(new Uint8ClampedArray(f.data), f.width, f.height), 0, 0);
  c.getContext('2d').drawImage(src, 0, 0, w, h);
  return new Uint8Array(await (await c.convertToBlob({ type: 'image/jpeg', quality: 0.9 })).arrayBuffer());
}

function render() {
  const box = $('correct-box');
  box.hidden = !last || !project.modelLabels;
  if (box.hidden) return;
  const select = $('correct-class');
  const labels = project.modelLabels;
  if (select.options.length !== labels.length || [...select.options].some((o, i) => o.value !== labels[i])) {
    select.replaceChildren(...labels.map((l) => el('option', { value: l, text: l })));
  }
  $('correct-count').textContent = pending.length ? t('correctCount', { n: pending.length }) : '';
  $('correct-send').disabled = !pending.length;
}

export function rerenderCorrections() { if (project) render(); }

async function keep() {
  if (!last) return;
  const label = $('correct-class').value;
  try {
    const bytes = await jpegOf(last.input);
    const rec = { session: linkKey, kind: KIND, label, bytes, taken: Date.now(), predicted: last.prediction.unsure ? null : last.prediction.label };
    const id = await addPhoto(rec);
    pending.push({ ...rec, id });
    status(t('correctKept', { label }));
    render();
  } catch (e) { showError('correctFailed', e); }
}

async function send() {
  if (!pending.length) return;
  try {
    saveName($('correct-name').value);
    const contributor = sender($('correct-name').value);
    const bytes = packContribution({ kind: KIND, contributor, photos: pending });
    const name = `sortwise-corrections-${(contributor.name || 'user').replace(/[^\p{L}\p{N}_-]+/gu, '-')}-${stamp()}.zip`;
    if (!(await shareOrDownload(bytes, name, 'application/zip', t('correctShareTitle')))) return;
    await markSent(pending.map((p) => p.id));
    status(t('correctSent', { n: pending.length }));
    pending = [];
    render();
  } catch (e) { showError('correctFailed', e); }
}

/** Binds "Wrong?" to the classify view of the link whose share bytes are `bytes`. */
export async function bindCorrections(p, bytes) {
  project = p;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  linkKey = `link:${[...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
  try { pending = (await photosOf(linkKey, KIND)).filter((r) => !r.sent); } catch { pending = []; }
  $('correct-name').value = savedName();
  project.addEventListener('prediction', (ev) => {
    last = ev.detail.input ? { input: ev.detail.input, prediction: ev.detail.prediction } : null;
    render();
  });
  $('correct-keep').addEventListener('click', keep);
  $('correct-send').addEventListener('click', send);
  render();
}

/** For sortwiseDebug: the corrections kept and not sent. */
export function correctionsState() { return project && { pending: pending.map((r) => ({ label: r.label, predicted: r.predicted })), shown: !$('correct-box').hidden }; }
