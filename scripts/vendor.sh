#!/usr/bin/env bash
# Copy the page's npm dependencies (uPlot, fflate) from node_modules/ into www/vendor/, so the page
# serves them itself (no CDN at run time). Installs the pinned versions (package-lock.json) first
# when node_modules/ is missing. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f node_modules/uplot/package.json ] || [ ! -f node_modules/fflate/package.json ] \
   || [ ! -f node_modules/playwright-core/package.json ]; then
  echo "vendor: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
mkdir -p www/vendor
cp node_modules/uplot/dist/uPlot.esm.js www/vendor/uPlot.esm.js
cp node_modules/uplot/dist/uPlot.min.css www/vendor/uPlot.min.css
cp node_modules/uplot/LICENSE www/vendor/uPlot.LICENSE
cp node_modules/fflate/esm/browser.js www/vendor/fflate.js
cp node_modules/fflate/LICENSE www/vendor/fflate.LICENSE
echo "vendor: www/vendor/ ready ($(ls www/vendor | wc -l) files)" >&2
