#!/usr/bin/env python
"""Saliency maps: which pixels decide the network's answer, how faithful each method's maps are,
and the average map of each class.

    python saliency.py --data public_test.csv.gz --out saliency.png                # all methods
    python saliency.py --data public_test.csv.gz --method gradcam --layer conv2d_5 --per-class 3
    python saliency.py --data public_test.csv.gz --evaluate --out-csv faithfulness.csv
    python saliency.py --data public_test.csv.gz --class-average --out class-average.png

Figure: rows are faces, --per-class of each (true) class, correct and wrong predictions mixed;
columns the face, then each method's map over it, each scaled to its own 99.5th percentile. A
face without positive Grad-CAM evidence shows its negative evidence, and its panel says so.
--evaluate prints the method x metric table (deletion and insertion AUC against random and
centre-prior orders, rank correlation with the maps of a re-initialized network) on --faces
faces; --class-average draws, per class, the mean map over correctly classified faces. How to
read them, and the measurements that chose the defaults: docs/EXPLAIN.md.
"""
import sys

from ferkit.cli import Parser, add_data, add_usage, add_weights, positive_float, positive_int, run_main, seed
from ferkit.backend import configure_tensorflow

# = ferkit.explain.METHODS and DEFAULT_METHOD, which load Keras; tests check they agree
METHOD_CHOICES = ("vanilla", "smoothgrad", "gradcam", "ig", "all")
DEFAULT_METHOD = "smoothgrad"
PER_METHOD = "default: each method's own, ferkit.explain.DEFAULT_SETTINGS, chosen by --evaluate (docs/EXPLAIN.md)"


def build_parser():
    p = Parser(prog="saliency.py", description=__doc__.split("\n\n")[0])
    add_data(p, "CSV to take faces from, labelled or not (labelled for --class-average)", required=True)
    add_usage(p)
    add_weights(p)
    p.add_argument("--method", choices=METHOD_CHOICES,
                   help=f"explanation method, or all four (default: all for the figure and --evaluate, "
                        f"{DEFAULT_METHOD} for --class-average: the most faithful by --evaluate, docs/EXPLAIN.md)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--evaluate", action="store_true",
                      help="print the faithfulness table of the methods instead of drawing maps")
    mode.add_argument("--class-average", action="store_true",
                      help="draw each class's mean map over correctly classified faces (needs labels)")
    p.add_argument("--per-class", type=positive_int, metavar="N",
                   help="faces per class (default: 2 for the figure, 40 for --class-average)")
    p.add_argument("--faces", type=positive_int, default=80, metavar="N", help="--evaluate: faces measured")
    p.add_argument("--curve-steps", type=positive_int, default=16, metavar="K",
                   help="--evaluate: points of the deletion and insertion curves")
    p.add_argument("--patch", type=int, default=4, metavar="PX",
                   help="--evaluate: side of the pixel blocks removed together (1, 2, 3, 4, 6, 8...: divides 48)")
    p.add_argument("--no-randomization", action="store_true",
                   help="--evaluate: skip the model-randomization check (halves the time)")
    p.add_argument("--out-csv", metavar="FILE", help="--evaluate: also write the table as CSV")
    p.add_argument("--layer", metavar="NAME",
                   help="Grad-CAM layer (default: the last feature map of at least 6x6; docs/EXPLAIN.md)")
    p.add_argument("--target", choices=["pred", "true"], default="pred",
                   help="class whose score is explained: the predicted or the labelled one")
    p.add_argument("--samples", type=positive_int, default=25, metavar="N",
                   help="noisy (SmoothGrad) or shifted (gradient, with --jitter) copies per face")
    p.add_argument("--sigma", type=positive_float, metavar="F",
                   help=f"SmoothGrad noise, as a fraction of the pixel range 0..255 ({PER_METHOD})")
    p.add_argument("--steps", type=positive_int, default=50, metavar="N", help="integrated-gradients steps")
    p.add_argument("--jitter", type=int, metavar="PX",
                   help=f"average gradients over random shifts of up to PX pixels; 0: the textbook maps ({PER_METHOD})")
    p.add_argument("--seed", type=seed, default=0, help="seed of the face choice, noise and shifts (0..2**32-1)")
    p.add_argument("--out", default="saliency.png", metavar="FILE", help="image to write (not with --evaluate)")
    return p


def main(argv=None):
    configure_tensorflow(input_gradients=True)  # before TensorFlow loads
    return run_main(lambda: run(build_parser().parse_args(argv)))


def check_args(args):
    """Everything refused before TensorFlow loads; returns the loaded Dataset."""
    import data
    from ferkit.errors import FERError
    from ferkit import preflight
    from ferkit.report import figures

    if args.jitter is not None and not 0 <= args.jitter <= 23:
        raise FERError(f"--jitter {args.jitter}: a shift of 0..23 pixels")
    side = data.IMAGE_SIZE
    if args.patch < 1 or side % args.patch:
        divisors = ", ".join(str(d) for d in range(1, side + 1) if side % d == 0)
        raise FERError(f"--patch {args.patch}: must divide {side} ({divisors})")
    if args.out_csv and not args.evaluate:
        raise FERError("--out-csv needs --evaluate (it writes the faithfulness table)")
    outputs = [args.out_csv] if args.evaluate else [args.out]
    outputs = [o for o in outputs if o]
    if not args.evaluate:
        figures.check_format(args.out)
    preflight.check(outputs, [args.data], [args.weights], usage=args.usage)
    ds = data.load_csv(args.data, usage=args.usage)
    if (args.target == "true" or args.class_average) and ds.labels is None:
        what = "--class-average needs" if args.class_average else "--target true needs"
        raise FERError(f"{args.data}: no label column, so there is no true class to explain ({what} one); "
                       "use a labelled file" + ("" if args.class_average else " or --target pred"))
    return ds, outputs


def _methods(args, model, default="all"):
    """The method names to run; Grad-CAM left out (with a note) when the model has no layer for it."""
    from ferkit import explain
    from ferkit.errors import FERError

    name = args.method or default
    methods = list(explain.METHODS) if name == "all" else [name]
    if "gradcam" in methods and args.layer is None and name == "all":
        try:
            explain.gradcam_layer(model)
        except FERError as e:
            print(f"note: skipping Grad-CAM: {e}", file=sys.stderr)
            methods.remove("gradcam")
    if args.layer is not None and "gradcam" in methods:
        explain.get_map_layer(model, args.layer)  # fail before the slow part
    return methods


def _where(info):
    """The run folder as the title shows it: relative to the working folder when inside it."""
    import os

    rel = os.path.relpath(info["run_dir"])
    return info["run_dir"] if rel.startswith("..") else rel


def _options(args):
    """The methods' options: those given on the command line over ferkit.explain.DEFAULT_SETTINGS."""
    from ferkit import explain

    return {"layer": args.layer, "samples": args.samples, "steps": args.steps, "jitter": args.jitter,
            "sigma": args.sigma, "settings": explain.DEFAULT_SETTINGS}


def _settings_text(args, methods):
    """The settings each method ran with (ferkit.explain.describe_settings)."""
    from ferkit import explain

    return explain.describe_settings(methods, {"jitter": args.jitter, "sigma": args.sigma})


def run(args):
    ds, outputs = check_args(args)
    # Keras (and TensorFlow) load here, after the checks: configure_tensorflow ran first.
    from ferkit.infer import model_line
    from ferkit.report.evaluate import load_models

    model, info = load_models([args.weights], outputs=outputs)[0]
    print(model_line([info]), flush=True)
    if args.evaluate:
        return evaluate(args, ds, model)
    if args.class_average:
        return class_average(args, ds, model, info)
    return figure(args, ds, model, info)


def figure(args, ds, model, info):
    from ferkit.report import figures
    from ferkit.report.evaluate import explain_examples
    from ferkit.report.faithfulness import saliency_with_notes

    methods = _methods(args, model)
    faces = explain_examples(model, ds, methods, args.per_class or 2, args.target, seed=args.seed, **_options(args))
    title = (f"{info['model']} ({_where(info)}): maps explain the "
             f"{'predicted' if args.target == 'pred' else 'true'} class"
             + (f"; {_settings_text(args, methods)}" if _settings_text(args, methods) else ""))
    fig, n_empty = saliency_with_notes(model, faces, methods, title, args.layer)
    figures.save(fig, args.out)
    empty = f"; {n_empty} Grad-CAM maps empty, negative evidence shown" if n_empty else ""
    print(f"wrote {args.out}: {len(faces.rows)} faces x {', '.join(c[0] for c in faces.columns)}{empty}")
    return 0


def evaluate(args, ds, model):
    import csv
    import time

    import numpy as np

    from ferkit import explain
    from ferkit.files import open_output
    from ferkit.infer import predict_proba

    rng = np.random.default_rng(args.seed)
    rows = np.sort(rng.permutation(len(ds))[:args.faces])
    x = ds.images[rows]
    probs = predict_proba(model, x)
    classes = probs.argmax(axis=1) if args.target == "pred" else ds.labels[rows]
    methods = _methods(args, model)
    start = time.perf_counter()
    table = explain.evaluate_methods(model, x, classes, methods, curve_steps=args.curve_steps, seed=args.seed, patch=args.patch,
                                     randomized=False if args.no_randomization else None, **_options(args))
    layer = args.layer or (explain.gradcam_layer(model) if "gradcam" in methods else None)
    print(f"faithfulness on {len(x)} faces of {args.data} (rows chosen with seed {args.seed}), explaining the "
          f"{'predicted' if args.target == 'pred' else 'true'} class; curves of {args.curve_steps} steps in "
          f"{args.patch}x{args.patch} blocks; randomization: "
          + ("skipped" if args.no_randomization else "full (every layer re-initialized)")
          + (f"; Grad-CAM at {layer}" if layer else "") + f"; {_settings_text(args, methods)}")
    print(explain.format_table(table))
    print(f"{time.perf_counter() - start:.0f} s")
    if args.out_csv:
        keys = [k for k, _, _ in explain.COLUMNS] + ["n"]
        with open_output(args.out_csv, newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
            w.writeheader()
            for r in table:
                w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in keys})
        print(f"wrote {args.out_csv}")
    return 0


def class_average(args, ds, model, info):
    from ferkit import explain
    from ferkit.report import figures
    from ferkit.report.faithfulness import class_average_figure

    methods = _methods(args, model, default=DEFAULT_METHOD)
    per_class = args.per_class or 40
    avg = explain.class_averages(model, ds.images, ds.labels, methods, per_class=per_class, seed=args.seed,
                                 **_options(args))
    titles = {}
    for m in methods:
        titles[m] = explain.METHODS[m][0] + (f" ({args.layer or explain.gradcam_layer(model)})" if m == "gradcam"
                                             else "")
    title = (f"{info['model']} ({_where(info)}): mean map per class over up to {per_class} correctly classified "
             "faces, each map normalized to sum 1, over the mean of those faces")
    figures.save(class_average_figure(avg, titles, title), args.out)
    print(f"wrote {args.out}: class averages of {', '.join(titles.values())} over "
          f"{', '.join(str(int(n)) for n in avg.counts)} faces")
    return 0


if __name__ == "__main__":
    sys.exit(main())
