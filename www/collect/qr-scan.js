// Reading a QR code (a phone's answer, peer.js) from a camera frame or a photo of the code: the
// browser's BarcodeDetector where it reads QR codes (Chrome on Android and macOS, Safari), else
// the same API from barcode-detector (ZXing in wasm, vendored), loaded only when needed, its wasm
// from this site (never the package's CDN default).

let detector = null; // a promise of a BarcodeDetector for QR codes, made once

async function nativeDetector() {
  try {
    if ('BarcodeDetector' in globalThis && (await globalThis.BarcodeDetector.getSupportedFormats()).includes('qr_code')) {
      return new globalThis.BarcodeDetector({ formats: ['qr_code'] });
    }
  } catch { /* unsupported here: the polyfill reads it */ }
  return null;
}

async function polyfill() {
  const m = await import('../vendor/barcode-detector.js');
  const wasm = new URL('../vendor/zxing_reader.wasm', import.meta.url).href;
  m.setZXingModuleOverrides({ locateFile: (path, prefix) => (path.endsWith('.wasm') ? wasm : prefix + path) });
  return new m.BarcodeDetector({ formats: ['qr_code'] });
}

/** The text of the QR code in `image` (ImageData), or null when none is found. */
export async function readQr(image) {
  detector ??= nativeDetector().then((d) => d ?? polyfill());
  const found = await (await detector).detect(image);
  return found[0]?.rawValue ?? null;
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
