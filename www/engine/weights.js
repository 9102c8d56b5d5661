// Backbone weights: which ones the server has (weights/manifest.json, read here and nowhere else,
// once per page), and each file fetched once with progress, checked against the manifest's
// sha256, and kept in Cache Storage so a second visit (or an offline one) does not download it.

const CACHE = 'sortwise-weights-v1';
// weights/ sits beside engine/, in the repository (www/) and in the static site alike.
const MANIFEST = new URL('../weights/manifest.json', import.meta.url);

let manifest = null;

/**
 * The backbones this server has: weights/manifest.json's `backbones`, `[{arch, file, bytes,
 * sha256}]`, never empty. Fetched once and shared by the page and the client (a failed read is
 * tried again next time).
 */
export function readManifest() {
  manifest ??= (async () => {
    const res = await fetch(MANIFEST, { cache: 'no-cache' });
    if (!res.ok) throw new Error(`weights/manifest.json: HTTP ${res.status} (run ./run serve to prepare weights)`);
    const { backbones } = await res.json();
    if (!backbones?.length) throw new Error('no backbone weights on this server (run ./run serve)');
    return backbones;
  })();
  manifest.catch(() => { manifest = null; });
  return manifest;
}

/** The manifest's entry for `arch` (its first backbone without one); throws when there is none. */
export async function backboneEntry(arch) {
  const backbones = await readManifest();
  const entry = arch ? backbones.find((b) => b.arch === arch) : backbones[0];
  if (!entry) throw new Error(`no weights for '${arch}' on this server (available: ${backbones.map((b) => b.arch).join(', ')})`);
  return entry;
}

/** Where a manifest entry's weight file is. */
export function weightsUrl(entry) {
  return new URL(entry.file, MANIFEST).href;
}

async function sha256Hex(bytes) {
  // crypto.subtle exists only in secure contexts (https, localhost); elsewhere skip the check
  // rather than refuse to work from a LAN address.
  if (!globalThis.crypto?.subtle) return null;
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function openCache() {
  try {
    return await caches.open(CACHE);
  } catch {
    return null; // no Cache Storage (opaque origin, disabled storage): download every time
  }
}

async function download(url, onProgress) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`could not download the backbone weights ${url}: HTTP ${res.status}`);
  const total = Number(res.headers.get('content-length')) || 0;
  if (!res.body) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    onProgress?.({ loaded: bytes.length, total: bytes.length });
    return bytes;
  }
  const reader = res.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress?.({ loaded, total });
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.length;
  }
  return bytes;
}

/**
 * The weight file at `url` as a Uint8Array. `sha256` (hex, optional) is checked on every load,
 * so a corrupted cache entry is replaced instead of failing forever.
 */
export async function loadWeights(url, { sha256, onProgress } = {}) {
  const key = new URL(url, self.location.href).href;
  const cache = await openCache();
  const hit = cache && (await cache.match(key));
  if (hit) {
    const bytes = new Uint8Array(await hit.arrayBuffer());
    const digest = sha256 ? await sha256Hex(bytes) : null;
    if (!digest || digest === sha256) {
      onProgress?.({ loaded: bytes.length, total: bytes.length, cached: true });
      return bytes;
    }
    await cache.delete(key);
  }
  const bytes = await download(key, onProgress);
  const digest = sha256 ? await sha256Hex(bytes) : null;
  if (digest && digest !== sha256) {
    throw new Error(`the backbone weights at ${url} are damaged (sha256 ${digest.slice(0, 12)}…, expected ${sha256.slice(0, 12)}…)`);
  }
  if (cache) {
    try {
      await cache.put(key, new Response(bytes, { headers: { 'content-type': 'application/octet-stream' } }));
    } catch {
      // Quota exceeded or storage disabled: the weights still work for this visit.
    }
  }
  return bytes;
}
