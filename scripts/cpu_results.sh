#!/usr/bin/env bash
# Evaluate a finished run on public_test and rebuild the figures in docs/figures/ and report.pdf.
#
#   bash scripts/cpu_results.sh [RUN_DIR] [DATA_DIR]     (defaults: runs/fernet-w32-ema, ../shared/data/fer2013)
#
# Prints the accuracies quoted in docs/RESULTS.md (plain and with test-time augmentation).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/fernet-w32-ema}
DATA=${2:-../shared/data/fer2013}
FIG=docs/figures
mkdir -p "$FIG"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== public_test accuracy"
python predict.py "$DATA/public_test.csv.gz" "$tmp/pred.csv" --weights "$RUN"
python predict.py "$DATA/public_test.csv.gz" "$tmp/pred_tta.csv" --weights "$RUN" --tta
echo "== confusion matrix"
python plot_confusion.py --data "$DATA/public_test.csv.gz" --weights "$RUN" --out "$FIG/confusion.png" --json "$FIG/confusion.json"
echo "== saliency"
python saliency.py --data "$DATA/public_test.csv.gz" --weights "$RUN" --method all --per-class 1 --out "$FIG/saliency.png"
echo "== filters"
python filter_vis.py --weights "$RUN" --data "$DATA/public_test.csv.gz" --image 0 --out "$FIG/filters.png"
echo "== report"
python make_report.py --runs "$(dirname "$RUN")" --data "$DATA/public_test.csv.gz" --out report.pdf
