"""The one loader every consumer uses: load_run (a run folder, a weights file in one, or the
default run), the default-run rule, and the weights' save and sha256 check. File names: layout.py.

    model, info = load_run("runs/cnn3-20261127-120000")   # or a .weights.h5 path; None: the default run
"""
import glob
import hashlib
import io
import logging
import os
import sys
import tempfile
import warnings

import models
from ferkit.errors import FERError
from ferkit.files import output_path
from ferkit.runs import legacy
from ferkit.runs.layout import HISTORY_FILE, RUN_FILE, RUNS_DIR, WEIGHTS_FILE, TEACHER_FILE, read_info, run_files, weights_path  # noqa: F401

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(models.__file__)), "pretrained")


def resolve(path=None):
    """A run folder from a folder or a weights-file path; default: default_run()."""
    if path is None:
        found = default_run()
        if found is None:
            raise FERError(f"no trained run under {RUNS_DIR}/ and no bundled model in {PRETRAINED_DIR}: "
                           "train one with `python train_cnn.py train.csv`, or pass --weights RUN_DIR")
        return found
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FERError(f"{path}: no such run folder or weights file")
    return os.path.dirname(os.path.abspath(path)) if os.path.isfile(path) else path


def run_inputs(path=None):
    """The files a script reading this run (folder or weights file; None: the default run) may
    read: the weights file given and every file in the run folder. For ferkit.files.check_outputs."""
    return run_files(path if path is not None else resolve(None))


def _candidate(run_dir, require_done):
    """(val_accuracy, weights mtime, run_dir) for a usable run, else None."""
    try:
        info = read_info(run_dir)
    except FERError:
        return None
    try:
        weights = weights_path(run_dir, info)
    except FERError:
        return None
    if not os.path.isfile(weights) or (require_done and info.get("status") != "done"):
        return None
    acc = info.get("val_accuracy")
    acc = float(acc) if isinstance(acc, (int, float)) and acc == acc else -1.0  # none recorded (or NaN): last
    return acc, os.path.getmtime(weights), run_dir


def default_run(runs_dir=None):
    """The run scripts use when none is named: among finished runs under runs_dir (status "done",
    weights present, run.json readable) and the models bundled in models/pretrained/, the one with
    the highest recorded val_accuracy; ties go to the newest weights. None when there is none.
    (Runs validated on different sets are compared as recorded; pass --weights to choose.)"""
    runs_dir = RUNS_DIR if runs_dir is None else runs_dir
    found = [_candidate(os.path.dirname(p), require_done=True)
             for p in glob.glob(os.path.join(runs_dir, "*", RUN_FILE))]
    # A bundled model is shipped on purpose, whatever the status of the run it was copied from.
    found += [_candidate(os.path.dirname(p), require_done=False)
              for p in glob.glob(os.path.join(PRETRAINED_DIR, "*", RUN_FILE))]
    found = [c for c in found if c is not None]
    return max(found)[2] if found else None


def build_from_info(info, augment=False):
    """The run's network, rebuilt from its JSON (without augmentation unless asked)."""
    legacy.refuse_retired(info)
    where = os.path.join(info.get("run_dir", ""), RUN_FILE)
    models.check_options(info["model"], info.get("options") or {}, where=f"{where}: option")  # before building
    return models.build_model(info["model"], augment=info.get("augment") if augment else None,
                       preprocess=info.get("preprocess"), **info.get("options", {}))


def load_run(path=None, weights_file=None):
    """(model, info) for a run folder or weights file; the model is ready for inference.

    A run's own weights file is checked against the sha256 in run.json ("weights_sha256"), when
    recorded, so a damaged file is refused instead of predicting nonsense."""
    run_dir = resolve(path)
    if path is not None and os.path.isfile(path):
        weights_file = os.fspath(path)
    if weights_file is not None and not os.path.exists(os.path.join(run_dir, RUN_FILE)):
        raise FERError(f"{weights_file}: no {RUN_FILE} beside this weights file, so its model is unknown; "
                       "pass the run folder it was trained in")
    info = read_info(run_dir)
    info["run_dir"] = run_dir
    legacy.refuse_retired(info)  # before the weights: an old run's file is fine, its network is not
    own = weights_path(run_dir, info)
    weights = weights_file or own
    if not os.path.exists(weights):
        raise FERError(f"{weights}: no such weights file (did the run in {run_dir} finish an epoch?)")
    _check_hdf5(weights)  # a file that is not HDF5 at all says so, before the checksum
    if info.get("weights_sha256") and os.path.exists(own) and os.path.samefile(weights, own):
        if file_sha256(weights) != info["weights_sha256"]:
            raise FERError(f"{weights}: damaged (checksum does not match {RUN_FILE}); retrain or restore it")
    elif not info.get("weights_sha256"):  # removing the entry must not switch the check off unseen
        print(f"warning: {os.path.join(run_dir, RUN_FILE)} records no weights_sha256, so {weights} "
              "cannot be checked for damage", file=sys.stderr, flush=True)
    model = build_from_info(info)
    load_weights(model, weights)
    return model, info


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_bytes(model, optimizer=True):
    """The model's weights as the bytes of a Keras .weights.h5 file, built in memory (with the
    optimizer state of a compiled model unless `optimizer` is False).

    Why in memory: HDF5 writing straight to a full disk fails inside h5py and leaves its objects
    half-closed, which print tracebacks when they are freed and crash the interpreter at exit
    (exit 139). Written by plain Python afterwards, a full disk is one OSError like any other."""
    import h5py

    buf = io.BytesIO()
    try:
        from keras.src.saving import saving_lib

        store = saving_lib.H5IOStore(buf, mode="w")
        try:
            saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="",
                                   visited_saveables=set())
        finally:
            store.close()
    except (ImportError, AttributeError, TypeError):  # another Keras: its public call, through a scratch file
        with tempfile.TemporaryDirectory() as scratch:
            full = os.path.join(scratch, "full.weights.h5")
            model.save_weights(full)
            with open(full, "rb") as f:
                buf = io.BytesIO(f.read())
    if optimizer:
        return buf.getvalue()
    lean = io.BytesIO()
    with h5py.File(io.BytesIO(buf.getvalue()), "r") as fin, h5py.File(lean, "w") as fout:
        for key, value in fin.attrs.items():
            fout.attrs[key] = value
        for key in fin:
            if key != "optimizer":
                fin.copy(fin[key], fout, name=key)
    return lean.getvalue()


def write_bytes(path, blob):
    """`blob` to `path` atomically (ferkit.files.output_path: one-line FERError on a full disk)."""
    with output_path(path) as tmp, open(tmp, "wb") as f:
        f.write(blob)


def save_weights(model, path):
    """Atomically write the model's weights as HDF5, without the optimizer state that Keras 3
    adds for a compiled model (2-3x the network's size; inference never needs it). Returns the
    file's sha256 hex digest, for run.json's "weights_sha256"."""
    blob = weights_bytes(model, optimizer=False)
    write_bytes(path, blob)
    return hashlib.sha256(blob).hexdigest()


# Keras warns, layer by layer, before it raises for weights that do not fit ("Skipping nested
# container ... will retain their freshly-initialized weights"): dozens of lines before our one.
_UNFIT_WARNING = ("Skipping", "could not be loaded", "freshly-initialized")


def load_weights(model, weights):
    """model.load_weights, with one-line errors for a file that is not HDF5, is damaged, or holds
    another model's weights; Keras' warnings and absl log lines are kept off stderr."""
    _check_hdf5(weights)
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.load_weights(weights)
    except (ValueError, KeyError, RuntimeError, OSError, TypeError) as e:
        problem = _unreadable(weights)
        if problem:
            raise FERError(f"{weights}: damaged (not a readable HDF5 weights file: {problem}); "
                           "retrain or restore it") from None
        raise FERError(f"{weights}: weights do not fit model {model.name}; they belong to another model "
                       f"({_first_line(e).split('. Example')[0][:200]})") from None
    finally:
        absl.setLevel(level)
    unfit = [str(w.message) for w in caught if any(s in str(w.message) for s in _UNFIT_WARNING)]
    if unfit:  # loaded in part: some layers kept their random weights
        raise FERError(f"{weights}: weights do not fit model {model.name}; they belong to another model "
                       f"({_first_line(unfit[0])[:200]})")


def _check_hdf5(weights):
    import h5py

    try:
        with h5py.File(weights, "r"):
            pass
    except OSError as e:
        raise FERError(f"{weights}: not a readable HDF5 weights file ({_first_line(e)})") from None


def _unreadable(weights):
    """The first error met reading every dataset of an HDF5 file, or None when all read."""
    import h5py

    def read(_name, obj):
        if isinstance(obj, h5py.Dataset):
            obj[()]

    try:
        with h5py.File(weights, "r") as f:
            f.visititems(read)
    except Exception as e:  # noqa: BLE001 -- h5py raises OSError, KeyError, RuntimeError, ValueError
        return _first_line(e)[:200]
    return None


def _first_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
