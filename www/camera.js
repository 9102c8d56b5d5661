// A small webcam wrapper: start/stop a <video> on the front or rear camera, grab frames as JPEG bytes
// (for training images) or as ImageData (for live prediction).

import { FRAME_SHORT_SIDE, frameSize } from './engine/frame.js';

export class Camera {
  constructor(video) {
    this.video = video;
    this.stream = null;
    this.facing = 'environment';
    this.canvas = document.createElement('canvas');
  }

  static available() {
    return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  }

  get running() { return !!this.stream; }

  async start(facing = this.facing) {
    this.stop();
    this.facing = facing;
    if (!Camera.available()) throw new Error('this browser has no camera access (a secure context, https or localhost, is needed)');
    // `exact` first: with only `ideal`, some phones hand out the front camera when the rear one
    // was asked for (Teachable Machine #488). A device without that camera (a laptop's one
    // webcam) refuses `exact`, and then gets whichever camera it has.
    const ask = (facingMode) => navigator.mediaDevices.getUserMedia({
      video: { facingMode, width: { ideal: 640 }, height: { ideal: 480 } },
      audio: false,
    });
    try {
      this.stream = await ask({ exact: facing });
    } catch (e) {
      if (!['OverconstrainedError', 'NotFoundError', 'ConstraintNotSatisfiedError'].includes(e?.name)) throw e;
      this.stream = await ask({ ideal: facing });
    }
    this.video.srcObject = this.stream;
    this.video.hidden = false;
    await this.video.play().catch(() => {});
    if (!this.video.videoWidth) {
      await new Promise((resolve) => {
        const done = () => { this.video.removeEventListener('loadedmetadata', done); resolve(); };
        this.video.addEventListener('loadedmetadata', done);
        setTimeout(done, 3000);
      });
    }
  }

  async switch() {
    return this.start(this.facing === 'environment' ? 'user' : 'environment');
  }

  stop() {
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    this.video.srcObject = null;
    this.video.hidden = true;
  }

  /** Draws the current frame scaled so that its short side is `short` pixels. */
  draw(short = FRAME_SHORT_SIDE) {
    const v = this.video;
    const w = v.videoWidth;
    const h = v.videoHeight;
    if (!w || !h) return null;
    const [cw, ch] = frameSize(w, h, short);
    this.canvas.width = cw;
    this.canvas.height = ch;
    const ctx = this.canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(v, 0, 0, cw, ch);
    return ctx;
  }

  frameImageData(short = FRAME_SHORT_SIDE) {
    const ctx = this.draw(short);
    return ctx ? ctx.getImageData(0, 0, this.canvas.width, this.canvas.height) : null;
  }

  async frameJpeg(short = 480) {
    if (!this.draw(short)) return null;
    const blob = await new Promise((resolve) => this.canvas.toBlob(resolve, 'image/jpeg', 0.9));
    return blob ? new Uint8Array(await blob.arrayBuffer()) : null;
  }
}
