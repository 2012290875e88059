#!/usr/bin/env python
"""Confusion matrix and per-class precision/recall/F1 of a trained run on a labelled CSV.

    python plot_confusion.py --data public_test.csv.gz --out confusion.png
    python plot_confusion.py --data public_test.csv.gz --tta --weights runs/a --weights runs/b --json

The image is an A4 page: the matrix in percent of each true class (each row sums to 100%) with
the counts below, the per-class table and the three most confused pairs; scikit-learn's
classification_report and those pairs are printed too. --json writes the metrics beside the image (or to the file named).
"""
import os
import sys

from ferkit.cli import Parser, add_data, add_usage, add_weights, positive_int, run_main
from ferkit.backend import configure_tensorflow


def build_parser():
    p = Parser(prog="plot_confusion.py", description=__doc__.split("\n\n")[0])
    add_data(p, "labelled CSV (label,feature or Kaggle layout)", required=True)
    add_usage(p)
    add_weights(p, ensemble=True)
    p.add_argument("--tta", action="store_true", help="test-time augmentation: average 10 flipped/shifted views")
    p.add_argument("--out", default="confusion.png", metavar="FILE", help="image to write (.png, .pdf, .svg, ...)")
    p.add_argument("--json", nargs="?", const="", default=None, metavar="FILE",
                   help="also write the metrics as JSON (without FILE: beside --out, .json)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="images per prediction batch")
    return p


def main(argv=None):
    configure_tensorflow()  # before TensorFlow loads
    return run_main(lambda: plot(build_parser().parse_args(argv)))


def check_args(args):
    """Everything refused before TensorFlow loads: (outputs, the labelled Dataset)."""
    import data
    from ferkit.errors import FERError
    from ferkit import preflight
    from ferkit.report import figures

    figures.check_format(args.out)
    outputs = [args.out]
    if args.json is not None:
        outputs.append(args.json or figures.derived_path(args.out, "", ".json"))
    derived = outputs[1:] if args.json == "" else []  # the .json beside --out: never over a user's file
    preflight.check(outputs[:1] if derived else outputs, [args.data], args.weights or [], usage=args.usage,
                    derived=derived)
    ds = data.load_csv(args.data, usage=args.usage)
    if ds.labels is None:
        raise FERError(f"{args.data}: no label column; a confusion matrix needs labelled data")
    return outputs, ds


def plot(args):
    outputs, ds = check_args(args)
    # Keras (and TensorFlow) load here, after the checks: configure_tensorflow ran first.
    from ferkit.files import write_json
    from ferkit.infer import model_line
    from ferkit.report import figures
    from ferkit.report.evaluate import classification_text, evaluate, load_models

    loaded = load_models(args.weights, outputs=outputs)
    print(model_line([info for _, info in loaded], args.tta))
    ev = evaluate([m for m, _ in loaded], ds, args.tta, args.batch_size)
    m = {**ev.metrics, "runs": [info["run_dir"] for _, info in loaded], "tta": bool(args.tta), "data": args.data}
    print(f"accuracy {m['accuracy']:.4f} on {m['n']} images; macro F1 {m['macro_f1']:.4f}")
    print(classification_text(ev, ds))
    from ferkit.report.pages import repo_path

    title = ("Confusion matrix: " + " + ".join(f"{info['model']} ({repo_path(info['run_dir'])})" for _, info in loaded)
             + (" with TTA" if args.tta else ""))
    figures.save(figures.confusion_figure(m, title, data_name=os.path.basename(args.data)), outputs[0])
    print(f"wrote {outputs[0]}")
    if len(outputs) > 1:
        write_json(outputs[1], m)
        print(f"wrote {outputs[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
