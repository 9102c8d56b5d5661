// The import graph docs/ARCHITECTURE.md draws, checked: no import cycles in www/ or between the
// modules of src/, and every import goes down the drawing (views over the project, the project
// over the engine client, the engine over the wasm builds; in src/, the layers below the session
// never reach up into it or into a shell).
import test from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

function walk(dir, ext, skip = () => false) {
  const out = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(dir, name);
    if (skip(path)) continue;
    if (statSync(join(ROOT, path)).isDirectory()) out.push(...walk(path, ext, skip));
    else if (path.endsWith(ext)) out.push(path);
  }
  return out;
}

/** A cycle in `graph` (Map node → Set of nodes), as a list of nodes, or null. */
function cycle(graph) {
  const state = new Map(); // 1: on the path, 2: done
  const path = [];
  const visit = (n) => {
    state.set(n, 1);
    path.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 1) return [...path.slice(path.indexOf(m)), m];
      if (!state.has(m)) {
        const c = visit(m);
        if (c) return c;
      }
    }
    path.pop();
    state.set(n, 2);
    return null;
  };
  for (const n of graph.keys()) {
    if (!state.has(n)) {
      const c = visit(n);
      if (c) return c;
    }
  }
  return null;
}

// ---- www/ ------------------------------------------------------------------------------------

const PAGE = walk('www', '.js', (p) => p.startsWith(join('www', 'vendor')) || p.startsWith(join('www', 'weights')));

/** Every module a page file imports (static and dynamic, relative specifiers), as repo paths. */
function pageImports(file) {
  const src = readFileSync(join(ROOT, file), 'utf8');
  const specs = [...src.matchAll(/(?:^|[^.\w])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm)]
    .map((m) => m[1] ?? m[2])
    .filter((s) => s.startsWith('.'));
  return specs.map((s) => normalize(join(dirname(file), s)));
}

const pageGraph = new Map(PAGE.map((f) => [f, new Set(pageImports(f))]));

test('www/: every relative import names a file that exists', () => {
  for (const [file, deps] of pageGraph) {
    for (const d of deps) assert.ok(statSync(join(ROOT, d), { throwIfNoEntry: false }), `${file} imports ${d}, which does not exist`);
  }
});

test('www/: no import cycles', () => {
  const c = cycle(pageGraph);
  assert.equal(c, null, `import cycle: ${c?.join(' → ')}`);
});

test('www/: imports go down the drawing', () => {
  const under = (f, dir) => relative(join('www', dir), f).split('/')[0] !== '..';
  // The phone's collect view is a view itself (collect/main.js and what only it uses).
  const views = (f) => under(f, 'ui') || ['main.js', 'live.js', 'photos.js'].some((n) => f === join('www', 'collect', n));
  for (const [file, deps] of pageGraph) {
    for (const d of deps) {
      if (!views(file) && file !== join('www', 'app.js')) {
        assert.ok(!under(d, 'ui'), `${file} is not a view, but imports the view ${d}`);
      }
      if (under(file, 'engine')) {
        const ok = under(d, 'engine') || under(d, 'vendor') || d === join('www', 'share', 'share-link.js') || /^pkg(-cpu(-relaxed)?)?\//.test(d);
        assert.ok(ok, `${file} (the engine) imports ${d}, outside engine/, the wasm builds and share/share-link.js`);
      }
      if (under(file, 'project') || under(file, 'share')) {
        assert.ok(!(under(d, 'engine') && d !== join('www', 'engine', 'errors.js') && d !== join('www', 'engine', 'rules.js')
          && d !== join('www', 'engine', 'classifier.js') && d !== join('www', 'engine', 'weights.js')
          && !file.endsWith('project-engine.js')),
        `${file} imports ${d}: only project/project-engine.js starts engines`);
      }
    }
  }
});

// ---- src/ ------------------------------------------------------------------------------------

const CRATE = walk('src', '.rs');

/** The module a source file is (`src/model/head.rs` → `model::head`, `src/session/mod.rs` → `session`). */
function moduleOf(file) {
  const parts = relative('src', file).replace(/\.rs$/, '').split('/');
  if (parts.at(-1) === 'mod' || parts.at(-1) === 'lib' || parts.at(-1) === 'main') parts.pop();
  return parts.join('::');
}

const MODULES = new Set(CRATE.map(moduleOf));

/**
 * The crate's modules a file names through `crate::` or `super::` (the longest known prefix of
 * each path). Comments (doc links included) name modules without using them, and a file's own
 * unit tests (from `#[cfg(test)]` on) reach into it through `super::` by design.
 */
function crateUses(file) {
  const src = readFileSync(join(ROOT, file), 'utf8').replace(/\/\/.*$/gm, '').split('#[cfg(test)]')[0];
  const self = moduleOf(file).split('::').filter(Boolean);
  const parent = self.slice(0, -1);
  const out = new Set();
  const add = (parts) => {
    for (let n = parts.length; n > 0; n -= 1) {
      const name = parts.slice(0, n).join('::');
      if (MODULES.has(name)) { out.add(name); return; }
    }
  };
  for (const m of src.matchAll(/\b(crate|super)::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)/g)) {
    add([...(m[1] === 'super' ? parent : []), ...m[2].split('::')]);
  }
  return out;
}

// Folders are the unit the drawing has: `model::head` belongs to `model`, `kernels::conv` to `kernels`.
const top = (m) => m.split('::')[0];

test('src/: no cycles between the folders and modules of the crate', () => {
  const graph = new Map();
  for (const f of CRATE) {
    const from = top(moduleOf(f));
    if (!from) continue; // lib.rs
    const deps = graph.get(from) ?? new Set();
    for (const u of crateUses(f)) if (top(u) !== from) deps.add(top(u));
    graph.set(from, deps);
  }
  const c = cycle(graph);
  assert.equal(c, null, `cycle: ${c?.join(' → ')}`);
});

test('src/: the layers below the session never reach up into it or into a shell', () => {
  const shells = new Set(['web', 'cli']);
  for (const f of CRATE) {
    const from = top(moduleOf(f));
    if (!from || shells.has(from) || from === 'main') continue;
    for (const u of crateUses(f)) {
      assert.ok(!shells.has(top(u)), `${f} uses crate::${u}, a shell`);
      if (from !== 'session') assert.notEqual(top(u), 'session', `${f} uses crate::${u}: the session is above it`);
    }
  }
});

test('src/: no cycles between sibling modules (a module and its own submodules aside)', () => {
  const graph = new Map();
  const related = (a, b) => a === b || a.startsWith(`${b}::`) || b.startsWith(`${a}::`);
  for (const f of CRATE) {
    const from = moduleOf(f);
    if (!from) continue;
    graph.set(from, new Set([...crateUses(f)].filter((u) => !related(from, u))));
  }
  const c = cycle(graph);
  assert.equal(c, null, `cycle: ${c?.join(' → ')}`);
});
