"""Helpers of scripts/bench.sh (Debian's /usr/bin/python3, standard library only).

  bench.py config STUDY VARIANT DATA OUT [CACHE]
      the multimodal config of one study variant (base merged with its patch,
      RFC 7386, as mml compare does), its manifests in DATA, the feature cache
      in CACHE or none
  bench.py report DIR
      the JSON lines bench.sh gathered in DIR (gemm, knn, train, infer,
      epoch, cacheload .jsonl) into a table on the terminal,
      bench/results.json and docs/performance.svg
"""
import json
import os
import statistics
import sys
import time
from xml.sax.saxutils import escape


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def config(study_path, variant, data, out, cache=None):
    study = json.load(open(study_path))
    found = [v for v in study["variants"] if v["name"] == variant]
    if not found:
        sys.exit(f"bench.py: {study_path} has no variant {variant!r}")
    cfg = merge_patch(study["base"], found[0].get("patch", {}))
    data = os.path.abspath(data)
    cfg["data"].update({k: os.path.join(data, k + ".jsonl") for k in ("train", "val", "test")})
    cfg["data"].pop("cache", None)
    if cache:
        cfg["data"]["cache"] = os.path.abspath(cache)
    with open(out + ".tmp", "w") as f:
        json.dump(cfg, f, indent=1)
    os.replace(out + ".tmp", out)


def lines(d, name):
    path = os.path.join(d, name + ".jsonl")
    if not os.path.exists(path):
        return []
    out = []
    for n, line in enumerate(open(path), 1):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            sys.exit(f"bench.py: {path}:{n}: not a JSON line: {line.strip()[:80]!r}")
    return out


def med(rows, key, **where):
    vals = [r[key] for r in rows if all(r.get(k) == v for k, v in where.items())]
    if not vals:
        sys.exit(f"bench.py: no run with {where} for {key}")
    return statistics.median(vals)


def peak(rows, **where):
    return max(r["peak_rss_mb"] + r.get("workers_peak_rss_mb", 0.0) for r in rows
               if all(r.get(k) == v for k, v in where.items()))


def train_table(runs):
    table = []
    for model in ("cnn", "gru", "transformer"):
        m = {t: med(runs, "samples_per_second", model=model, impl="mml", threads=t) for t in (1, 2)}
        p = {t: med(runs, "samples_per_second", model=model, impl="pytorch", threads=t) for t in (1, 2)}
        table.append({"model": model, "mml": max(m.values()), "mml_1t": m[1], "mml_2t": m[2], "mml_speedup": m[2] / m[1],
                      "pytorch_1t": p[1], "pytorch_2t": p[2], "pytorch_speedup": p[2] / p[1],
                      "ratio": max(m.values()) / max(p.values()),
                      "mml_peak_mb": peak(runs, model=model, impl="mml"),
                      "pytorch_peak_mb": peak(runs, model=model, impl="pytorch")})
    return table


def infer_table(runs):
    table = []
    for model in ("cnn", "fusion"):
        for batch in sorted({r["batch"] for r in runs if r["model"] == model}):
            row = {"model": model, "batch": batch}
            for impl in ("mml", "pytorch"):
                ms = {t: med(runs, "median_ms", model=model, batch=batch, impl=impl, threads=t) for t in (1, 2)}
                best = min(ms, key=ms.get)
                row.update({f"{impl}_ms_1t": ms[1], f"{impl}_ms_2t": ms[2], f"{impl}_threads": best,
                            f"{impl}_samples_per_second": batch / ms[best] * 1e3,
                            f"{impl}_peak_mb": peak(runs, model=model, batch=batch, impl=impl)})
            row["ratio"] = row["mml_samples_per_second"] / row["pytorch_samples_per_second"]
            table.append(row)
    return table


def epoch_stats(r):
    """Cold: loading plus the first epoch; warm: the median later epoch."""
    e = r["epoch_seconds"]
    return r["load_seconds"] + e[0], statistics.median(e[1:]) if len(e) > 1 else None


def fusion_table(runs, cacheload):
    n = runs[0]["train_samples"]
    out = {"train_samples": n, "mml": {}, "pytorch": {}}
    for impl in ("mml", "pytorch"):
        for r in runs:
            if r["impl"] != impl:
                continue
            cold, warm = epoch_stats(r)
            key = f"{r['threads']}t" + (f"_{r['workers']}w" if impl == "pytorch" else "")
            s = out[impl].setdefault(key, {"threads": r["threads"], "workers": r.get("workers"), "cold": [], "warm": [],
                                           "load": [], "peak_mb": 0.0})
            s["cold"].append(cold)
            s["load"].append(r["load_seconds"])
            if warm is not None:
                s["warm"].append(warm)
            s["peak_mb"] = max(s["peak_mb"], r["peak_rss_mb"] + r.get("workers_peak_rss_mb", 0.0))
        for s in out[impl].values():
            s["cold_seconds"] = statistics.median(s.pop("cold"))
            s["load_seconds"] = statistics.median(s.pop("load"))
            warm = s.pop("warm")
            s["warm_seconds"] = statistics.median(warm) if warm else None
            s["cold_samples_per_second"] = n / s["cold_seconds"]
            s["warm_samples_per_second"] = n / s["warm_seconds"] if warm else None
    for impl in ("mml", "pytorch"):
        settings = out[impl].values()
        out[f"{impl}_cold_best"] = max(settings, key=lambda s: s["cold_samples_per_second"])
        out[f"{impl}_warm_best"] = max((s for s in settings if s["warm_seconds"]),
                                       key=lambda s: s["warm_samples_per_second"], default=None)
    if not out["mml_warm_best"] or not out["pytorch_warm_best"]:
        sys.exit("bench.py: the fusion runs need EPOCHS >= 2 for a warm epoch")
    out["cold_ratio"] = out["mml_cold_best"]["cold_samples_per_second"] / out["pytorch_cold_best"]["cold_samples_per_second"]
    out["warm_ratio"] = out["mml_warm_best"]["warm_samples_per_second"] / out["pytorch_warm_best"]["warm_samples_per_second"]
    out["mml_speedup"] = out["mml"]["1t"]["warm_seconds"] / out["mml"]["2t"]["warm_seconds"]
    if cacheload:
        if not all(r["from_cache"] for r in cacheload):
            sys.exit("bench.py: the second load did not come from mml's feature cache")
        out["mml_cache_load_seconds"] = statistics.median(r["load_seconds"] for r in cacheload)
    return out


def svg_chart(bars, path, title, note):
    """Horizontal bars of mml / PyTorch, a line at parity; the note (BENCH_NOTE) in red."""
    w, left, right, top, bh, gap = 720, 250, 70, 56 + (18 if note else 0), 22, 8
    h = top + len(bars) * (bh + gap) + 40
    hi = max(2.0, max(v for _, v in bars) * 1.1)
    x = lambda v: left + (w - left - right) * v / hi
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="13">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{escape(title)}</text>',
           f'<text x="{w / 2}" y="40" text-anchor="middle" fill="#555">mml / PyTorch 1.13, each at its better setting; '
           'right of the line: mml faster</text>']
    if note:
        out.append(f'<text x="{w / 2}" y="58" text-anchor="middle" fill="#b00">{escape(note)}</text>')
    y_end = top + len(bars) * (bh + gap)
    for t in range(0, int(hi) + 1):
        out.append(f'<text x="{x(t):.1f}" y="{y_end + 16}" text-anchor="middle" fill="#555">{t}</text>')
    out.append(f'<line x1="{x(1):.1f}" y1="{top - 6}" x2="{x(1):.1f}" y2="{y_end}" stroke="#999" stroke-dasharray="4 3"/>')
    for i, (label, v) in enumerate(bars):
        y = top + i * (bh + gap)
        color = "#2b7bba" if v >= 1 else "#d9822b"
        out += [f'<text x="{left - 8}" y="{y + bh * 0.7}" text-anchor="end">{escape(label)}</text>',
                f'<rect x="{left}" y="{y}" width="{x(v) - left:.1f}" height="{bh}" fill="{color}"/>',
                f'<text x="{x(v) + 5:.1f}" y="{y + bh * 0.7}">{v:.2f}x</text>']
    out.append("</svg>\n")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(out))
    os.replace(path + ".tmp", path)


def report(d):
    gemm, knn = lines(d, "gemm"), lines(d, "knn")
    train, infer = train_table(lines(d, "train")), infer_table(lines(d, "infer"))
    epochs = lines(d, "epoch")
    fusion = fusion_table(epochs, lines(d, "cacheload")) if epochs else None

    print("\n== training samples/s, batch 64, Adam (medians; ratio: best mml / best PyTorch)")
    print(f"{'model':12} {'mml 1t':>8} {'mml 2t':>8} {'x2t':>5} {'torch 1t':>9} {'torch 2t':>9} {'ratio':>6} "
          f"{'mml MB':>7} {'torch MB':>8}")
    for r in train:
        print(f"{r['model']:12} {r['mml_1t']:8.0f} {r['mml_2t']:8.0f} {r['mml_speedup']:5.2f} {r['pytorch_1t']:9.0f} "
              f"{r['pytorch_2t']:9.0f} {r['ratio']:6.2f} {r['mml_peak_mb']:7.0f} {r['pytorch_peak_mb']:8.0f}")
    print("\n== inference, no gradients (median ms per forward pass at 1 and 2 threads; samples/s at the better)")
    print(f"{'model':8} {'batch':>5} {'mml 1t':>9} {'mml 2t':>9} {'torch 1t':>9} {'torch 2t':>9} {'mml /s':>9} "
          f"{'torch /s':>9} {'ratio':>6} {'mml MB':>7} {'torch MB':>8}")
    for r in infer:
        print(f"{r['model']:8} {r['batch']:5} {r['mml_ms_1t']:9.3f} {r['mml_ms_2t']:9.3f} {r['pytorch_ms_1t']:9.3f} "
              f"{r['pytorch_ms_2t']:9.3f} {r['mml_samples_per_second']:9.0f} {r['pytorch_samples_per_second']:9.0f} "
              f"{r['ratio']:6.2f} {r['mml_peak_mb']:7.0f} {r['pytorch_peak_mb']:8.0f}")
    bars = [(f"train ({m['model']})", m["ratio"]) for m in train]
    if fusion:
        print(f"\n== (d) GMU fusion, one epoch end to end ({fusion['train_samples']} training samples + validation; "
              "cold = loading + first epoch, warm = a later epoch)")
        print(f"{'impl':8} {'threads':>7} {'workers':>7} {'load s':>7} {'cold s':>7} {'warm s':>7} {'cold /s':>8} "
              f"{'warm /s':>8} {'peak MB':>8}")
        for impl in ("mml", "pytorch"):
            for s in fusion[impl].values():
                warm = f"{s['warm_seconds']:7.1f}" if s["warm_seconds"] else f"{'-':>7}"
                wsps = f"{s['warm_samples_per_second']:8.0f}" if s["warm_seconds"] else f"{'-':>8}"
                print(f"{impl:8} {s['threads']:7} {s['workers'] if s['workers'] is not None else '-':>7} "
                      f"{s['load_seconds']:7.1f} {s['cold_seconds']:7.1f} {warm} {s['cold_samples_per_second']:8.0f} "
                      f"{wsps} {s['peak_mb']:8.0f}")
        print(f"ratio mml / PyTorch: cold {fusion['cold_ratio']:.2f}, warm {fusion['warm_ratio']:.2f}; "
              f"mml 1 -> 2 threads (warm): {fusion['mml_speedup']:.2f}x"
              + (f"; mml load from its feature cache: {fusion['mml_cache_load_seconds']:.1f} s"
                 if "mml_cache_load_seconds" in fusion else ""))
        bars += [("fusion epoch, cold", fusion["cold_ratio"]), ("fusion epoch, warm", fusion["warm_ratio"])]
    bars += [(f"inference {r['model']}, batch {r['batch']}", r["ratio"]) for r in infer]

    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    cores = sum(1 for l in open("/proc/cpuinfo") if l.startswith("processor"))
    settings = {k: os.environ.get(k) for k in ("REPS", "STEPS", "EPOCHS", "FUSION_REPS", "INFER_ITERS",
                                               "INFER_BATCH_ITERS", "KNN_N")}
    result = {"machine": cpu, "cores": cores, "date": time.strftime("%Y-%m-%d"), "settings": settings,
              "note": os.environ.get("BENCH_NOTE", ""), "gemm": gemm, "train": train, "infer": infer,
              "fusion_epoch": fusion, "knn": knn,
              "scaling": [{"model": r["model"], "mml_speedup": r["mml_speedup"]} for r in train]
              + ([{"model": "fusion (warm epoch)", "mml_speedup": fusion["mml_speedup"]}] if fusion else [])}
    with open("bench/results.json.tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace("bench/results.json.tmp", "bench/results.json")
    svg_chart(bars, "docs/performance.svg", f"mml against PyTorch, {cpu}, {cores} cores, {result['date']}",
              result["note"])
    print("\nwrote bench/results.json and docs/performance.svg")


if __name__ == "__main__":
    if len(sys.argv) in (6, 7) and sys.argv[1] == "config":
        config(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "report":
        report(sys.argv[2])
    else:
        sys.exit(__doc__)
