"""The tables of bench/litert.sh: sortwise against ONNX Runtime Web and LiteRT.js, from
bench/litert.mjs's JSON, and the numerical check of the .tflite conversions (bench/litert_check.py's
JSON and the browser check in the run's JSON).

Per thread count, per arch and batch: images/s of each engine, the median over rounds (each
round's figure in parentheses), and the ratios of the medians sortwise / LiteRT.js and
sortwise / ORT-web (≥ 1.00: sortwise is faster), and LiteRT.js / ORT-web.

  python3 bench/litert_report.py bench/.cache/litert-run.json bench/.cache/litert-check.json "CPU model name"
"""

import json
import sys

from ort_report import ARCHS, fmt, median


def ratio(a, b):
    return f"**{a / b:.2f}×**" if a and b else "—"


def main():
    run = json.load(open(sys.argv[1]))
    check = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else {"models": {}}
    cpu = sys.argv[3] if len(sys.argv) > 3 else "?"
    threads = run.get("threads")
    batches = sorted({r["batch"] for r in run["sortwise"] + run["ort"] + run["litert"]}, reverse=True)
    archs = [a for a in ARCHS if any(r["arch"] == a for r in run["sortwise"] + run["ort"] + run["litert"])]
    summary = {"cpu": cpu, "chromium": run.get("chromium"), "threads": threads, "rounds": run.get("rounds"), "tables": {}}

    def cell(rows):
        vals = [r["imgPerS"] for r in sorted(rows, key=lambda r: r["round"])]
        m = median(vals)
        return m, (f"{fmt(m)} ({', '.join(fmt(v) for v in vals)})" if vals else "—")

    def pick(engine, arch, batch, t, pkg=None, forward=False):
        return [r for r in run[engine] if r["arch"] == arch and r["batch"] == batch and r["threads"] == t
                and (pkg is None or r.get("pkg") == pkg) and bool(r.get("forward")) == forward]

    print(f"Processor: {cpu} ({threads} cores as Chromium reports them); Chromium {run.get('chromium')}; "
          f"{run.get('rounds')} rounds; images/s: median of the rounds (each round's figure); "
          f"ratios of the medians. Run took {fmt(run.get('seconds'), 0)} s.")
    for t, builds in ((threads, ("pkg-cpu-relaxed", "pkg-cpu")), (1, ("pkg", "pkg-cpu-relaxed"))):
        label = {"pkg-cpu-relaxed": "`pkg-cpu-relaxed/`" + (" (pool of 1)" if t == 1 else ""), "pkg-cpu": "`pkg-cpu/`", "pkg": "`pkg/`"}
        print(f"\n{t} thread{'s' if t != 1 else ''}:\n")
        head = ["backbone", "batch"] + [f"sortwise {label[b]}" for b in builds] + ["ORT-web 1.30 wasm", "LiteRT.js 2.5.3 wasm"]
        for b in builds:
            head += [f"{label[b]} / LiteRT.js", f"{label[b]} / ORT-web"]
        head.append("LiteRT.js / ORT-web")
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for arch in archs:
            for batch in batches:
                sw = {b: cell(pick("sortwise", arch, batch, t, b)) for b in builds}
                o, l = cell(pick("ort", arch, batch, t)), cell(pick("litert", arch, batch, t))
                row = [arch, str(batch)] + [sw[b][1] for b in builds] + [o[1], l[1]]
                for b in builds:
                    row += [ratio(sw[b][0], l[0]), ratio(sw[b][0], o[0])]
                row.append(ratio(l[0], o[0]))
                print("| " + " | ".join(row) + " |")
                summary["tables"][f"{arch} b{batch} {t}t"] = {
                    **{f"sortwise {b}": sw[b][0] for b in builds}, "ort": o[0], "litert": l[0],
                    **{f"{b} / litert": (sw[b][0] / l[0]) if sw[b][0] and l[0] else None for b in builds},
                    **{f"{b} / ort": (sw[b][0] / o[0]) if sw[b][0] and o[0] else None for b in builds},
                }
    if any(r.get("forward") for r in run["sortwise"]):
        # sortwise's batch-1 figure above decodes and resizes a JPEG; the others get a ready tensor
        print("\nBatch 1, sortwise's forward pass alone (`forward1`: predictPixels on a 224×224 frame, "
              "no JPEG decoding or resize) against the same LiteRT.js and ORT-web cells:\n")
        print("| backbone | threads | sortwise build | sortwise forward, img/s | with decoding (above) | LiteRT.js | ORT-web "
              "| forward / LiteRT.js | forward / ORT-web |")
        print("|" + "---|" * 9)
        for t, builds in ((threads, ("pkg-cpu-relaxed", "pkg-cpu")), (1, ("pkg", "pkg-cpu-relaxed"))):
            for arch in archs:
                o, l = cell(pick("ort", arch, 1, t)), cell(pick("litert", arch, 1, t))
                for b in builds:
                    f, e = cell(pick("sortwise", arch, 1, t, b, forward=True)), cell(pick("sortwise", arch, 1, t, b))
                    if f[0] is None:
                        continue
                    print(f"| {arch} | {t} | {b} | {f[1]} | {e[1]} | {l[1]} | {o[1]} | {ratio(f[0], l[0])} | {ratio(f[0], o[0])} |")
                    summary["tables"][f"{arch} b1 {t}t forward {b}"] = {
                        "sortwise": f[0], "litert": l[0], "ort": o[0],
                        "/ litert": (f[0] / l[0]) if f[0] and l[0] else None}
    wasm = sorted({r.get("wasm") for r in run["litert"] if r.get("wasm")})
    print(f"\nLiteRT.js wasm files: {', '.join(wasm) or '—'}; page crossOriginIsolated: {run.get('crossOriginIsolated')}")

    print("\nThe conversions: largest |difference| of the features on one random input (uniform in [-1, 1], seeded), "
          "largest |feature| for scale\n")
    print(f"| backbone | .tflite (LiteRT interpreter, Python) vs ONNX (onnxruntime {check.get('onnxruntime', '?')}), batch 8 | same, batch 1 "
          f"| LiteRT.js in Chromium vs ONNX, batch 1, {threads} threads | same, 1 thread | max abs ONNX feature (batch 1) |")
    print("|---|---|---|---|---|---|")
    for arch in archs:
        m = check["models"].get(arch, {})
        c = run.get("check", {})
        e = lambda d: "—" if d is None else f"{d:.2g}"
        print(f"| {arch} | {e(m.get('b8', {}).get('max_abs_diff'))} | {e(m.get('b1', {}).get('max_abs_diff'))} "
              f"| {e(c.get(f'{arch} {threads}t', {}).get('maxAbsDiff'))} | {e(c.get(f'{arch} 1t', {}).get('maxAbsDiff'))} "
              f"| {e(m.get('b1', {}).get('max_abs_onnx'))} |")
    summary["check"] = {"python": check["models"], "browser": run.get("check")}
    if run.get("errors"):
        print("\nerrors: " + "; ".join(run["errors"]))
    summary["errors"] = run.get("errors", [])
    print("\n" + json.dumps(summary))


if __name__ == "__main__":
    main()
