// The size a camera frame (or any drawn image) is scaled to before the engine sees it, shared by
// the page's camera (camera.js) and engine/classifier.js so that both predict a frame alike. The
// engine resizes to 256 on the short side before its crop, so a larger frame only costs time in
// the copy to the worker.

/** The frame's short side, in pixels (never scaled up). */
export const FRAME_SHORT_SIDE = 256;

/** `[width, height]` of a `w`×`h` image scaled so that its short side is at most `short`. */
export function frameSize(w, h, short = FRAME_SHORT_SIDE) {
  const s = Math.min(1, short / Math.min(w, h));
  return [Math.max(1, Math.round(w * s)), Math.max(1, Math.round(h * s))];
}
