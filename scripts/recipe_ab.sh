#!/usr/bin/env bash
# Issue 25's recipe A/B: each arm of recipes/ab/ trains its epochs (45 minutes of one free core) pinned to one core, two arms at
# once (cores 0 and 1), in the order given. An interrupted arm continues with --resume; a finished
# one is skipped. Summarize with: python benchmarks/recipe_ab.py runs/ab
#
#   scripts/recipe_ab.sh base mixcut strongreg width40 nosmooth base-seed2
set -u
DATA=${DATA:-../shared/data/fer2013/train.csv.gz}
PY=${PY:-.venv/bin/python}
run_arm() {  # arm core
    local out=runs/ab/$1
    if [ -f "$out/run.json" ] && grep -q '"status": "done"' "$out/run.json"; then return; fi
    if [ -f "$out/run.json" ]; then
        taskset -c "$2" "$PY" train_cnn.py "$DATA" --out "$out" --resume
    else
        taskset -c "$2" "$PY" train_cnn.py "$DATA" --config "recipes/ab/$1.toml" --out "$out"
    fi
}
mkdir -p runs/ab
while [ $# -gt 0 ]; do
    run_arm "$1" 0 > "runs/ab/$1.log" 2>&1 &
    if [ $# -gt 1 ]; then run_arm "$2" 1 > "runs/ab/$2.log" 2>&1 & shift; fi
    shift
    wait
done
