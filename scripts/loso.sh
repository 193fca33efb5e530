#!/usr/bin/env bash
# Leave-one-speaker-out on avdigits (clean): for each FSDD speaker, train on the
# other four and test on that one, for audio-only and fused models, with and
# without feature augmentation. Writes results/loso-SPEAKER/ per speaker and
# prints a summary table. usage: scripts/loso.sh [SPEAKER...] (default: all five)
set -euo pipefail
cd "$(dirname "$0")/.."
speakers=${*:-george jackson nicolas theo yweweler}
datasets=${MML_DATASETS:-../shared/datasets}
mml=${MML:-build/mml} # MML=a copy of the binary, to rebuild during a long run
mkdir -p data results
img='[{"type":"conv2d","out":16,"kernel":5,"padding":2},{"type":"relu"},{"type":"max_pool2d","kernel":2},
      {"type":"conv2d","out":32,"kernel":5,"padding":2},{"type":"relu"},{"type":"max_pool2d","kernel":2},
      {"type":"flatten"},{"type":"linear","out":64},{"type":"relu"}]'
aud="[{\"type\":\"unsqueeze\"},${img#[}"
aug='{"audio": {"time_mask": 12, "freq_mask": 8, "time_shift": 10, "noise": 0.2}}'
for s in $speakers; do
    d=data/avdigits-loso-$s
    [ -f "$d/test.jsonl" ] || "$mml" data avdigits --out "$d" --holdout-speaker "$s" --datasets "$datasets"
    study=results/loso-$s.json
    cat > "$study" <<JSON
{"name": "avdigits, speaker $s held out", "seeds": 1,
 "robustness": {"noise": [0], "missing": [0]},
 "base": {"task": "multimodal",
   "data": {"train": "../$d/train.jsonl", "val": "../$d/val.jsonl", "test": "../$d/test.jsonl",
            "audio": {"rate": 8000, "frames": 64, "n_mels": 40, "n_fft": 256, "hop": 80, "normalize": true}},
   "model": {"encoders": {"image": {"type": "sequential", "layers": $img}, "audio": {"type": "sequential", "layers": $aud}},
             "fusion": {"type": "concat"}, "head": {"hidden": [64]}},
   "train": {"epochs": 10, "batch_size": 64, "optimizer": {"type": "adam", "lr": 0.001}, "seed": 0}},
 "variants": [
   {"name": "image only", "patch": {"model": {"encoders": {"audio": null}, "fusion": null}}},
   {"name": "audio only", "patch": {"model": {"encoders": {"image": null}, "fusion": null}}},
   {"name": "audio only + augmentation", "patch": {"model": {"encoders": {"image": null}, "fusion": null}, "train": {"augment": $aug}}},
   {"name": "concat", "patch": {}},
   {"name": "concat + augmentation", "patch": {"train": {"augment": $aug}}}
 ]}
JSON
    "$mml" compare "$study" --out "results/loso-$s" --force --quiet > /dev/null
    echo "== speaker $s held out"
    grep -E '^\| (image|audio|concat)' "results/loso-$s/results.md" | cut -d'|' -f2,4
done
