// Lists the backbone weight files that scripts/weights.sh prepared (www/weights/manifest.json).
const list = document.getElementById('backbones');

function item(text) {
  const li = document.createElement('li');
  li.textContent = text;
  return li;
}

try {
  const res = await fetch('weights/manifest.json', { cache: 'no-cache' });
  if (!res.ok) throw new Error(`manifest.json: HTTP ${res.status}`);
  const { backbones } = await res.json();
  list.replaceChildren(...backbones.map((b) => item(`${b.arch} — ${(b.bytes / 1e6).toFixed(1)} MB`)));
  if (backbones.length === 0) list.replaceChildren(item('none yet: run ./run serve'));
} catch (err) {
  list.replaceChildren(item(`No weights found (${err.message}). Run ./run serve.`));
}
