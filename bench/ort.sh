#!/usr/bin/env bash
# sortwise against ONNX Runtime Web's wasm backend in the same Chromium (issue 20), batch 8:
#   pkg-cpu-relaxed/ and pkg-cpu/ (CPU, wasm threads: one per core; with and without relaxed
#   SIMD) against ORT-web 1.30.0 (SIMD + as many threads),
#   pkg/ (single-threaded CPU) against ORT-web on one thread,
# for ResNet-18, ResNet-50 and EfficientNet-Lite0, each ORT run right after sortwise's on the
# same arch. sortwise's figure is `addImages` of 8 photos (decoding and resizing included); ORT
# gets ready tensors. Random weights for all three (speed does not depend on them), the same
# seeded torch nets exported to ONNX (bench/ort_export.py) and converted for sortwise.
# Needs the dev-only torch venv (PY, default /root/.venvs/ref/bin/python: torch, torchvision,
# onnx, efficientnet_lite_pytorch), the wasm builds and the debug CLI (./run serve or ./run
# test builds both). Writes bench/.cache/ort-run.json and prints the table (bench/ort_report.py).
# Env: ROUNDS (default 2), ORT_RUNS (timed batches a run, default 3), N_DROP (default 200: the
# "200 photos dropped → trained" figure of Lite0 and ResNet-18).
# BEFORE=dir (earlier builds under the same names, e.g. bench/.cache/before/pkg-cpu/): each
# build is also run from there, right after it, and the report adds a before/after table.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/root/.venvs/ref/bin/python}
BIN=${SORTWISE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/sortwise-target}/debug/sortwise}
CACHE=bench/.cache
ORT_VERSION=1.30.0
mkdir -p "$CACHE"

source bench/npm_pkg.sh
npm_pkg ort onnxruntime-web "$ORT_VERSION"
source bench/models.sh
lscpu | sed -n 's/^Model name: *//p' | head -1 > "$CACHE/ort-cpu.txt"
ORT=1 GPU=0 ROUNDS=${ROUNDS:-2} N_DROP=${N_DROP:-200} node bench/browser.mjs > "$CACHE/ort-run.json"
python3 bench/ort_report.py "$CACHE/ort-run.json" "$(cat "$CACHE/ort-cpu.txt")"
