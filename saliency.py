#!/usr/bin/env python
"""Saliency maps: which pixels decide the network's answer, for faces of every class.

    python saliency.py --data public_test.csv.gz --out saliency.png                # all methods
    python saliency.py --data public_test.csv.gz --method gradcam --layer conv2d_5 --per-class 3

Rows are faces: for each class, --per-class faces of that (true) class, correct and wrong
predictions mixed where the file has both. Columns: the face, then each method's map over it
(gradient, SmoothGrad, Grad-CAM, integrated gradients; see ferkit/explain.py), each scaled to
its own 99.5th percentile (colorbar). Maps explain the predicted class unless --target true
(which needs a labelled file). Gradients are averaged over random shifts of up to --jitter
pixels, which removes the lattice a strided network's sampling grid leaves in raw gradients.
"""
import sys

from ferkit.cli import Parser, add_data, add_usage, add_weights, positive_int, run_main
from ferkit.backend import configure_tensorflow

METHOD_CHOICES = ("vanilla", "smoothgrad", "gradcam", "ig", "all")  # = ferkit.explain.METHODS, which loads Keras


def build_parser():
    p = Parser(prog="saliency.py", description=__doc__.split("\n\n")[0])
    add_data(p, "CSV to take faces from, labelled or not", required=True)
    add_usage(p)
    add_weights(p)
    p.add_argument("--method", choices=METHOD_CHOICES, default="all", help="explanation method, or all four")
    p.add_argument("--per-class", type=positive_int, default=2, metavar="N", help="faces per class")
    p.add_argument("--layer", metavar="NAME", help="Grad-CAM layer (default: the last feature map of at least 6x6)")
    p.add_argument("--target", choices=["pred", "true"], default="pred",
                   help="class whose score is explained: the predicted or the labelled one")
    p.add_argument("--samples", type=positive_int, default=25, metavar="N",
                   help="noisy (SmoothGrad) or shifted (gradient, with --jitter) copies per face")
    p.add_argument("--steps", type=positive_int, default=50, metavar="N", help="integrated-gradients steps")
    p.add_argument("--jitter", type=int, default=8, metavar="PX",
                   help="average gradients over random shifts of up to PX pixels; 0: the textbook maps")
    p.add_argument("--seed", type=int, default=0, help="seed of the face choice, noise and shifts")
    p.add_argument("--out", default="saliency.png", metavar="FILE", help="image to write")
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

    if not 0 <= args.jitter <= 23:
        raise FERError(f"--jitter {args.jitter}: a shift of 0..23 pixels")
    figures.check_format(args.out)
    preflight.check([args.out], [args.data], [args.weights], usage=args.usage)
    ds = data.load_csv(args.data, usage=args.usage)
    if args.target == "true" and ds.labels is None:
        raise FERError(f"{args.data}: no label column, so there is no true class to explain; "
                       "use --target pred or a labelled file")
    return ds


def run(args):
    ds = check_args(args)
    # Keras (and TensorFlow) load here, after the checks: configure_tensorflow ran first.
    from ferkit.errors import FERError
    from ferkit import explain
    from ferkit.report import figures
    from ferkit.report.evaluate import explain_examples, load_models

    model, info = load_models([args.weights], outputs=[args.out])[0]
    methods = list(explain.METHODS) if args.method == "all" else [args.method]
    if "gradcam" in methods and args.layer is None and args.method == "all":
        try:
            explain.gradcam_layer(model)
        except FERError as e:
            print(f"note: skipping Grad-CAM: {e}", file=sys.stderr)
            methods.remove("gradcam")
    if args.layer is not None and "gradcam" in methods:
        explain.get_map_layer(model, args.layer)  # fail before the slow part
    faces = explain_examples(model, ds, methods, args.per_class, args.target, seed=args.seed, layer=args.layer,
                             samples=args.samples, steps=args.steps, jitter=args.jitter)
    title = (f"{info['model']} ({info['run_dir']}): maps explain the "
             f"{'predicted' if args.target == 'pred' else 'true'} class; "
             + (f"gradients averaged over random shifts of up to {args.jitter} px" if args.jitter
                else "raw gradients (no shift averaging)"))
    figures.save(figures.saliency_figure(faces.images, faces.columns, faces.titles, faces.colors, title), args.out)
    print(f"wrote {args.out}: {len(faces.rows)} faces x {', '.join(c[0] for c in faces.columns)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
