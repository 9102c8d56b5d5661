#!/usr/bin/env bash
# sortwise against ONNX Runtime Web AND Google's LiteRT.js (XNNPACK in wasm) in the same Chromium,
# one invocation (issue 35; bench/ort.sh is the two-way issue-20 comparison):
#   batch 8 and batch 1, on as many threads as cores (sortwise pkg-cpu-relaxed/ and pkg-cpu/,
#   ORT-web 1.30.0, LiteRT.js 2.5.3's threaded wasm) and on one (sortwise pkg/ and
#   pkg-cpu-relaxed/ on a pool of 1, ORT-web on 1 thread, LiteRT.js's single-threaded wasm),
# for ResNet-18, ResNet-50 and EfficientNet-Lite0 with random weights: the ONNX files of
# bench/ort_export.py, and for LiteRT.js their conversions to NHWC float32 `.tflite` by onnx2tf
# 2.6.9 (its flatbuffer_direct route, no TensorFlow), batch fixed at 8 and at 1. sortwise's figure
# is `addImages` of 8 photos (of 1 for batch 1), decoding and resizing included; ORT and LiteRT.js
# get ready tensors. Runs bench/litert.mjs (the timings), bench/litert_check.py (each .tflite
# against its ONNX model in Python) and bench/litert_report.py (the tables).
# Sets up, once, under bench/.cache (git-ignored; bench only, never the page):
#   litert/      npm @litertjs/core, plus core.mjs and worker.js (bench/litert-worker.js) for the
#                worker (scripts/serve.py serves only /bench/.cache/ of these);
#   onnx2tf-venv/ Python >= 3.12 venv with onnx2tf (PYTHON312, default pyenv's 3.12.1);
#   tflite/      <arch>-b8.tflite, <arch>-b1.tflite (onnx2tf rewrites its input: it gets a copy).
# and what bench/ort.sh sets up (ORT-web, the ONNX files, the ResNet safetensors), same steps.
# Writes bench/.cache/litert-run.json, litert-check.json and prints the report.
# Env: ROUNDS (default 2), WARMUP (untimed calls before, every engine, default 1), RUNS8 (timed batches of 8 a run, default 3), RUNS1 (timed batches of 1,
# default 8), ARCHS, BATCHES (default 8,1), THREADS (default: the cores Chromium reports).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/root/.venvs/ref/bin/python}
PYTHON312=${PYTHON312:-/root/.pyenv/versions/3.12.1/bin/python}
BIN=${SORTWISE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/sortwise-target}/debug/sortwise}
CACHE=bench/.cache
ORT_VERSION=1.30.0
LITERT_VERSION=2.5.3
ONNX2TF_VERSION=2.6.9
ARCHS=${ARCHS:-resnet18,resnet50,efficientnet_lite0}
BATCHES=${BATCHES:-8,1}
export ARCHS BATCHES
mkdir -p "$CACHE"
T0=$(date +%s)

source bench/npm_pkg.sh
npm_pkg ort onnxruntime-web "$ORT_VERSION"
npm_pkg litert @litertjs/core "$LITERT_VERSION"
# The worker and LiteRT.js's ES module where scripts/serve.py serves them; the module's one bare
# import pointed at the file (no import maps in workers).
LRT=$CACHE/litert
sed 's#from "@litertjs/wasm-utils"#from "./node_modules/@litertjs/wasm-utils/dist/index.js"#' \
  "$LRT/node_modules/@litertjs/core/dist/index.js" > "$LRT/core.mjs"
grep -q '"@litertjs/wasm-utils"' "$LRT/core.mjs" && { echo "litert.sh: $LRT/core.mjs still imports @litertjs/wasm-utils" >&2; exit 1; }
cp bench/litert-worker.js "$LRT/worker.js"

# The ONNX files and sortwise's ResNet weights, as bench/ort.sh makes them.
source bench/models.sh

# onnx2tf: ONNX (NCHW, dynamic batch) -> NHWC float32 .tflite, batch fixed with -ois (-b is ignored).
VENV=$CACHE/onnx2tf-venv
if ! "$VENV/bin/onnx2tf" -V 2>/dev/null | grep -q "$ONNX2TF_VERSION"; then
  echo "litert.sh: onnx2tf $ONNX2TF_VERSION into $VENV" >&2
  [ -x "$VENV/bin/python" ] || "$PYTHON312" -m venv "$VENV"
  "$VENV/bin/pip" install -q "onnx2tf==$ONNX2TF_VERSION"
fi
VENV_BIN=$(cd "$VENV/bin" && pwd)
mkdir -p "$CACHE/tflite"
for arch in ${ARCHS//,/ }; do
  for b in ${BATCHES//,/ }; do
    tfl=$CACHE/tflite/$arch-b$b.tflite
    if [ ! -f "$tfl" ] || [ "$CACHE/onnx/$arch.onnx" -nt "$tfl" ]; then
      work=$CACHE/tflite/work-$arch-b$b
      rm -rf "$work" && mkdir -p "$work"
      cp "$CACHE/onnx/$arch.onnx" "$work/$arch.onnx" # onnx2tf rewrites its input in place
      name=$("$VENV/bin/python" -c 'import onnx, sys; print(onnx.load(sys.argv[1]).graph.input[0].name)' "$work/$arch.onnx")
      echo "litert.sh: onnx2tf $arch.onnx ($name:$b,3,224,224) -> $tfl" >&2
      (cd "$work" && PATH="$VENV_BIN:$PATH" onnx2tf -i "$arch.onnx" -o out -ois "$name:$b,3,224,224" > onnx2tf.log 2>&1) \
        || { tail -30 "$work/onnx2tf.log" >&2; exit 1; }
      mv "$work/out/${arch}_float32.tflite" "$tfl"
      rm -rf "$work"
    fi
  done
done
"$VENV/bin/python" bench/litert_check.py "$CACHE/onnx" "$CACHE/tflite" > "$CACHE/litert-check.json"

lscpu | sed -n 's/^Model name: *//p' | head -1 > "$CACHE/litert-cpu.txt"
node bench/litert.mjs > "$CACHE/litert-run.json"
python3 bench/litert_report.py "$CACHE/litert-run.json" "$CACHE/litert-check.json" "$(cat "$CACHE/litert-cpu.txt")"
echo "litert.sh: $(( $(date +%s) - T0 )) s in all" >&2
