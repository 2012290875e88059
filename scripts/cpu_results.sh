#!/usr/bin/env bash
# The repository's figures and report from a run (default: the bundled model), on a CPU:
# accuracy on public_test (plain and with --tta), docs/figures/*, report.pdf and report.json.
#
#   bash scripts/cpu_results.sh [RUN_DIR] [DATA_DIR]   (defaults: models/pretrained/fernet, ../shared/data/fer2013;
#                                                      paths from the repository root)
# It overwrites those tracked files on purpose; the README's own commands write elsewhere. The
# report's experiments table and curves come from docs/experiments/ (scripts/run_experiments.py).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-models/pretrained/fernet}
TEST=${2:-../shared/data/fer2013}/public_test.csv.gz
FIG=docs/figures
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python predict.py "$TEST" "$tmp/pred.csv" --weights "$RUN"
python predict.py "$TEST" "$tmp/pred.csv" --weights "$RUN" --tta
python plot_confusion.py --data "$TEST" --weights "$RUN" --out "$FIG/confusion.png" --json "$FIG/confusion.json"
python saliency.py --data "$TEST" --weights "$RUN" --method all --per-class 1 --out "$FIG/saliency.png"
python filter_vis.py --data "$TEST" --weights "$RUN" --image 0 --out "$FIG/filters.png" --maps-out "$FIG/filters-maps.png"
python saliency.py --data "$TEST" --weights "$RUN" --class-average --method all --out "$FIG/class-average.png"
python saliency.py --data "$TEST" --weights "$RUN" --evaluate --out-csv docs/faithfulness/fernet-public_test.csv
python make_report.py --weights "$RUN" --data "$TEST" --out report.pdf --json report.json
