#!/usr/bin/env bash
# The GPU recipe (issue 25, step 5): three networks trained at once on one GPU, each for the same
# wall-time budget, then bundled as float16 under models/pretrained/. One H200 runs them in about
# 8 minutes; docs/GPU.md has the story and the figures.
#
#   KERAS_BACKEND=jax bash scripts/gpu_recipe.sh train.csv.gz [MINUTES] [RUNS_DIR] [MEMBER...]
#
# The epoch is chosen on a stratified tenth of the training file held out by train_cnn.py (its
# default --val-split), never on public_test, so public_test figures measured afterwards with
# predict.py are honest. Members, one recipe file each (recipes/gpu-*.toml): the report's cnn3 and
# two fervgg (models/vgg.py), one with Adam and one with SGD (Nesterov), for an ensemble and a
# distillation teacher. MINUTES, when given, overrides the recipes' budget (7.25, as the bundled members).
# MEMBERs name other recipes to train instead (the second round: gpu-fervgg-mixcut gpu-fervgg-mixcut-sgd
# gpu-fernet-w40-distill gpu-fernet-w32-distill); MINUTES may then be '' for the recipes' own budget.
set -uo pipefail
train=${1:?usage: gpu_recipe.sh TRAIN_CSV [MINUTES] [RUNS_DIR] [MEMBER...]}
budget=(); [ -n "${2:-}" ] && budget=(--time-budget "$2")
runs=${3:-runs/gpu}
python=${PYTHON:-python3}
cd "$(dirname "$0")/.."
export KERAS_BACKEND=${KERAS_BACKEND:-jax}
export XLA_PYTHON_CLIENT_PREALLOCATE=false      # JAX would take 75% of the GPU's memory per process
export JAX_DEFAULT_MATMUL_PRECISION=${JAX_DEFAULT_MATMUL_PRECISION:-tensorfloat32}
names=(gpu-cnn3 gpu-fervgg-adam gpu-fervgg-sgd)
[ $# -gt 3 ] && names=("${@:4}")
for name in "${names[@]}"; do
  [ -f "recipes/$name.toml" ] || { echo "error: gpu_recipe.sh: no recipe recipes/$name.toml" >&2; exit 2; }
done
mkdir -p "$runs"
for name in "${names[@]}"; do
  "$python" train_cnn.py "$train" --config "recipes/$name.toml" "${budget[@]}" --out "$runs/$name" \
    >"$runs/$name.log" 2>&1 &
done
wait
for name in "${names[@]}"; do
  tail -n 1 "$runs/$name.log"
  "$python" scripts/bundle_pretrained.py "$runs/$name" --name "$name" &
done
status=0
for job in $(jobs -p); do wait "$job" || status=1; done
exit $status
