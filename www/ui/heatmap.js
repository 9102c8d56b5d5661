// The class activation map the engine returns with a prediction (`explain` in src/insight/explain.rs),
// laid over the picture it explains. The engine gives every class's map in logit units on a
// small grid (7×7) and where the grid lies on the photo (`region`, fractions of its width and
// height: a centre crop lies inside it, a letterbox reaches past its shorter sides); the colours
// are the engine's too (rules().heatmapColors), so the page, the CLI's PNG and the legend agree.
// Owns no state: the caller says which canvas, which class and how opaque.

/** The CSS gradient of the colour map, low to high, for a legend. */
export function legendGradient(colors) {
  const stops = colors.map((c, i) => `rgb(${c.join(',')}) ${((i / (colors.length - 1)) * 100).toFixed(0)}%`);
  return `linear-gradient(to right, ${stops.join(', ')})`;
}

/** `t` in [0, 1] on the colour map (linear between stops). */
export function colorAt(colors, t) {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (colors.length - 1);
  const i = Math.min(Math.floor(x), colors.length - 2);
  const f = x - i;
  return [0, 1, 2].map((c) => Math.round(colors[i][c] + (colors[i + 1][c] - colors[i][c]) * f));
}

/** The map scaled to [0, 1] by its own minimum and maximum (0.5 where it is flat). */
export function normalized(map) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of map) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const span = hi - lo;
  return Array.from(map, (v) => (span > 0 ? (v - lo) / span : 0.5));
}

/**
 * The box the picture's pixels fill inside `media` (an <img>, <video> or <canvas>), in CSS pixels
 * relative to the element: object-fit contain and cover move it off the element's own box.
 */
export function pictureBox(media) {
  const boxW = media.clientWidth;
  const boxH = media.clientHeight;
  const natW = media.naturalWidth || media.videoWidth || media.width || boxW;
  const natH = media.naturalHeight || media.videoHeight || media.height || boxH;
  const fit = getComputedStyle(media).objectFit;
  if (!natW || !natH || fit === 'fill' || !fit) return { x: 0, y: 0, w: boxW, h: boxH };
  const scale = fit === 'cover' ? Math.max(boxW / natW, boxH / natH) : Math.min(boxW / natW, boxH / natH);
  const w = natW * scale;
  const h = natH * scale;
  return { x: (boxW - w) / 2, y: (boxH - h) / 2, w, h };
}

/**
 * Draw class `index`'s map of `heatmap` over `media` on `canvas` (positioned over it), at
 * `opacity`; the canvas is resized to the element. Returns false when there is nothing to draw.
 */
export function drawHeatmap(canvas, media, heatmap, index, { colors, opacity }) {
  const ctx = canvas.getContext('2d');
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(media.clientWidth * ratio));
  canvas.height = Math.max(1, Math.round(media.clientHeight * ratio));
  canvas.style.width = `${media.clientWidth}px`;
  canvas.style.height = `${media.clientHeight}px`;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const map = heatmap?.maps?.[index];
  if (!map || !heatmap.width || !heatmap.height) return false;
  const cells = document.createElement('canvas');
  cells.width = heatmap.width;
  cells.height = heatmap.height;
  const image = cells.getContext('2d').createImageData(heatmap.width, heatmap.height);
  normalized(map).forEach((v, i) => {
    const [r, g, b] = colorAt(colors, v);
    image.data.set([r, g, b, 255], i * 4);
  });
  cells.getContext('2d').putImageData(image, 0, 0);
  const pic = pictureBox(media);
  const [x0, y0, x1, y1] = heatmap.region;
  // The picture's own box, then the part of it (or beyond it) the grid covers; clipped to the
  // picture so a letterbox's padding is not painted.
  ctx.save();
  ctx.scale(ratio, ratio);
  ctx.beginPath();
  ctx.rect(pic.x, pic.y, pic.w, pic.h);
  ctx.clip();
  ctx.globalAlpha = opacity;
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(cells, pic.x + x0 * pic.w, pic.y + y0 * pic.h, (x1 - x0) * pic.w, (y1 - y0) * pic.h);
  ctx.restore();
  return true;
}
