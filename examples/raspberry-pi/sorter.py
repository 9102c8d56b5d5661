#!/usr/bin/env python3
"""A sortwise classifier on a Raspberry Pi: camera frame -> preprocessing -> onnxruntime -> label.

    python3 sorter.py sorter.onnx                  # the Pi camera (picamera2): a line per change
    python3 sorter.py sorter.onnx bottle.jpg ...   # photos instead of the camera
    python3 sorter.py sorter.onnx --json can.jpg   # every class's probability, as JSON

sorter.onnx is what sortwise's "Export -> ONNX" (or `sortwise export --format onnx`) writes: the
whole classifier, with its labels and its preprocessing in the file's metadata. Needs
onnxruntime, numpy and Pillow; picamera2 for the camera (README.md beside this file).
"""

import argparse
import json
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps


class Sorter:
    """An exported sortwise model: `classify(image)` gives (label, confidence, probabilities)."""

    def __init__(self, path, threshold=0.0):
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.labels = json.loads(meta["labels"])
        self.pre = json.loads(meta["preprocessing"])
        self.threshold = threshold

    def preprocess(self, img):
        """PIL image -> float32 [3, 224, 224], as sortwise prepares a photo (its metadata)."""
        img = ImageOps.exif_transpose(img)
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            # Transparency on white, with sortwise's rounding.
            rgba = np.asarray(img.convert("RGBA"), dtype=np.uint32)
            a = rgba[..., 3:4]
            img = Image.fromarray(((rgba[..., :3] * a + 255 * (255 - a) + 127) // 255).astype(np.uint8))
        img = img.convert("RGB")
        w, h = img.size
        pre = self.pre
        if pre["fit"] == "crop":  # shorter side to 256, then the center 224x224
            s, c = pre["resize"], pre["crop"]
            nw, nh = (s, s * h // w) if w <= h else (s * w // h, s)
            img = img.resize((nw, nh), Image.BILINEAR)
            left, top = round((nw - c) / 2), round((nh - c) / 2)
            img = img.crop((left, top, left + c, top + c))
        else:  # letterbox: the whole photo, longer side 224, on the mean colour
            side = pre["size"]
            scale = side / max(w, h)
            nw, nh = (min(max(int(v * scale + 0.5), 1), side) for v in (w, h))
            canvas = Image.new("RGB", (side, side), tuple(pre["fill"]))
            canvas.paste(img.resize((nw, nh), Image.BILINEAR), ((side - nw) // 2, (side - nh) // 2))
            img = canvas
        x = np.asarray(img, dtype=np.float32) / np.float32(255)
        x = (x - np.asarray(pre["mean"], np.float32)) / np.asarray(pre["std"], np.float32)
        return x.transpose(2, 0, 1)

    def probabilities(self, images):
        """Calibrated probabilities, [len(images), classes], in the order of `self.labels`."""
        x = np.stack([self.preprocess(img) for img in images])
        return self.session.run(["probs"], {"input": x})[0]

    def classify(self, img):
        probs = self.probabilities([img])[0]
        best = int(probs.argmax())
        confidence = float(probs[best])
        label = self.labels[best] if confidence >= self.threshold else "unsure"
        return label, confidence, probs


def camera_frames(size=(640, 480)):
    """PIL images from the Raspberry Pi camera, forever."""
    from picamera2 import Picamera2  # apt install python3-picamera2

    cam = Picamera2()
    cam.configure(cam.create_preview_configuration(main={"size": size}))
    cam.start()
    time.sleep(1)  # let exposure and white balance settle
    while True:
        # capture_image gives a PIL image in RGB order whatever the sensor's byte order.
        yield cam.capture_image("main").convert("RGB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="the .onnx file sortwise exported")
    ap.add_argument("images", nargs="*", help="photos to classify (default: the camera)")
    ap.add_argument("--threshold", type=float, default=0.0, help='below this confidence: "unsure"')
    ap.add_argument("--interval", type=float, default=0.2, help="seconds between camera frames")
    ap.add_argument("--json", action="store_true", help="print every class's probability")
    args = ap.parse_intermixed_args()
    sorter = Sorter(args.model, args.threshold)

    def report(name, img):
        label, confidence, probs = sorter.classify(img)
        if args.json:
            print(json.dumps({"file": name, "label": label, "confidence": confidence,
                              "probs": dict(zip(sorter.labels, map(float, probs)))}))
        else:
            print(f"{label},{confidence:.2f}", flush=True)
        return label

    if args.images:
        for path in args.images:
            report(path, Image.open(path))
        return
    try:
        frames = camera_frames()
        last = None
        for img in frames:
            label, confidence, _ = sorter.classify(img)
            if label != last:  # one line per change, like the page's "send to a device"
                print(f"{label},{confidence:.2f}", flush=True)
                last = label
                # Drive a servo, a relay or a light here, e.g. with gpiozero.
            time.sleep(args.interval)
    except ImportError:
        sys.exit("no camera: picamera2 is not installed (apt install python3-picamera2); "
                 "or pass photo files")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
