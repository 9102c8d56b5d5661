// Reading a QR code (a phone's answer, peer.js) from a camera frame or a photo of the code: the
// browser's BarcodeDetector where it reads QR codes (Chrome on Android and macOS, Safari), else
// jsQR (vendored, pure JS), loaded only when needed.

let detector; // BarcodeDetector, null where the browser has none for QR codes, undefined until asked

async function nativeDetector() {
  if (detector !== undefined) return detector;
  detector = null;
  try {
    if ('BarcodeDetector' in globalThis && (await globalThis.BarcodeDetector.getSupportedFormats()).includes('qr_code')) {
      detector = new globalThis.BarcodeDetector({ formats: ['qr_code'] });
    }
  } catch { /* unsupported here: jsQR reads it */ }
  return detector;
}

/** The text of the QR code in `image` (ImageData), or null when none is found. */
export async function readQr(image) {
  const d = await nativeDetector();
  if (d) {
    try {
      const found = await d.detect(image);
      return found[0]?.rawValue ?? null;
    } catch { /* fall through to jsQR */ }
  }
  const { default: jsQR } = await import('./vendor/jsqr.js');
  return jsQR(image.data, image.width, image.height, { inversionAttempts: 'attemptBoth' })?.data ?? null;
}

/** The pixels of an image file (a photo or screenshot of a code), at most `max` px on its long side. */
export async function imageDataOf(blob, max = 1600) {
  const bitmap = await createImageBitmap(blob);
  const s = Math.min(1, max / Math.max(bitmap.width, bitmap.height));
  const w = Math.max(1, Math.round(bitmap.width * s));
  const h = Math.max(1, Math.round(bitmap.height * s));
  const canvas = new OffscreenCanvas(w, h);
  const g = canvas.getContext('2d', { willReadFrequently: true });
  g.drawImage(bitmap, 0, 0, w, h);
  bitmap.close?.();
  return g.getImageData(0, 0, w, h);
}
