"""The table of bench/ort.sh: sortwise against ONNX Runtime Web, from bench/browser.mjs's JSON (ORT=1).

Per arch, the median over rounds of images/s: pkg-cpu/ `addImages` of 8 photos against ORT-web on
the same thread count, and pkg/ (single-threaded) against ORT-web on one thread, with the ratios
(sortwise / ORT: ≥ 1.0 is issue 20's target), and the "photos dropped → trained" runs of pkg-cpu/.

  python3 bench/ort_report.py bench/.cache/ort-run.json "CPU model name"
"""

import json
import statistics
import sys

ARCHS = ("resnet18", "resnet50", "efficientnet_lite0")


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=2):
    return "—" if x is None else f"{x:.{digits}f}"


def main():
    data = json.load(open(sys.argv[1]))
    cpu = sys.argv[2] if len(sys.argv) > 2 else "?"
    rows = []
    out = {"cpu": cpu, "chromium": data.get("chromium"), "archs": {}, "errors": data.get("errors", [])}
    for arch in ARCHS:
        entry = {}
        for pkg in ("pkg-cpu", "pkg"):
            mine = [r.get("embed8", {}).get("imgPerS") for r in data["runs"] if r["pkg"] == pkg and r["device"] == "cpu" and r["arch"] == arch]
            ort = [o.get("imgPerS") for o in data.get("ort", []) if o["arch"] == arch and o["next"] == pkg]
            threads = next((o["threads"] for o in data.get("ort", []) if o["arch"] == arch and o["next"] == pkg), None)
            m, o = median(mine), median(ort)
            entry[pkg] = {"sortwise": mine, "ort": ort, "threads": threads, "ratio": (m / o) if m and o else None}
        drops = [r["drop"] for r in data["runs"] if r["pkg"] == "pkg-cpu" and r["arch"] == arch and isinstance(r.get("drop"), dict) and "totalMs" in r["drop"]]
        entry["drop"] = {"images": drops[0]["images"], "seconds": median([d["totalMs"] / 1000 for d in drops]),
                         "embed_seconds": median([d["embedMs"] / 1000 for d in drops])} if drops else None
        out["archs"][arch] = entry
        c, s = entry["pkg-cpu"], entry["pkg"]
        rows.append(
            f"| {arch} | {', '.join(fmt(x) for x in c['sortwise'])} | {', '.join(fmt(x) for x in c['ort'])} | **{fmt(c['ratio'])}×** "
            f"| {', '.join(fmt(x) for x in s['sortwise'])} | {', '.join(fmt(x) for x in s['ort'])} | **{fmt(s['ratio'])}×** |"
        )
    threads = out["archs"]["resnet18"]["pkg-cpu"]["threads"]
    print(f"Processor: {cpu}; {data.get('chromium')}; images/s per round, ratio of the medians (sortwise / ORT-web)\n")
    print(f"| backbone | sortwise `pkg-cpu/` ({threads} threads), `addImages` of 8 | ORT-web 1.30 wasm, {threads} threads, batch 8 | ratio "
          "| sortwise `pkg/` CPU (1 thread) | ORT-web, 1 thread | ratio |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    for arch in ARCHS:
        d = out["archs"][arch]["drop"]
        if d:
            print(f"\n{arch}: {d['images']} photos dropped → trained in {fmt(d['seconds'], 1)} s (embedding {fmt(d['embed_seconds'], 1)} s), pkg-cpu/")
    if out["errors"]:
        print("\nerrors: " + "; ".join(out["errors"]))
    print("\n" + json.dumps(out))


if __name__ == "__main__":
    main()
