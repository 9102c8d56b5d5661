// Drawing a QR code (share-link.js's `qrCode`, from vendored qrcode-generator) on a canvas: the
// share dialog's link, the collect link, a phone's answer.

/** Draws `code` on `canvas` about `size` px wide, with the quiet zone of 4 modules a reader needs. */
export function drawQr(canvas, code, size = 720) {
  const n = code.getModuleCount();
  const cell = Math.max(2, Math.floor(size / (n + 8)));
  canvas.width = canvas.height = (n + 8) * cell;
  const g = canvas.getContext('2d');
  g.fillStyle = '#fff';
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.fillStyle = '#000';
  for (let r = 0; r < n; r += 1) {
    for (let c = 0; c < n; c += 1) if (code.isDark(r, c)) g.fillRect((c + 4) * cell, (r + 4) * cell, cell, cell);
  }
}
