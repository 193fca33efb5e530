#!/usr/bin/env bash
# The demo: builds the fashion-speech dataset (Fashion-MNIST images, spoken
# class names, text descriptions; only Debian packages needed) and runs a short
# unimodal vs multimodal study over it (about 3 minutes on 2 cores), then prints
# the table and where the report is.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p demo
if [ ! -f demo/fashion-speech/test.jsonl ]; then
    echo "== mml data fashion-speech --out demo/fashion-speech"
    build/mml data fashion-speech --out demo/fashion-speech
fi
echo "== mml compare examples/fashion_speech_study.json --out demo/study"
build/mml compare examples/fashion_speech_study.json --out demo/study --force
echo "demo: open demo/study/report.html (charts), demo/study/results.json (all figures)"
