#!/usr/bin/env bash
# The whole job for a lent GPU machine (docs/GPU.md, "The next GPU session"): install the carried
# Keras wheels, unpack the carried training faces, train the members with scripts/gpu_recipe.sh,
# and put the float16 bundles, logs, run.json and history.csv files under $OUT in parts of at
# most 15 MB (the device tool brings back 8 files of 16 MiB at most).
#
#   OUT=... bash scripts/gpu_job.sh [MEMBER...]      # default: the second round, below
#
# Environment: MIN (minutes per member; default the recipes' own), PACK (.gpu/train.u8.xz),
# WHEELS (.whl), TRAIN (where the CSV is unpacked), SKIP_PIP=1 where Keras is installed already.
# Tested on the CPU with a tiny pack: tests/test_gpu_job.py.
set -uo pipefail
OUT=${OUT:?set OUT to the folder that comes back}
cd "$(dirname "$0")/.."
# The fourth round: three more seeds of the best recipe, at once for a whole call, holding out one
# shared tenth (--split-seed 1337), so that an ensemble can be chosen on it (docs/GPU.md). The third
# round was gpu-fervgg-mixcut-s7 -s8 -s9 (and -s10 alone, MIN=3.5). The fourth round's second call,
# the machine still warm: MIN=3.5 ... gpu_job.sh gpu-fervgg-mixcut-s14 (gpu-fernet-online, a fernet
# the three teach online, is prepared for a longer lease).
# The second round was: gpu-fervgg-mixcut gpu-fervgg-mixcut-sgd gpu-fernet-w40-distill
# gpu-fernet-w32-distill, four at once (the students' teacher: probabilities carried in .gpu/).
members=("$@"); [ ${#members[@]} -gt 0 ] || members=(gpu-fervgg-mixcut-s11 gpu-fervgg-mixcut-s12 gpu-fervgg-mixcut-s13)
PACK=${PACK:-.gpu/train.u8.xz}; WHEELS=${WHEELS:-.whl}; TRAIN=${TRAIN:-/tmp/ferkit-train.csv}
RUNS=${RUNS:-runs/gpu}; python=${PYTHON:-python3}
t0=$(date +%s)
if [ -z "${SKIP_PIP:-}" ]; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1 KERAS_BACKEND=${KERAS_BACKEND:-jax}
nvidia-smi -L 2>/dev/null; echo "cores: $(nproc)"
"$python" -c "import keras; print('keras', keras.__version__, 'backend', keras.backend.backend())" || exit 1
[ -f "$TRAIN" ] || "$python" scripts/pack_pixels.py unpack "$PACK" "$TRAIN" || exit 1
echo "set-up took $(( $(date +%s) - t0 )) s"
PYTHON=$python bash scripts/gpu_recipe.sh "$TRAIN" "${MIN:-}" "$RUNS" "${members[@]}" 2>&1 | tee "$OUT/log.txt"
status=${PIPESTATUS[0]}
echo "total $(( $(date +%s) - t0 )) s, exit $status" | tee -a "$OUT/log.txt"
files=()
for m in "${members[@]}"; do
  files+=("$RUNS/$m.log" "$RUNS/$m/run.json" "$RUNS/$m/history.csv")
  [ -d "models/pretrained/$m" ] && files+=("models/pretrained/$m")
done
tar cf - --ignore-failed-read "${files[@]}" | split -b 15M - "$OUT/part-"
ls -la "$OUT"
exit "$status"
