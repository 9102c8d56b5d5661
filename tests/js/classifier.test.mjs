// engine/classifier.js without a browser: which backbone a `.sortwise` file names (read before
// any engine starts, so a hostile header must be refused here), and the frame size the page's
// camera and `classify` share. loadClassifier and classify themselves run in tests/e2e/dist.mjs.
import test from 'node:test';
import assert from 'node:assert/strict';
import { modelArch } from '../../www/engine/classifier.js';
import { FRAME_SHORT_SIDE, frameSize } from '../../www/engine/frame.js';

// A safetensors file as src/formats/model_file.rs writes one: u64 LE header length, JSON, tensor bytes.
function sortwiseFile(metadata, { lengthDelta = 0, high = 0 } = {}) {
  const header = new TextEncoder().encode(JSON.stringify({
    __metadata__: metadata,
    weight: { dtype: 'F32', shape: [2, 1], data_offsets: [0, 8] },
    bias: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
  }));
  const out = new Uint8Array(8 + header.length + 16);
  const view = new DataView(out.buffer);
  view.setUint32(0, header.length + lengthDelta, true);
  view.setUint32(4, high, true);
  out.set(header, 8);
  return out;
}
const meta = (m) => ({ format: 'sortwise-head', version: '1', sortwise: JSON.stringify(m) });

test('modelArch reads the backbone from a .sortwise header', () => {
  assert.equal(modelArch(sortwiseFile(meta({ arch: 'efficientnet_lite0', labels: ['a', 'b'] }))), 'efficientnet_lite0');
  assert.equal(modelArch(sortwiseFile(meta({ arch: 'resnet18' })).subarray(0)), 'resnet18');
  // a view into a larger buffer (as a Blob's bytes may be)
  const file = sortwiseFile(meta({ arch: 'resnet50' }));
  const padded = new Uint8Array(file.length + 10);
  padded.set(file, 5);
  assert.equal(modelArch(padded.subarray(5, 5 + file.length)), 'resnet50');
});

test('modelArch refuses what is not a .sortwise file, with a reason, before reading past the bytes', () => {
  const cases = [
    [new Uint8Array(0), /too short/],
    [new Uint8Array([1, 2, 3]), /too short/],
    [sortwiseFile(meta({ arch: 'resnet18' }), { lengthDelta: 1000 }), /header is damaged/],
    [sortwiseFile(meta({ arch: 'resnet18' }), { high: 1 }), /header is damaged/],
    [new TextEncoder().encode('not a model at all, just words'), /header is damaged/],
    [sortwiseFile({ format: 'other' }), /not a \.sortwise model file/],
    [sortwiseFile({ sortwise: '{not json' }), /not a \.sortwise model file/],
    [sortwiseFile(meta({ labels: ['a', 'b'] })), /names no backbone/],
    [sortwiseFile(meta({ arch: 7 })), /names no backbone/],
  ];
  for (const [bytes, why] of cases) assert.throws(() => modelArch(bytes), why);
  // a header length past 1 MiB is refused without decoding it
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setUint32(0, (1 << 20) + 1, true);
  assert.throws(() => modelArch(huge), /header is damaged/);
});

test('frames are scaled to a short side of 256, never up', () => {
  assert.equal(FRAME_SHORT_SIDE, 256);
  assert.deepEqual(frameSize(640, 480), [341, 256]);
  assert.deepEqual(frameSize(480, 640), [256, 341]);
  assert.deepEqual(frameSize(200, 100), [200, 100]);
  assert.deepEqual(frameSize(1, 4000), [1, 4000]);
  assert.deepEqual(frameSize(4000, 1), [4000, 1]);
  assert.deepEqual(frameSize(1920, 1080, 480), [853, 480]);
});
