// sortwise for Scratch: a TurboWarp custom extension that loads a classifier from a sortwise
// share link and classifies the camera. In TurboWarp: Add Extension → Custom Extension → URL,
// this file's address on the site that serves sortwise (…/scratch/sortwise.js), with "Run
// extension without sandbox" ticked (the camera and the engine's worker need the page).
// docs/SCRATCH.md has the teacher's version.
//
// The engine runs in its own Web Worker (engine/classifier.js), so a project never freezes while
// a frame is classified: "classify camera" waits for its answer as "wait" blocks do, and every
// other script goes on.
(function (Scratch) {
  'use strict';

  if (!Scratch?.extensions?.unsandboxed) {
    throw new Error('sortwise needs "Run extension without sandbox": it reads the camera and runs the engine in a worker');
  }
  // The site this file came from holds the engine (../engine/) and the backbones (../weights/).
  const here = document.currentScript?.src ?? '';
  if (!/^https?:/.test(here)) throw new Error('load sortwise by its URL (…/scratch/sortwise.js), not as a file or text: the engine is fetched from beside it');
  const site = new URL('../', here);
  let engine = null; // engine/index.js, imported on first use
  const engineModule = () => { engine ??= import(new URL('engine/index.js', site).href); return engine; };

  const { ArgumentType, BlockType } = Scratch;
  const runtime = Scratch.vm.runtime;
  // Scratch's own video provider (what the Video Sensing extension reads): 480×360 frames.
  const FRAME = [480, 360];

  class Sortwise {
    constructor() {
      this.classifier = null;
      this.loading = null;
      this.result = null; // the latest {label, confidence, unsure, probs}
      this.error = '';
      this.camera = null; // Scratch's camera starting, once
    }

    getInfo() {
      return {
        id: 'sortwise',
        name: 'sortwise',
        color1: '#2f7d4f',
        color2: '#266640',
        blocks: [
          { opcode: 'loadClassifier', blockType: BlockType.COMMAND, text: 'load classifier [LINK]', arguments: { LINK: { type: ArgumentType.STRING, defaultValue: 'paste your sortwise link' } } },
          { opcode: 'classifyCamera', blockType: BlockType.COMMAND, text: 'classify camera' },
          { opcode: 'label', blockType: BlockType.REPORTER, text: 'label' },
          { opcode: 'confidenceOf', blockType: BlockType.REPORTER, text: 'confidence of [CLASS]', arguments: { CLASS: { type: ArgumentType.STRING, menu: 'classes' } } },
          { opcode: 'whenLabelBecomes', blockType: BlockType.HAT, isEdgeActivated: true, text: 'when label becomes [CLASS]', arguments: { CLASS: { type: ArgumentType.STRING, menu: 'classes' } } },
          { opcode: 'problem', blockType: BlockType.REPORTER, text: 'sortwise problem' },
        ],
        menus: { classes: { acceptReporters: true, items: 'classMenu' } },
      };
    }

    classMenu() {
      const labels = this.classifier?.labels ?? [];
      return labels.length ? [...labels, 'unsure'] : ['(load a classifier first)'];
    }

    async loadClassifier({ LINK }) {
      const link = String(LINK).trim();
      this.loading = (async () => {
        try {
          const { loadClassifier } = await engineModule();
          const next = await loadClassifier(link);
          this.classifier?.close();
          this.classifier = next;
          this.result = null;
          this.error = '';
        } catch (err) {
          this.error = `the classifier did not load: ${err.message}`;
        }
      })();
      await this.loading;
    }

    async classifyCamera() {
      await this.loading;
      if (!this.classifier) { this.error ||= 'load a classifier first'; return; }
      const video = runtime.ioDevices.video;
      if (!video.videoReady) {
        this.camera ??= Promise.resolve(video.enableVideo());
        await this.camera;
      }
      // Not mirrored: the classifier sees what the camera sees, as the page's camera does.
      const frame = video.getFrame({ format: 'image-data', dimensions: FRAME, mirror: false });
      if (!frame) return; // the camera has no frame yet (or was refused): the label stays
      try {
        const r = await this.classifier.classify(frame);
        if (r) this.result = r;
      } catch (err) {
        this.error = `a frame was not classified: ${err.message}`;
      }
    }

    label() {
      return this.result ? (this.result.unsure ? 'unsure' : this.result.label) : '';
    }

    /** Percent, 0 to 100 (Scratch's numbers read better whole). */
    confidenceOf({ CLASS }) {
      const p = this.result?.probs.find((x) => x.label === String(CLASS))?.p ?? 0;
      return Math.round(p * 1000) / 10;
    }

    whenLabelBecomes({ CLASS }) {
      return this.label() !== '' && this.label() === String(CLASS);
    }

    problem() {
      return this.error;
    }
  }

  Scratch.extensions.register(new Sortwise());
}(globalThis.Scratch));
