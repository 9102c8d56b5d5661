"""Static file server for the page: correct wasm MIME type, no caching surprises, the
cross-origin isolation headers that let the wasm CPU backend use threads (pkg-cpu/), and the
page's security headers. Loopback only.

    python3 scripts/serve.py [PORT] [--no-isolation]

It serves only what the page, the tests and the benchmarks load (ALLOWED below), never the rest of
the repository (.git/, Cargo.toml, src/): anything else is 404. `/` redirects to `/www/`.
`--no-isolation` leaves COOP/COEP out, as a plain static host would (the tests use it to check
the single-threaded fallback and www/sw.js's isolation); the security headers stay.

The Content-Security-Policy is index.html's meta tag, read from the file (one source), plus
`frame-ancestors 'none'`, which only a header can carry."""

import http.server
import os
import posixpath
import re
import sys
import threading
import urllib.parse

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

# Path prefixes served, relative to the repository root: the page and its wasm builds; the
# browser tests' harness (tests/e2e/*.mjs open harness.html and import /www/); the browser
# benchmarks' workers (sortwise's, and ONNX Runtime Web's for bench/ort.sh) and their data,
# weights and models link (bench/browser.mjs).
ALLOWED = (
    "/www/",
    "/pkg/",
    "/pkg-cpu/",
    "/pkg-cpu-relaxed/",
    "/tests/e2e/",
    "/bench/browser-worker.js",
    "/bench/ort-worker.js",
    "/bench/.cache/",
)

# The app icons are generated, not committed (scripts/icons.py); made here when missing.
ICONS = os.path.join(ROOT, "www", "icons")


def page_csp():
    html = open(os.path.join(ROOT, "www", "index.html"), encoding="utf-8").read()
    m = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    if not m:
        sys.exit("serve.py: www/index.html has no Content-Security-Policy meta tag")
    return m.group(1).rstrip("; ") + "; frame-ancestors 'none'"


def allowed(raw_path):
    """Whether a request path (query included) is one of ALLOWED, after decoding and `..`."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(raw_path).path)
    if "\x00" in path or "\\" in path:
        return False
    norm = posixpath.normpath(path)
    if path.endswith("/") and norm != "/":
        norm += "/"
    # A folder prefix also matches its bare name (which redirects to the folder); a file, itself.
    return any(norm.startswith(p) or norm == p.rstrip("/") if p.endswith("/") else norm == p for p in ALLOWED)


CSP = page_csp()
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
PORT = int(ARGS[0]) if ARGS else 8000
ISOLATED = "--no-isolation" not in sys.argv[1:]


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".svg": "image/svg+xml",
        ".safetensors": "application/octet-stream",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=ROOT, **kwargs)

    def send_head(self):
        if urllib.parse.urlsplit(self.path).path == "/":
            self.send_response(302)
            self.send_header("Location", "/www/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if not allowed(self.path):
            self.send_error(404, "Not Found")
            return None
        return super().send_head()

    def list_directory(self, path):
        # No directory listings: a folder without index.html is not part of the page.
        self.send_error(404, "Not Found")
        return None

    def end_headers(self):
        if ISOLATED:
            # SharedArrayBuffer (the threaded build's shared wasm memory) needs both.
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()


def ensure_icons():
    if os.path.exists(os.path.join(ICONS, "icon-512.png")):
        return
    sys.path.insert(0, os.path.dirname(__file__))
    import icons

    icons.write(ICONS)


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    # In the background: a few seconds of pure Python, needed only for installing the page.
    threading.Thread(target=ensure_icons, daemon=True).start()
    print(f"serving on http://localhost:{PORT}/www/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
