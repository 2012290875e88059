#!/usr/bin/env bash
# The GPU recipe (issue 25, step 5): three networks trained at once on one GPU, each for the same
# wall-time budget, then bundled as float16 under models/pretrained/. One H200 runs them in about
# 8 minutes; docs/GPU.md has the story and the figures.
#
#   KERAS_BACKEND=jax bash scripts/gpu_recipe.sh train.csv.gz [MINUTES] [RUNS_DIR]
#
# The epoch is chosen on a stratified tenth of the training file held out by train_cnn.py (its
# default --val-split), never on public_test, so public_test figures measured afterwards with
# predict.py are honest. Members: the report's cnn3 and two fervgg (models/vgg.py), one with Adam
# and one with SGD (Nesterov), for an ensemble and a distillation teacher.
set -uo pipefail
train=${1:?usage: gpu_recipe.sh TRAIN_CSV [MINUTES] [RUNS_DIR]}
minutes=${2:-6.5}
runs=${3:-runs/gpu}
python=${PYTHON:-python3}
cd "$(dirname "$0")/.."
export KERAS_BACKEND=${KERAS_BACKEND:-jax}
export XLA_PYTHON_CLIENT_PREALLOCATE=false      # JAX would take 75% of the GPU's memory per process
export JAX_DEFAULT_MATMUL_PRECISION=${JAX_DEFAULT_MATMUL_PRECISION:-tensorfloat32}
mkdir -p "$runs"
common=(--time-budget "$minutes" --epochs 1000 --label-smoothing 0.1 --erasing 0.25 --quiet)
declare -A recipe=(
  [gpu-cnn3]="--model cnn3 --seed 1"
  [gpu-fervgg-adam]="--model fervgg --seed 2"
  [gpu-fervgg-sgd]="--model fervgg --seed 3 --optimizer sgd --lr 0.01 --weight-decay 5e-4"
)
for name in "${!recipe[@]}"; do
  # shellcheck disable=SC2086  # the recipe is a list of options
  "$python" train_cnn.py "$train" ${recipe[$name]} "${common[@]}" --out "$runs/$name" >"$runs/$name.log" 2>&1 &
done
wait
for name in "${!recipe[@]}"; do
  tail -n 1 "$runs/$name.log"
  "$python" scripts/bundle_pretrained.py "$runs/$name" --name "$name" &
done
status=0
for job in $(jobs -p); do wait "$job" || status=1; done
exit $status
