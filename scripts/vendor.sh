#!/usr/bin/env bash
# Copy the page's npm dependencies (uPlot, fflate, qrcode-generator, barcode-detector, PeerJS; p5 for the p5.js example) from node_modules/ into www/vendor/, so the page
# serves them itself (no CDN at run time). Installs the pinned versions (package-lock.json) first
# when node_modules/ is missing. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f node_modules/uplot/package.json ] || [ ! -f node_modules/fflate/package.json ] \
   || [ ! -f node_modules/playwright-core/package.json ] || [ ! -f node_modules/puppeteer-core/package.json ] \
   || [ ! -f node_modules/selenium-webdriver/package.json ] || [ ! -f node_modules/typescript/package.json ] \
   || [ ! -f node_modules/qrcode-generator/package.json ] || [ ! -f node_modules/jsqr/package.json ] \
   || [ ! -f node_modules/p5/package.json ] || [ ! -f node_modules/peerjs/package.json ] \
   || [ ! -f node_modules/peer/package.json ] || [ ! -f node_modules/barcode-detector/package.json ]; then
  echo "vendor: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
mkdir -p www/vendor
# uPlot builds its number format from navigator.language when imported; WebKit hands the page the
# process locale's tag (`C` under LANG=C), which Intl rejects, and the whole page failed to load.
# Patched to fall back to en-US, and checked, so that a new uPlot version without that line fails
# here instead of silently.
UPLOT_FMT="const numFormatter = new Intl.NumberFormat(domEnv ? nav.language : 'en-US');"
UPLOT_SAFE="const numFormatter = (() => { try { return new Intl.NumberFormat(domEnv ? nav.language : 'en-US'); } catch { return new Intl.NumberFormat('en-US'); } })();"
grep -F "$UPLOT_FMT" node_modules/uplot/dist/uPlot.esm.js >/dev/null \
  || { echo "vendor: uPlot's number-format line changed; re-check the language-tag patch" >&2; exit 1; }
python3 - "$UPLOT_FMT" "$UPLOT_SAFE" <<'PY'
import sys
src = open("node_modules/uplot/dist/uPlot.esm.js", encoding="utf-8").read()
open("www/vendor/uPlot.esm.js", "w", encoding="utf-8").write(src.replace(sys.argv[1], sys.argv[2]))
PY
cp node_modules/uplot/dist/uPlot.min.css www/vendor/uPlot.min.css
cp node_modules/uplot/LICENSE www/vendor/uPlot.LICENSE
cp node_modules/fflate/esm/browser.js www/vendor/fflate.js
cp node_modules/fflate/LICENSE www/vendor/fflate.LICENSE
# MIT; the package ships no LICENSE file, its notice is the head of qrcode.mjs itself.
cp node_modules/qrcode-generator/dist/qrcode.mjs www/vendor/qrcode.js
# barcode-detector (MIT): the BarcodeDetector API over ZXing in wasm (zxing-wasm, MIT), for
# reading a phone's answer code where the browser has no BarcodeDetector of its own
# (www/collect/qr-scan.js). Its ES build is two files (the second bundles zxing-wasm's glue); the wasm
# is served from here (qr-scan.js points the module at it, never at the package's CDN default).
cp node_modules/barcode-detector/dist/es/ponyfill.js www/vendor/barcode-detector.js
cp node_modules/barcode-detector/dist/es/zxing-exported.js www/vendor/zxing-exported.js
cp node_modules/zxing-wasm/dist/reader/zxing_reader.wasm www/vendor/zxing_reader.wasm
cp node_modules/barcode-detector/LICENSE www/vendor/barcode-detector.LICENSE
cp node_modules/zxing-wasm/LICENSE www/vendor/zxing-wasm.LICENSE
grep -q '"./zxing-exported.js"' www/vendor/barcode-detector.js \
  || { echo "vendor: barcode-detector's ponyfill no longer imports ./zxing-exported.js; re-check" >&2; exit 1; }
# PeerJS's client (MIT), for a school's self-hosted PeerJS server (npm `peer`): a phone joins a
# teacher's page with one scan (www/collect/peerjs.js loads it only then). Its browser build sets
# window.peerjs; the module re-exports its Peer.
{ echo "// PeerJS $(node -p "require('./node_modules/peerjs/package.json').version"), dist/peerjs.min.js as an ES module by scripts/vendor.sh."
  sed "/sourceMappingURL/d" node_modules/peerjs/dist/peerjs.min.js
  echo
  echo "export const Peer = globalThis.peerjs.Peer;"
} > www/vendor/peerjs.js
cp node_modules/peerjs/LICENSE www/vendor/peerjs.LICENSE
# p5.js for the p5 example (examples/p5/, dist/example/p5/); the page itself never loads it.
cp node_modules/p5/lib/p5.min.js www/vendor/p5.min.js
cp node_modules/p5/license.txt www/vendor/p5.LICENSE
echo "vendor: www/vendor/ ready ($(ls www/vendor | wc -l) files)" >&2
