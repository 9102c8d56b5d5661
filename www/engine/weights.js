// Backbone weights: fetched once with progress, checked against the manifest's sha256, and kept
// in Cache Storage so a second visit (or an offline one) does not download them again.

const CACHE = 'sortwise-weights-v1';

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
