// The engine's one list of operations (www/engine/operations.js) against every copy that must
// agree with it: the wasm Trainer of each build (its prototype, made by wasm-bindgen from
// src/web/mod.rs), the declarations wasm-bindgen generates from the same Rust
// (pkg*/sortwise.d.ts), the hand-typed trainer.d.ts and client.d.ts, and the client itself.
// Needs the wasm builds (`./run serve` makes them).
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OPERATIONS, TRAINER_MEMBERS, WORKER_REQUESTS } from '../../www/engine/operations.js';
import { Sortwise } from '../../www/engine/client.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const BUILDS = ['pkg', 'pkg-cpu', 'pkg-cpu-relaxed'];
const sorted = (xs) => [...new Set(xs)].sort();

const ops = Object.keys(OPERATIONS);
const trainerOps = ops.filter((op) => !OPERATIONS[op].module);
const moduleOps = ops.filter((op) => OPERATIONS[op].module);
/** What the Trainer's prototype must hold: its operations, getters and per-image reads. */
const TRAINER = sorted([...trainerOps, ...TRAINER_MEMBERS]);

/** The member names of `class NAME` in a .d.ts (static ones and the private constructor left out). */
function declaredMembers(file, name) {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const start = text.search(new RegExp(`^export (declare )?class ${name}\\b`, 'm'));
  assert.ok(start >= 0, `${file} declares no class ${name}`);
  const body = text.slice(start, text.indexOf('\n}', start));
  const names = [];
  for (const line of body.split('\n').slice(1)) {
    const m = /^ {2,4}(?:readonly |get )?([A-Za-z_]\w*)\s*[(:<?]/.exec(line);
    if (m && !/^ {2,4}(static|private) /.test(line)) names.push(m[1]);
  }
  return sorted(names);
}

test('the list: no name twice across the Trainer, the module and the worker\'s own requests', () => {
  const all = [...ops, ...WORKER_REQUESTS];
  assert.equal(new Set(all).size, all.length);
  for (const [op, spec] of Object.entries(OPERATIONS)) {
    for (const key of Object.keys(spec)) assert.ok(['worker', 'progress', 'pixels', 'transfer', 'array', 'module', 'unqueued'].includes(key), `${op}: unknown flag ${key}`);
    if (spec.unqueued) assert.ok(spec.module, `${op}: only module functions read no session state`);
  }
});

for (const build of BUILDS) {
  test(`${build}/: Trainer.prototype and the module's functions are the list's`, async () => {
    assert.ok(existsSync(join(ROOT, build, 'sortwise.js')), `${build}/ is not built: ./run serve`);
    // The threaded builds' thread-pool helper waits for its init message on `self` as it loads.
    globalThis.self ??= { addEventListener() {}, removeEventListener() {} };
    const mod = await import(join(ROOT, build, 'sortwise.js'));
    const proto = Object.getOwnPropertyNames(mod.Trainer.prototype).filter((n) => !['constructor', '__destroy_into_raw'].includes(n));
    assert.deepEqual(sorted(proto), TRAINER);
    for (const op of moduleOps) assert.equal(typeof mod[op], 'function', `${build}: the module has no ${op}`);
    // what wasm-bindgen wrote from the Rust for the same build
    assert.deepEqual(declaredMembers(`${build}/sortwise.d.ts`, 'Trainer'), TRAINER);
  });
}

test('trainer.d.ts types exactly the Trainer\'s members', () => {
  assert.deepEqual(declaredMembers('www/engine/trainer.d.ts', 'Trainer'), TRAINER);
  const text = readFileSync(join(ROOT, 'www/engine/trainer.d.ts'), 'utf8');
  for (const op of moduleOps) assert.match(text, new RegExp(`^export function ${op}\\(`, 'm'), `trainer.d.ts: ${op}`);
});

test('the client has every operation, typed in client.d.ts, and `call` names them all', () => {
  for (const op of ops) assert.equal(typeof Sortwise.prototype[op], 'function', `Sortwise.prototype.${op}`);
  const declared = declaredMembers('www/engine/client.d.ts', 'Sortwise');
  for (const op of ops) assert.ok(declared.includes(op), `client.d.ts: Sortwise.${op}`);
  const text = readFileSync(join(ROOT, 'www/engine/client.d.ts'), 'utf8');
  const union = /export type OperationName =([^;]+);/.exec(text);
  assert.ok(union, 'client.d.ts: OperationName');
  assert.deepEqual(sorted([...union[1].matchAll(/'(\w+)'/g)].map((m) => m[1])), sorted(ops));
});

test('call() refuses what is not an operation, without posting anything', async () => {
  const s = Object.create(Sortwise.prototype);
  await assert.rejects(() => s.call('free'), /unknown operation free/);
  await assert.rejects(() => s.call('create'), /unknown operation create/);
});
