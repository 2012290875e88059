#!/usr/bin/env bash
# The settings sweep that chose saliency.py's defaults (docs/EXPLAIN.md): the faithfulness table
# (saliency.py --evaluate) of each method under each candidate setting, on the same faces.
# Usage: scripts/saliency_sweep.sh [DATA] [FACES] [OUT_DIR]   (defaults below; about 15 min on a
# busy 2-core CPU with 60 faces). Each setting's table lands in OUT_DIR/<method>-<setting>.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/fer2013/public_test.csv.gz}
FACES=${2:-60}
OUT=${3:-docs/faithfulness/sweep}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
ev() {  # ev NAME ARGS...: one table
  local name=$1; shift
  echo "== $name: $*"
  "$PY" saliency.py --data "$DATA" --evaluate --faces "$FACES" --out-csv "$OUT/$name.csv" "$@" | sed -n '3,5p'
}
for layer in re_lu_10 re_lu_6 re_lu_2; do   # fernet's stage outputs: 6x6, 12x12, 24x24
  ev "gradcam-$layer" --method gradcam --layer "$layer"
done
for j in 0 4 8; do
  ev "vanilla-jitter$j" --method vanilla --jitter "$j" --samples 16
done
for s in 0.05 0.15 0.3; do
  ev "smoothgrad-sigma$s-jitter8" --method smoothgrad --sigma "$s" --jitter 8 --samples 16
done
ev "smoothgrad-sigma0.15-jitter0" --method smoothgrad --sigma 0.15 --jitter 0 --samples 16
for j in 0 8; do
  ev "ig-jitter$j" --method ig --jitter "$j" --steps 25
done
