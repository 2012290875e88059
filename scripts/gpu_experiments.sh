#!/usr/bin/env bash
# The whole GPU job in one command: the SOTA attempt and the report's table, trained at once on
# one GPU, evaluated with predict.py (plain, TTA, ensembles), results in $OUT. See docs/GPU.md.
#
#   bash scripts/gpu_experiments.sh [DATA_DIR]          # on the GPU machine (KERAS_BACKEND=jax)
#   FER_GPU_SMOKE=1 bash scripts/gpu_experiments.sh     # here: tiny data, seconds per run, same code path
#
# DATA_DIR (or $FER_DATA): packed data (<split>.npz.xz, from `scripts/gpu_plan.py pack`) or the
# FER2013 .csv.gz files; default .cache/gpu-data when it holds packed data, else ../shared/data/fer2013.

# The budget: the whole job's wall time in minutes. The split follows from it (scripts/gpu_plan.py
# budgets()): the SOTA runs train MINUTES-2, each run of the report's table 55% of that, all at once.
MINUTES=${FER_GPU_MINUTES:-8.5}

set -u
cd "$(dirname "$0")/.." || exit 2
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
DATA=${1:-${FER_DATA:-}}
if [ -z "$DATA" ]; then
    if [ -f .cache/gpu-data/train.npz.xz ]; then DATA=.cache/gpu-data; else DATA=../shared/data/fer2013; fi
fi
PY=${PYTHON:-python3}
LOG="$OUT/gpu_experiments.log"
exec > >(tee -a "$LOG") 2>&1
echo "gpu_experiments: $(date -u +%FT%TZ), data $DATA, $MINUTES min, python $($PY -V 2>&1)"

if [ -n "${FER_GPU_SMOKE:-}" ]; then
    # A check of the whole job on this machine: the backend stays as it is (TensorFlow here).
    nice -n 5 "$PY" scripts/gpu_plan.py run --data "$DATA" --out "$OUT" --work /tmp/fer_gpu_smoke \
        --smoke --jobs "${FER_GPU_JOBS:-2}" --minutes "$MINUTES"
    exit $?
fi

# Keras and its two packages missing from the GPU image travel as wheels in wheels/.
if ! "$PY" -c "import keras" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/fer_site wheels/*.whl || { echo "error: cannot install wheels/*.whl"; exit 2; }
    export PYTHONPATH=/tmp/fer_site${PYTHONPATH:+:$PYTHONPATH}
fi
export KERAS_BACKEND=${KERAS_BACKEND:-jax}
# Each process preallocates --mem-fraction of the GPU (8 at a time x 0.1 fits); the predict.py
# runs of one network share compiled code through the cache.
export JAX_COMPILATION_CACHE_DIR=/tmp/fer_jax_cache
export TF_CPP_MIN_LOG_LEVEL=2
"$PY" -c "import keras, jax; print('keras', keras.__version__, 'backend', keras.backend.backend(), 'jax', jax.__version__, jax.devices())" \
    || { echo "error: keras/jax do not start"; exit 2; }
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader 2>/dev/null

"$PY" scripts/gpu_plan.py run --data "$DATA" --out "$OUT" --minutes "$MINUTES" \
    --jobs "${FER_GPU_JOBS:-8}" --mem-fraction "${FER_GPU_MEM_FRACTION:-0.1}" ${FER_GPU_MIXED:+--mixed-precision}
rc=$?
nvidia-smi --query-gpu=memory.used --format=csv,noheader 2>/dev/null
echo "gpu_experiments: exit $rc at $(date -u +%FT%TZ)"
exit $rc
