#!/usr/bin/env python
"""Accuracy of each run and of their ensembles on one labelled CSV, plain and with --tta.

    python benchmarks/ensemble.py ../shared/data/fer2013/public_test.csv.gz models/pretrained/*

Each run's softmax is computed once (plain and over the 10 TTA views, ferkit/infer.py) and
cached beside --cache, then every subset of two or more runs is scored by averaging them, as
`predict.py --weights A --weights B` does. Prints one line per run and per ensemble, best last.
For choosing members, score on a split held out from training, not on the file you report.
"""
import itertools
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from ferkit.cli import Parser, run_main  # noqa: E402
from ferkit.backend import configure_tensorflow  # noqa: E402


def build_parser():
    p = Parser(prog="ensemble.py", description=__doc__.split("\n\n")[0])
    p.add_argument("csv", help="labelled CSV (label,feature), plain or .gz")
    p.add_argument("runs", nargs="+", help="run folders (or bundled models)")
    p.add_argument("--cache", default=".cache/ensemble", help="folder for the cached probabilities")
    p.add_argument("--max-size", type=int, default=4, help="largest ensemble scored")
    return p


def main(argv=None):
    return run_main(lambda: score(build_parser().parse_args(argv)))


def score(args):
    configure_tensorflow()
    import data
    from ferkit.infer import predict_proba
    from ferkit.runs.load import load_run

    ds = data.load_csv(args.csv)
    os.makedirs(args.cache, exist_ok=True)
    probs = {}
    for run in args.runs:
        key = os.path.join(args.cache, f"{os.path.basename(os.path.normpath(run))}-"
                                       f"{os.path.basename(args.csv).split('.')[0]}.npz")
        if not os.path.exists(key):
            model, _ = load_run(run)
            t = time.time()
            plain = predict_proba(model, ds.images)
            t_plain = time.time() - t
            tta = predict_proba(model, ds.images, tta=True)
            np.savez(key, plain=plain, tta=tta, t_plain=t_plain)
        probs[run] = np.load(key)
        p = probs[run]
        print(f"{run}: {_acc(p['plain'], ds.labels):.2%} plain, {_acc(p['tta'], ds.labels):.2%} tta "
              f"({float(p['t_plain']):.1f} s for {len(ds)} faces plain on this CPU)")
    for k in range(2, min(args.max_size, len(args.runs)) + 1):
        for members in itertools.combinations(args.runs, k):
            plain = np.mean([probs[m]["plain"] for m in members], axis=0)
            tta = np.mean([probs[m]["tta"] for m in members], axis=0)
            print(f"ensemble {' + '.join(os.path.basename(os.path.normpath(m)) for m in members)}: "
                  f"{_acc(plain, ds.labels):.2%} plain, {_acc(tta, ds.labels):.2%} tta")
    return 0


def _acc(p, labels):
    return float(np.mean(p.argmax(1) == labels))


if __name__ == "__main__":
    sys.exit(main())
