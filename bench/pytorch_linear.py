"""The PyTorch embed-once linear head sortwise's default `train` is held to (issue 19).

Every training photo embedded once with the evaluation transform (Resize 256, CenterCrop 224),
then `nn.Linear(dim, classes)` (PyTorch's default init) trained with Adam (lr 1e-3), batch 32
(shuffled), cross-entropy with label smoothing 0.1, 100 epochs, on all of the split's training
photos; scored on its test photos.

To save CPU it reads the embeddings sortwise computed (examples/bench_recipe.rs writes them
with the splits): sortwise's EfficientNet-Lite0 embeddings equal PyTorch's within the parity
tolerance of tests/parity.rs (max |d| <= 1e-3), so the head sees the same numbers it would from
`efficientnet_lite_pytorch`. Same seeds, same splits as bench_recipe's.

    python bench/pytorch_linear.py bench/.cache/recipe   # prints one JSON object

Dev machine only: needs torch, numpy, safetensors (the venv bench/recipe.sh sets up).
"""

import json
import os
import sys
import time

import numpy as np
import torch
from safetensors.numpy import load_file

out = sys.argv[1] if len(sys.argv) > 1 else "bench/.cache/recipe"
threads = int(os.environ.get("THREADS", os.cpu_count() or 1))
torch.set_num_threads(threads)
emb = load_file(os.path.join(out, "embeddings.safetensors"))
splits = json.load(open(os.path.join(out, "splits.json")))
x_all = torch.from_numpy(emb["eval"].astype(np.float32))
y_all = torch.from_numpy(emb["label"].astype(np.int64))
classes = int(y_all.max()) + 1


def fit_and_score(seed, train, test):
    torch.manual_seed(seed)
    head = torch.nn.Linear(x_all.shape[1], classes)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    x, y = x_all[train], y_all[train]
    started = time.perf_counter()
    for _ in range(100):
        order = torch.randperm(len(train))
        for b in range(0, len(train), 32):
            idx = order[b:b + 32]
            opt.zero_grad()
            loss_fn(head(x[idx]), y[idx]).backward()
            opt.step()
    seconds = time.perf_counter() - started
    with torch.no_grad():
        right = (head(x_all[test]).argmax(1) == y_all[test]).sum().item()
    return right, seconds


results = {}
for kind in ["val", "kfold"]:
    accs, secs = [], []
    for seed in sorted({s["seed"] for s in splits}):
        right = total = 0
        t = []
        for s in splits:
            if s["seed"] == seed and s["kind"] == kind:
                r, sec = fit_and_score(seed, s["train"], s["test"])
                right += r
                total += len(s["test"])
                t.append(sec)
        accs.append(right / total)
        secs.append(sum(t) / len(t))
    results[kind] = {
        "accuracy": accs,
        "mean": float(np.mean(accs)),
        "sd": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
        "train_seconds": float(np.mean(secs)),
    }
print(json.dumps({"recipe": "pytorch linear head", "torch": torch.__version__,
                  "threads": threads, "splits": results}))
