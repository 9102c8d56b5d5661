"""The app icons (web app manifest, favicon, apple-touch-icon), drawn from one description in
this file as SVG and as PNGs, so that no binary image is committed. Pure Python (zlib only):
it runs wherever python3 does, no Pillow needed.

    python3 scripts/icons.py OUT_DIR

writes OUT_DIR/icon.svg, icon-192.png, icon-512.png (purpose "any"), maskable-512.png (full-bleed
background, the glyph inside the 80% safe zone) and apple-touch-icon.png (180 px).

The glyph is three bars of decreasing length, the usual "sort" sign, on the page's accent green.
Anti-aliasing comes from the signed distance to each shape (coverage = 0.5 - distance in pixels),
one sample per pixel."""

import math
import os
import struct
import sys
import zlib

ACCENT = (0x2F, 0x6F, 0x4F)  # --accent in www/style.css
INK = (0xFF, 0xFF, 0xFF)

# Shapes in a unit square: (x0, y0, x1, y1, corner radius, colour).
BARS = [
    (0.22, 0.285, 0.78, 0.395, 0.055, INK),
    (0.22, 0.445, 0.64, 0.555, 0.055, INK),
    (0.22, 0.605, 0.50, 0.715, 0.055, INK),
]
CORNER = 0.22  # background corner radius of the "any" icon (the maskable one is full bleed)


def rounded_rect_distance(px, py, rect):
    x0, y0, x1, y1, r = rect[:5]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    qx = abs(px - cx) - ((x1 - x0) / 2 - r)
    qy = abs(py - cy) - ((y1 - y0) / 2 - r)
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - r


def shapes(maskable):
    background = (0.0, 0.0, 1.0, 1.0, 0.0 if maskable else CORNER, ACCENT)
    if not maskable:
        return [background, *BARS]
    # The maskable safe zone is the centred circle of radius 0.4: shrink the glyph toward it.
    s = 0.8
    return [background] + [
        (0.5 + (x0 - 0.5) * s, 0.5 + (y0 - 0.5) * s, 0.5 + (x1 - 0.5) * s, 0.5 + (y1 - 0.5) * s, r * s, c)
        for x0, y0, x1, y1, r, c in BARS
    ]


def render(size, maskable=False):
    """RGBA rows (bytes) of the icon at `size` pixels."""
    rows = []
    items = shapes(maskable)
    for j in range(size):
        py = (j + 0.5) / size
        row = bytearray(size * 4)
        for i in range(size):
            px = (i + 0.5) / size
            r = g = b = a = 0.0
            for shape in items:
                x0, y0, x1, y1 = shape[:4]
                # Pixels a whole pixel outside the box cannot be covered: skip the distance.
                if px < x0 - 1 / size or px > x1 + 1 / size or py < y0 - 1 / size or py > y1 + 1 / size:
                    continue
                d = rounded_rect_distance(px, py, shape) * size
                cov = min(1.0, max(0.0, 0.5 - d))
                if cov <= 0:
                    continue
                cr, cg, cb = shape[5]
                # "over" compositing, straight alpha
                na = cov + a * (1 - cov)
                r = (cr * cov + r * a * (1 - cov)) / na
                g = (cg * cov + g * a * (1 - cov)) / na
                b = (cb * cov + b * a * (1 - cov)) / na
                a = na
            k = i * 4
            row[k:k + 4] = bytes((round(r), round(g), round(b), round(a * 255)))
        rows.append(bytes(row))
    return rows


def png(size, rows):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def svg():
    def num(v):
        return f"{v * 512:.1f}".rstrip("0").rstrip(".")

    parts = [f'<rect width="512" height="512" rx="{num(CORNER)}" fill="#{"".join(f"{c:02x}" for c in ACCENT)}"/>']
    for x0, y0, x1, y1, r, c in BARS:
        parts.append(
            f'<rect x="{num(x0)}" y="{num(y0)}" width="{num(x1 - x0)}" height="{num(y1 - y0)}" rx="{num(r)}" '
            f'fill="#{"".join(f"{v:02x}" for v in c)}"/>'
        )
    return '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512">' + "".join(parts) + "</svg>\n"


def write(out):
    os.makedirs(out, exist_ok=True)
    files = {"icon.svg": svg().encode()}
    for name, size, maskable in [
        ("icon-192.png", 192, False),
        ("icon-512.png", 512, False),
        ("maskable-512.png", 512, True),
        ("apple-touch-icon.png", 180, True),  # iOS rounds the corners itself
    ]:
        files[name] = png(size, render(size, maskable))
    for name, data in files.items():
        path = os.path.join(out, name)
        # Unchanged files are left alone, so a rebuild does not touch their mtime.
        if os.path.exists(path) and open(path, "rb").read() == data:
            continue
        with open(path + ".partial", "wb") as f:
            f.write(data)
        os.replace(path + ".partial", path)
    return sorted(files)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 scripts/icons.py OUT_DIR")
    names = write(sys.argv[1])
    print(f"icons: {len(names)} files in {sys.argv[1]}", file=sys.stderr)
