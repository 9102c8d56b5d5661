// Share by link (step 5): the dialog with the link, its QR code when one code holds it, how
// closely the compact head agrees with the full one, and the .sortwise file for what no link
// holds; and the list of classifiers kept from links on this device (links-store.js).

import { t, formatPct, getLang } from '../i18n.js';
import { forgetLink, keptLinks } from '../share/links-store.js';
import { makeLink, pageBase, qrCapacity, qrCode } from '../share/share-link.js';
import { exportModel } from './save.js';
import { drawQr } from './qr.js';
import { $, el, download, stamp } from './dom.js';
import { clearError, showError, status } from './status.js';

let project = null;
let current = null; // what the dialog shows: {link, code, deflated, shared} or {refused}

const PRECISION_KEYS = { int4: 'sharePrecisionInt4', int8: 'sharePrecisionInt8', f16: 'sharePrecisionF16' };

function renderDialog() {
  if (!current) return;
  const { shared, refused } = current;
  const summary = $('share-summary');
  const noQr = $('share-noqr');
  const canvas = $('share-qr');
  $('share-link-row').hidden = Boolean(refused);
  $('share-copy').hidden = Boolean(refused);
  $('share-native').hidden = Boolean(refused) || typeof navigator.share !== 'function';
  $('share-qr-download').hidden = !current.code;
  canvas.hidden = !current.code;
  if (refused) {
    summary.textContent = t('shareRefused', { reason: refused });
    noQr.hidden = true;
    return;
  }
  const precision = t(PRECISION_KEYS[shared.precision] ?? 'sharePrecisionF16');
  const same = Math.round(shared.agreement * shared.n);
  summary.textContent = shared.n
    ? t('shareSummary', { precision, same, n: shared.n, pct: formatPct(shared.agreement), bytes: current.deflated.toLocaleString(getLang()) })
    : t('shareSummaryNoPhotos', { precision, bytes: current.deflated.toLocaleString(getLang()) });
  $('share-link').value = current.link;
  if (current.code) {
    drawQr(canvas, current.code);
    canvas.setAttribute('aria-label', t('shareQrAlt', { labels: project.modelLabels.join(', ') }));
    canvas.title = t('shareQrEnlarge');
    noQr.hidden = true;
  } else {
    noQr.hidden = false;
    noQr.textContent = t('shareNoQr', { bytes: current.deflated.toLocaleString(getLang()), max: qrCapacity(current.qr.base).toLocaleString(getLang()) });
  }
  canvas.dataset.modules = current.code ? String(current.code.getModuleCount()) : '';
}

async function openShare() {
  clearError();
  if (!project.model) { showError('modelNone'); return; }
  if (project.training) { showError('busy'); return; }
  try {
    const shared = await project.share();
    const base = pageBase(window.location);
    const made = makeLink(shared.bytes, base);
    current = { ...made, shared, code: qrCode(made.qr) };
  } catch (e) {
    // A model with a fine-tuned stage: the engine says why; the file still shares it.
    current = { refused: e?.message || String(e) };
  }
  renderDialog();
  const dialog = $('share-dialog');
  dialog.classList.remove('qr-big');
  if (!dialog.open) dialog.showModal();
  document.body.dataset.share = current.refused ? 'refused' : current.code ? 'qr' : 'link';
}

async function copyLink() {
  const input = $('share-link');
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    // No clipboard permission (an insecure origin, an old WebKit): leave it selected to copy.
    input.select();
    document.execCommand?.('copy');
  }
  status(t('shareCopied'));
  $('share-copy').textContent = t('shareCopied');
  setTimeout(() => { $('share-copy').textContent = t('shareCopy'); }, 2000);
}

function downloadQr() {
  $('share-qr').toBlob((blob) => { if (blob) download(blob, `sortwise-qr-${stamp()}.png`, 'image/png'); }, 'image/png');
}

/** What the share dialog shows, for sortwiseDebug.state: the link, its size and agreement, the QR's size. */
export function shareState() {
  if (!current) return null;
  if (current.refused) return { refused: current.refused };
  const { precision, agreement, n } = current.shared;
  return { precision, agreement, n, deflated: current.deflated, link: current.link, qrText: current.qr.base + current.qr.digits, modules: current.code?.getModuleCount() ?? null };
}

/** The classifiers kept from links, each opened by its own link. */
export async function renderKept() {
  let list = [];
  try { list = await keptLinks(); } catch { /* no IndexedDB: nothing kept */ }
  $('kept-links').hidden = list.length === 0;
  const base = pageBase(window.location);
  $('kept-list').replaceChildren(...list.map((k) => el('li', { class: 'kept' },
    el('a', { href: makeLink(k.bytes, base).link, class: 'kept-open', text: k.labels.join(' · '), dir: 'auto' }),
    el('span', { class: 'note', text: ` ${k.arch}, ${new Date(k.savedAt).toLocaleDateString(getLang())} ` }),
    el('button', {
      type: 'button',
      class: 'small',
      text: t('keptForget'),
      onclick: async () => {
        try { await forgetLink(k.id); } catch (e) { showError('keptForgetFailed', e); }
        renderKept();
      },
    }))));
}

export function rerenderShare() {
  renderDialog();
  renderKept();
}

export function bindShare(p) {
  project = p;
  $('share-model').addEventListener('click', openShare);
  $('share-copy').addEventListener('click', copyLink);
  $('share-native').addEventListener('click', () => {
    navigator.share({ title: t('shareTitle'), url: $('share-link').value }).catch(() => {});
  });
  $('share-qr-download').addEventListener('click', downloadQr);
  $('share-file').addEventListener('click', exportModel);
  $('share-close').addEventListener('click', () => $('share-dialog').close());
  // A large code (version 30+) needs more pixels a module than the dialog gives it to scan from
  // across a room: a tap fills the screen with it.
  $('share-qr').addEventListener('click', () => $('share-dialog').classList.toggle('qr-big'));
  project.addEventListener('model', () => { current = null; });
  renderKept();
}
