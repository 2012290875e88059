#!/usr/bin/env python
"""Copy a finished run into models/pretrained/<name>/ with its weights stored as float16.

    python scripts/bundle_pretrained.py runs/fernet-w32 --name fernet --check-csv public_test.csv.gz
    python scripts/bundle_pretrained.py runs/long/strongreg --name ensemble/cpu-strongreg

float16 halves the file; --check-csv compares float16 and float32 predictions on a labelled CSV.
The bundled run.json records the float16 file's sha256 ("weights_sha256"), which load_run checks.
"""
import argparse
import json
import os
import re
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as `python scripts/bundle_pretrained.py`: the packages live one level up

from ferkit.files import atomic_path  # noqa: E402
from ferkit.cli import Parser, run_main  # noqa: E402
from ferkit.errors import FERError  # noqa: E402
from ferkit.files import write_json  # noqa: E402


def build_parser():
    p = Parser(prog="bundle_pretrained.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", help="a finished run folder (run.json, best.weights.h5, history.csv)")
    p.add_argument("--name", required=True, help="folder under models/pretrained/ (letters, digits, - _ .), or ensemble/NAME for "
                   "a member of the bundled ensemble")
    p.add_argument("--check-csv", metavar="CSV", help="labelled CSV: compare float16 and float32 predictions on it")
    return p


def main(argv=None):
    return run_main(lambda: bundle(build_parser().parse_args(argv)))


def bundle(args):
    # Keras loads here, after the arguments are checked, so --help and mistakes answer at once.
    from ferkit.runs import load as runs

    info = _checked(args, runs)
    check = _labelled(args.check_csv) if args.check_csv else None
    dest = os.path.join(runs.PRETRAINED_DIR, args.name)
    weights = os.path.join(dest, runs.WEIGHTS_FILE)
    to_float16(os.path.join(args.run_dir, info.get("weights", runs.WEIGHTS_FILE)), weights)
    info.update(bundled_from=os.path.relpath(args.run_dir), weights=runs.WEIGHTS_FILE, weights_dtype="float16",
                weights_sha256=runs.file_sha256(weights))
    with atomic_path(os.path.join(dest, runs.HISTORY_FILE)) as tmp:
        shutil.copyfile(os.path.join(args.run_dir, runs.HISTORY_FILE), tmp)
    write_json(os.path.join(dest, runs.RUN_FILE), info)
    print(f"bundled {args.run_dir} -> {dest} ({os.path.getsize(weights) / 1e6:.1f} MB of float16 weights)")
    if check is not None:
        print(json.dumps(compare(args.run_dir, dest, check)))
    return 0


def _checked(args, runs):
    """The run's info, ready to bundle; FERError (one line) for anything that would not load."""
    from ferkit.runs import legacy
    from models.registry import PREPROCESS_KEYS

    parts = args.name.split("/")
    if len(parts) > 2 or any(not re.fullmatch(r"[A-Za-z0-9_.-]+", p) or p in (".", "..") for p in parts) \
            or (len(parts) == 2 and parts[0] != "ensemble"):
        raise FERError(f"--name {args.name!r}: use letters, digits, '-', '_' or '.' (one folder name, "
                       "or ensemble/NAME)")
    info = runs.read_info(args.run_dir)  # FERError unless a run folder with a readable run.json
    for name in (info.get("weights", runs.WEIGHTS_FILE), runs.HISTORY_FILE):
        if not os.path.isfile(os.path.join(args.run_dir, name)):
            raise FERError(f"{args.run_dir}: no {name} (did the run finish an epoch?)")
    preprocess = info.get("preprocess") or {}
    retired = sorted(k for k in preprocess if k not in PREPROCESS_KEYS)
    used = [k for k in retired if preprocess[k]]
    if used:
        raise FERError(f"{args.run_dir}: trained with {' and '.join(used)} preprocessing, which this version "
                       "removed; retrain it")
    for key in retired:  # switched off (0) in this run: leave no trace of options that are gone
        preprocess.pop(key)
        (info.get("args") or {}).pop(key, None)
    legacy.drop_old_entries(info)
    return info


def to_float16(src, dst):
    """The HDF5 weights file `src` with every float32 array stored as float16, written atomically."""
    import h5py
    import numpy as np

    with atomic_path(dst) as tmp, h5py.File(src, "r") as fin, h5py.File(tmp, "w") as fout:
        for key, value in fin.attrs.items():
            fout.attrs[key] = value

        def copy(name, obj):
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                if isinstance(data, np.ndarray) and data.dtype == np.float32:
                    data = data.astype(np.float16)
                fout.create_dataset(name, data=data)
            else:
                group = fout.require_group(name)
                for key, value in obj.attrs.items():
                    group.attrs[key] = value

        fin.visititems(copy)


def _labelled(csv_path):
    import data

    ds = data.load_csv(csv_path)
    if ds.labels is None:
        raise FERError(f"--check-csv {csv_path}: no label column")
    return ds


def compare(float32_run, float16_run, ds):
    """Accuracy of both weight files on a labelled data set, and how often they agree."""
    import numpy as np

    from ferkit.infer import predict_batches
    from ferkit.runs.load import load_run

    p32, p16 = (predict_batches(load_run(run)[0], ds.images).argmax(1)
                for run in (float32_run, float16_run))
    return {"float32_accuracy": float(np.mean(p32 == ds.labels)), "float16_accuracy": float(np.mean(p16 == ds.labels)),
            "agreement": float(np.mean(p32 == p16))}


if __name__ == "__main__":
    sys.exit(main())
