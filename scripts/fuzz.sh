#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) in build-fuzz and runs each
# for a bounded time on its seed corpus under tests/fuzz/corpus/<target>/.
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default 20 s each, all targets)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
shift || true
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DMML_FUZZ=ON \
      -DMML_WITH_OPENBLAS=OFF -DMML_WITH_FAISS=OFF >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
make -s -C build-fuzz -j"$(nproc)" "${targets[@]}"
status=0
for t in "${targets[@]}"; do
  seeds="tests/fuzz/corpus/${t#fuzz_}"
  work="build-fuzz/corpus-$t"
  mkdir -p "$work"
  args=("$work")
  [ -d "$seeds" ] && args+=("$seeds")
  echo "fuzz: $t for ${secs}s"
  if ! ASAN_OPTIONS=detect_leaks=1 "build-fuzz/$t" -max_total_time="$secs" -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=0 "${args[@]}" >"build-fuzz/$t.log" 2>&1; then
    echo "fuzz: $t FAILED, see build-fuzz/$t.log"; tail -30 "build-fuzz/$t.log"; status=1
  fi
done
exit $status
