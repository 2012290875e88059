#!/usr/bin/env python
"""Confusion matrix and per-class precision/recall/F1 of a trained run on a labelled CSV.

    python plot_confusion.py --data public_test.csv.gz --out confusion.png
    python plot_confusion.py --data public_test.csv.gz --tta --weights runs/a --weights runs/b --json

The matrix is row-normalized (each true class sums to 1) with the counts in the cells; the
per-class table and the three most confused pairs are printed too. --json writes the metrics
beside the image (or to the file named).
"""
import argparse
import sys

from ferbase.cli import run_main
from ferbase.quiet import configure_tensorflow


def build_parser():
    p = argparse.ArgumentParser(prog="plot_confusion.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", metavar="CSV", help="labelled CSV (label,feature or Kaggle layout); required")
    p.add_argument("--usage", help="Kaggle fer2013.csv: only rows of this Usage (e.g. PrivateTest)")
    p.add_argument("--weights", action="append", metavar="RUN_DIR",
                   help="run folder or .weights.h5 (repeat for an ensemble; default: newest run, else the bundled model)")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: average 10 flipped/shifted views")
    p.add_argument("--out", default="confusion.png", metavar="FILE", help="image to write (.png, .pdf, .svg, ...)")
    p.add_argument("--json", nargs="?", const="", default=None, metavar="FILE",
                   help="also write the metrics as JSON (default file: beside --out, .json)")
    p.add_argument("--batch-size", type=int, default=256)
    return p


def main(argv=None):
    configure_tensorflow()  # before TensorFlow loads
    return run_main(lambda: plot(build_parser().parse_args(argv)))


def evaluate(nets, ds, tta=False, batch_size=256):
    """(metrics dict, predicted classes, probabilities) of `nets` (ensembled) on a labelled Dataset."""
    import data
    from ferkit.figures import confusion_metrics
    from ferkit.inference import predict_proba

    probs = predict_proba(nets, ds.images, tta=tta, batch_size=batch_size)
    pred = probs.argmax(axis=1)
    return confusion_metrics(ds.labels, pred, data.CLASS_NAMES), pred, probs


def plot(args):
    import data
    from ferkit import figures
    from ferbase.atomic import write_json
    from ferbase.errors import FERError
    from ferkit.inference import load_runs

    if not args.data:
        raise FERError("--data CSV is required: the labelled file to evaluate on")
    figures.check_format(args.out)
    ds = data.load_csv(args.data, usage=args.usage)
    if ds.labels is None:
        raise FERError(f"{args.data}: no label column; a confusion matrix needs labelled data")
    loaded = load_runs(args.weights)
    nets = [m for m, _ in loaded]
    names = ", ".join(f"{info['model']} ({info['run_dir']})" for _, info in loaded)
    print(f"model: {names}" + (" with TTA" if args.tta else ""))
    m, _, _ = evaluate(nets, ds, args.tta, args.batch_size)
    m["runs"] = [info["run_dir"] for _, info in loaded]
    m["tta"] = bool(args.tta)
    m["data"] = args.data
    print("\n".join(figures.metrics_text(m)))
    title = " + ".join(info["model"] for _, info in loaded) + (" (TTA)" if args.tta else "")
    figures.save(figures.confusion_figure(m, title), args.out)
    print(f"wrote {args.out}")
    if args.json is not None:
        path = args.json or figures.derived_path(args.out, "", ".json")
        write_json(path, m)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
