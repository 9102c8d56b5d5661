// The phone's collect view (collect.html, opened from the QR code of the teacher's "Collect from
// phones"): the camera first, a chip per class, tap for a photo or hold for several, the counts,
// undo, and two ways to send: a file through the phone's share sheet (or a download), or live to
// the teacher's page over WebRTC (live.js). No engine runs here; photos are scaled to what the
// engine reads (engine/frame.js) and kept in this phone's own store (photos.js) until sent.

import { t, setLang, defaultLang, onLangChange, applyI18n } from '../i18n.js';
import { readCollectLink } from './collect-link.js';
import { packContribution } from './contribution.js';
import { contributor, saveName, savedName } from './identity.js';
import { Camera } from '../camera.js';
import { FRAME_SHORT_SIDE } from '../engine/frame.js';
import { $, el, shareOrDownload, stamp } from '../ui/dom.js';
import { addPhoto, deletePhoto, deleteSent, markSent, photosOf, unsentCorrections } from './photos.js';
import { startLive } from './live.js';

// Holding the button takes a photo this often (as the page's own hold-to-record does).
const BURST_MS = 250;
const HOLD_MS = 350;

const state = { request: null, active: null, photos: [], corrections: [], taken: [], camera: null, live: null, sending: false };

function who() { return contributor($('collect-name').value); }

function say(text) { $('status-text').textContent = text || ''; }
function fail(e) {
  $('collect-error').textContent = e?.message || String(e);
  $('collect-error').hidden = false;
}

function render() {
  const { labels } = state.request;
  const count = (label, pred = () => true) => state.photos.filter((p) => p.label === label && pred(p)).length;
  $('collect-chips').replaceChildren(...labels.map((label) => el('button', {
    type: 'button',
    class: `chip${label === state.active ? ' active' : ''}`,
    role: 'radio',
    aria: { checked: String(label === state.active) },
    dataset: { label },
    onclick: () => { state.active = label; render(); },
  }, el('span', { class: 'chip-label', text: label }), el('span', { class: 'chip-count', text: String(count(label)) }))));
  const unsent = state.photos.filter((p) => !p.sent).length;
  const sent = state.photos.length - unsent;
  $('collect-counts').textContent = state.photos.length
    ? t('collectCounts', { total: state.photos.length, unsent, sent })
    : t('collectNone');
  $('collect-undo').disabled = !state.taken.length;
  $('collect-shoot').disabled = !state.camera?.running || !state.active;
  $('collect-file').disabled = !unsent || state.sending;
  $('collect-clear').hidden = !sent;
  $('collect-corrections').hidden = !state.corrections.length || !state.request.offer && !state.request.peer;
  $('collect-corrections-text').textContent = t('collectCorrectionsToo', { n: state.corrections.length });
}

async function reload() {
  state.photos = await photosOf(state.request.session);
  // corrections kept from a shared classifier's classify view (ui/corrections.js): sent live to
  // this teacher only when the user ticks the box
  state.corrections = await unsentCorrections().catch(() => []);
  render();
}

async function shoot() {
  if (!state.camera?.running || !state.active) return;
  const bytes = await state.camera.frameJpeg(FRAME_SHORT_SIDE);
  if (bytes) await keep(state.active, bytes);
}

/** A photo of `label` kept in this phone's store, shown, and sent when connected. */
async function keep(label, bytes) {
  const rec = { session: state.request.session, kind: 'photos', label, bytes, taken: Date.now() };
  const id = await addPhoto(rec);
  state.taken.push(id);
  state.photos.push({ ...rec, id, sent: false });
  render();
  state.live?.send();
}

function bindShoot() {
  const b = $('collect-shoot');
  let timer = null;
  let holdTimer = null;
  const stop = () => { clearTimeout(holdTimer); clearInterval(timer); holdTimer = null; timer = null; b.classList.remove('recording'); };
  b.addEventListener('pointerdown', (ev) => {
    ev.preventDefault();
    b.setPointerCapture?.(ev.pointerId);
    shoot().catch(fail);
    holdTimer = setTimeout(() => { b.classList.add('recording'); timer = setInterval(() => shoot().catch(fail), BURST_MS); }, HOLD_MS);
  });
  for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) b.addEventListener(type, stop);
  b.addEventListener('keydown', (ev) => { if ((ev.key === ' ' || ev.key === 'Enter') && !ev.repeat) { ev.preventDefault(); shoot().catch(fail); } });
}

async function startCamera() {
  state.camera ??= new Camera($('collect-video'));
  try {
    await state.camera.start();
    $('collect-start-camera').hidden = true;
  } catch (e) {
    $('collect-start-camera').hidden = false;
    fail(e);
  }
  render();
}

/** The unsent photos as one contribution file, to the share sheet or downloaded. */
async function sendFile() {
  const unsent = state.photos.filter((p) => !p.sent);
  if (!unsent.length) return;
  state.sending = true;
  render();
  try {
    const sender = who();
    const bytes = packContribution({ session: state.request.session, contributor: sender, photos: unsent });
    const name = `sortwise-${state.request.session}-${(sender.name || 'photos').replace(/[^\p{L}\p{N}_-]+/gu, '-')}-${stamp()}.zip`;
    if (!(await shareOrDownload(bytes, name, 'application/zip', t('collectShareTitle')))) return; // share sheet closed: nothing sent
    await markSent(unsent.map((p) => p.id));
    say(t('collectFileDone', { n: unsent.length }));
    await reload();
  } catch (e) {
    fail(e);
  } finally {
    state.sending = false;
    render();
  }
}

function bind() {
  $('collect-name').value = savedName();
  $('collect-name').addEventListener('change', () => {
    saveName($('collect-name').value);
    state.live?.hello();
  });
  $('collect-start-camera').addEventListener('click', startCamera);
  $('collect-switch').addEventListener('click', () => state.camera?.switch().catch(fail));
  $('collect-undo').addEventListener('click', async () => {
    const id = state.taken.pop();
    if (id == null) return;
    const p = state.photos.find((x) => x.id === id);
    if (p?.sent) { say(t('collectUndoSent')); render(); return; }
    await deletePhoto(id);
    await reload();
  });
  $('collect-file').addEventListener('click', sendFile);
  $('collect-clear').addEventListener('click', async () => {
    const n = await deleteSent(state.request.session);
    say(t('collectCleared', { n }));
    await reload();
  });
  for (const b of document.querySelectorAll('[data-lang]')) b.addEventListener('click', () => setLang(b.dataset.lang));
  onLangChange(render);
  bindShoot();
}

async function start() {
  setLang(defaultLang());
  applyI18n(document);
  if ('serviceWorker' in navigator && window.isSecureContext) {
    navigator.serviceWorker.register('sw.js', { scope: './' }).catch(() => {}); // offline next time
  }
  try {
    state.request = readCollectLink(location.hash);
    if (!state.request) throw new Error(t('collectNoLink'));
  } catch (e) {
    fail(e);
    document.body.dataset.ready = 'error';
    return;
  }
  state.active = state.request.labels[0];
  $('collect-view').hidden = false;
  bind();
  await reload();
  // Live needs WebRTC: a browser without it (WebKitGTK built without a WebRTC backend) is offered
  // the file only, as the teacher's page is (ui/collect.js).
  if ((state.request.offer || state.request.peer) && typeof RTCPeerConnection === 'function') {
    $('collect-live').hidden = false;
    $('collect-live').addEventListener('click', () => {
      state.live ??= startLive({
        request: state.request,
        contributor: who,
        pending: () => state.photos.filter((p) => !p.sent),
        corrections: () => ($('collect-corrections-on').checked ? state.corrections : []),
        onSent: reload,
        say,
        fail,
      });
    });
  }
  startCamera();
  document.body.dataset.ready = '1';
}

// For the tests and bench/collect.mjs: what the view holds, and a photo kept as a camera shot is
// (`keep(label, jpegBytes)`: stored, counted, sent when connected).
window.sortwiseCollect = {
  keep: (label, bytes) => keep(label, new Uint8Array(bytes)),
  get state() {
    return {
      labels: state.request?.labels ?? null,
      session: state.request?.session ?? null,
      active: state.active,
      photos: state.photos.map((p) => ({ label: p.label, sent: p.sent, bytes: p.bytes.byteLength })),
      corrections: state.corrections.length,
      camera: Boolean(state.camera?.running),
      live: state.live?.state ?? null,
    };
  },
};

start().catch(fail);
