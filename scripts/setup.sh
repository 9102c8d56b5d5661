#!/usr/bin/env bash
# Install what building (`setup.sh build`) or testing (`setup.sh test`) needs on a Debian machine.
# Idempotent and quick when everything is there; CI runs it on a fresh machine.
set -euo pipefail
# Probes pipe into `grep >/dev/null`, not `grep -q`: -q exits at the first match, the writer can
# then die of SIGPIPE, and pipefail reads that as "missing" (fc-list | grep -q reinstalled the
# fonts on every run).
cd "$(dirname "$0")/.."
mode=${1:-build}

WASM_PACK_VERSION=0.15.1
# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)

say() { echo "setup: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_pkgs=()
command -v curl >/dev/null || apt_pkgs+=(curl)
command -v python3 >/dev/null || apt_pkgs+=(python3 python3-pip)
# The page's vendored libraries (uPlot, fflate) and, for tests, playwright-core come from npm.
command -v npm >/dev/null || apt_pkgs+=(nodejs npm)
if [ "$mode" = test ]; then
  [ -x /usr/bin/chromium ] || apt_pkgs+=(chromium)
  [ -x /usr/bin/chromedriver ] || apt_pkgs+=(chromium-driver)
  # The page's E2E flow also runs in Firefox ESR (puppeteer-core over WebDriver BiDi) and in
  # WebKitGTK, Safari's engine (WebKitWebDriver + MiniBrowser, on a virtual X display).
  [ -x /usr/bin/firefox-esr ] || apt_pkgs+=(firefox-esr)
  [ -x /usr/bin/WebKitWebDriver ] || apt_pkgs+=(webkit2gtk-driver)
  command -v xvfb-run >/dev/null || apt_pkgs+=(xvfb xauth)
  # coturn: the school's TURN server in tests/e2e/collect.mjs (the relay-only case)
  command -v turnserver >/dev/null || apt_pkgs+=(coturn)
  # CJK glyphs for the zh-CN page in the end-to-end screenshots.
  fc-list 2>/dev/null | grep -i wqy >/dev/null || apt_pkgs+=(fonts-wqy-zenhei)
  # The venv for the ONNX export check (below); Debian's python3 needs python3-venv for it.
  python3 -c 'import ensurepip, venv' 2>/dev/null || apt_pkgs+=(python3-venv)
fi
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  say "apt-get install ${apt_pkgs[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -x wasm32-unknown-unknown >/dev/null; then
  say "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi
rustup component list --installed 2>/dev/null | grep '^clippy' >/dev/null || rustup component add clippy rustfmt

# pkg-cpu/ (wasm threads) rebuilds std with atomics: a pinned nightly with its sources
# (scripts/wasm_pkg.sh); clippy for `./run test`'s check of that configuration.
NIGHTLY=$(cat scripts/nightly-version)
if ! rustup "+$NIGHTLY" component list --installed 2>/dev/null | grep '^rust-src' >/dev/null \
  || ! rustup "+$NIGHTLY" component list --installed 2>/dev/null | grep '^clippy' >/dev/null \
  || ! rustup "+$NIGHTLY" target list --installed 2>/dev/null | grep -x wasm32-unknown-unknown >/dev/null; then
  say "rustup toolchain install $NIGHTLY (rust-src, clippy, wasm32)"
  rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src,clippy \
    --target wasm32-unknown-unknown
fi

if ! wasm-pack --version 2>/dev/null | grep " $WASM_PACK_VERSION\$" >/dev/null; then
  say "cargo install wasm-pack $WASM_PACK_VERSION"
  cargo install --quiet wasm-pack --version "$WASM_PACK_VERSION" --locked
fi
if ! wasm-bindgen --version 2>/dev/null | grep " $WASM_BINDGEN_VERSION\$" >/dev/null; then
  # Not --locked: one of its pinned dependencies is no longer on crates.io.
  say "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  cargo install --quiet wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# tests/onnx.rs runs the exported ONNX files on onnxruntime from PyPI, with numpy and Pillow
# redoing the preprocessing (tests/onnx_check.py): pinned in tests/onnx_requirements.txt, in a
# venv (Debian's python3 is externally managed) at $SORTWISE_CACHE/onnx-venv, where the test
# looks for it. Reinstalled only when the requirements change.
if [ "$mode" = test ]; then
  ONNX_VENV=${SORTWISE_CACHE:-$HOME/.cache/sortwise}/onnx-venv
  if ! cmp -s tests/onnx_requirements.txt "$ONNX_VENV/requirements.txt" \
    || ! "$ONNX_VENV/bin/python" -c 'import onnxruntime, numpy, PIL' 2>/dev/null; then
    say "python venv $ONNX_VENV: $(grep -v '^#' tests/onnx_requirements.txt | tr '\n' ' ')"
    python3 -m venv --clear "$ONNX_VENV"
    "$ONNX_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      -r tests/onnx_requirements.txt
    cp tests/onnx_requirements.txt "$ONNX_VENV/requirements.txt"
  fi
fi
