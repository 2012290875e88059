"""Run folders: what training writes, and the one loader every consumer uses.

    runs/<model>-<time>/
        run.json            model name and options, class names, input format, accuracy, arguments
        best.weights.h5     weights with the best validation accuracy (HDF5)
        history.csv         one row per epoch
        backup/             Keras BackupAndRestore state while a run is unfinished (for --resume)

    model, info = models.load_run("runs/cnn3-20261127-120000")   # or a .weights.h5 path
"""
import glob
import json
import os

from ferbase.atomic import atomic_path
from ferbase.errors import FERError

from .registry import build_model

RUN_FILE = "run.json"
WEIGHTS_FILE = "best.weights.h5"
HISTORY_FILE = "history.csv"
RUNS_DIR = "runs"
PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")


def read_info(run_dir):
    path = os.path.join(run_dir, RUN_FILE)
    if not os.path.exists(path):
        raise FERError(f"{run_dir}: not a run folder (no {RUN_FILE}); train one with `python train_cnn.py train.csv`")
    try:
        with open(path) as f:
            info = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FERError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(info, dict) or "model" not in info:
        raise FERError(f"{path}: no 'model' entry")
    return info


def resolve(path=None):
    """A run folder from a folder or a weights-file path; default: the newest run under runs/,
    then the model bundled with the package."""
    if path is None:
        found = newest_run()
        if found is None:
            raise FERError(f"no trained run under {RUNS_DIR}/ and no bundled model in {PRETRAINED_DIR}: "
                           "train one with `python train_cnn.py train.csv`, or pass --weights RUN_DIR")
        return found
    if not os.path.exists(path):
        raise FERError(f"{path}: no such run folder or weights file")
    return os.path.dirname(os.path.abspath(path)) if os.path.isfile(path) else path


def newest_run(runs_dir=RUNS_DIR):
    """The run under runs_dir with the newest weights; else the bundled pretrained run; else None."""
    candidates = [os.path.dirname(p) for p in glob.glob(os.path.join(runs_dir, "*", WEIGHTS_FILE))]
    candidates = [d for d in candidates if os.path.exists(os.path.join(d, RUN_FILE))]
    if candidates:
        return max(candidates, key=lambda d: os.path.getmtime(os.path.join(d, WEIGHTS_FILE)))
    bundled = sorted(glob.glob(os.path.join(PRETRAINED_DIR, "*", RUN_FILE)))
    return os.path.dirname(bundled[0]) if bundled else None


# Preprocessing that earlier versions put inside the network (a Gaussian blur against a blurred
# copy of FER2013's training split); a run that used it is a different network from today's.
_RETIRED_PREPROCESS = ("blur", "test_blur")


def build_from_info(info, augment=False):
    """The run's network, rebuilt from its JSON (without augmentation unless asked)."""
    retired = [k for k in _RETIRED_PREPROCESS if (info.get("preprocess") or {}).get(k)]
    if retired:
        raise FERError(f"{info.get('run_dir', 'this run')}: trained by an older version of this toolkit "
                       f"(with {' and '.join(retired)} preprocessing, since removed); retrain it")
    return build_model(info["model"], augment=info.get("augment") if augment else None,
                       preprocess=info.get("preprocess"), **info.get("options", {}))


def load_run(path=None, weights_file=None):
    """(model, info) for a run folder or weights file; the model is ready for inference."""
    run_dir = resolve(path)
    if path is not None and os.path.isfile(path):
        weights_file = path
    info = read_info(run_dir)
    info["run_dir"] = run_dir
    weights = weights_file or os.path.join(run_dir, info.get("weights", WEIGHTS_FILE))
    if not os.path.exists(weights):
        raise FERError(f"{run_dir}: no weights file {os.path.basename(weights)} (did the run finish an epoch?)")
    model = build_from_info(info)
    load_weights(model, weights)
    return model, info


def save_weights(model, path):
    """Atomically write the model's weights as HDF5, without the optimizer state that Keras 3
    adds for a compiled model (2-3x the network's size; inference never needs it)."""
    import tempfile

    import h5py

    with tempfile.TemporaryDirectory() as scratch, atomic_path(path) as lean:
        full = os.path.join(scratch, "full.weights.h5")
        model.save_weights(full)
        with h5py.File(full, "r") as fin, h5py.File(lean, "w") as fout:
            for key, value in fin.attrs.items():
                fout.attrs[key] = value
            for key in fin:
                if key != "optimizer":
                    fin.copy(fin[key], fout, name=key)


def load_weights(model, weights):
    """model.load_weights, with one-line errors for a file that is not HDF5 or not this model's."""
    import h5py

    try:
        with h5py.File(weights, "r"):
            pass
    except OSError as e:
        raise FERError(f"{weights}: not a readable HDF5 weights file ({str(e).splitlines()[0]})") from None
    try:
        model.load_weights(weights)
    except (ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FERError(f"{weights}: weights do not fit model {model.name} ({first[:200]})") from None
