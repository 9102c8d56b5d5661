"""The table of bench/ort.sh: sortwise against ONNX Runtime Web, from bench/browser.mjs's JSON (ORT=1).

Per arch, the median over rounds of images/s: the threaded builds' (pkg-cpu-relaxed/, pkg-cpu/)
`addImages` of 8 photos against ORT-web on the same thread count, and pkg/ (single-threaded)
against ORT-web on one thread, with the ratios (sortwise / ORT: ≥ 1.0 is issue 20's target), and
the "photos dropped → trained" runs of the threaded builds. Builds the run left out are left out.
With BEFORE= runs (earlier builds in the same run), a second table: each build's `addImages` of 8
before and after, and the ratio of the medians.

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


# Every build, threaded ones first; a table column group each.
BUILDS = ("pkg-cpu-relaxed", "pkg-cpu", "pkg")


def main():
    data = json.load(open(sys.argv[1]))
    cpu = sys.argv[2] if len(sys.argv) > 2 else "?"
    builds = [b for b in BUILDS if any(r["pkg"] == b for r in data["runs"])]
    rows = []
    out = {"cpu": cpu, "chromium": data.get("chromium"), "archs": {}, "errors": data.get("errors", [])}
    for arch in ARCHS:
        entry = {"drop": {}}
        for pkg in builds:
            runs = [r for r in data["runs"] if r["pkg"] == pkg and r["device"] == "cpu" and r["arch"] == arch]
            mine = [r.get("embed8", {}).get("imgPerS") for r in runs]
            ort = [o.get("imgPerS") for o in data.get("ort", []) if o["arch"] == arch and o["next"] == pkg]
            threads = next((o["threads"] for o in data.get("ort", []) if o["arch"] == arch and o["next"] == pkg), None)
            m, o = median(mine), median(ort)
            entry[pkg] = {"sortwise": mine, "ort": ort, "threads": threads, "ratio": (m / o) if m and o else None}
            before = [r.get("embed8", {}).get("imgPerS") for r in data["runs"]
                      if r.get("before") and r.get("build") == pkg and r["device"] == "cpu" and r["arch"] == arch]
            if before:
                b = median(before)
                entry[pkg]["before"] = before
                entry[pkg]["after_over_before"] = (m / b) if m and b else None
            drops = [r["drop"] for r in runs if isinstance(r.get("drop"), dict) and "totalMs" in r["drop"]]
            if drops and pkg != "pkg":
                entry["drop"][pkg] = {"images": drops[0]["images"], "seconds": median([d["totalMs"] / 1000 for d in drops]),
                                      "embed_seconds": median([d["embedMs"] / 1000 for d in drops])}
                earlier = [r["drop"] for r in data["runs"] if r.get("before") and r.get("build") == pkg and r["arch"] == arch
                           and isinstance(r.get("drop"), dict) and "totalMs" in r["drop"]]
                if earlier:
                    entry["drop"][pkg]["before_seconds"] = median([d["totalMs"] / 1000 for d in earlier])
        out["archs"][arch] = entry
        rows.append(f"| {arch} | " + " | ".join(
            f"{', '.join(fmt(x) for x in entry[b]['sortwise'])} | {', '.join(fmt(x) for x in entry[b]['ort'])} | **{fmt(entry[b]['ratio'])}×**"
            for b in builds) + " |")
    print(f"Processor: {cpu}; {data.get('chromium')}; images/s per round, ratio of the medians (sortwise / ORT-web)\n")
    head = []
    for b in builds:
        # From whichever arch ran (ONLY= may leave ResNet-18 out).
        t = next((a[b]["threads"] for a in out["archs"].values() if a[b]["threads"] is not None), None)
        head.append(f"sortwise `{b}/` ({t} thread{'s' if t != 1 else ''}), `addImages` of 8 | ORT-web 1.30 wasm, {t} thread{'s' if t != 1 else ''}, batch 8 | ratio")
    print("| backbone | " + " | ".join(head) + " |")
    print("|---|" + "---|---|---|" * len(builds))
    print("\n".join(rows))
    compared = [(a, b) for a in ARCHS for b in builds if "before" in out["archs"][a][b]]
    if compared:
        print("\n| backbone | build | before (BEFORE=), img/s | after, img/s | after / before |\n|---|---|---|---|---|")
        for a, b in compared:
            e = out["archs"][a][b]
            print(f"| {a} | `{b}/` | {', '.join(fmt(x) for x in e['before'])} | {', '.join(fmt(x) for x in e['sortwise'])} | **{fmt(e['after_over_before'])}×** |")
    for arch in ARCHS:
        for b, d in out["archs"][arch]["drop"].items():
            was = f"; before: {fmt(d['before_seconds'], 1)} s" if "before_seconds" in d else ""
            print(f"\n{arch}: {d['images']} photos dropped → trained in {fmt(d['seconds'], 1)} s (embedding {fmt(d['embed_seconds'], 1)} s{was}), {b}/")
    if out["errors"]:
        print("\nerrors: " + "; ".join(out["errors"]))
    print("\n" + json.dumps(out))


if __name__ == "__main__":
    main()
