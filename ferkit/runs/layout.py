"""A run folder's file names and its run.json reader, without Keras: the scripts' checks before
TensorFlow loads (training's --resume, the report's run lists) and models/runs.py share them."""
import json
import os

from ferkit.errors import FERError

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


def members(path):
    """An ensemble folder (no run.json, run folders inside it, as models/pretrained/ensemble/)
    gives its members' paths, sorted; any other path (or None) is itself, alone."""
    if path is None or not os.path.isdir(path) or os.path.isfile(os.path.join(path, RUN_FILE)):
        return [path]
    found = sorted(os.path.join(path, d) for d in os.listdir(path) if os.path.isfile(os.path.join(path, d, RUN_FILE)))
    return found or [path]


def expand_weights(weights):
    """--weights arguments with each ensemble folder replaced by its members (None stays None)."""
    return [m for w in weights for m in members(w)] if weights else weights
