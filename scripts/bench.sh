#!/usr/bin/env bash
# make bench: mml and a reference side by side, alternating, several
# repetitions, medians and ratios; a table on the terminal, bench/results.json
# and docs/performance.svg (scripts/bench.py). docs/performance.md says how.
#   GEMM against OpenBLAS; k-NN search, exact against FAISS's IVF and HNSW;
#   against PyTorch 1.13 (Debian's /usr/bin/python3, bench/torch/):
#   training samples/s of issue 7's CNN, GRU and Transformer (batch 64, Adam);
#   (d) the avdigits study's GMU fusion model trained end to end, epochs with
#   the data loading; inference latency (batch 1) and throughput (batch 256)
#   of the CNN and the fusion model; each at 1 and 2 threads, each process's
#   peak resident memory.
# Counts: REPS (5), STEPS (20), EPOCHS (2, at least 2: cold and warm),
# FUSION_REPS (3), INFER_ITERS (1000, batch 1), INFER_BATCH_ITERS (20), BENCH_NOTE (a line for the chart),
# KNN_N (100000). AVDIGITS: the avdigits-av dataset (data/avdigits-av; built
# with mml data when missing, (d) skipped when that cannot be done).
set -euo pipefail
cd "$(dirname "$0")/.."
export REPS=${REPS:-5} STEPS=${STEPS:-20} EPOCHS=${EPOCHS:-2} FUSION_REPS=${FUSION_REPS:-3}
export INFER_ITERS=${INFER_ITERS:-1000} INFER_BATCH_ITERS=${INFER_BATCH_ITERS:-20} KNN_N=${KNN_N:-100000}
AVDIGITS=${AVDIGITS:-data/avdigits-av}
# PyTorch's speed swings 3x here from page faults without these malloc
# settings; mml's arena does not need them, and they would keep its freed
# warm-up chunks resident, so they are given to the Python processes only.
PY="env MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 /usr/bin/python3"
MML=build/mml

die() { echo "bench: $*" >&2; exit 1; }
[ -x "$MML" ] || die "$MML is missing: run make first"
$PY -c 'import torch, torchaudio, PIL' 2>/dev/null ||
  die "PyTorch twins need python3-torch, python3-torchaudio and python3-pil (scripts/deps.sh)"
[ "$EPOCHS" -ge 2 ] 2>/dev/null || die "EPOCHS must be at least 2 (the first epoch is cold, later ones warm)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Appends the one JSON line a benchmark prints to $tmp/NAME.jsonl and shows it.
run() {
  local name=$1 line
  shift
  line=$("$@") || die "failed (status $?): $*"
  printf '%s\n' "$line" | tee -a "$tmp/$name.jsonl"
}

$PY scripts/bench.py config examples/avdigits_study.json "gated (GMU)" "$AVDIGITS" "$tmp/gmu.json"
fusion=1
if [ ! -f "$AVDIGITS/train.jsonl" ]; then
  echo "== $AVDIGITS is missing: building it (mml data avdigits, AV-MNIST degradations)"
  "$MML" data avdigits --image-energy-removed 0.75 --audio-snr -15 --out "$AVDIGITS" || {
    echo "bench: SKIPPING (d) fusion epochs: $AVDIGITS could not be built (it needs ../shared/datasets or" \
         "MML_DATASETS; or set AVDIGITS to an existing copy)" >&2
    fusion=0
  }
fi

echo "== GEMM against OpenBLAS (same process, alternating runs)"
"$MML" bench gemm --json --reps 7 >"$tmp/gemm.jsonl" || die "mml bench gemm failed"
cat "$tmp/gemm.jsonl"
echo "== k-NN search: exact against FAISS IVF and HNSW, $KNN_N vectors of 64 dimensions"
"$MML" bench knn --n "$KNN_N" --queries 1000 --json >"$tmp/knn.jsonl" || die "mml bench knn failed"
cat "$tmp/knn.jsonl"

echo "== training samples/s, batch 64, Adam ($REPS alternating repetitions, $STEPS steps each, 1 and 2 threads)"
for model in cnn gru transformer; do
  for rep in $(seq "$REPS"); do
    for t in 1 2; do
      run train "$MML" bench train --model "$model" --steps "$STEPS" --threads "$t"
      run train $PY bench/torch/train.py "$model" "$t" "$STEPS"
    done
  done
done

echo "== inference without gradients: median of $INFER_ITERS passes at batch 1, $INFER_BATCH_ITERS at batch 256"
for rep in $(seq "$REPS"); do
  for model in cnn fusion; do
    cfg=()
    [ "$model" = fusion ] && cfg=("$tmp/gmu.json")
    for batch in 1 256; do
      iters=$INFER_ITERS
      [ "$batch" -gt 1 ] && iters=$INFER_BATCH_ITERS
      for t in 1 2; do
        run infer "$MML" bench infer --model "$model" ${cfg[@]+--config "${cfg[@]}"} --batch "$batch" --iters "$iters" --threads "$t"
        run infer $PY bench/torch/infer.py "$model" "$t" "$batch" "$iters" ${cfg[@]+"${cfg[@]}"}
      done
    done
  done
done

if [ "$fusion" = 1 ]; then
  echo "== (d) GMU fusion on $AVDIGITS, $EPOCHS epochs end to end, loading included ($FUSION_REPS repetitions)"
  # PyTorch's DataLoader workers only matter while decoding: 1 worker is timed on the cold epoch alone.
  for rep in $(seq "$FUSION_REPS"); do
    for t in 1 2; do
      run epoch "$MML" bench epoch "$tmp/gmu.json" --epochs "$EPOCHS" --threads "$t"
      run epoch $PY bench/torch/fusion.py "$tmp/gmu.json" "$t" "$EPOCHS" 0
      run epoch $PY bench/torch/fusion.py "$tmp/gmu.json" "$t" 1 1
    done
  done
  echo "== mml's data loading from its feature cache (the second of two loads)"
  $PY scripts/bench.py config examples/avdigits_study.json "gated (GMU)" "$AVDIGITS" "$tmp/gmu_cache.json" "$tmp/cache"
  "$MML" bench epoch "$tmp/gmu_cache.json" --epochs 0 --threads 2 >/dev/null || die "mml bench epoch (cache fill) failed"
  run cacheload "$MML" bench epoch "$tmp/gmu_cache.json" --epochs 0 --threads 2
fi

$PY scripts/bench.py report "$tmp"
