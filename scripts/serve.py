"""Static file server for the page: correct wasm MIME type, no caching surprises, and the
cross-origin isolation headers that let the wasm CPU backend use threads (pkg-cpu/). Loopback only.

    python3 scripts/serve.py [PORT] [--no-isolation]

`--no-isolation` leaves COOP/COEP out, as a plain static host would (the tests use it to check
the single-threaded fallback and www/sw.js's isolation)."""

import http.server
import sys

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
        ".safetensors": "application/octet-stream",
    }

    def end_headers(self):
        if ISOLATED:
            # SharedArrayBuffer (the threaded build's shared wasm memory) needs both.
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print(f"serving on http://localhost:{PORT}/www/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
