#!/usr/bin/env bash
# Issue 7 benchmark harness, one command, everything in one run on this machine:
#   1. PyTorch CPU forward (bench/pytorch_forward.py): the baseline, images/s per arch
#   2. sortwise native (examples/bench_embed.rs): embeddings/s on `cpu` and native wgpu if any
#   3. sortwise in headless Chromium (bench/browser.mjs + bench/browser-worker.js): embeddings/s,
#      head training, predict latency, photos dropped -> trained, wasm memory
#   4. sizes: wasm raw/gzip, JS, web weights per arch and dtype
# then appends a dated section with ratios to docs/BENCHMARKS.md (APPEND=0: print only).
#
#   bash bench/run.sh
# Env: PY (python with torch; default /root/.venvs/ref/bin/python), RUNS (timed batches, default 5),
#      PROFILE (release; dev reuses the dev build), BENCH_NOTE (a line for the report), THREADS (PyTorch threads,
#      default 2), SKIP_BROWSER=1, plus bench/browser.mjs's N_EMBED, N_DROP, GPU, GPU_EMBED.
# Needs pkg/ built (wasm-pack build --target web --release --out-dir pkg) and
# www/weights/efficientnet_lite0.safetensors (scripts/weights.sh). Timings are never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sortwise-target}
export OMP_WAIT_POLICY=PASSIVE
export THREADS=${THREADS:-2}
PY=${PY:-/root/.venvs/ref/bin/python}
OUT=bench/.cache/results-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
step() { echo "==> $*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg | sed 's/ /, /g'; }

[ -f pkg/sortwise_bg.wasm ] || { echo "pkg/ is not built: wasm-pack build --target web --release --out-dir pkg" >&2; exit 2; }
[ -f www/weights/efficientnet_lite0.safetensors ] || { echo "no www/weights/efficientnet_lite0.safetensors: bash scripts/weights.sh" >&2; exit 2; }

# PROFILE=dev reuses the dev build (dependencies, where the kernels are, at opt-level 3 there too).
PROFILE=${PROFILE:-release}
step "build examples/bench_embed ($PROFILE profile)"
cargo build --quiet --profile "$PROFILE" --example bench_embed
BENCH=$CARGO_TARGET_DIR/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")/examples/bench_embed

LOAD_START=$(load)
step "load average at start: $LOAD_START; results in $OUT"

step "1. PyTorch CPU baseline ($THREADS threads)"
if "$PY" -c 'import torch, torchvision' 2>/dev/null; then
  "$PY" bench/pytorch_forward.py > "$OUT/pytorch.json"
else
  echo "PyTorch baseline SKIPPED: '$PY' cannot import torch + torchvision (set PY=...)" >&2
fi

step "2. sortwise native: cpu (also writes random-weight ResNet web files to bench/.cache/)"
"$BENCH" --backend cpu --runs "${RUNS:-5}" --batch1 --write-weights bench/.cache > "$OUT/native_cpu.jsonl"
step "2. sortwise native: wgpu (hardware adapters only: software ones are what auto avoids)"
"$BENCH" --backend wgpu > "$OUT/native_wgpu.jsonl" || true
grep -h error "$OUT/native_wgpu.jsonl" >&2 || true

if [ "${SKIP_BROWSER:-0}" != 1 ]; then
  step "3. sortwise in headless Chromium"
  node bench/browser.mjs > "$OUT/browser.json"
fi

step "4. sizes"
python3 - "$OUT/sizes.json" <<'PY'
import gzip, json, pathlib, sys
def size(path):
    p = pathlib.Path(path)
    b = p.read_bytes() if p.exists() else b""
    return len(b), len(gzip.compress(b, 9))
(w, wz), (j, jz), (cw, cwz) = size("pkg/sortwise_bg.wasm"), size("pkg/sortwise.js"), size("pkg-cpu/sortwise_bg.wasm")
json.dump({"wasm": w, "wasm_gz": wz, "js": j, "js_gz": jz, "cpu_wasm": cw, "cpu_wasm_gz": cwz}, open(sys.argv[1], "w"))
PY

LOAD_END=$(load)
PROFILE=$PROFILE python3 - "$OUT/machine.json" "$LOAD_START" "$LOAD_END" "$(nproc)" <<'PY'
import json, os, sys
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
json.dump({"cpu": cpu, "nproc": int(sys.argv[4]), "load_start": sys.argv[2], "load_end": sys.argv[3],
           "note": os.environ.get("BENCH_NOTE", ""), "profile": os.environ["PROFILE"]}, open(sys.argv[1], "w"))
PY

if [ "${APPEND:-1}" = 1 ]; then
  python3 bench/report.py "$OUT" | tee -a docs/BENCHMARKS.md
else
  python3 bench/report.py "$OUT"
fi
