"""The numerical check of bench/litert.sh's conversions (issue 35): each onnx2tf `.tflite` against
the ONNX file it came from, on one random input (seeded), in Python: onnxruntime on the ONNX model
(NCHW) against the LiteRT interpreter (ai_edge_litert, which onnx2tf's venv has) on the `.tflite`
(NHWC: the same input, transposed). Prints one JSON object: per arch and batch, the largest
absolute difference of the features and the largest absolute feature.
It also writes, per arch, the batch-1 input (raw float32, NHWC) and onnxruntime's output on it, for
bench/litert.mjs's check of LiteRT.js itself in the browser:
  DIR/check-<arch>-input-nhwc.f32, DIR/check-<arch>.json

  bench/.cache/onnx2tf-venv/bin/python bench/litert_check.py ONNX_DIR TFLITE_DIR
"""

import json
import os
import sys

import numpy as np
import onnxruntime
from ai_edge_litert.interpreter import Interpreter

ARCHS = ("resnet18", "resnet50", "efficientnet_lite0")


def main():
    onnx_dir, tflite_dir = sys.argv[1], sys.argv[2]
    archs = os.environ.get("ARCHS", ",".join(ARCHS)).split(",")
    batches = [int(b) for b in os.environ.get("BATCHES", "8,1").split(",")]
    out = {"onnxruntime": onnxruntime.__version__, "models": {}}
    for arch in archs:
        session = onnxruntime.InferenceSession(os.path.join(onnx_dir, f"{arch}.onnx"), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        out["models"][arch] = {}
        for batch in batches:
            x = np.random.default_rng(35).uniform(-1, 1, (batch, 3, 224, 224)).astype(np.float32)
            want = session.run(None, {name: x})[0]
            interp = Interpreter(model_path=os.path.join(tflite_dir, f"{arch}-b{batch}.tflite"), num_threads=2)
            interp.allocate_tensors()
            inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
            nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
            if tuple(inp["shape"]) != nhwc.shape:
                raise SystemExit(f"{arch} b{batch}: the .tflite input is {tuple(inp['shape'])}, expected {nhwc.shape}")
            interp.set_tensor(inp["index"], nhwc)
            interp.invoke()
            got = interp.get_tensor(outp["index"])
            if got.shape != want.shape:
                raise SystemExit(f"{arch} b{batch}: the .tflite output is {got.shape}, ONNX's {want.shape}")
            out["models"][arch][f"b{batch}"] = {
                "input": list(nhwc.shape), "output": list(got.shape),
                "max_abs_diff": float(np.abs(got - want).max()), "max_abs_onnx": float(np.abs(want).max()),
            }
            print(f"litert_check: {arch} batch {batch}: max |tflite - onnx| = {np.abs(got - want).max():.3g} "
                  f"(max |onnx| {np.abs(want).max():.3g})", file=sys.stderr)
            if batch == 1:
                nhwc.tofile(os.path.join(tflite_dir, f"check-{arch}-input-nhwc.f32"))
                with open(os.path.join(tflite_dir, f"check-{arch}.json"), "w") as f:
                    json.dump({"arch": arch, "input_nhwc": list(nhwc.shape), "onnx_output": want.reshape(-1).tolist()}, f)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
