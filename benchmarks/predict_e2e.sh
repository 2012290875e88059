#!/usr/bin/env bash
# End-to-end time and peak memory of `python predict.py TEST_CSV OUT_CSV`: from process start to
# the output file written, as a user runs it (Python start-up, TensorFlow import, model load,
# CSV parsing, inference, writing). Each run is timed with GNU time (wall seconds, max RSS).
#
#   benchmarks/predict_e2e.sh                                   # test.csv.gz (7,178 rows), default model
#   benchmarks/predict_e2e.sh /tmp/test70k.csv                  # any CSV predict.py reads
#   RUNS=5 benchmarks/predict_e2e.sh ../shared/data/fer2013/test.csv.gz --weights runs/fernet-cpu
#
# The first run is reported apart (cold file cache, first import of TensorFlow's libraries);
# the rest are warm. CPU = user + system seconds of all threads: unlike the wall time, barely
# changed by other load on the machine. Environment: PYTHON (default: python), RUNS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
TEST=${1:-../shared/data/fer2013/test.csv.gz}
shift || true
PYTHON=${PYTHON:-python}
RUNS=${RUNS:-3}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $("$PYTHON" --version 2>&1)"
echo "command: $PYTHON predict.py $TEST OUT.csv $*"
for i in $(seq 1 "$RUNS"); do
  "$TIME" -f "%e %M %U %S" -o "$TMP/time" "$PYTHON" predict.py "$TEST" "$TMP/out.csv" "$@" >"$TMP/stdout" 2>"$TMP/stderr" || {
    cat "$TMP/stderr" >&2; exit 1; }
  read -r wall rss user sys <"$TMP/time"
  rows=$(($(wc -l <"$TMP/out.csv") - 1))
  model=$(cat "$TMP/stdout" "$TMP/stderr" | grep -m1 "^model:" || true)
  [ "$i" = 1 ] && echo "${model:-model: ?}; $rows rows written"
  label=$([ "$i" = 1 ] && echo "run 1 (cold)" || echo "run $i (warm)")
  printf '%-14s %6.1f s wall  %6.1f s CPU   max RSS %6.0f MiB   (%s)\n' "$label" "$wall" \
    "$(echo "$user + $sys" | bc -l)" "$(echo "$rss / 1024" | bc -l)" "$(tail -1 "$TMP/stdout")"
done
