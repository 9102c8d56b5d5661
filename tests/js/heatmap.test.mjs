// www/ui/heatmap.js's pure parts: the colour map and the scaling match the engine's
// (src/insight/explain.rs: color, normalized), so the page's overlay and the CLI's PNG agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { colorAt, legendGradient, normalized } from '../../www/ui/heatmap.js';

// src/insight/explain.rs COLORS.
const COLORS = [[48, 18, 59], [65, 125, 243], [34, 220, 186], [164, 252, 60], [250, 156, 35], [122, 4, 3]];

test('colours interpolate between the stops as the engine does', () => {
  assert.deepEqual(colorAt(COLORS, 0), COLORS[0]);
  assert.deepEqual(colorAt(COLORS, 1), COLORS[5]);
  assert.deepEqual(colorAt(COLORS, 0.2), COLORS[1]);
  // Half way between stops 0 and 1: rounded as Rust's f32::round (half away from zero).
  assert.deepEqual(colorAt(COLORS, 0.1), [57, 72, 151]);
  assert.deepEqual(colorAt(COLORS, NaN), COLORS[0]);
  assert.deepEqual(colorAt(COLORS, 7), COLORS[5]);
});

test('a map is scaled by its own range; a flat one is the middle colour', () => {
  assert.deepEqual(normalized([2, 4, 3]), [0, 1, 0.5]);
  assert.deepEqual(normalized(new Float32Array([1, 1])), [0.5, 0.5]);
});

test('the legend runs through every stop', () => {
  const g = legendGradient(COLORS);
  assert.match(g, /^linear-gradient\(to right, rgb\(48,18,59\) 0%, /);
  assert.match(g, /rgb\(122,4,3\) 100%\)$/);
  assert.equal(g.split('rgb(').length - 1, 6);
});
