#!/usr/bin/env bash
# Training benchmark: sortwise train vs the PyTorch recipe (bench/pytorch_recipe.py) on
# trashnet-mini, same split, same machine, one after the other. Appends to docs/BENCHMARKS.md.
#   PY=/path/to/python-with-torch bash bench/train_vs_pytorch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sortwise-target}
PY=${PY:-python3}
DATA=${DATA:-../shared/data/trashnet-mini}
# The dev profile builds dependencies (burn, the kernels) at opt-level 3, as release does.
BIN=${SORTWISE_BIN:-$CARGO_TARGET_DIR/debug/sortwise}
source scripts/native_features.sh
[ -x "$BIN" ] || cargo build "${NATIVE_FEATURES[@]}" --bin sortwise
W=www/weights/efficientnet_lite0.safetensors
[ -f "$W" ] || SORTWISE_BIN=$BIN bash scripts/weights.sh

torch_json=$($PY bench/pytorch_recipe.py "$DATA")
AUGMENT=${AUGMENT:-0}
ours_json=$("$BIN" train --arch efficientnet_lite0 --weights "$W" --data "$DATA/train" --val "$DATA/val" \
  --backend cpu --augment "$AUGMENT" --out /tmp/sortwise-bench.sortwise 2>/dev/null)

python3 - "$torch_json" "$ours_json" "$BIN" "$AUGMENT" <<'PY' | tee -a docs/BENCHMARKS.md
import json, platform, subprocess, sys, datetime
t, o, binary, aug = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
print(f"\n### Training on trashnet-mini, EfficientNet-Lite0 — {datetime.date.today()}\n")
print(f"Machine: {cpu}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores. "
      f"Command: `PY=... bash bench/train_vs_pytorch.sh` (sortwise binary `{binary.split('/')[-2]}` profile).\n")
print("| run | val accuracy (final) | best epoch's | wall time | ratio |")
print("|---|---|---|---|---|")
print(f"| PyTorch {t['torch']} recipe (SGD 0.001/0.9, batch 4, RRC+flip, 10 epochs, {t['threads']} threads) "
      f"| {t['val_accuracy']:.3f} | {t['best_val_accuracy']:.3f} | {t['seconds']:.1f} s | 1.00 |")
print(f"| sortwise train (Adam, early stopping, --augment {aug}; cpu) | {o['val_accuracy']:.3f} | "
      f"(best epoch {o['best_epoch']} of {o['epochs']}) | {o['seconds']:.1f} s "
      f"(embed {o['embed_seconds']:.1f} s + train {o['train_seconds']:.2f} s) | {o['seconds'] / t['seconds']:.2f} |")
PY
