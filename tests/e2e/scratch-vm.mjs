// Scratch's own packages, for the tests of the sortwise extension (tests/e2e/dist.mjs): npm's
// scratch-vm (the virtual machine that runs a project's blocks) and scratch-blocks (the editor's
// block drawing, for the picture in docs/SCRATCH.md), each at a pinned version, its tarball
// checked against the integrity the registry published for it, and only the files the test uses
// kept, in node_modules/.cache/. As devDependencies they would bring scratch-render,
// scratch-audio and their trees into every `npm ci` for two bundles.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './serve.mjs';

export const SCRATCH_VM = {
  name: 'scratch-vm',
  version: '5.0.300',
  integrity: 'sha512-S7pWgtUKJPAsqfPkfuBejEABPBxjhFjVXmVTW/Q+2OirwsSySiSEKO7A0kfuXMINOZ0G3JcCCJMJl5ZWUwjHqw==',
  keep: ['dist/web/scratch-vm.js'],
};
// 1.x: the blocks scratch-gui 3 draws (a UMD bundle with the global Blockly); 2.x is a rewrite on Blockly 12
export const SCRATCH_BLOCKS = {
  name: 'scratch-blocks',
  version: '1.3.0',
  integrity: 'sha512-RvTTClge6htuEml1nt77lh6VxLPkXK/GIeOPgeOzV6qyLquarsisIy+17F79CW/1E3rc8myE9JwC3iwKMcENgw==',
  keep: ['dist/web/vertical.js', 'media'],
};

/** The folder holding `pkg.keep` of the package, fetched once (npm pack) and checked. */
export function npmPackage(pkg) {
  const dir = join(ROOT, 'node_modules/.cache/sortwise-scratch', `${pkg.name}-${pkg.version}`);
  if (pkg.keep.every((f) => existsSync(join(dir, f)))) return dir;
  const tmp = mkdtempSync(join(tmpdir(), `${pkg.name}-`));
  try {
    const pack = spawnSync('npm', ['pack', `${pkg.name}@${pkg.version}`, '--pack-destination', tmp, '--silent'], { encoding: 'utf8' });
    if (pack.status !== 0) throw new Error(`npm pack ${pkg.name}@${pkg.version}: ${pack.stderr}`);
    const tgz = join(tmp, pack.stdout.trim().split('\n').pop());
    const got = `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`;
    if (got !== pkg.integrity) throw new Error(`${pkg.name}@${pkg.version}: integrity ${got}, expected ${pkg.integrity}`);
    const tar = spawnSync('tar', ['-xzf', tgz, '-C', tmp, ...pkg.keep.map((f) => `package/${f}`)], { encoding: 'utf8' });
    if (tar.status !== 0) throw new Error(`tar: ${tar.stderr}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, '..'), { recursive: true });
    cpSync(join(tmp, 'package'), dir, { recursive: true }); // not rename: /tmp may be another file system
    return dir;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The path of scratch-vm's browser bundle (the global VirtualMachine). */
export function scratchVmBundle() { return join(npmPackage(SCRATCH_VM), 'dist/web/scratch-vm.js'); }
