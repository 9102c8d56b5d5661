// A school's self-hosted PeerJS server (npm `peer`), for a phone to join the teacher's page with
// one scan instead of two: the teacher's page waits under an id the collect link carries, the
// phone dials it, and the server passes the WebRTC offer and answer between them. The photos
// still go over the direct data channel (peer.js's protocol), never through the server. The
// server must be on this page's own site (a path its web server hands to `peer`): the page's
// Content-Security-Policy lets it connect nowhere else. The client (npm `peerjs`, vendored) is
// loaded only when a server is set.

const load = () => import('../vendor/peerjs.js');

const PATH = /^\/(?!\/)[A-Za-z0-9._~/-]{0,100}$/; // a path on this site, never //host
const ID = /^sortwise-[A-Z0-9]{6}-[a-z0-9]{4,16}$/;

export function isPeerPath(path) { return typeof path === 'string' && PATH.test(path); }
export function isPeerId(id) { return typeof id === 'string' && ID.test(id); }

/** The teacher's id on the server for `session`: new for each page, so a reload never finds it taken. */
export function peerIdFor(session) {
  return `sortwise-${session}-${[...crypto.getRandomValues(new Uint8Array(5))].map((b) => b.toString(36).padStart(2, '0')).join('')}`;
}

function options(path, config) {
  const secure = location.protocol === 'https:';
  return { host: location.hostname, port: Number(location.port) || (secure ? 443 : 80), path, secure, config, debug: 0 };
}

function opened(peer) {
  return new Promise((resolve, reject) => {
    peer.once('open', resolve);
    peer.once('error', (e) => reject(new Error(`the PeerJS server: ${e?.type || ''} ${e?.message || e}`.trim())));
  });
}

/**
 * The teacher's side: registers `id` on the server at `path`; `onChannel(channel, pc)` for each
 * phone that connects (its data channel, open). Resolves to `{close}`.
 */
export async function listen(path, id, config, onChannel) {
  const { Peer } = await load();
  const peer = new Peer(id, options(path, config));
  await opened(peer);
  peer.on('connection', (conn) => conn.on('open', () => onChannel(conn.dataChannel, conn.peerConnection)));
  return { close: () => peer.destroy() };
}

/** The phone's side: dials `id` through the server at `path`; resolves to `{channel, pc, close}` once open. */
export async function dial(path, id, config) {
  const { Peer } = await load();
  const peer = new Peer(options(path, config));
  await opened(peer);
  const conn = peer.connect(id, { reliable: true, serialization: 'raw' });
  await new Promise((resolve, reject) => {
    conn.once('open', resolve);
    conn.once('error', reject);
    peer.once('error', (e) => reject(new Error(`the teacher's page is not on the PeerJS server (${e?.type || e})`)));
  });
  conn.dataChannel.binaryType = 'arraybuffer';
  return { channel: conn.dataChannel, pc: conn.peerConnection, close: () => peer.destroy() };
}
