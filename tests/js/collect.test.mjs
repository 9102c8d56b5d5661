// Collecting from phones (issue 33), the parts without a browser: the collect link, the
// contribution zip (pack → read, and crafted ones refused whole), and the photo protocol between
// a phone and the teacher's page over a stand-in data channel: whole batches only, a cut batch
// dropped, a malformed message closing the channel.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { zipSync, strToU8, deflateSync } from '../../www/vendor/fflate.js';
import { toBase64Url } from '../../www/share/share-link.js';
import { collectQr, makeCollectLink, readCollectLink, newSessionCode, parseIceServers, COLLECT_LIMITS } from '../../www/collect/collect-link.js';
import { packContribution, readContribution, isContributionZip, newContributorId, cleanName, MANIFEST, CONTRIBUTION_LIMITS } from '../../www/collect/contribution.js';
import { PhotoSender, PhotoReceiver, CHUNK, readAnswerCode, answerCode, packSdp, unpackSdp } from '../../www/collect/peer.js';

const DATA = process.env.SORTWISE_DATA || new URL('../../../shared/data/trashnet-mini', import.meta.url).pathname;
const jpegs = (cls, n) => readdirSync(join(DATA, 'train', cls)).sort().slice(0, n).map((f) => new Uint8Array(readFileSync(join(DATA, 'train', cls, f))));

test('a collect link carries the session, the class names and the offer, and refuses damage', () => {
  const session = newSessionCode();
  assert.match(session, /^[A-HJ-NP-Z2-9]{6}$/);
  const labels = ['可回收物 Recyclable', 'glass', 'a/b'];
  const link = makeCollectLink('https://school.example/sortwise/', { session, labels, offer: 'abc_-9' });
  assert.ok(link.startsWith('https://school.example/sortwise/collect.html#c='));
  const got = readCollectLink(new URL(link).hash);
  assert.deepEqual(got, { session, labels, offer: 'abc_-9', ice: [], relayOnly: false, peer: null });
  // a school's PeerJS server on the page's own site: its path and the teacher's id there
  const peer = { path: '/peerjs', id: `sortwise-${session}-ab12cd` };
  assert.deepEqual(readCollectLink(new URL(makeCollectLink('https://x/', { session, labels, peer })).hash).peer, peer);
  for (const bad of [{ path: 'https://evil.example/peerjs', id: peer.id }, { path: '/peerjs', id: 'someone-else' }, { path: '//evil.example/x', id: peer.id }]) {
    assert.throws(() => makeCollectLink('https://x/', { session, labels, peer: bad }), /PeerJS/, JSON.stringify(bad));
  }
  // the school's TURN server travels with the offer: the phone must use the same
  const ice = [{ urls: 'turn:turn.school.example:3478', username: 'class', credential: 's3cret' }];
  const relayed = readCollectLink(new URL(makeCollectLink('https://x/', { session, labels, offer: 'o', ice, relayOnly: true })).hash);
  assert.deepEqual([relayed.ice, relayed.relayOnly], [ice, true]);
  assert.deepEqual(parseIceServers('turn:h:3478 u p\n\n  stun:h:3478  '), [{ urls: 'turn:h:3478', username: 'u', credential: 'p' }, { urls: 'stun:h:3478' }]);
  assert.deepEqual(parseIceServers(''), []);
  for (const bad of ['http://evil.example', 'turn:h:3478', 'stun:a\nstun:b\nstun:c\nstun:d\nstun:e', `turn:h u ${'p'.repeat(200)}`]) {
    assert.throws(() => parseIceServers(bad), /ICE servers/, bad);
  }
  // the QR code's spelling: the same bytes as digits
  const qr = collectQr(link);
  assert.equal(qr.base, 'https://school.example/sortwise/collect.html#d=');
  assert.deepEqual(readCollectLink(`#d=${qr.digits}`), got);
  assert.throws(() => readCollectLink('#d=12'), /damaged/);
  assert.equal(readCollectLink(''), null);
  assert.equal(readCollectLink('#m=abc'), null);
  assert.throws(() => readCollectLink('#c='), /cut short/);
  assert.throws(() => readCollectLink('#c=!!!'), /./);
  assert.throws(() => readCollectLink(`${new URL(link).hash.slice(0, 20)}`), /damaged/);
  // a deflate bomb in the fragment: refused before it unpacks past the limit
  const bomb = toBase64Url(deflateSync(strToU8(JSON.stringify({ v: 1, s: session, l: ['x'], pad: ' '.repeat(10 * 1024 * 1024) }))));
  assert.ok(bomb.length < 20000);
  assert.throws(() => readCollectLink(`#c=${bomb}`), /more than any project sends/);
  assert.throws(() => makeCollectLink('https://x/', { session: 'short', labels }), /session/);
  assert.throws(() => makeCollectLink('https://x/', { session, labels: [] }), /class list/);
  assert.throws(() => makeCollectLink('https://x/', { session, labels: ['x'.repeat(COLLECT_LIMITS.maxLabelChars + 1)] }), /class name/);
});

test('a contribution zip packs and reads back photo by photo; names are cleaned', async () => {
  const glass = jpegs('glass', 3);
  const paper = jpegs('paper', 2);
  const contributor = { id: newContributorId(), name: ' Ana\u202e\u200b ' };
  const photos = [...glass.map((bytes, i) => ({ label: 'glass', bytes, taken: 1000 + i })), ...paper.map((bytes) => ({ label: 'paper / 纸', bytes, taken: 2000 }))];
  const zip = packContribution({ session: 'ABCDEF', contributor, photos });
  const blob = new Blob([zip]);
  assert.equal(await isContributionZip(blob), true);
  assert.equal(await isContributionZip(new Blob([zipSync({ 'glass/a.jpg': glass[0] })])), false);
  assert.equal(await isContributionZip(new Blob([new Uint8Array(100)])), false);
  const c = await readContribution(blob);
  assert.equal(c.kind, 'photos');
  assert.equal(c.session, 'ABCDEF');
  assert.deepEqual(c.contributor, { id: contributor.id, name: 'Ana' });
  assert.equal(c.photos.length, 5);
  c.photos.forEach((p, i) => {
    assert.equal(p.label, photos[i].label);
    assert.deepEqual(p.bytes, photos[i].bytes);
    assert.equal(p.taken, photos[i].taken);
  });
  // the folder of a class whose name has a slash stays one folder
  assert.ok(c.photos[3].name.startsWith('paper _ 纸/'), c.photos[3].name);
  assert.equal(cleanName('x'.repeat(100)).length, CONTRIBUTION_LIMITS.maxNameChars);
});

test('a crafted contribution is refused whole, with the reason', async () => {
  const jpg = jpegs('metal', 1)[0];
  const good = { format: 'sortwise-contribution', version: 1, session: 'ABCDEF', contributor: { id: 'abcdefgh12', name: 'x' }, photos: [{ file: 'metal/1.jpg', label: 'metal' }] };
  const make = (manifest, files = { 'metal/1.jpg': jpg }) => new Blob([zipSync({ ...files, [MANIFEST]: strToU8(typeof manifest === 'string' ? manifest : JSON.stringify(manifest)) })]);
  assert.equal((await readContribution(make(good))).photos.length, 1);
  const cases = [
    [make('{not json'), /not valid JSON/],
    [make({ ...good, format: 'other' }), /not a sortwise contribution/],
    [make({ ...good, version: 2 }), /version 2/],
    [make({ ...good, kind: 'bomb' }), /unknown kind/],
    [make({ ...good, session: '../../x' }), /session code/],
    [make({ ...good, contributor: { id: 'x', name: 'a' } }), /contributor id/],
    [make({ ...good, contributor: null }), /contributor id/],
    [make({ ...good, photos: {} }), /photo list/],
    [make({ ...good, photos: [{ file: 'metal/2.jpg', label: 'metal' }] }), /missing/],
    [make({ ...good, photos: [good.photos[0], good.photos[0]] }), /listed twice/],
    [make({ ...good, photos: [{ file: 'metal/1.jpg', label: '' }] }), /the class of/],
    [make({ ...good, photos: [{ file: 'metal/1.jpg', label: 'x'.repeat(101) }] }), /the class of/],
    [make({ ...good, photos: [{ file: 'metal/1.jpg', label: 'metal', taken: -1 }] }), /the time of/],
    [make({ ...good, photos: Array.from({ length: CONTRIBUTION_LIMITS.maxPhotos + 1 }, (_, i) => ({ file: `m/${i}.jpg`, label: 'm' })) }), /more than 1000 photos/],
    [new Blob([zipSync({ 'metal/1.jpg': jpg })]), /missing or could not be read/],
  ];
  for (const [blob, want] of cases) await assert.rejects(readContribution(blob), want);
  // a photo whose bytes fail their CRC: the photo is missing, so the whole file is refused
  const zip = zipSync({ 'metal/1.jpg': [jpg, { level: 0 }], [MANIFEST]: strToU8(JSON.stringify(good)) });
  const at = zip.indexOf(0xff, 40); // inside the stored JPEG
  zip[at + 10] ^= 0xff;
  await assert.rejects(readContribution(new Blob([zip])), /missing/);
});

test('pairing codes: SDP packs and unpacks, an answer code names its session', () => {
  const sdp = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n'.repeat(5);
  assert.equal(unpackSdp(packSdp(sdp)), sdp);
  // Chromium's answer, as it was: what a data channel does not need is left out
  const answer = ['v=0', 'o=- 906 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0', 'a=extmap-allow-mixed', 'a=msid-semantic: WMS',
    'm=application 56347 UDP/DTLS/SCTP webrtc-datachannel', 'c=IN IP4 192.0.2.2',
    'a=candidate:1778882900 1 udp 2122194687 192.0.2.2 56347 typ host generation 0 network-id 1',
    'a=candidate:2707511476 1 udp 2122265343 fd00::2 36175 typ host generation 0 network-id 2 network-cost 10',
    'a=ice-ufrag:kQpf', 'a=ice-pwd:LeuusCVR6dPdfCgo7WtOnuAt', 'a=ice-options:trickle', 'a=fingerprint:sha-256 EE:32:7A:DF', 'a=setup:active', 'a=mid:0', 'a=sctp-port:5000', 'a=max-message-size:262144', ''].join('\r\n');
  const min = unpackSdp(packSdp(answer));
  assert.equal(min, ['v=0', 'o=- 906 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0',
    'm=application 56347 UDP/DTLS/SCTP webrtc-datachannel', 'c=IN IP4 192.0.2.2',
    'a=candidate:1778882900 1 udp 2122194687 192.0.2.2 56347 typ host',
    'a=candidate:2707511476 1 udp 2122265343 fd00::2 36175 typ host',
    'a=ice-ufrag:kQpf', 'a=ice-pwd:LeuusCVR6dPdfCgo7WtOnuAt', 'a=fingerprint:sha-256 EE:32:7A:DF', 'a=setup:active', 'a=mid:0', 'a=sctp-port:5000', 'a=max-message-size:262144', ''].join('\r\n'));
  assert.throws(() => unpackSdp(packSdp('hello')), /not a connection offer/);
  assert.throws(() => unpackSdp(packSdp('v=0'.padEnd(20000, 'x'))), /more than/);
  const packed = packSdp(answer);
  const code = answerCode('ABCDEF', packed);
  assert.match(code.base, /^sortwise-answer:ABCDEF:n$/);
  assert.match(code.digits, /^[0-9]+$/);
  assert.deepEqual(readAnswerCode(code.base + code.digits), { session: 'ABCDEF', answer: packed });
  assert.deepEqual(readAnswerCode('sortwise-answer:ABCDEF:xyz_-'), { session: 'ABCDEF', answer: 'xyz_-' });
  assert.equal(readAnswerCode('sortwise-answer:ABCDEF:n1'), null);
  assert.equal(readAnswerCode('https://example.com'), null);
  assert.equal(readAnswerCode('sortwise-answer:abc:xyz'), null);
});

/** Two ends of a reliable, ordered data channel, in one process. */
function channelPair() {
  const make = () => {
    const ch = new EventTarget();
    ch.readyState = 'open';
    ch.bufferedAmount = 0;
    ch.sent = 0;
    ch.close = () => {
      for (const c of [a, b]) {
        if (c.readyState === 'closed') continue;
        c.readyState = 'closed';
        queueMicrotask(() => c.dispatchEvent(new Event('close')));
      }
    };
    return ch;
  };
  const a = make();
  const b = make();
  const wire = (from, to) => {
    from.send = (data) => {
      if (from.readyState !== 'open') throw new Error('closed');
      from.sent += 1;
      if (from.cutAfter != null && from.sent > from.cutAfter) { from.close(); return; }
      const copy = typeof data === 'string' ? data : data.slice().buffer;
      queueMicrotask(() => { if (to.readyState === 'open') to.dispatchEvent(Object.assign(new Event('message'), { data: copy })); });
    };
  };
  wire(a, b);
  wire(b, a);
  return [a, b];
}

function pairUp({ cutAfter = null, onBatch } = {}) {
  const [phoneEnd, teacherEnd] = channelPair();
  phoneEnd.cutAfter = cutAfter;
  const merged = [];
  const events = [];
  const contributor = { id: 'abcdefgh12', name: 'Ben' };
  new PhotoReceiver(teacherEnd, {
    session: 'ABCDEF',
    onHello: (c) => events.push(['hello', c.name]),
    onBatch: onBatch ?? (async (c) => { merged.push(c); return { added: c.photos.length, offered: 0 }; }),
    onClose: () => events.push(['close']),
    now: () => 0,
  });
  const sender = new PhotoSender(phoneEnd, { session: 'ABCDEF', contributor: () => contributor });
  return { sender, merged, events, phoneEnd, teacherEnd };
}

test('photos cross the channel in whole, checked batches with their sender', async () => {
  const { sender, merged, events } = pairUp();
  sender.hello();
  const big = new Uint8Array(CHUNK * 2 + 5).map((_, i) => i * 7);
  const photos = [...jpegs('glass', 6), big, ...jpegs('paper', 3)].map((bytes, i) => ({ id: i + 1, label: i < 6 ? 'glass' : 'paper', bytes, taken: i }));
  const acked = await sender.send(photos);
  assert.deepEqual(acked, photos.map((p) => p.id));
  assert.deepEqual(events, [['hello', 'Ben']]);
  assert.equal(merged.length, 2); // batches of 8
  const got = merged.flatMap((c) => c.photos);
  assert.equal(got.length, 10);
  got.forEach((p, i) => { assert.equal(p.label, photos[i].label); assert.deepEqual(p.bytes, photos[i].bytes); });
  assert.deepEqual(merged[0].contributor, { id: 'abcdefgh12', name: 'Ben' });
});

test('a batch cut mid-transfer is dropped whole; the phone keeps it unacknowledged', async () => {
  // hello + batch header + 3 of the 8 photos' chunks, then the link dies
  const { sender, merged, events } = pairUp({ cutAfter: 5 });
  sender.hello();
  const photos = jpegs('metal', 8).map((bytes, i) => ({ id: i + 1, label: 'metal', bytes }));
  await assert.rejects(sender.send(photos), /closed/);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(merged.length, 0);
  assert.deepEqual(events.at(-1), ['close']);
});

test('the teacher refuses what a phone running the page never sends', async () => {
  const bad = [
    (ch) => ch.send(JSON.stringify({ t: 'batch', n: 1, photos: [{ label: 'x', size: 1, crc: 0 }] })), // before hello
    (ch) => { ch.send(JSON.stringify({ t: 'hello', v: 1, session: 'OTHER1', contributor: { id: 'abcdefgh12' } })); },
    (ch) => { ch.send(JSON.stringify({ t: 'hello', v: 1, session: 'ABCDEF', contributor: { id: 'abcdefgh12' } })); ch.send(new Uint8Array(4)); },
    (ch) => { ch.send(JSON.stringify({ t: 'hello', v: 1, session: 'ABCDEF', contributor: { id: 'abcdefgh12' } })); ch.send(JSON.stringify({ t: 'batch', n: 1, photos: [{ label: 'x', size: 3e9, crc: 0 }] })); },
    (ch) => { ch.send(JSON.stringify({ t: 'hello', v: 1, session: 'ABCDEF', contributor: { id: 'abcdefgh12' } })); ch.send(JSON.stringify({ t: 'batch', n: 1, photos: [{ label: 'x', size: 2, crc: 0 }] })); ch.send(new Uint8Array(3)); },
    (ch) => { ch.send(JSON.stringify({ t: 'hello', v: 1, session: 'ABCDEF', contributor: { id: 'abcdefgh12' } })); ch.send(JSON.stringify({ t: 'batch', n: 1, photos: [{ label: 'x', size: 2, crc: 12345 }] })); ch.send(new Uint8Array(2)); },
    (ch) => ch.send('{"t":'),
    (ch) => { ch.send(JSON.stringify({ t: 'hello', v: 1, session: 'ABCDEF', contributor: { id: 'abcdefgh12' } })); ch.send(JSON.stringify({ t: 'batch', n: 1, photos: Array.from({ length: 9 }, () => ({ label: 'x', size: 1, crc: 0 })) })); },
    (ch) => { ch.send(JSON.stringify({ t: 'hello', v: 1, session: 'ABCDEF', contributor: { id: 'abcdefgh12' } })); ch.send(JSON.stringify({ t: 'batch', n: 1, photos: [] })); },
    (ch) => { ch.send(JSON.stringify({ t: 'hello', v: 1, session: 'ABCDEF', contributor: { id: 'abcdefgh12' } })); ch.send(JSON.stringify({ t: 'hello', v: 1, session: 'ABCDEF', contributor: { id: 'zzzzzzzz99' } })); },
    (ch) => { ch.send(JSON.stringify({ t: 'hello', v: 1, session: 'ABCDEF', contributor: { id: 'abcdefgh12' } })); ch.send(JSON.stringify({ t: 'delete-everything' })); },
  ];
  // a phone that does not wait for its answers: the third unanswered batch closes the channel
  {
    let release;
    const held = new Promise((r) => { release = r; });
    const { merged, events, phoneEnd } = pairUp({ onBatch: async (c) => { merged.push(c); await held; return { added: 1, offered: 0 }; } });
    const one = new Uint8Array([1, 2, 3]);
    const { crc32 } = await import('../../www/project/project-zip.js');
    phoneEnd.send(JSON.stringify({ t: 'hello', v: 1, session: 'ABCDEF', contributor: { id: 'abcdefgh12' } }));
    for (let n = 1; n <= 3; n += 1) {
      phoneEnd.send(JSON.stringify({ t: 'batch', n, photos: [{ label: 'x', size: 3, crc: crc32(one) }] }));
      phoneEnd.send(one);
    }
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(merged.length, 2, 'two batches taken, the third refused');
    assert.deepEqual(events.at(-1), ['close']);
    release();
  }
  for (const [i, attack] of bad.entries()) {
    const { merged, events, phoneEnd } = pairUp();
    attack(phoneEnd);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(merged.length, 0, `case ${i}`);
    assert.deepEqual(events.at(-1), ['close'], `case ${i}: closed`);
  }
});

test('corrections cross the channel as their own kind, with the class the classifier said', async () => {
  const { sender, merged } = pairUp();
  sender.hello();
  const photos = jpegs('glass', 2).map((bytes, i) => ({ id: i + 1, label: 'glass', bytes, predicted: 'paper' }));
  assert.deepEqual(await sender.send(photos, { kind: 'corrections' }), [1, 2]);
  assert.equal(merged.length, 1);
  assert.equal(merged[0].kind, 'corrections');
  assert.deepEqual(merged[0].photos.map((p) => [p.label, p.predicted]), [['glass', 'paper'], ['glass', 'paper']]);
  // an unknown kind closes the connection
  const bad = pairUp();
  bad.phoneEnd.send(JSON.stringify({ t: 'hello', v: 1, session: 'ABCDEF', contributor: { id: 'abcdefgh12' } }));
  bad.phoneEnd.send(JSON.stringify({ t: 'batch', n: 1, kind: 'settings', photos: [{ label: 'x', size: 1, crc: 0 }] }));
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(bad.events.at(-1), ['close']);
});

test('a batch the page refuses is answered, not acknowledged', async () => {
  const { sender } = pairUp({ onBatch: async () => { throw new Error('engine busy'); } });
  sender.hello();
  await assert.rejects(sender.send(jpegs('plastic', 1).map((bytes) => ({ id: 1, label: 'plastic', bytes }))), /engine busy/);
});

test('the collect page carries the same Content-Security-Policy as the main page (one policy, checked copies)', async () => {
  const { readFileSync } = await import('node:fs');
  const csp = (f) => /<meta http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(readFileSync(new URL(`../../www/${f}`, import.meta.url), 'utf8'))?.[1];
  assert.ok(csp('index.html'));
  assert.equal(csp('collect.html'), csp('index.html'));
});
