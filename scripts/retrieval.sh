#!/usr/bin/env bash
# Cross-modal retrieval on clean avdigits (docs/results.md): the dual encoder
# of examples/avdigits_retrieval.json trained with each objective over seeds;
# prints a markdown table of the test split's retrieval metrics and transfer
# accuracies, means over the seeds. usage: scripts/retrieval.sh [SEEDS] (default 2)
# OBJECTIVES: which to run (default "info_nce hinge hinge_sum": VSE++'s hinge
# with the hardest negative, and with the sum over negatives).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-2}
datasets=${MML_DATASETS:-../shared/datasets}
mml=${MML:-build/mml} # MML=a copy of the binary, to rebuild during a long run
out=results/retrieval
mkdir -p data "$out"
[ -f data/avdigits/test.jsonl ] || "$mml" data avdigits --out data/avdigits --datasets "$datasets"
objectives=${OBJECTIVES:-info_nce hinge hinge_sum}
for objective in $objectives; do
    cfg=$out/$objective.json
    python3 - "$objective" > "$cfg" <<'PY'
import json, sys
c = json.load(open("examples/avdigits_retrieval.json"))
for k in ("train", "val", "test", "cache"):
    c["data"][k] = "../../examples/" + c["data"][k]
c["model"]["objective"] = {"info_nce": {"type": "info_nce", "temperature": 0.07},
                           "hinge": {"type": "hinge", "margin": 0.2, "hardest": True},
                           "hinge_sum": {"type": "hinge", "margin": 0.2, "hardest": False}}[sys.argv[1]]
print(json.dumps(c, indent=1))
PY
    for ((s = 0; s < seeds; s++)); do
        echo "== $objective, seed $s" >&2
        "$mml" train "$cfg" --seed "$s" --out "$out/$objective-$s.safetensors" --json 2> "$out/$objective-$s.log" |
            tail -1 > "$out/$objective-$s.json"
    done
done
python3 - "$out" "$seeds" $objectives <<'PY'
import json, sys
out, seeds, objectives = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print("| objective | direction | level | R@1 | R@5 | R@10 | medR | mAP |")
print("|---|---|---|---:|---:|---:|---:|---:|")
transfer = []
for obj in objectives:
    runs = [json.load(open(f"{out}/{obj}-{s}.json")) for s in range(seeds)]
    for k, d in enumerate(runs[0]["directions"]):
        for level in ("category", "instance"):
            m = lambda key: sum(r["directions"][k][level][key] for r in runs) / seeds
            print(f"| {obj} | {d['query']} -> {d['gallery']} | {level} | {m('r1'):.3f} | {m('r5'):.3f} | "
                  f"{m('r10'):.3f} | {m('median_rank'):.1f} | {m('map'):.3f} |")
    for k, t in enumerate(runs[0]["transfer"]):
        acc = sum(r["transfer"][k]["accuracy"] for r in runs) / seeds
        src = sum(r["transfer"][k]["source_accuracy"] for r in runs) / seeds
        transfer.append(f"| {obj} | {t['from']} -> {t['to']} | {acc:.3f} | {src:.3f} |")
print("\n| objective | classifier trained on -> tested on | accuracy | on its own modality |")
print("|---|---|---:|---:|")
print("\n".join(transfer))
PY
