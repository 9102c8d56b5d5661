# Sourced by bench/ort.sh and bench/litert.sh (with PY, BIN and CACHE set): the seeded random
# ResNets and Lite0 exported to ONNX by torch (bench/ort_export.py), and the ResNets' weights
# converted for sortwise, each made once and again only when its source is newer.
if [ ! -f "$CACHE/onnx/efficientnet_lite0.onnx" ] || [ ! -f "$CACHE/onnx/resnet50-random.pth" ]; then
  mkdir -p "$CACHE/onnx"
  "$PY" bench/ort_export.py "$CACHE/onnx" > "$CACHE/onnx/export.json"
fi
for arch in resnet18 resnet50; do
  if [ ! -f "$CACHE/$arch-random.safetensors" ] || [ "$CACHE/onnx/$arch-random.pth" -nt "$CACHE/$arch-random.safetensors" ]; then
    "$BIN" convert --arch "$arch" --input "$CACHE/onnx/$arch-random.pth" --output "$CACHE/$arch-random.safetensors" --dtype f16 >/dev/null
  fi
done
