// Scratch's own virtual machine, for the tests of the sortwise extension (tests/e2e/dist.mjs):
// npm's scratch-vm at a pinned version, its tarball checked against the integrity the registry
// published for it, and only its browser bundle (dist/web/scratch-vm.js, 7 MB, self-contained)
// kept, in node_modules/.cache/. As a devDependency it would bring scratch-render, scratch-audio
// and their trees into every `npm ci` for one file.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './serve.mjs';

export const SCRATCH_VM = {
  version: '5.0.300',
  integrity: 'sha512-S7pWgtUKJPAsqfPkfuBejEABPBxjhFjVXmVTW/Q+2OirwsSySiSEKO7A0kfuXMINOZ0G3JcCCJMJl5ZWUwjHqw==',
};

/** The path of scratch-vm's browser bundle, fetched once (npm pack) and checked. */
export function scratchVmBundle() {
  const dir = join(ROOT, 'node_modules/.cache/sortwise-scratch-vm', SCRATCH_VM.version);
  const bundle = join(dir, 'scratch-vm.js');
  if (existsSync(bundle)) return bundle;
  const tmp = mkdtempSync(join(tmpdir(), 'scratch-vm-'));
  try {
    const pack = spawnSync('npm', ['pack', `scratch-vm@${SCRATCH_VM.version}`, '--pack-destination', tmp, '--silent'], { encoding: 'utf8' });
    if (pack.status !== 0) throw new Error(`npm pack scratch-vm@${SCRATCH_VM.version}: ${pack.stderr}`);
    const tgz = join(tmp, pack.stdout.trim().split('\n').pop());
    const got = `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`;
    if (got !== SCRATCH_VM.integrity) throw new Error(`scratch-vm@${SCRATCH_VM.version}: integrity ${got}, expected ${SCRATCH_VM.integrity}`);
    const tar = spawnSync('tar', ['-xzf', tgz, '-C', tmp, 'package/dist/web/scratch-vm.js'], { encoding: 'utf8' });
    if (tar.status !== 0) throw new Error(`tar: ${tar.stderr}`);
    mkdirSync(dir, { recursive: true });
    renameSync(join(tmp, 'package/dist/web/scratch-vm.js'), bundle);
    return bundle;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
