"""A run folder's file names and its run.json reader, without Keras: the scripts' checks before
TensorFlow loads (training's --resume, the report's run lists) and models/runs.py share them."""
import json
import os

from ferbase.errors import FERError

RUN_FILE = "run.json"
WEIGHTS_FILE = "best.weights.h5"
HISTORY_FILE = "history.csv"
RUNS_DIR = "runs"


def read_info(run_dir):
    """run.json of `run_dir` as a dict, or a one-line FERError."""
    path = os.path.join(run_dir, RUN_FILE)
    if not os.path.isfile(path):
        raise FERError(f"{run_dir}: not a run folder (no {RUN_FILE}); train one with `python train_cnn.py train.csv`")
    try:
        with open(path) as f:
            info = json.load(f)
    except (OSError, ValueError) as e:
        raise FERError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(info, dict) or "model" not in info:
        raise FERError(f"{path}: no 'model' entry")
    return info
