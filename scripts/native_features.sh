# Sourced (by ./run and bench/train_vs_pytorch.sh): sets NATIVE_FEATURES, the cargo feature
# arguments of native builds (the CLI and the native tests), so that everything building into
# the shared target dir asks for the same features and none rebuilds the others' dependencies.
# The wgpu backend (default feature `gpu`) is nearly half of a fresh native build (cubecl, wgpu,
# naga: ~980 of ~2,090 CPU-seconds, see docs/BENCHMARKS.md) and can only run where there is a
# GPU, so it is built in natively where the machine has one; elsewhere the native builds are the
# CPU build, and `./run test`'s clippy still checks the native gpu code.
# SORTWISE_NATIVE_FEATURES overrides the choice.
if [ -n "${SORTWISE_NATIVE_FEATURES:-}" ]; then
  read -r -a NATIVE_FEATURES <<<"$SORTWISE_NATIVE_FEATURES"
elif compgen -G '/dev/dri/renderD*' >/dev/null || compgen -G '/dev/nvidia[0-9]*' >/dev/null; then
  NATIVE_FEATURES=(--features cli)
else
  NATIVE_FEATURES=(--no-default-features --features cli)
fi
