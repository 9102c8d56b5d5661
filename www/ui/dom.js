// Small DOM helpers the views share. User-provided text (class names, file names, error
// messages) is only ever rendered with textContent, never as HTML.

export const $ = (id) => document.getElementById(id);

export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'aria') for (const [a, av] of Object.entries(v)) e.setAttribute(`aria-${a}`, av);
    else e[k] = v;
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

/** A blob: URL of an image record's thumbnail, made once (project.js revokes it with the record). */
export function thumbUrl(rec) {
  if (!rec.url) rec.url = URL.createObjectURL(new Blob([rec.thumb], { type: 'image/jpeg' }));
  return rec.url;
}

export function download(bytes, name, type = 'application/octet-stream') {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/**
 * `bytes` as a file to the phone's share sheet (Web Share with files: AirDrop, Nearby Share,
 * mail) where the browser has one, else downloaded. Resolves to false when the user closed the
 * share sheet (nothing was sent), true otherwise.
 */
export async function shareOrDownload(bytes, name, type, title) {
  const file = new File([bytes], name, { type });
  if (navigator.canShare?.({ files: [file] })) {
    try {
      await navigator.share({ files: [file], title });
      return true;
    } catch (e) {
      if (e?.name === 'AbortError') return false;
      // the share sheet failed: downloaded instead
    }
  }
  download(bytes, name, type);
  return true;
}

/** A file input's picked file, handed to `fn`; the input is cleared so the same file can be picked again. */
export function onFilePicked(input, fn) {
  input.addEventListener('change', (ev) => {
    const f = ev.target.files[0];
    ev.target.value = '';
    if (f) fn(f);
  });
}

export function stamp() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}`;
}
