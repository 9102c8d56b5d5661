#!/usr/bin/env bash
# Build the two browser packages (`./run` calls this; so can you):
#   pkg/      WebGPU + CPU, single-threaded (stable, wasm-pack). Loaded for `device: 'webgpu'`,
#             for `auto` with a hardware GPU, and on pages that are not cross-origin isolated.
#   pkg-cpu/  CPU only (no wgpu/naga/cubecl), wasm threads: burn-flex and gemm on a rayon pool of
#             Web Workers sharing the module's memory. Loaded for `cpu` and `auto` without a
#             hardware GPU when the page is cross-origin isolated (shared memory needs it).
#   pkg-cpu-relaxed/  pkg-cpu/ with relaxed SIMD's fused multiply-add in gemm's microkernels
#             (feature `relaxed-simd`): loaded instead of pkg-cpu/ where the engine validates
#             relaxed SIMD (Chromium, Firefox; not Safari, which would reject the whole module).
#   profile   pkg-cpu-relaxed/ with wasm's name section kept, in bench/.cache/pkg-prof/, for
#             bench/profile.mjs (function names in V8's profiles; the other builds strip them);
#   profile-pkg  pkg/ likewise, in bench/.cache/pkg-prof1/.
# Usage: scripts/wasm_pkg.sh [pkg|pkg-cpu|pkg-cpu-relaxed|all|clippy-cpu|profile|profile-pkg]
#        (default all)
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sortwise-target}
# Threads need std rebuilt with atomics (`-Z build-std`), which only nightly does; a pinned
# nightly so that CI and developers build the same thing (scripts/setup.sh installs it).
NIGHTLY=${SORTWISE_NIGHTLY:-$(cat scripts/nightly-version)}
# Its own target dir: another toolchain and other RUSTFLAGS would otherwise invalidate the
# stable build's artifacts on every switch.
THREADS_TARGET_DIR=${SORTWISE_THREADS_TARGET_DIR:-$HOME/.cache/sortwise-target-threads}

step() { echo "==> $*" >&2; }

# A hash of the module beside it: the page keeps its `auto` device verdict per build
# (www/engine/device-choice.js), since a rebuilt engine may be faster on one device than before.
write_build_id() {
  sha256sum "$1/sortwise_bg.wasm" | cut -c1-16 >"$1/build-id"
}

build_pkg() {
  step "wasm package pkg/ (WebGPU + CPU, single-threaded)"
  wasm-pack build --target web --release --out-dir pkg
  write_build_id pkg
}

# cargo on the threaded CPU configuration: `threads_cargo rustc|clippy [args]`.
threads_cargo() {
  local cmd=$1
  shift
  # ./run test lints during builds (SORTWISE_LINT): this build needs the nightly's clippy driver,
  # which has lints stable's does not; those are allowed, so code written for stable passes both.
  local wrapper=(env)
  if [ -n "${SORTWISE_LINT:-}" ]; then
    wrapper+=("RUSTC_WORKSPACE_WRAPPER=$(rustup which --toolchain "$NIGHTLY" clippy-driver)"
      "CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__-A__CLIPPY_HACKERY__clippy::chunks_exact_to_as_chunks__CLIPPY_HACKERY__")
  fi
  # RUSTFLAGS replaces .cargo/config.toml's target rustflags, so SIMD128 is repeated here.
  # atomics + bulk-memory + mutable-globals: atomic instructions and thread-local storage for
  # the rayon workers, in every crate and in std (hence build-std).
  "${wrapper[@]}" CARGO_TARGET_DIR=$THREADS_TARGET_DIR \
    RUSTFLAGS="-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128" \
    cargo "+$NIGHTLY" "$cmd" --quiet --lib --release --target wasm32-unknown-unknown \
    --no-default-features --features "${FEATURES:-threads}" -Z build-std=panic_abort,std "$@"
}

# The link of the cdylib only (`cargo rustc -- ...`, so changing them rebuilds no dependency).
# This nightly's rustc no longer asks wasm-ld for a shared memory when atomics are on: without
# these the module links with a private memory that the thread pool's workers cannot share.
# --import-memory: each worker instantiates the module on the same memory. --max-memory: shared
# memory must declare a maximum; ResNet-50 with a batch of augmented views needs more than 1 GiB,
# and 4 GiB (wasm32's limit) costs only address space. The __tls exports let wasm-bindgen give
# every thread its own thread-locals.
LINK_ARGS=(
  -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296
  -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size
  -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base
)

# `build_pkg_cpu OUT FEATURES [RUSTC_ARGS...]`: one threaded build. Both share the target dir: the relaxed
# feature changes gemm-f32 and the crates above it, not std or the rest.
build_pkg_cpu() {
  local dir=$1 features=$2
  shift 2
  step "wasm package $dir/ (CPU only, wasm threads, features $features; $NIGHTLY)"
  local t0=$SECONDS
  FEATURES=$features threads_cargo rustc -- "${LINK_ARGS[@]}" "$@"
  step "$dir/: cargo build took $((SECONDS - t0)) s"
  local out=$dir.tmp
  rm -rf "$out"
  wasm-bindgen --target web --out-dir "$out" \
    "$THREADS_TARGET_DIR/wasm32-unknown-unknown/release/sortwise.wasm"
  write_build_id "$out"
  rm -rf "$dir"
  mv "$out" "$dir"
  ls -l "$dir/sortwise_bg.wasm" >&2
}

case "$which" in
  pkg) build_pkg ;;
  pkg-cpu) build_pkg_cpu pkg-cpu threads ;;
  pkg-cpu-relaxed) build_pkg_cpu pkg-cpu-relaxed relaxed-simd ;;
  # Only the final link differs (`cargo rustc` passes these to sortwise's crate alone).
  profile) build_pkg_cpu bench/.cache/pkg-prof relaxed-simd -C strip=none ;;
  profile-pkg)
    step "wasm package bench/.cache/pkg-prof1/ (pkg/ with function names)"
    cargo rustc --quiet --lib --release --target wasm32-unknown-unknown -- -C strip=none
    rm -rf bench/.cache/pkg-prof1
    wasm-bindgen --target web --out-dir bench/.cache/pkg-prof1 \
      "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/sortwise.wasm"
    ;;
  all) build_pkg; build_pkg_cpu pkg-cpu threads; build_pkg_cpu pkg-cpu-relaxed relaxed-simd ;;
  # `./run test`: clippy -D warnings on the threaded CPU configuration. Its clippy is the
  # nightly's, which has lints stable's does not (stable checks the other configurations);
  # those are allowed, so code written for stable clippy passes both.
  clippy-cpu) threads_cargo clippy -- -D warnings -A clippy::chunks_exact_to_as_chunks ;;
  *) echo "usage: $0 [pkg|pkg-cpu|pkg-cpu-relaxed|all|clippy-cpu|profile|profile-pkg]" >&2; exit 2 ;;
esac
