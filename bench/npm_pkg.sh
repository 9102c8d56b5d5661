# Sourced by bench/ort.sh and bench/litert.sh (with CACHE set): `npm_pkg DIR PACKAGE VERSION`
# installs the pinned PACKAGE into $CACHE/DIR unless that version is there already. The
# benchmarks' own runtimes (ONNX Runtime Web, LiteRT.js) live there, never in the page.
npm_pkg() {
  if [ ! -f "$CACHE/$1/node_modules/$2/package.json" ] \
     || ! grep -q "\"version\": \"$3\"" "$CACHE/$1/node_modules/$2/package.json"; then
    echo "$(basename "$0"): npm install $2@$3 into $CACHE/$1 (bench only, never the page)" >&2
    mkdir -p "$CACHE/$1"
    [ -f "$CACHE/$1/package.json" ] || echo '{"private": true}' > "$CACHE/$1/package.json"
    npm install --prefix "$CACHE/$1" --no-audit --no-fund --loglevel=error --save-exact "$2@$3"
  fi
}
