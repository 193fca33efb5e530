#!/usr/bin/env bash
# make bench: benchmarks that run mml and a reference side by side, alternating,
# and print medians and ratios. Results also land in bench/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench
out=bench/results.json
tmp=$(mktemp)
echo "== GEMM against OpenBLAS (same process, alternating runs)"
build/mml bench gemm --json --reps 7 | tee "$tmp"
{
  printf '{"machine": "%s", "cores": %s, "gemm": [' \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" "$(nproc)"
  paste -sd, "$tmp"
  printf ']}\n'
} > "$out.tmp" && mv "$out.tmp" "$out"
rm -f "$tmp"
echo "wrote $out"
