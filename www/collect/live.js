// The phone's live connection to the teacher's page (peer.js): through the school's PeerJS server
// when the link names one (peer-server.js, one scan), else the answer to the teacher's offer
// shown as a QR code for the teacher's camera; then every unsent photo sent as it is taken, each
// marked sent only once the teacher's page acknowledged it.

import { t } from '../i18n.js';
import { answerCode, answerOffer, opened, PhotoSender, rtcConfig } from './peer.js';
import { dial } from './peer-server.js';
import { qrCode } from '../share/share-link.js';
import { drawQr } from '../ui/qr.js';
import { $ } from '../ui/dom.js';
import { markSent } from './photos.js';

/**
 * Starts answering `request.offer`; returns `{state, send, hello}`: `send()` sends what is
 * pending (photos taken meanwhile included; then `corrections()`, those the user chose to send
 * too), `hello()` sends the contributor's name again.
 */
export function startLive({ request, contributor, pending, corrections, onSent, say, fail }) {
  const live = { state: 'answering', answer: null, sender: null, sending: false, again: false };
  const show = (key, params) => { live.state = key; $('collect-live-state').textContent = t(key, params); };
  live.send = async () => {
    if (!live.sender) return;
    if (live.sending) { live.again = true; return; }
    live.sending = true;
    try {
      do {
        live.again = false;
        const photos = pending();
        const fixes = corrections?.() ?? [];
        if (!photos.length && !fixes.length) break;
        const ids = photos.length ? await live.sender.send(photos) : [];
        if (fixes.length) ids.push(...await live.sender.send(fixes, { kind: 'corrections' }));
        await markSent(ids);
        await onSent();
        say(t('collectLiveSent', { n: ids.length }));
      } while (live.again);
    } catch (e) {
      show('collectLiveLost', { reason: e.message });
    } finally {
      live.sending = false;
    }
  };
  live.hello = () => { try { live.sender?.hello(); } catch { /* closed: the state says so */ } };
  const config = rtcConfig({ iceServers: request.ice, relayOnly: request.relayOnly });
  const connected = (ch, pc) => {
    live.sender = new PhotoSender(ch, { session: request.session, contributor });
    live.sender.hello();
    show('collectLiveOn');
    ch.addEventListener('close', () => { show('collectLiveLost', { reason: t('collectLiveClosed') }); live.sender = null; });
    pc?.addEventListener('connectionstatechange', () => { if (pc.connectionState === 'failed') show('collectLiveLost', { reason: pc.connectionState }); });
    return live.send();
  };
  (async () => {
    // One scan: through the school's PeerJS server when the teacher set one; the two codes when
    // it fails or there is none.
    if (request.peer) {
      show('collectLivePeer');
      try {
        const { channel, pc } = await dial(request.peer.path, request.peer.id, config);
        await connected(channel, pc);
        return;
      } catch (e) {
        if (!request.offer) throw e;
      }
    }
    show('collectLiveAnswering');
    const { pc, channel, answer } = await answerOffer(request.offer, config);
    live.answer = answerCode(request.session, answer);
    const code = qrCode(live.answer);
    if (!code) throw new Error('the answer does not fit a QR code');
    // Drawn at the screen's own pixels, shown at whole device pixels per module: a code scaled
    // by a fraction blurs its modules, and a camera then misreads a dense one.
    const canvas = $('collect-answer-qr');
    const dpr = window.devicePixelRatio || 1;
    drawQr(canvas, code, Math.min(window.innerWidth - 32, 320) * dpr);
    canvas.style.width = `${canvas.width / dpr}px`;
    $('collect-answer').hidden = false;
    show('collectLiveShow');
    const ch = await opened(await channel, 10 * 60 * 1000);
    $('collect-answer').hidden = true;
    await connected(ch, pc);
  })().catch((e) => { show('collectLiveLost', { reason: e.message }); fail(e); });
  return live;
}
