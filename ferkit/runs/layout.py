"""The run folder's layout: every file name it holds, defined here once, and the readers that need
no Keras (run.json, history.csv, the files a reader of a run touches, the runs under a folder), so
the scripts' checks before TensorFlow loads and the loader share them.

    runs/<model>-<time>/
        run.json            model name and options, class names, input format, accuracy, arguments
        best.weights.h5     weights with the best validation accuracy (HDF5), sha256 in run.json
        history.csv         one row per epoch
        backup/             the last finished epoch's weights and optimizer state while a run is
                            unfinished (--resume; ferkit/runs/folder.py)
        teacher_probs.npy   the teachers' probabilities of a distilled run (--teacher)
        .lock               held by the training writing the folder
"""
import contextlib
import csv
import glob
import json
import os

from ferkit.errors import FERError
from ferkit.limits import MAX_RUN_JSON_BYTES
from ferkit.runs import schema

RUN_FILE = "run.json"
WEIGHTS_FILE = "best.weights.h5"
HISTORY_FILE = "history.csv"
RUNS_DIR = "runs"
STATE_DIR = "backup"  # the state a resumed run starts from (weights and optimizer), one file per epoch
TEACHER_FILE = "teacher_probs.npy"  # what --resume reads instead of asking the teachers again
LOCK_FILE = ".lock"
OUTPUTS = (RUN_FILE, HISTORY_FILE, WEIGHTS_FILE, STATE_DIR, TEACHER_FILE)  # what a training writes


def state_file(run_dir, epoch):
    """The training state saved after `epoch` (counted from 1) epochs."""
    return os.path.join(run_dir, STATE_DIR, f"epoch-{epoch:04d}.weights.h5")


def read_info(run_dir):
    """run.json of `run_dir` as a dict checked against ferkit/runs/schema.py, or a one-line FERError."""
    path = os.path.join(run_dir, RUN_FILE)
    if not os.path.isfile(path):
        raise FERError(f"{run_dir}: not a run folder (no {RUN_FILE}); train one with `python train_cnn.py train.csv`")
    schema.inside(run_dir, path)
    try:
        if os.path.getsize(path) > MAX_RUN_JSON_BYTES:
            raise FERError(f"{path}: larger than {MAX_RUN_JSON_BYTES:,} bytes; not a run.json of this toolkit")
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except RecursionError:
        raise FERError(f"{path}: nested too deeply; not a run.json of this toolkit") from None
    except (OSError, ValueError) as e:
        raise FERError(f"{path}: not valid JSON ({str(e).splitlines()[0][:200]})") from None
    if isinstance(info, dict) and "model" not in info:
        raise FERError(f"{path}: no 'model' entry")
    return schema.validate(info, path)  # untrusted: types and bounds before anything uses it


def split_seed(args):
    """The seed that drew a run's --val-split faces, from its settings (a Namespace or run.json's
    "args"): --split-seed, or --seed for runs that did not give one (and every run before it existed)."""
    a = args if isinstance(args, dict) else vars(args)
    return a["seed"] if a.get("split_seed") is None else a["split_seed"]


def weights_path(run_dir, info):
    """The run's own weights file as run.json names it, refused unless inside the run folder."""
    return schema.weights_path(run_dir, info, WEIGHTS_FILE)


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


def read_history(folder):
    """history.csv of a run folder as a list of dicts (empty when there is none)."""
    path = os.path.join(folder, HISTORY_FILE)
    if not os.path.exists(path):
        return []
    schema.inside(folder, path)
    if os.path.getsize(path) > MAX_RUN_JSON_BYTES * 16:
        raise FERError(f"{path}: larger than {MAX_RUN_JSON_BYTES * 16:,} bytes; not a history.csv of this toolkit")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise FERError(f"{path}: not a readable history.csv ({str(e).splitlines()[0][:200]})") from None


def run_files(path):
    """What a script reading a run (a folder, or a weights file in one) may read: `path` and every
    file directly in its folder (weights, run.json, history.csv), for ferkit.files.check_outputs."""
    path = os.fspath(path)
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    files = [] if os.path.isdir(path) else [path]
    if os.path.isdir(folder):
        files += [os.path.join(folder, f) for f in sorted(os.listdir(folder))
                  if os.path.isfile(os.path.join(folder, f))]
        if os.path.isfile(os.path.join(folder, RUN_FILE)):  # run.json checked (schema) before TensorFlow loads
            named = weights_path(folder, read_info(folder))
            if not any(os.path.abspath(named) == os.path.abspath(f) for f in files):
                files.append(named)
    return files


def find_runs(root):
    """Run folders under root (root itself included), sorted; state folders are skipped."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != STATE_DIR and not d.startswith("."))
        if RUN_FILE in files:
            found.append(folder)
    return sorted(found)


def newest_unfinished(runs_dir=RUNS_DIR):
    """The unfinished run under runs_dir whose run.json changed last (what --resume continues)."""
    found = []
    for path in glob.glob(os.path.join(runs_dir, "*", RUN_FILE)):
        with contextlib.suppress(FERError):
            if read_info(os.path.dirname(path)).get("status") != "done":
                found.append(os.path.dirname(path))
    return max(found, key=os.path.getmtime) if found else None
