// Every file the documentation names must exist. Code moves (src/backbone/cpu_conv.rs became
// src/kernels/) and the prose that points at it is easy to leave behind; a reader who opens a
// path from README.md or docs/ and finds nothing stops trusting the rest of the page.
//
// Checked: in README.md and docs/*.md, paths in inline code (`src/…`, `www/…`, `tests/…`,
// `scripts/…`, `examples/…`, `bench/…`, resolved from the repository root, as the docs write
// them) and the targets of relative links and images (resolved from the file that links, as
// a Markdown renderer does), with the heading a `#fragment` names when it points into a
// Markdown file. A file that is gone can still be named as history, in plain text ("then
// src/backbone/cpu_conv.rs, now `src/kernels/conv.rs`"): code spans are for paths a reader can open.

import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const PREFIXES = ['src/', 'www/', 'tests/', 'scripts/', 'examples/', 'bench/'];

// What the build or a run makes, never committed: a fresh checkout does not have these, and a
// developer's machine may, so existence would depend on whose machine runs the test.
const GENERATED = [
  'www/vendor/', // scripts/vendor.sh copies the npm libraries here
  'www/weights/', // scripts/weights.sh: manifest.json and the .safetensors files (only .gitkeep is committed)
  'www/icons/', // scripts/icons.py draws them for ./run dist
  'bench/.cache/', // the benchmarks' own venvs and downloads
];

// A pattern or a placeholder, not one file.
const GLOB = /[*{<[…]|\.\.\./;

/** The text outside fenced code blocks: those hold commands on the reader's own files
 * (photos/, sorter.sortwise), not paths of this repository. */
function prose(markdown) {
  let fenced = false;
  return markdown.split('\n').map((line) => {
    if (/^\s*(```|~~~)/.test(line)) { fenced = !fenced; return ''; }
    return fenced ? '' : line;
  }).join('\n');
}

/** A word as a path: punctuation around it, a `:line` suffix and a `#anchor` taken off. */
function clean(word) {
  return word
    .replace(/^[("'`]+/, '')
    .replace(/[)"'`.,;:!?]+$/, '')
    .replace(/#.*$/, '')
    .replace(/(:\d+)+$/, '');
}

/** Repository paths in inline code: each word of a span, so that `bash bench/run.sh` counts. */
export function codePaths(markdown) {
  const paths = [];
  for (const [, span] of prose(markdown).matchAll(/`([^`]+)`/g)) {
    for (const word of span.split(/\s+/)) {
      if (GLOB.test(word)) continue;
      const path = clean(word);
      if (PREFIXES.some((p) => path.startsWith(p))) paths.push(path);
    }
  }
  return paths;
}

/** Relative link and image targets, `[text](target)` and `<img src="target">`, with their
 * fragments; web addresses and in-page anchors are left out. */
export function linkTargets(markdown) {
  const text = prose(markdown);
  const targets = [
    ...[...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]),
    ...[...text.matchAll(/<img\s[^>]*src="([^"]+)"/g)].map((m) => m[1]),
  ];
  return targets
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith('#') && !GLOB.test(t))
    .map((t) => {
      const hash = t.indexOf('#');
      return hash < 0 ? { path: t, fragment: '' } : { path: t.slice(0, hash), fragment: t.slice(hash + 1) };
    });
}

/** The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped,
 * spaces as hyphens, and -1, -2 … on repeats. */
export function anchors(markdown) {
  const seen = new Map();
  const out = new Set();
  for (const line of prose(markdown).split('\n')) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1].toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

const generated = (path) => GENERATED.some((g) => path.startsWith(g));

// Cargo names an example by its path without `.rs`, and the benchmark logs quote the command
// (`examples/bench_embed --archs …`), so that name stands for the source file.
const exists = (path) => existsSync(join(ROOT, path))
  || (/^examples\/[\w-]+$/.test(path) && (existsSync(join(ROOT, `${path}.rs`)) || existsSync(join(ROOT, path, 'main.rs'))));

const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const read = (file) => readFileSync(join(ROOT, file), 'utf8');

test('the scanner finds paths in code spans and links, and skips patterns and code blocks', () => {
  const md = [
    'See `src/lib.rs:12`, `bash bench/run.sh`, (`www/engine/client.js`). and `tests/js/`.',
    'Not `pkg*/build-id`, not `src/{a,b}.rs`, not `www/<name>.js`, not `src/…`, not `www/...`.',
    '[CLI](docs/CLI.md#training), ![x](docs/share.png), [web](https://example.org/a), [top](#set-up)',
    '<img src="docs/phone-390.png" width="10">',
    '```sh',
    'sortwise train --data src/not-a-path/',
    '```',
    '## The engine: a tour',
  ].join('\n');
  assert.deepEqual(codePaths(md), ['src/lib.rs', 'bench/run.sh', 'www/engine/client.js', 'tests/js/']);
  assert.deepEqual(linkTargets(md), [
    { path: 'docs/CLI.md', fragment: 'training' },
    { path: 'docs/share.png', fragment: '' },
    { path: 'docs/phone-390.png', fragment: '' },
  ]);
  assert.deepEqual([...anchors(md)], ['the-engine-a-tour']);
});

test('every repository path that README.md and docs/ name in code exists', () => {
  const missing = [];
  let checked = 0;
  for (const file of DOCS) {
    for (const path of codePaths(read(file))) {
      if (generated(path)) continue;
      checked++;
      if (!exists(path)) missing.push(`${file}: ${path}`);
    }
  }
  // A scanner that finds nothing would pass; the docs name a few hundred paths.
  assert.ok(checked > 100, `only ${checked} paths found: is the scanner broken?`);
  assert.deepEqual(missing, [], `paths named in the docs that do not exist:\n  ${missing.join('\n  ')}`);
});

test('every relative link in README.md and docs/ reaches a file, and a heading where it names one', () => {
  const broken = [];
  for (const file of DOCS) {
    const text = read(file);
    for (const { path, fragment } of linkTargets(text)) {
      const target = path === '' ? file : normalize(join(dirname(file), decodeURI(path)));
      if (target.startsWith('..')) { broken.push(`${file}: ${path} (outside the repository)`); continue; }
      if (generated(target)) continue;
      if (!existsSync(join(ROOT, target))) { broken.push(`${file}: ${path}`); continue; }
      if (fragment && target.endsWith('.md') && !anchors(read(target)).has(fragment)) {
        broken.push(`${file}: ${path}#${fragment} (no such heading in ${target})`);
      }
    }
  }
  assert.deepEqual(broken, [], `broken links:\n  ${broken.join('\n  ')}`);
});
