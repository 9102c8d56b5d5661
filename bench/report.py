"""Turn one bench/run.sh run's JSON outputs into the markdown section for docs/BENCHMARKS.md.

  python3 bench/report.py RESULTS_DIR   (reads pytorch.json, native_cpu.jsonl, native_wgpu.jsonl,
                                         browser.json, sizes.json, machine.json; prints markdown)
"""

import datetime
import json
import pathlib
import sys

d = pathlib.Path(sys.argv[1])


def load(name, lines=False):
    p = d / name
    if not p.exists() or not p.read_text().strip():
        return [] if lines else None
    if lines:
        return [json.loads(x) for x in p.read_text().splitlines() if x.strip().startswith("{")]
    try:
        return json.loads(p.read_text().strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return None


machine = load("machine.json") or {}
torch = load("pytorch.json")
native = [r for r in load("native_cpu.jsonl", lines=True) if "arch" in r]
weights = [r["weights"] for r in load("native_cpu.jsonl", lines=True) if "weights" in r]
wgpu = load("native_wgpu.jsonl", lines=True)
browser = load("browser.json") or {}
sizes = load("sizes.json") or {}

ARCHS = ["resnet18", "resnet50", "efficientnet_lite0"]
NAMES = {"resnet18": "ResNet-18", "resnet50": "ResNet-50", "efficientnet_lite0": "EfficientNet-Lite0"}
base = {a: v["img_s"] for a, v in (torch or {}).get("archs", {}).items() if "img_s" in v}


def ratio(x, arch):
    return f"{x / base[arch]:.2f}x" if arch in base and x else "–"


def fmt(x, unit="", digits=1):
    return "–" if x is None else f"{x:.{digits}f}{unit}"


def brun(device, arch, pkg="pkg"):
    for r in browser.get("runs", []):
        if r["device"] == device and r["arch"] == arch and r.get("pkg", "pkg") == pkg:
            return r
    return {}


def threads(pkg):
    r = next((r for r in browser.get("runs", []) if r.get("pkg", "pkg") == pkg), {})
    return get(r, "init", "threads")


def get(r, *path):
    for k in path:
        if not isinstance(r, dict) or k not in r:
            return None
        r = r[k]
    return r


def mb(b):
    return "–" if b is None else f"{b / 1e6:.1f} MB"


out = []
p = out.append
p(f"\n### Issue 7 harness: PyTorch CPU vs sortwise native vs sortwise in Chromium — {datetime.date.today()}\n")
p(f"Machine: {machine.get('cpu', '?')}, {machine.get('nproc', '?')} cores, shared. "
  f"Load averages (1/5/15 min) at start {machine.get('load_start', '?')}, at end {machine.get('load_end', '?')}"
  f"{'; ' + machine['note'] if machine.get('note') else ''}. "
  f"Command: `bash bench/run.sh` (native: `examples/bench_embed`, {machine.get('profile', 'release')} profile; browser: "
  f"`node bench/browser.mjs`, Chromium {browser.get('chromium', '?')}, wasm from `pkg/` and `pkg-cpu/` as built). "
  f"All numbers from this one run; ratios are sortwise / PyTorch (higher is better for throughput).\n")
if torch is None:
    p("PyTorch: **skipped** (torch not importable with the given `PY`); no ratios.\n")
else:
    p(f"Baseline: PyTorch {torch['torch']} CPU, {torch['threads']} threads, `OMP_WAIT_POLICY=PASSIVE`, eval + "
      f"no_grad, batch {torch['batch']}, 224x224, random weights, median of 5 after one warm-up batch.\n")

p("**Backbone throughput** (images/s; native and PyTorch: forward on batch 16 of ready tensors; browser: "
  "`addImage` one photo at a time, i.e. JPEG decode + resize + batch-1 forward + thumbnail; `pkg/` is the "
  f"single-threaded WebGPU + CPU build, `pkg-cpu/` the CPU-only build on {threads('pkg-cpu') or '?'} threads):\n")
p("| arch | PyTorch CPU | sortwise native cpu | ratio (target ≥ 0.5x) | browser wasm cpu, pkg/ | ratio (target ≥ 0.2x) "
  "| browser wasm cpu, pkg-cpu/ | ratio |")
p("|---|---|---|---|---|---|---|---|")
for a in ARCHS:
    n = next((r for r in native if r["arch"] == a), {})
    b = get(brun("cpu", a), "embed", "imgPerS")
    bc = get(brun("cpu", a, "pkg-cpu"), "embed", "imgPerS")
    p(f"| {NAMES[a]} | {fmt(base.get(a))} | {fmt(n.get('img_s'))} | {ratio(n.get('img_s'), a)} | {fmt(b, digits=2)} "
      f"| {ratio(b, a)} | {fmt(bc, digits=2)} | {ratio(bc, a)} |")
g = brun("webgpu", "efficientnet_lite0")
gi = get(g, "embed", "imgPerS")
ci = get(brun("cpu", "efficientnet_lite0"), "embed", "imgPerS")
if g:
    p(f"| EfficientNet-Lite0, browser WebGPU ({(browser.get('gpu') or {}).get('architecture', '?')}, "
      f"fallback adapter: {(browser.get('gpu') or {}).get('fallback')}) | {fmt(base.get('efficientnet_lite0'))} | | | "
      f"{fmt(gi, digits=2)} (first image {fmt((get(g, 'embed', 'warmupMs') or [None])[0], ' ms', 0)}; "
      f"{fmt(ci / gi if ci and gi else None, 'x', 1)} slower than wasm cpu) | {ratio(gi, 'efficientnet_lite0')} | | |")
wg = next((r for r in wgpu if "error" in r), None)
wgok = [r for r in wgpu if "img_s" in r]
if wgok:
    for r in wgok:
        p(f"| {NAMES[r['arch']]}, native wgpu | {fmt(base.get(r['arch']))} | {fmt(r['img_s'])} | {ratio(r['img_s'], r['arch'])} | | | | |")
p("")
if browser.get("auto"):
    a = browser["auto"]
    p(f"Browser `device: 'auto'` chose **{a.get('backend', a.get('error'))}**: {a.get('reason', '')}\n")
if wg:
    import re
    found = re.findall(r'name: "([^"]*)".*?device_type: (\w+).*?backend: (\w+)', wg["error"])
    seen = ", ".join(f"{n} ({t}, {b})" for n, t, b in found) or wg["error"][:200]
    p(f"Native wgpu: **no hardware adapter on this machine** (only: {seen}); not measured.\n")
else:
    p(f"Native wgpu: {'measured above' if wgok else 'not run'}.\n")

p("**Where the time goes** (EfficientNet-Lite0):\n")
n0 = next((r for r in native if r["arch"] == "efficientnet_lite0"), {})
if n0.get("batch1_s"):
    p(f"- native cpu: batch 1 forward {n0['batch1_s'] * 1000:.0f} ms/image vs batch 16 "
      f"{n0['median_s'] / n0['batch'] * 1000:.0f} ms/image → batching buys "
      f"{n0['batch1_s'] / (n0['median_s'] / n0['batch']):.2f}x.")
c = brun("cpu", "efficientnet_lite0")
b16 = get(c, "batch16", "medianMs")
b1 = get(c, "embed", "medianMs")
f1 = get(c, "forward1", "medianMs")
if b16 and b1:
    p(f"- wasm cpu: one `addImage` with `augment: 15` (decode, 16 crops, one batch-16 forward, thumbnail) takes "
      f"{b16:.0f} ms = {b16 / 16:.0f} ms/view, vs {b1:.0f} ms for a plain `addImage` (batch-1 forward)"
      f"{f' and {f1:.0f} ms for a batch-1 forward alone (`predictPixels` on a 224x224 frame)' if f1 else ''} "
      f"→ per view, batch 16 is {b1 / (b16 / 16):.2f}x a plain `addImage`"
      f"{f' and {f1 / (b16 / 16):.2f}x a bare batch-1 forward' if f1 else ''}; "
      f"wasm memory for that batch: {mb(get(c, 'batch16', 'memory'))}.")
if get(c, "drop", "totalMs"):
    dr = c["drop"]
    p(f"- wasm cpu, {dr['images']} photos dropped → trained: embedding {dr['embedMs'] / 1000:.1f} s "
      f"({100 * dr['embedMs'] / dr['totalMs']:.0f}%, of which reading files {dr['readMs'] / 1000:.1f} s), "
      f"head training {dr['trainMs'] / 1000:.1f} s ({dr['epochsRun']} epochs).")
p("")

p("**Browser** (headless Chromium, dedicated worker; `cpu` = wasm burn-flex + SIMD128: `pkg/` single-threaded, "
  f"`pkg-cpu/` on {threads('pkg-cpu') or '?'} threads):\n")
p("| measurement | target | " + " | ".join(f"{NAMES[a]} cpu, {pkg}" for a in ARCHS for pkg in ("pkg/", "pkg-cpu/"))
  + " | Lite0 WebGPU (SwiftShader) |")
p("|---|---|" + "---|" * (2 * len(ARCHS) + 1))
runs = [brun("cpu", a, pkg) for a in ARCHS for pkg in ("pkg", "pkg-cpu")] + [g]


def row(label, target, fn):
    p(f"| {label} | {target} | " + " | ".join(fn(r) if r else "–" for r in runs) + " |")


def head(r):
    h = r.get("head") or {}
    if "trainMs" not in h:
        return h.get("error", "–")[:60]
    if h.get("epochs", 100) != 100:
        return (f"{h['trainMs'] / 1000:.1f} s for {h['epochs']} epoch{'s' if h['epochs'] > 1 else ''} "
                f"(≈{h['trainMs'] / h['epochs'] * 100 / 1000:.0f} s per 100)")
    return f"{h['trainMs'] / 1000:.2f} s"


row("embeddings/s (`addImage`, one photo per call)", "≥ 0.2x PyTorch",
    lambda r: (f"{r['embed']['imgPerS']:.2f} ({len(r['embed']['ms'])} photos after {len(r['embed']['warmupMs'])} warm-up)"
               if get(r, "embed", "imgPerS") else "–"))
row("batch-1 forward (`predictPixels` 224x224)", "", lambda r: fmt(get(r, "forward1", "medianMs"), " ms", 0))
row("head: 100 epochs, 1,000 cached embeddings", "< 2 s", head)
row("predict latency, one photo (`predict`, median)", "", lambda r: fmt(get(r, "predict", "medianMs"), " ms", 0))
row("photos dropped → trained (cpu)", "< 60 s Lite0, < 120 s R-18",
    lambda r: (f"{r['drop']['totalMs'] / 1000:.1f} s ({r['drop']['images']} photos; val acc {fmt(r['drop'].get('valAccuracy'), '', 2)})"
               if get(r, "drop", "totalMs") else "–"))
row("backbone load (`Trainer.create`)", "", lambda r: fmt(get(r, "create", "createMs"), " ms", 0))
row("wasm memory after create", "", lambda r: mb(get(r, "create", "memory")))
row("… after + 1,000 embeddings", "fits a tab", lambda r: mb(get(r, "head", "memoryAfterAdd")))
row("… after training on them", "", lambda r: mb(get(r, "head", "memoryAfterTrain")))
row("(1,000 embeddings' own size, f32)", "", lambda r: mb(1000 * 4 * get(r, "create", "dim")) if get(r, "create", "dim") else "–")
p("")
p("Wasm memory is `memory.buffer.byteLength`, which only grows: each figure is the high-water mark of a fresh "
  "worker (one wasm instance per column) after loading the backbone, then after `addEmbedding` of 1,000 synthetic "
  "embeddings, then after training on them. The ResNet browser runs use random weights (same speed); their "
  "dropped→trained accuracy means nothing. SwiftShader runs are capped (few photos, one head epoch) because it "
  "emulates the GPU on these CPUs.\n")

p("**Sizes**:\n")
p("| artifact | size | target |")
p("|---|---|---|")
if sizes:
    p(f"| pkg/sortwise_bg.wasm | {mb(sizes['wasm'])} raw, {mb(sizes['wasm_gz'])} gzip -9 | ≤ 3 MB gzip |")
    p(f"| pkg/sortwise.js | {sizes['js'] / 1e3:.0f} KB raw, {sizes['js_gz'] / 1e3:.0f} KB gzip -9 | |")
    if sizes.get("cpu_wasm"):
        p(f"| pkg-cpu/sortwise_bg.wasm | {mb(sizes['cpu_wasm'])} raw, {mb(sizes['cpu_wasm_gz'])} gzip -9 | ≤ 3 MB gzip |")
for w in weights:
    tgt = "≤ 24 MB" if (w["arch"], w["dtype"]) == ("resnet18", "f16") else ""
    p(f"| {NAMES.get(w['arch'], w['arch'])} web weights, {w['dtype']} | {mb(w['bytes'])} | {tgt} |")
p("")
if browser.get("errors"):
    p("Errors in this run: " + "; ".join(e.splitlines()[0] for e in browser["errors"]) + "\n")
print("\n".join(out))
