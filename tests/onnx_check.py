#!/usr/bin/env python3
"""Check sortwise's ONNX export with onnxruntime (tests/onnx.rs runs this).

    python tests/onnx_check.py MANIFEST.json

The manifest (written by tests/onnx.rs) lists cases: an .onnx file, the tolerance, and photos with
the probabilities sortwise itself computed for them. For each case this script reads the model's
metadata, preprocesses every photo the way the metadata and docs/CLI.md ("Export to ONNX") document it -- in numpy
and Pillow only, never with sortwise's code -- runs the model on onnxruntime's CPU provider, and
compares. It prints one line per case and, last, a JSON summary; it exits 1 when a case is off.

The photos it compares on are PNGs that sortwise decoded from trashnet-mini's JPEGs: JPEG
decoders (sortwise's zune-jpeg, Pillow's libjpeg-turbo) may round some pixels differently, so
both sides start from the same pixels. Each photo's original JPEG, decoded by Pillow, is also
run and its difference reported ("jpeg"), not checked. With "example" in the manifest, the
Raspberry Pi example (examples/raspberry-pi/sorter.py) classifies the same photos with its own
preprocessing, and must agree within the case's tolerance too.
"""

import importlib.util
import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps


def load_rgb(path):
    """RGB uint8 HxWx3 as sortwise decodes: EXIF orientation applied, transparency on white."""
    img = ImageOps.exif_transpose(Image.open(path))
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.uint32)
        a = rgba[..., 3:4]
        # sortwise's integer compositing: (c*a + 255*(255-a) + 127) // 255.
        rgb = (rgba[..., :3] * a + 255 * (255 - a) + 127) // 255
        return Image.fromarray(rgb.astype(np.uint8), "RGB")
    return img.convert("RGB")


def preprocess(img, pre):
    """The documented preprocessing (the model's `preprocessing` metadata): float32 1x3x224x224."""
    w, h = img.size
    if pre["fit"] == "crop":
        size, crop = pre["resize"], pre["crop"]
        # Shorter side to `size`, the longer one floor(size * long / short), like torchvision.
        nw, nh = (size, size * h // w) if w <= h else (size * w // h, size)
        img = img.resize((nw, nh), Image.BILINEAR)
        # Python's round() is half-to-even, as torchvision's CenterCrop.
        left, top = round((nw - crop) / 2), round((nh - crop) / 2)
        img = img.crop((left, top, left + crop, top + crop))
    elif pre["fit"] == "letterbox":
        side = pre["size"]
        scale = side / max(w, h)
        nw = min(max(int(w * scale + 0.5), 1), side)
        nh = min(max(int(h * scale + 0.5), 1), side)
        canvas = Image.new("RGB", (side, side), tuple(pre["fill"]))
        canvas.paste(img.resize((nw, nh), Image.BILINEAR), ((side - nw) // 2, (side - nh) // 2))
        img = canvas
    else:
        raise ValueError(f"unknown fit {pre['fit']!r}")
    x = np.asarray(img, dtype=np.float32) / np.float32(255)
    x = (x - np.asarray(pre["mean"], np.float32)) / np.asarray(pre["std"], np.float32)
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def check_metadata(meta, case):
    need = ["labels", "arch", "preprocessing", "temperature", "backbone_source_sha256", "producer"]
    missing = [k for k in need if k not in meta]
    assert not missing, f"metadata lacks {missing}"
    assert json.loads(meta["labels"]) == case["labels"], (meta["labels"], case["labels"])
    assert meta["arch"] == case["arch"], meta["arch"]
    assert meta["producer"].startswith("sortwise "), meta["producer"]
    assert meta["fine_tuned_stage"] == str(case["fine_tuned"]).lower(), meta["fine_tuned_stage"]
    assert meta["weights_dtype"] == case["dtype"], meta["weights_dtype"]
    assert abs(float(meta["temperature"]) - case["temperature"]) <= 1e-12, meta["temperature"]
    assert meta["backbone_source_sha256"] == case["source_sha256"]
    pre = json.loads(meta["preprocessing"])
    assert pre["fit"] == case["fit"], pre
    assert pre["channels"] == "RGB" and pre["layout"] == "NCHW", pre
    return pre


def run_case(case, example):
    sess = ort.InferenceSession(case["onnx"], providers=["CPUExecutionProvider"])
    model_meta = sess.get_modelmeta()
    pre = check_metadata(model_meta.custom_metadata_map, case)
    (inp,) = sess.get_inputs()
    (out,) = sess.get_outputs()
    assert inp.name == "input" and list(inp.shape[1:]) == [3, 224, 224], (inp.name, inp.shape)
    assert out.name == "probs", out.name
    assert model_meta.producer_name == "sortwise", model_meta.producer_name

    photos = case["photos"]
    x = np.concatenate([preprocess(load_rgb(p["png"]), pre) for p in photos])
    got = sess.run(["probs"], {"input": x})[0]
    want = np.asarray([p["probs"] for p in photos], np.float32)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert np.allclose(got.sum(axis=1), 1.0, atol=1e-5), got.sum(axis=1)
    delta = float(np.abs(got - want).max())
    agree = int((got.argmax(1) == want.argmax(1)).sum())
    # One photo at a time too: the batch dimension is free.
    one = sess.run(["probs"], {"input": x[:1]})[0]
    batch_delta = float(np.abs(one - got[:1]).max())

    jpeg_delta = None
    jpegs = [p for p in photos if p.get("jpeg")]
    if jpegs:
        xj = np.concatenate([preprocess(load_rgb(p["jpeg"]), pre) for p in jpegs])
        gj = sess.run(["probs"], {"input": xj})[0]
        wj = np.asarray([p["probs"] for p in jpegs], np.float32)
        jpeg_delta = float(np.abs(gj - wj).max())

    # The Raspberry Pi example's own preprocessing and run, on the same photos.
    example_delta = None
    if example is not None:
        sorter = example.Sorter(case["onnx"])
        assert sorter.labels == case["labels"], sorter.labels
        ge = sorter.probabilities([Image.open(p["png"]) for p in photos])
        example_delta = float(np.abs(ge - want).max())

    ok = delta <= case["tolerance"] and batch_delta <= 1e-5
    if example_delta is not None:
        ok = ok and example_delta <= case["tolerance"]
    if case.get("same_top1", False):
        ok = ok and agree == len(photos)
    return {
        "name": case["name"],
        "ok": ok,
        "max_abs_delta": delta,
        "tolerance": case["tolerance"],
        "top1_agree": agree,
        "photos": len(photos),
        "batch_vs_single": batch_delta,
        "jpeg_max_abs_delta": jpeg_delta,
        "example_max_abs_delta": example_delta,
        "onnx_bytes": case.get("bytes"),
        "onnxruntime": ort.__version__,
    }


def fmt(v):
    return "-" if v is None else f"{v:.2e}"


def main():
    manifest = json.load(open(sys.argv[1]))
    example = None
    if manifest.get("example"):
        spec = importlib.util.spec_from_file_location("sorter", manifest["example"])
        example = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(example)
    results = []
    for case in manifest["cases"]:
        try:
            r = run_case(case, example)
        except Exception as e:  # noqa: BLE001 - reported per case, then failed
            r = {"name": case["name"], "ok": False, "error": f"{type(e).__name__}: {e}"}
        results.append(r)
        if "error" in r:
            print(f"onnx_check: {r['name']}: ERROR {r['error']}", file=sys.stderr)
        else:
            print(
                f"onnx_check: {r['name']}: max |dprob| {r['max_abs_delta']:.2e} "
                f"(tolerance {r['tolerance']:.0e}), top-1 {r['top1_agree']}/{r['photos']}, "
                f"example {fmt(r['example_max_abs_delta'])}, from the JPEGs {fmt(r['jpeg_max_abs_delta'])}"
                f" -> {'ok' if r['ok'] else 'FAILED'}",
                file=sys.stderr,
            )
    print(json.dumps({"results": results}))
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
