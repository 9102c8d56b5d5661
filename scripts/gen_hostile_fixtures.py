"""Regenerate tests/fixtures/hostile/: tiny images in the formats users drop that the `image`
crate cannot write itself (CMYK JPEG, animated WebP/GIF, EXIF-rotated JPEG). Dev-only (Pillow).

The hostile corpus built on them (bombs, truncations, lying headers, extreme aspect ratios, other
formats, damaged model and weight files; docs/RELIABILITY.md) is generated in Rust at test time by
tests/corpus/mod.rs, so the native and the wasm tests share it and CI needs neither Pillow nor
committed blobs: `SORTWISE_CORPUS_DIR=/tmp/corpus cargo test --no-default-features --features cli
--test hostile_corpus` writes its files out."""

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "hostile"


def scene(size=(48, 32)):
    """Red background with a green box: colours a wrong CMYK or frame choice would change."""
    im = Image.new("RGB", size, (200, 30, 30))
    ImageDraw.Draw(im).rectangle([8, 8, 30, 24], fill=(20, 180, 40))
    return im


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    scene().convert("CMYK").save(OUT / "cmyk.jpg", quality=90)
    blue = Image.new("RGB", (48, 32), (20, 20, 220))
    scene().save(OUT / "animated.webp", save_all=True, append_images=[blue], duration=100, loop=0, lossless=True)
    scene().save(OUT / "animated.gif", save_all=True, append_images=[blue], duration=100, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise for display
    scene().save(OUT / "exif_rot6.jpg", exif=exif, quality=90)
    scene().convert("L").save(OUT / "gray.jpg", quality=90)


if __name__ == "__main__":
    main()
