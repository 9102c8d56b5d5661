#!/usr/bin/env node
// examples/microbit/sortwise-bins.ts compiled as makecode.microbit.org compiles it (issue 34):
// MakeCode's own compiler (npm pxt-microbit, pinned with its whole tree in this folder's
// package-lock.json) type-checks the program against the micro:bit's API and links it with the
// runtime its package set needs (the target's prebuilt hex cache: nothing is fetched). Checked:
// - the example as it is (with the "bluetooth" extension, as its header says) makes a universal
//   hex for micro:bit V1 and V2;
// - the USB-only variant its header describes (the last five lines deleted) in a new project's
//   packages, without the Bluetooth extension (`pxt install` adds one the code calls: the test
//   checks it was not);
// - a copy with a type error does not build (so the check can fail).
//
//   node tests/makecode/build.mjs     (installs the compiler here on first use: ~560 MB, ~20 s)

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const TARGET = join(HERE, 'node_modules/pxt-microbit');
const PXT = join(HERE, 'node_modules/pxt-core/built/pxt.js');
const log = (...a) => console.log('[makecode]', ...a);
const failures = [];
const check = (ok, msg) => { log(`${ok ? 'ok' : 'FAIL'}: ${msg}`); if (!ok) failures.push(msg); };

if (!existsSync(TARGET)) {
  log('installing MakeCode\'s compiler (npm ci, pinned by package-lock.json)');
  // puppeteer (a dependency of pxt-core's own tests) would download a browser: not needed here
  const r = spawnSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: HERE, stdio: 'inherit', env: { ...process.env, PUPPETEER_SKIP_DOWNLOAD: '1' } });
  if (r.status !== 0) throw new Error('npm ci failed');
}
const version = JSON.parse(readFileSync(join(TARGET, 'package.json'), 'utf8')).version;

/** `pxt <args>` in `dir`, the micro:bit target: {status, out}. */
function pxt(dir, args) {
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(PXT)}).mainCli(${JSON.stringify(TARGET)}, ${JSON.stringify(args)})`], { cwd: dir, encoding: 'utf8', timeout: 300000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Builds `source` as a MakeCode project with `deps`: {ok, out, hex}. */
function build(name, source, deps) {
  const dir = mkdtempSync(join(tmpdir(), `makecode-${name}-`));
  try {
    writeFileSync(join(dir, 'main.ts'), source);
    writeFileSync(join(dir, 'pxt.json'), JSON.stringify({ name, dependencies: Object.fromEntries(deps.map((d) => [d, '*'])), files: ['main.ts'], preferredEditor: 'tsprj' }));
    const install = pxt(dir, ['install']);
    if (install.status !== 0) return { ok: false, out: install.out, hex: null, used: [] };
    const b = pxt(dir, ['build']);
    const hexPath = join(dir, 'built/binary.hex');
    const used = Object.keys(JSON.parse(readFileSync(join(dir, 'pxt.json'), 'utf8')).dependencies);
    return { ok: b.status === 0, out: b.out, hex: existsSync(hexPath) ? readFileSync(hexPath, 'utf8') : null, used };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether `hex` is Intel HEX whose every record's checksum holds, and how many records it has. */
function intelHex(hex) {
  const lines = hex.split(/\r?\n/).filter(Boolean);
  const good = lines.every((l) => {
    if (!/^:[0-9A-Fa-f]+$/.test(l) || l.length % 2 === 0) return false;
    const b = l.slice(1).match(/../g).map((x) => parseInt(x, 16));
    return b.length === b[0] + 5 && b.reduce((a, x) => a + x, 0) % 256 === 0;
  });
  return { good, lines: lines.length };
}

const example = readFileSync(join(ROOT, 'examples/microbit/sortwise-bins.ts'), 'utf8');
log(`pxt-microbit ${version}`);

const full = build('sortwise-bins', example, ['core', 'bluetooth']);
const fh = full.hex && intelHex(full.hex);
// a universal hex holds a block for each board: record type 0x0A opens one (V1: 0x9900, V2: 0x9903)
const boards = full.hex ? [...full.hex.matchAll(/^:0400000A(99\d\d)/gm)].map((m) => m[1]) : [];
check(full.ok && fh?.good && boards.includes('9900') && boards.includes('9903') && full.used.includes('bluetooth'),
  `the example with the bluetooth extension builds: a universal hex of ${fh?.lines ?? 0} records for micro:bit ${boards.join(', ')} (9900: V1, 9903: V2)${full.ok ? '' : `\n${full.out}`}`);

// "delete the Bluetooth part (the last five lines) to use USB only"
const usbOnly = example.trimEnd().split('\n').slice(0, -5).join('\n');
// a new MakeCode project's packages (core, radio; pxt adds microphone)
const usb = build('sortwise-bins-usb', usbOnly, ['core', 'radio']);
check(usb.ok && intelHex(usb.hex ?? '').good && !usb.used.includes('bluetooth'),
  `the USB-only variant (the last five lines deleted) builds with no Bluetooth extension (the project's packages: ${usb.used?.join(', ')})${usb.ok ? '' : `\n${usb.out}`}`);

const broken = build('sortwise-bins-broken', `${example}\nconst wrong: number = "a string"\n`, ['core', 'bluetooth']);
check(!broken.ok && /TS2322/.test(broken.out), `a type error does not build (${(broken.out.match(/error TS\d+[^\n]*/) ?? ['no error'])[0]})`);

if (failures.length) { console.log(`makecode: ${failures.length} failure(s)`); process.exit(1); }
console.log('makecode: ok');
