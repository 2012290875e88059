#!/usr/bin/env python
"""Copy a finished run into models/pretrained/<name>/ with its weights stored as float16.

    python scripts/bundle_pretrained.py runs/fernet-w32 --name fernet

float16 halves the file; predictions are checked against the float32 weights on --check-csv.
"""
import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import h5py  # noqa: E402
import numpy as np  # noqa: E402

from ferbase.atomic import atomic_path, write_json  # noqa: E402
from models import runs  # noqa: E402


def to_float16(src, dst):
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--name", required=True, help="folder name under models/pretrained/")
    p.add_argument("--check-csv", help="labelled CSV: compare float16 and float32 predictions on it")
    args = p.parse_args(argv)
    dest = os.path.join(runs.PRETRAINED_DIR, args.name)
    os.makedirs(dest, exist_ok=True)
    info = runs.read_info(args.run_dir)
    info["bundled_from"] = os.path.relpath(args.run_dir)
    info["weights_dtype"] = "float16"
    to_float16(os.path.join(args.run_dir, runs.WEIGHTS_FILE), os.path.join(dest, runs.WEIGHTS_FILE))
    shutil.copyfile(os.path.join(args.run_dir, runs.HISTORY_FILE), os.path.join(dest, runs.HISTORY_FILE))
    write_json(os.path.join(dest, runs.RUN_FILE), info)
    size = os.path.getsize(os.path.join(dest, runs.WEIGHTS_FILE)) / 1e6
    print(f"bundled {args.run_dir} -> {dest} ({size:.1f} MB of float16 weights)")
    if args.check_csv:
        import data
        from models import load_run

        ds = data.load_csv(args.check_csv)
        full, _ = load_run(args.run_dir)
        half, _ = load_run(dest)
        p32 = full.predict(ds.images, batch_size=256, verbose=0).argmax(1)
        p16 = half.predict(ds.images, batch_size=256, verbose=0).argmax(1)
        print(json.dumps({"float32_accuracy": float(np.mean(p32 == ds.labels)),
                          "float16_accuracy": float(np.mean(p16 == ds.labels)),
                          "agreement": float(np.mean(p32 == p16))}))


if __name__ == "__main__":
    main()
