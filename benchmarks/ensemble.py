#!/usr/bin/env python
"""Accuracy of each run and of their ensembles on one labelled CSV, plain and with --tta.

    python benchmarks/ensemble.py ../shared/data/fer2013/public_test.csv.gz models/pretrained/*

Each run's softmax is computed once (plain and over the 10 TTA views, ferkit/infer.py) and
cached beside --cache, then every subset of two or more runs is scored by averaging them, as
`predict.py --weights A --weights B` does. Prints one line per run and per ensemble.
For choosing members, score on a split held out from training, not on the file you report:
`--held-out` scores the stratified tenth of the training CSV that the runs held out themselves
(their run.json's --val-split, and --split-seed or --seed), and refuses runs that held out different faces.

    python benchmarks/ensemble.py ../shared/data/fer2013/train.csv.gz runs/long/* --held-out
"""
import hashlib
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
    p.add_argument("--held-out", action="store_true",
                   help="CSV is the runs' training CSV: score the split they all held out from it")
    p.add_argument("--pairs", action="store_true",
                   help="for every two runs (plain), the faces each gets right and the other wrong, and "
                        "McNemar's exact p: whether the difference is more than the faces drawn")
    return p


def main(argv=None):
    return run_main(lambda: score(build_parser().parse_args(argv)))


def score(args):
    configure_tensorflow()
    import data
    from ferkit.infer import predict_proba
    from ferkit.errors import FERError
    from ferkit.runs.layout import read_info
    from ferkit.runs.load import load_run

    split = held_out_split(args.runs) if args.held_out else None
    ds = data.load_csv(args.csv)
    if ds.labels is None:
        raise FERError(f"{args.csv}: no label column, nothing to score against")
    tag = os.path.basename(args.csv).split('.')[0]
    if split:
        fraction, seed = split
        _, va = data.stratified_split(ds.labels, fraction, seed=seed)
        for run in args.runs:
            info = read_info(run)
            limited = (info.get("args") or {}).get("train_limit")  # trained on a part of the rest: rows <= the rest
            rows_ok = (info.get("val_rows") == len(va) and info.get("train_rows", 0) <= len(ds) - len(va)) if limited \
                else info.get("train_rows", 0) + info.get("val_rows", 0) == len(ds)
            if not rows_ok:
                raise FERError(f"{args.csv}: {len(ds)} rows, but {run} was trained and validated on "
                               f"{info.get('train_rows')} + {info.get('val_rows')}: not its training CSV")
        ds, tag = data.subset(ds, va), f"{tag}-heldout-{fraction}-{seed}"
        print(f"scoring the {len(ds)} faces of {args.csv} held out by every run (--val-split {fraction}, "
              f"split seed {seed})")
    try:
        os.makedirs(args.cache, exist_ok=True)
    except OSError as e:
        raise FERError(f"--cache {args.cache}: cannot make the folder ({e.strerror})") from None
    probs = {}
    for run in args.runs:
        key = os.path.join(args.cache, f"{os.path.basename(os.path.normpath(run))}-{tag}-{_version(run)}.npz")
        if not os.path.exists(key):
            model, _ = load_run(run)
            t = time.time()
            plain = predict_proba(model, ds.images)
            t_plain = time.time() - t
            tta = predict_proba(model, ds.images, tta=True)
            with open(key + ".part", "wb") as f:  # a run cut short leaves no half file to be read next time
                np.savez(f, plain=plain, tta=tta, t_plain=t_plain)
            os.replace(key + ".part", key)
        probs[run] = np.load(key)
        p = probs[run]
        print(f"{run}: {_acc(p['plain'], ds.labels):.2%} plain, {_acc(p['tta'], ds.labels):.2%} tta "
              f"({float(p['t_plain']):.1f} s for {len(ds)} faces plain on this CPU)")
    if args.pairs:
        print_pairs(args.runs, probs, ds.labels)
    for k in range(2, min(args.max_size, len(args.runs)) + 1):
        for members in itertools.combinations(args.runs, k):
            plain = np.mean([probs[m]["plain"] for m in members], axis=0)
            tta = np.mean([probs[m]["tta"] for m in members], axis=0)
            print(f"ensemble {' + '.join(os.path.basename(os.path.normpath(m)) for m in members)}: "
                  f"{_acc(plain, ds.labels):.2%} plain, {_acc(tta, ds.labels):.2%} tta")
    return 0


def print_pairs(runs, probs, labels):
    """McNemar's exact test on the same faces: only the faces where exactly one run is right tell
    the runs apart; under 'no difference' each is equally likely to be that one (binomial, 1/2)."""
    from scipy.stats import binomtest

    right = {r: probs[r]["plain"].argmax(1) == labels for r in runs}
    for a, b in itertools.combinations(runs, 2):
        only_a, only_b = int(np.sum(right[a] & ~right[b])), int(np.sum(right[b] & ~right[a]))
        p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
        print(f"pair {os.path.basename(os.path.normpath(a))} vs {os.path.basename(os.path.normpath(b))}: "
              f"{(only_a - only_b) / len(labels):+.2%} ({only_a} faces only the first gets right, {only_b} only "
              f"the second), McNemar p = {p:.3f}")


def held_out_split(runs):
    """(val_split, seed) that every run in `runs` held out from its training CSV, or a FERError:
    a run validated on a file of its own, or on another split, has seen these faces."""
    from ferkit.errors import FERError
    from ferkit.runs.layout import read_info, split_seed

    splits = {}
    for run in runs:
        a = read_info(run).get("args") or {}
        if a.get("val") or not a.get("val_split"):
            raise FERError(f"{run}: validated on {a.get('val') or 'no split'}, not on a split held out "
                           "from its training CSV; --held-out needs runs that held one out")
        if a.get("seed") is None:
            raise FERError(f"{run}: its run.json does not say which --seed split its faces")
        splits.setdefault((float(a["val_split"]), int(split_seed(a))), []).append(run)
    if len(splits) > 1:
        (s1, r1), (s2, r2) = list(splits.items())[:2]
        raise FERError(f"{r1[0]} and {r2[0]} held out different faces (--val-split, split seed: {s1[0]}, {s1[1]} "
                       f"against {s2[0]}, {s2[1]}): each was trained on the other's held-out faces")
    return next(iter(splits))


def _version(run):
    """Which weights the cached probabilities are of: runs/ab/x and runs/long/x differ, and so does
    a run before and after it trained on."""
    from ferkit.runs.layout import read_info, weights_path

    weights = weights_path(run, read_info(run))
    stamp = f"{os.path.abspath(weights)}:{os.path.getmtime(weights)}:{os.path.getsize(weights)}"
    return hashlib.sha256(stamp.encode()).hexdigest()[:10]


def _acc(p, labels):
    return float(np.mean(p.argmax(1) == labels))


if __name__ == "__main__":
    sys.exit(main())
