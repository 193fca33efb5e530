#!/usr/bin/env bash
# Installs the Debian packages mml needs to build, test and benchmark. Idempotent.
# --check: exit 0 when everything is present, 1 otherwise (installs nothing).
set -euo pipefail
PKGS=(build-essential cmake pkg-config zlib1g-dev libcjson-dev libstb-dev libkissfft-dev
      libutf8proc-dev libstemmer-dev libsndfile1-dev libopenblas-dev libfaiss-dev
      python3 python3-numpy python3-torch python3-torchaudio python3-regex python3-pil python3-torchvision
      dataset-fashion-mnist espeak-ng sox clang libclang-rt-14-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${1:-}" = "--check" ]; then
  [ ${#missing[@]} -eq 0 ]; exit $?
fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
