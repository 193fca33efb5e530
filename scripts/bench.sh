#!/usr/bin/env bash
# make bench: mml and a reference side by side, alternating, several
# repetitions, medians and ratios; results in bench/results.json.
#   GEMM against OpenBLAS; training samples/s against PyTorch (issue 7's CNN,
#   GRU and Transformer, batch 64, Adam), PyTorch at 1 and 2 threads and
#   compared at its better setting; k-NN search, exact against FAISS's IVF and
#   HNSW, at 100k vectors (docs/performance.md has 1M: KNN_N=1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench
REPS=${REPS:-3}
STEPS=${STEPS:-20}
KNN_N=${KNN_N:-100000}
export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296
gemm=$(mktemp) train=$(mktemp) knn=$(mktemp)
echo "== GEMM against OpenBLAS (same process, alternating runs)"
build/mml bench gemm --json --reps 7 | tee "$gemm"
echo "== k-NN search: exact against FAISS IVF and HNSW, $KNN_N vectors of 64 dimensions"
build/mml bench knn --n "$KNN_N" --queries 1000 --json | tee "$knn"
echo "== training samples/s, batch 64, Adam ($REPS alternating repetitions, $STEPS steps each)"
for model in cnn gru transformer; do
  for rep in $(seq "$REPS"); do
    build/mml bench train --model "$model" --steps "$STEPS" --threads 2 >> "$train"
    for t in 1 2; do /usr/bin/python3 bench/torch/train.py "$model" "$t" "$STEPS" >> "$train"; done
  done
done
/usr/bin/python3 - "$gemm" "$train" "$knn" <<'PY'
import json, statistics, sys, subprocess
gemm = [json.loads(l) for l in open(sys.argv[1])]
runs = [json.loads(l) for l in open(sys.argv[2])]
knn = [json.loads(l) for l in open(sys.argv[3])]
table = []
print(f"{'model':12} {'mml /s':>9} {'torch /s':>9} {'ratio':>6} {'mml MB':>7} {'torch MB':>8}")
for model in ("cnn", "gru", "transformer"):
    med = lambda impl, t=None: statistics.median(r["samples_per_second"] for r in runs
                                                 if r["model"] == model and r["impl"] == impl and (t is None or r["threads"] == t))
    rss = lambda impl: max(r["peak_rss_mb"] for r in runs if r["model"] == model and r["impl"] == impl)
    torch_best = max(med("pytorch", 1), med("pytorch", 2))
    row = {"model": model, "mml": med("mml"), "pytorch_1t": med("pytorch", 1), "pytorch_2t": med("pytorch", 2),
           "ratio": med("mml") / torch_best, "mml_peak_mb": rss("mml"), "pytorch_peak_mb": rss("pytorch")}
    table.append(row)
    print(f"{model:12} {row['mml']:9.0f} {torch_best:9.0f} {row['ratio']:6.2f} {row['mml_peak_mb']:7.0f} {row['pytorch_peak_mb']:8.0f}")
cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
json.dump({"machine": cpu, "cores": len(open("/proc/cpuinfo").read().split("processor")) - 1, "gemm": gemm,
           "train": table, "knn": knn}, open("bench/results.json.tmp", "w"), indent=1)
PY
mv bench/results.json.tmp bench/results.json
rm -f "$gemm" "$train" "$knn"
echo "wrote bench/results.json"
