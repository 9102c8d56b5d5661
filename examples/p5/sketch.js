// A p5.js sketch that classifies the webcam with a sortwise classifier: the link the page's
// "Share by link or QR code" makes, loaded with `loadClassifier` and run in the engine's worker,
// so the sketch's draw loop never waits for it. In an app that installed the package the import
// reads `import { loadClassifier } from 'sortwise'`; here the page sits in the site itself.
import { loadClassifier } from '../../engine/index.js';

const $ = (id) => document.getElementById(id);
let classifier = null;
let video = null;
let result = null; // the latest {label, confidence, unsure, probs}

// Keeps one classification in flight: each answer asks for the next frame.
async function classifyLoop(current) {
  while (classifier === current) {
    const r = await current.classify(video);
    if (classifier !== current) return;
    if (r) {
      result = r;
      document.body.dataset.label = r.unsure ? 'unsure' : r.label;
    } else {
      await new Promise((done) => setTimeout(done, 100)); // the camera has no frame yet
    }
  }
}

async function load(link) {
  $('status').textContent = 'Loading the classifier…';
  try {
    const next = await loadClassifier(link, { device: 'cpu' });
    classifier?.close();
    classifier = next;
    window.sortwiseExample = { classifier, get result() { return result; } };
    $('status').textContent = `Classes: ${classifier.labels.join(', ')} (${classifier.arch} on ${classifier.backend}).`;
    document.body.dataset.ready = '1';
    classifyLoop(classifier);
  } catch (err) {
    $('status').textContent = `This link does not open: ${err.message}`;
    document.body.dataset.ready = 'error';
  }
}

// p5's instance mode: the sketch's functions on `p`, so that this module can hold them.
new window.p5((p) => {
  p.setup = () => {
    p.createCanvas(480, 400).parent('sketch');
    video = p.createCapture(p.VIDEO);
    video.size(480, 360);
    video.hide();
  };
  p.draw = () => {
    p.background(255);
    p.image(video, 0, 0, 480, 360);
    p.fill(0);
    p.noStroke();
    p.textSize(22);
    const text = !classifier ? 'no classifier' : !result ? '…' : `${result.unsure ? 'unsure' : result.label} ${(result.confidence * 100).toFixed(0)}%`;
    p.text(text, 10, 390);
  };
});

$('load').addEventListener('click', () => load($('link').value));
if (/^#[mn]=/.test(window.location.hash)) load(window.location.href);
