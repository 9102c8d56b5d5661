#!/usr/bin/env node
// scripts/serve.py's security headers and what it refuses to serve, and www/sw.js's headers
// (issue 21, item 8). No browser: plain HTTP requests, a second or two.
//  - /.git/HEAD, Cargo.toml, src/, a README: 404, also through `..` and %2e%2e that a raw request
//    can send (a browser would normalise them away); no directory listing;
//  - the page, its scripts, a wasm build: 200 with a CSP equal to index.html's meta tag plus
//    frame-ancestors, X-Content-Type-Options: nosniff, and COOP/COEP (only without --no-isolation);
//  - every path the browser tests and benchmarks load is still served;
//  - www/sw.js adds the same CSP, nosniff and COOP/COEP to what it serves (its constants are
//    compared with the meta tag; tests/e2e/dist.mjs checks the headers it hands out for real).
//
//   node tests/e2e/headers.mjs

import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { ROOT, serveRepo } from './serve.mjs';

const failures = [];
const check = (c, m) => { if (!c) failures.push(m); };

const meta = readFileSync(join(ROOT, 'www/index.html'), 'utf8').match(/<meta http-equiv="Content-Security-Policy" content="([^"]+)"/)?.[1];
check(meta, 'www/index.html has no CSP meta tag');
const expectedCsp = `${meta.replace(/[;\s]+$/, '')}; frame-ancestors 'none'`;

// The request line exactly as given (fetch would resolve `..` before sending it).
function raw(base, path) {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method: 'GET' }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

const secret = ['/.git/HEAD', '/.git/config', '/Cargo.toml', '/Cargo.lock', '/src/lib.rs', '/README.md', '/run',
  '/scripts/serve.py', '/tests/parity.rs', '/www/../.git/HEAD', '/www/%2e%2e/Cargo.toml', '/pkg/../src/lib.rs',
  '/tests/e2e/../../Cargo.toml', '/%2e%2e/Cargo.toml', '/tests/e2e/', '/www/vendor/'];
const served = ['/www/', '/www/index.html', '/www/main.js', '/www/sw.js', '/www/engine/worker.js', '/www/style.css',
  '/www/manifest.json', '/www/manifest.zh-CN.json', '/www/weights/manifest.json', '/pkg/sortwise.js',
  '/pkg-cpu/sortwise.js', '/pkg-cpu-relaxed/sortwise.js', '/tests/e2e/harness.html', '/tests/e2e/fake-client.js', '/bench/browser-worker.js'];

for (const isolated of [true, false]) {
  const server = await serveRepo('/tests/e2e/harness.html', { isolated });
  const tag = isolated ? 'serve.py' : 'serve.py --no-isolation';
  try {
    for (const path of secret) {
      const r = await raw(server.base, path);
      check(r.status === 404, `${tag}: ${path} answered ${r.status}, expected 404`);
    }
    const root = await raw(server.base, '/');
    check(root.status === 302 && root.headers.location === '/www/', `${tag}: / answered ${root.status} ${root.headers.location}`);
    for (const path of served) {
      const r = await raw(server.base, path);
      check(r.status === 200, `${tag}: ${path} answered ${r.status}, expected 200`);
      if (r.status !== 200) continue;
      check(r.headers['content-security-policy'] === expectedCsp, `${tag}: ${path} CSP ${r.headers['content-security-policy']}`);
      check(r.headers['x-content-type-options'] === 'nosniff', `${tag}: ${path} without nosniff`);
      const coop = r.headers['cross-origin-opener-policy'];
      const coep = r.headers['cross-origin-embedder-policy'];
      check(isolated ? coop === 'same-origin' && coep === 'require-corp' : !coop && !coep, `${tag}: ${path} COOP ${coop} COEP ${coep}`);
    }
    const wasm = await raw(server.base, '/pkg/sortwise_bg.wasm');
    check(wasm.status === 200 && wasm.headers['content-type'] === 'application/wasm', `${tag}: wasm ${wasm.status} ${wasm.headers['content-type']}`);
    console.log(`[headers] ${tag}: ${secret.length} private paths 404, ${served.length + 1} page paths 200 with CSP + nosniff${isolated ? ' + COOP/COEP' : ''}`);
  } finally {
    server.stop();
  }
}

// www/sw.js: the same CSP and the other headers, in the headers it adds.
const sw = readFileSync(join(ROOT, 'www/sw.js'), 'utf8');
const swCsp = sw.match(/const CSP = "([^"]+)"/)?.[1];
check(swCsp === expectedCsp, `www/sw.js CSP differs from index.html's meta + frame-ancestors:\n  ${swCsp}\n  ${expectedCsp}`);
for (const [k, v] of [['Cross-Origin-Opener-Policy', 'same-origin'], ['Cross-Origin-Embedder-Policy', 'require-corp'], ['X-Content-Type-Options', 'nosniff'], ['Content-Security-Policy', null]]) {
  check(sw.includes(`'${k}': ${v ? `'${v}'` : 'CSP'}`), `www/sw.js does not set ${k}`);
}

if (failures.length) {
  console.log(`[headers] FAILED:\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.log('[headers] ok');
