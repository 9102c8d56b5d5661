"""PyTorch CPU forward throughput: the baseline of issue 7 (bench/run.sh runs it).

ResNet-18 and ResNet-50 (torchvision) and EfficientNet-Lite0 (PyPI efficientnet-lite-pytorch),
random weights (speed does not depend on them), eval mode + no_grad, batch 16 at 224x224, one
warm-up batch then the median of 5 timed batches. Threads: $THREADS (default 2, the cores these
machines have); OMP_WAIT_POLICY=PASSIVE is set before torch is imported, the same way every run.
Prints one JSON line: {"torch", "threads", "batch", "archs": {arch: {"img_s", "median_s", "runs_s"}}}.
An arch whose package is missing gets {"error": ...} instead.

  /root/.venvs/ref/bin/python bench/pytorch_forward.py [arch ...]
"""

import json
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

BATCH = int(os.environ.get("BATCH", 16))
RUNS = int(os.environ.get("RUNS", 5))
THREADS = int(os.environ.get("THREADS", 2))
ARCHS = sys.argv[1:] or ["resnet18", "resnet50", "efficientnet_lite0"]


def build(arch):
    if arch in ("resnet18", "resnet34", "resnet50"):
        import torchvision

        return getattr(torchvision.models, arch)(weights=None)
    if arch == "efficientnet_lite0":
        from efficientnet_lite_pytorch import EfficientNet

        return EfficientNet.from_name("efficientnet-lite0")
    raise ValueError(f"unknown arch {arch}")


def main():
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    x = torch.randn(BATCH, 3, 224, 224)
    out = {"torch": torch.__version__, "threads": THREADS, "batch": BATCH, "archs": {}}
    for arch in ARCHS:
        try:
            model = build(arch).eval()
        except Exception as e:  # a missing optional package: report, keep going
            out["archs"][arch] = {"error": f"{type(e).__name__}: {e}"}
            continue
        runs = []
        with torch.no_grad():
            model(x)  # warm-up
            for _ in range(RUNS):
                t = time.perf_counter()
                model(x)
                runs.append(time.perf_counter() - t)
        med = statistics.median(runs)
        out["archs"][arch] = {"img_s": BATCH / med, "median_s": med, "runs_s": runs}
        print(f"pytorch {arch}: {BATCH / med:.1f} img/s", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
