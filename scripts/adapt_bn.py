#!/usr/bin/env python
"""Adapt a run's BatchNormalization statistics to unlabelled target images (AdaBN) and save the
result as a new run folder.

    python scripts/adapt_bn.py runs/fernet-blur ../shared/data/fer2013/test.csv.gz --out runs/fernet-blur-adabn

Only BatchNorm moving means and variances change (fer.inference.adapt_batchnorm); no labels are
read. The new run.json records the target file under "bn_adapted_on". --test-blur first sets the
sigma of the run's inference-only blur (models/preprocess.py; it plays no part in training, so it
can be chosen after it, e.g. from `python benchmarks/domain_shift.py`, which uses no labels).
"""
import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fer.cli import run_main  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("target_csv", help="images of the target domain (labels, if any, are ignored)")
    p.add_argument("--out", required=True, help="new run folder")
    p.add_argument("--passes", type=int, default=2, help="passes over the target images (0: no adaptation)")
    p.add_argument("--test-blur", type=float, metavar="SIGMA",
                   help="set the run's inference-only blur to SIGMA pixels before adapting (0: none)")
    p.add_argument("--weights", metavar="FILE", help="weights file to start from (default: the run's best)")
    p.add_argument("--val", metavar="CSV", help="labelled CSV: record the adapted model's accuracy on it as val_accuracy")
    args = p.parse_args(argv)
    return run_main(lambda: adapt(args))


def adapt(args):
    import data
    from fer.atomic import write_json
    from fer.errors import FERError
    from fer.inference import adapt_batchnorm
    from models import load_run, runs

    if os.path.exists(os.path.join(args.out, runs.RUN_FILE)):
        raise FERError(f"{args.out}: already holds a run")
    model, info = load_run(args.run_dir, weights_file=args.weights)
    if args.test_blur is not None:
        info["preprocess"] = {**(info.get("preprocess") or {}), "test_blur": args.test_blur}
        weights = model.get_weights()
        model = runs.build_from_info(info)  # the blur has no weights, so the rest carries over
        model.set_weights(weights)
    target = data.load_csv(args.target_csv)
    val = data.load_csv(args.val) if args.val else None
    before = _accuracy(model, val) if val else None
    n = adapt_batchnorm(model, target.images, passes=args.passes) if args.passes > 0 else 0
    os.makedirs(args.out, exist_ok=True)
    runs.save_weights(model, os.path.join(args.out, runs.WEIGHTS_FILE))
    history = os.path.join(info["run_dir"], runs.HISTORY_FILE)
    if os.path.exists(history):
        shutil.copyfile(history, os.path.join(args.out, runs.HISTORY_FILE))
    info = {k: v for k, v in info.items() if k != "run_dir"}
    if n:
        info["bn_adapted_on"] = {"file": os.path.basename(args.target_csv), "rows": len(target),
                                 "passes": args.passes, "from_run": os.path.relpath(args.run_dir),
                                 "from_weights": os.path.relpath(args.weights) if args.weights else runs.WEIGHTS_FILE}
    info["weights"] = runs.WEIGHTS_FILE
    if val:
        info["val_accuracy_before_adaptation"] = before
        info["val_accuracy"] = _accuracy(model, val) if n else before  # unchanged model: no second pass
        print(f"{args.val}: accuracy {before:.4f} before adaptation, {info['val_accuracy']:.4f} after")
    write_json(os.path.join(args.out, runs.RUN_FILE), info)
    print(f"adapted {n} BatchNormalization layers on {len(target)} images of {args.target_csv}; saved {args.out}")
    return 0


def _accuracy(model, ds):
    import numpy as np

    return float(np.mean(model.predict(ds.images, batch_size=256, verbose=0).argmax(axis=1) == ds.labels))


if __name__ == "__main__":
    sys.exit(main())
