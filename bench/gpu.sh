#!/usr/bin/env bash
# Native wgpu (Vulkan) against the CPU backend on one machine, in one run: embeddings/s per backbone
# (examples/bench_embed, random weights, batch 16) and a head-training run (examples/bench_head:
# 100 epochs over 1,000 embeddings of each backbone's width), with and without burn's `autotune`
# and `fusion` (off in pkg/ today), to decide those features by measurement.
#
#   bench/gpu.sh build [DIR] [--cpu-only]
#                                 build the two variants of both examples into DIR (default
#                                 bench/.cache/gpu-bin): DIR/plain/ and DIR/tuned/ (autotune+fusion);
#                                 --cpu-only: DIR/plain/ without the wgpu backend
#   bench/gpu.sh run [DIR] [--append FILE] [--cpu-only]
#                                 check the Vulkan driver, run everything, print a markdown section;
#                                 --append adds it to FILE (docs/BENCHMARKS.md)
#
# A GPU machine that cannot build (no toolchain) gets DIR carried to it. Where no Vulkan driver is
# found, `run` says exactly what is missing (loader, ICD file, device node) and exits 3 rather than
# timing the CPU twice: bench_embed's `wgpu` would otherwise fall back to a software adapter or
# fail later with a vaguer message. `--cpu-only` runs the CPU rows alone (to test the script on a
# machine without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-}
shift || true
DIR=bench/.cache/gpu-bin
if [ $# -gt 0 ] && [[ $1 != --* ]]; then DIR=$1; shift; fi
APPEND=
CPU_ONLY=0
while [ $# -gt 0 ]; do
  case $1 in
    --append) APPEND=$2; shift 2 ;;
    --cpu-only) CPU_ONLY=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
ARCHS=(resnet18 resnet50 efficientnet_lite0)

build() {
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sortwise-target}
  # A target dir per variant: burn's features differ, and sharing one would rebuild burn on
  # every switch.
  local v feats target
  if [ "$CPU_ONLY" = 1 ]; then
    # The CPU build alone (no wgpu stack), in ./run's target dir: to test this script here.
    echo "gpu.sh: building plain, CPU only" >&2
    cargo build --quiet --release --no-default-features --features cli --example bench_embed --example bench_head
    mkdir -p "$DIR/plain"
    cp "$CARGO_TARGET_DIR/release/examples/bench_embed" "$CARGO_TARGET_DIR/release/examples/bench_head" "$DIR/plain/"
    return
  fi
  for v in plain tuned; do
    feats="gpu,cli"
    [ "$v" = tuned ] && feats="gpu,cli,burn/autotune,burn/fusion"
    target=$CARGO_TARGET_DIR-gpu-$v
    echo "gpu.sh: building $v (--features $feats)" >&2
    CARGO_TARGET_DIR=$target cargo build --quiet --release --features "$feats" --example bench_embed --example bench_head
    mkdir -p "$DIR/$v"
    cp "$target/release/examples/bench_embed" "$target/release/examples/bench_head" "$DIR/$v/"
  done
  ls -l "$DIR"/*/ >&2
}

# Prints what is missing for native Vulkan, one line each; prints nothing when all is there.
vulkan_missing() {
  if ! ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null; then
    echo "the Vulkan loader libvulkan.so.1 (Debian: libvulkan1; not in ldconfig -p)"
  fi
  local icds=()
  local f
  for f in ${VK_DRIVER_FILES:-} ${VK_ICD_FILENAMES:-}; do
    for g in ${f//:/ }; do [ -f "$g" ] && icds+=("$g"); done
  done
  for f in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json \
           /usr/local/nvidia/share/vulkan/icd.d/*.json; do
    [ -f "$f" ] && icds+=("$f")
  done
  if [ ${#icds[@]} -eq 0 ]; then
    echo "a Vulkan ICD file (e.g. nvidia_icd.json; none in VK_DRIVER_FILES, VK_ICD_FILENAMES, /usr/share/vulkan/icd.d, /etc/vulkan/icd.d, /usr/local/nvidia/share/vulkan/icd.d)"
  elif ! grep -l -i nvidia "${icds[@]}" >/dev/null 2>&1; then
    echo "an NVIDIA Vulkan ICD file (found only: ${icds[*]})"
  fi
  if ! compgen -G '/dev/nvidia[0-9]*' >/dev/null; then
    echo "an NVIDIA device node (/dev/nvidia0)"
  fi
}

json_field() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d.get(sys.argv[2], ''))" "$1" "$2"; }

run() {
  local missing
  missing=$(vulkan_missing)
  if [ -n "$missing" ] && [ "$CPU_ONLY" = 0 ]; then
    echo "gpu.sh: native wgpu cannot run here; missing:" >&2
    while IFS= read -r line; do echo "  - $line" >&2; done <<<"$missing"
    echo "gpu.sh: bring them (docs/BENCHMARKS.md, 'GPU'), or pass --cpu-only to time the CPU alone" >&2
    exit 3
  fi
  local variants=(plain tuned)
  [ "$CPU_ONLY" = 1 ] && variants=(plain)
  for v in "${variants[@]}"; do
    [ -x "$DIR/$v/bench_embed" ] && [ -x "$DIR/$v/bench_head" ] || { echo "gpu.sh: $DIR/$v/ lacks the binaries: run bench/gpu.sh build $DIR" >&2; exit 2; }
  done
  local cpu gpu_name rows=() line
  cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
  gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
  local dims=(512 2048 1280)
  local i arch
  for i in "${!ARCHS[@]}"; do
    arch=${ARCHS[$i]}
    local configs=("plain cpu")
    [ "$CPU_ONLY" = 0 ] && configs+=("plain wgpu" "tuned wgpu")
    local c
    for c in "${configs[@]}"; do
      read -r v backend <<<"$c"
      line=$("$DIR/$v/bench_embed" --backend "$backend" --archs "$arch" --batch 16 --runs 5 | tail -1)
      local err img
      err=$(json_field "$line" error)
      img=$(json_field "$line" img_s)
      local head_line head_s
      head_line=$("$DIR/$v/bench_head" --backend "$backend" --dim "${dims[$i]}" --n 1000 --epochs 100 --runs 3 | tail -1)
      head_s=$(json_field "$head_line" median_s)
      [ -z "$head_s" ] && head_s="error: $(json_field "$head_line" error)"
      local label="$backend"
      [ "$backend" = wgpu ] && label="wgpu ($([ "$v" = tuned ] && echo 'autotune + fusion' || echo 'no autotune, no fusion'))"
      rows+=("| $arch | $label | ${img:-error: $err} | $head_s |")
      echo "gpu.sh: $arch $label: $line | head $head_line" >&2
    done
  done
  local section
  section=$(
    echo
    echo "### Native wgpu vs CPU ($(date -u +%Y-%m-%d), bench/gpu.sh)"
    echo
    echo "Machine: CPU $cpu ($(nproc) cores)${gpu_name:+, GPU $gpu_name}. Command: \`bench/gpu.sh run $DIR\`$([ "$CPU_ONLY" = 1 ] && echo ' --cpu-only')."
    echo "Embeddings: bench_embed, random weights, batch 16, median of 5 after a warm-up. Head: bench_head,"
    echo "100 epochs over 1,000 synthetic embeddings of the backbone's width, median of 3."
    echo
    echo "| backbone | backend | embeddings/s | head training, 100 epochs (s) |"
    echo "|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
  )
  echo "$section"
  if [ -n "$APPEND" ]; then
    echo "$section" >>"$APPEND"
    echo "gpu.sh: appended to $APPEND" >&2
  fi
}

case "$cmd" in
  build) build ;;
  run) run ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
