#!/usr/bin/env bash
# Make the static site: one self-contained folder that works from any static host and any
# sub-path (GitHub Pages project sites live under /<repo>/), with the page at its root.
#
#   bash scripts/dist.sh [DIR]      (default dist/; `./run dist [DIR]` builds what is missing first)
#
# DIR/
#   index.html, *.js, style.css     the page (www/)
#   engine/, ui/                    its modules (www/engine/ imports the pkg*/ builds from ../ not ../../)
#   scratch/sortwise.js             the TurboWarp extension (docs/SCRATCH.md)
#   pkg/, pkg-cpu/, pkg-cpu-relaxed/  the three wasm builds (scripts/wasm_pkg.sh)
#   weights/                        the backbones scripts/weights.sh prepared, with manifest.json
#   vendor/                         uPlot, fflate and qrcode-generator (scripts/vendor.sh)
#   sw.js                           offline + cross-origin isolation + security headers
#   manifest.json, manifest.zh-CN.json, icons/   installable web app (icons: scripts/icons.py)
#   _headers                        COOP/COEP, CSP with frame-ancestors, nosniff (and CORS for the
#                                   files the Scratch extension loads from TurboWarp), for hosts that
#                                   read it (Netlify, Cloudflare Pages); elsewhere sw.js adds them
#   .nojekyll                       GitHub Pages: serve the folder as is
#   package.json, engine/*.d.ts, example/  the developer package (`Sortwise`, `loadClassifier`,
#                                   `Trainer`, typed); example/p5/ classifies a webcam in p5.js
#   CHANGELOG.md
#
# Every URL in it is relative; the script refuses to finish if one of the page's files still
# points outside the folder. It prints the folder's size and what a first visit transfers.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=${1:-dist}
DIR=${DIR%/}

say() { echo "dist: $*" >&2; }
die() { say "$*"; exit 1; }

case "$(realpath -m "$DIR")" in
  /|"$ROOT"|"$ROOT/www"*|"$ROOT/pkg"*|"$ROOT/src"*|"$HOME") die "refusing to write the site into $DIR" ;;
esac
# Only a folder this script made (or an empty one) is replaced.
if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ] && ! { [ -f "$DIR/.nojekyll" ] && [ -f "$DIR/sw.js" ]; }; then
  die "$DIR exists and is not a folder made by scripts/dist.sh: remove it or pick another"
fi

need=(pkg/sortwise.js pkg/sortwise_bg.wasm pkg-cpu/sortwise.js pkg-cpu/sortwise_bg.wasm
  pkg-cpu-relaxed/sortwise.js pkg-cpu-relaxed/sortwise_bg.wasm
  www/weights/manifest.json www/vendor/uPlot.esm.js www/vendor/uPlot.min.css www/vendor/fflate.js www/vendor/qrcode.js
  www/vendor/p5.min.js www/vendor/barcode-detector.js www/vendor/zxing-exported.js www/vendor/zxing_reader.wasm www/vendor/peerjs.js)
for f in "${need[@]}"; do
  [ -f "$f" ] || die "$f is missing: ./run dist builds it (or ./run serve)"
done
weights=$(python3 -c 'import json,sys; print(" ".join(b["file"] for b in json.load(open(sys.argv[1]))["backbones"]))' www/weights/manifest.json)
[ -n "$weights" ] || die "www/weights/manifest.json lists no backbone: run scripts/weights.sh"
for w in $weights; do [ -f "www/weights/$w" ] || die "www/weights/$w is in the manifest but missing"; done

VERSION=$(awk -F'"' '/^version = /{print $2; exit}' Cargo.toml)
STAGE=$DIR.partial
rm -rf "$STAGE"
mkdir -p "$STAGE"/{pkg,pkg-cpu,pkg-cpu-relaxed,weights,vendor,icons,example,engine,ui}

# The page: every top-level file it loads (not imagenet_classes.json, a test reference).
cp www/*.html www/*.js www/*.css www/manifest*.json "$STAGE/"
cp www/engine/*.js www/engine/*.d.ts "$STAGE/engine/"
cp www/ui/*.js "$STAGE/ui/"
for d in scratch collect project share; do
  mkdir -p "$STAGE/$d"
  cp www/$d/*.js "$STAGE/$d/"
done
cp www/vendor/* "$STAGE/vendor/"
cp www/weights/manifest.json "$STAGE/weights/"
for w in $weights; do
  cp "www/weights/$w" "$STAGE/weights/$w"
done
for p in pkg pkg-cpu pkg-cpu-relaxed; do
  cp "$p/sortwise.js" "$p/sortwise_bg.wasm" "$STAGE/$p/"
  # The threaded builds' thread pool helper (wasm-bindgen-rayon) lives in snippets/, found from sortwise.js.
  [ -d "$p/snippets" ] && cp -r "$p/snippets" "$STAGE/$p/"
  [ -f "$p/sortwise.d.ts" ] && cp "$p/sortwise.d.ts" "$STAGE/$p/"
  # What the `auto` device verdict is kept against (www/engine/device-choice.js).
  [ -f "$p/build-id" ] && cp "$p/build-id" "$STAGE/$p/"
done
python3 scripts/icons.py "$STAGE/icons"

# In the repository the pkg*/ builds sit beside www/; here they sit beside the page, one folder
# up from engine/.
sed -i -E "s#(['\"])\.\./\.\./(pkg|pkg-cpu|pkg-cpu-relaxed)/#\1../\2/#g" "$STAGE/engine/worker.js"
grep -q "'\.\./pkg/sortwise\.js'" "$STAGE/engine/worker.js" || die "engine/worker.js: the import of ../../pkg/sortwise.js was not rewritten"
# device-choice.js reads each build's build-id the same way.
sed -i -E "s#(['\"])\.\./\.\./(pkg|pkg-cpu|pkg-cpu-relaxed)(['\"])#\1../\2\3#g" "$STAGE/engine/device-choice.js"
sed -i -E "s#^const PKG_ROOT = '\.\./';#const PKG_ROOT = './';#" "$STAGE/sw.js"
grep -q "^const PKG_ROOT = './';" "$STAGE/sw.js" || die "www/sw.js: PKG_ROOT line not found (it must read: const PKG_ROOT = '../';)"
# Nothing of the page may point outside the folder or at the host's root: every ../ in a page
# file (engine/ and ui/ included) must resolve to a place inside it.
bad=$(python3 - "$STAGE" <<'PY'
import os, re, sys
stage = os.path.abspath(sys.argv[1])
pat = re.compile(r"""(['"`(])((?:\.\./)+|/(?:www|pkg|pkg-cpu|pkg-cpu-relaxed|weights|vendor|icons)/)""")
for sub in ("", "engine", "ui", "scratch"):
    d = os.path.join(stage, sub)
    for f in sorted(os.listdir(d)):
        if not re.search(r"\.(js|html)$", f) and not (sub == "" and re.match(r"manifest.*\.json$", f)):
            continue
        for n, line in enumerate(open(os.path.join(d, f), encoding="utf-8"), 1):
            for m in pat.finditer(line):
                up = m.group(2)
                target = os.path.abspath(os.path.join(d, up))
                if up.startswith("/") or not (target == stage or target.startswith(stage + os.sep)):
                    print(f"{os.path.join(sub, f)}:{n}:{line.rstrip()}")
PY
)
[ -z "$bad" ] || die "URLs that leave the folder or assume the host root:
$bad"

# Headers for hosts that read a _headers file; the CSP is index.html's meta tag plus frame-ancestors.
CSP=$(sed -nE 's/.*<meta http-equiv="Content-Security-Policy" content="([^"]+)".*/\1/p' www/index.html)
[ -n "$CSP" ] || die "www/index.html has no Content-Security-Policy meta tag"
cat >"$STAGE/_headers" <<EOF
/*
  Cross-Origin-Opener-Policy: same-origin
  Cross-Origin-Embedder-Policy: require-corp
  Content-Security-Policy: ${CSP%;}; frame-ancestors 'none'
  X-Content-Type-Options: nosniff
  Referrer-Policy: no-referrer
EOF
# The Scratch extension (scratch/sortwise.js) runs in TurboWarp's page, another origin, and
# imports the engine, its wasm and the backbone from here: those may be read by any origin (they
# are public files; GitHub Pages sends this header for everything).
for p in '/engine/*' '/pkg/*' '/pkg-cpu/*' '/pkg-cpu-relaxed/*' '/weights/*' '/vendor/*' '/scratch/*' '/share/*'; do
  printf '%s\n  Access-Control-Allow-Origin: *\n' "$p" >>"$STAGE/_headers"
done
: >"$STAGE/.nojekyll"

# The developer package: the site root is the package (the client, engine/client.js, finds
# worker.js beside itself and pkg/ and weights/ one folder up). `files` leaves the weights and the site's extras out of a tarball.
cat >"$STAGE/package.json" <<EOF
{
  "name": "sortwise",
  "version": "$VERSION",
  "description": "Train an image classifier in the browser (WebGPU or wasm CPU threads): pretrained backbone, new head, nothing uploaded.",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "sideEffects": false,
  "exports": {
    ".": { "types": "./engine/index.d.ts", "default": "./engine/index.js" },
    "./trainer": { "types": "./engine/trainer.d.ts", "default": "./pkg/sortwise.js" },
    "./trainer-cpu": { "types": "./engine/trainer-cpu.d.ts", "default": "./pkg-cpu/sortwise.js" },
    "./trainer-cpu-relaxed": { "types": "./engine/trainer-cpu.d.ts", "default": "./pkg-cpu-relaxed/sortwise.js" },
    "./package.json": "./package.json"
  },
  "types": "./engine/index.d.ts",
  "files": ["engine/", "pkg/", "pkg-cpu/", "pkg-cpu-relaxed/", "share/share-link.js", "vendor/fflate.js", "vendor/qrcode.js", "CHANGELOG.md"]
}
EOF
cp CHANGELOG.md "$STAGE/"
cp examples/typed/index.html examples/typed/example.js "$STAGE/example/"
mkdir -p "$STAGE/example/p5"
cp examples/p5/index.html examples/p5/sketch.js "$STAGE/example/p5/"

rm -rf "$DIR"
mv "$STAGE" "$DIR"

# Sizes: the folder, and what a first visit downloads (compressed as static hosts serve it) for
# each wasm build, with the default backbone (app.js's defaultArch: resnet18, else Lite0).
python3 - "$DIR" <<'PY'
import glob, gzip, json, os, sys
d = sys.argv[1]
def raw(paths): return sum(os.path.getsize(os.path.join(d, p)) for p in paths)
def gz(paths): return sum(len(gzip.compress(open(os.path.join(d, p), "rb").read(), 9)) for p in paths)
def mb(n): return f"{n / 1e6:.1f} MB"
files = [os.path.relpath(p, d) for p in glob.glob(os.path.join(d, "**"), recursive=True) if os.path.isfile(p)]
backbones = json.load(open(os.path.join(d, "weights/manifest.json")))["backbones"]
arch = next((a for a in ("resnet18", "efficientnet_lite0") if any(b["arch"] == a for b in backbones)), backbones[0]["arch"])
weights = ["weights/" + next(b["file"] for b in backbones if b["arch"] == arch)]
page = [f for f in files if ("/" not in f or f.startswith(("project/", "share/", "collect/"))) and f.endswith((".html", ".js", ".css")) or f in (
    "manifest.json", "weights/manifest.json", "icons/icon.svg", "icons/icon-192.png",
    "vendor/uPlot.esm.js", "vendor/uPlot.min.css", "vendor/fflate.js", "vendor/qrcode.js")]
engines = {"CPU-only, relaxed SIMD (pkg-cpu-relaxed/)": [f for f in files if f.startswith("pkg-cpu-relaxed/") and not f.endswith(".d.ts")],
           "CPU-only (pkg-cpu/)": [f for f in files if f.startswith("pkg-cpu/") and not f.endswith(".d.ts")],
           "WebGPU (pkg/)": [f for f in files if f.startswith("pkg/") and not f.endswith(".d.ts")]}
print(f"dist: {d}/ is {mb(raw(files))} in {len(files)} files "
      f"(weights {mb(raw([f for f in files if f.endswith('.safetensors')]))}: {', '.join(b['arch'] for b in backbones)})", file=sys.stderr)
print(f"first visit, gzip -9, default backbone {arch}:", file=sys.stderr)
print("| path | page | wasm build | weights | total |\n|---|---|---|---|---|", file=sys.stderr)
for name, eng in engines.items():
    parts = [gz(page), gz(eng), gz(weights)]
    print(f"| {name} | {mb(parts[0])} | {mb(parts[1])} | {mb(parts[2])} | {mb(sum(parts))} |", file=sys.stderr)
PY
say "serve it with any static server, e.g.: python3 -m http.server --directory $DIR 8000"
