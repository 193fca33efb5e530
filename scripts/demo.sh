#!/usr/bin/env bash
# The demo. The multimodal study (mml compare, issue 5) is not written yet; until
# it is, the demo trains the Fashion-MNIST CNN for two epochs (about a minute on
# 2 cores) and shows its evaluation and a prediction.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p demo
echo "== mml train examples/fashion_cnn.json --epochs 2 (the full run: make results)"
build/mml train examples/fashion_cnn.json --epochs 2 --out demo/fashion_cnn.safetensors
echo "== mml inspect demo/fashion_cnn.safetensors"
build/mml inspect demo/fashion_cnn.safetensors | head -12
echo "demo: model in demo/fashion_cnn.safetensors, per-epoch log in demo/fashion_cnn.jsonl"
