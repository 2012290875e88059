#!/usr/bin/env python
"""Saliency maps: which pixels decide the network's answer, for faces of every class.

    python saliency.py --data public_test.csv.gz --out saliency.png                # all methods
    python saliency.py --data public_test.csv.gz --method gradcam --layer conv2d_5 --per-class 3

Rows are faces: for each class, --per-class faces of that (true) class, correct and wrong
predictions mixed where the file has both. Columns: the face, then each method's map over it
(vanilla gradient, SmoothGrad, Grad-CAM, integrated gradients; see fer/explain.py). Maps explain
the predicted class unless --target true.
"""
import argparse
import sys

from ferbase.cli import run_main
from ferbase.quiet import configure_tensorflow

METHOD_ORDER = ("vanilla", "smoothgrad", "gradcam", "ig")


def build_parser():
    p = argparse.ArgumentParser(prog="saliency.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", metavar="CSV", help="CSV to take faces from (labelled or not); required")
    p.add_argument("--usage", help="Kaggle fer2013.csv: only rows of this Usage")
    p.add_argument("--weights", metavar="RUN_DIR", help="run folder or .weights.h5 (default: newest run, else the bundled model)")
    p.add_argument("--method", choices=METHOD_ORDER + ("all",), default="all")
    p.add_argument("--per-class", type=int, default=2, metavar="N", help="faces per class")
    p.add_argument("--layer", metavar="NAME", help="Grad-CAM layer (default: the last feature map of at least 6x6)")
    p.add_argument("--target", choices=["pred", "true"], default="pred", help="class whose score is explained")
    p.add_argument("--samples", type=int, default=25, help="SmoothGrad noisy copies")
    p.add_argument("--steps", type=int, default=50, help="integrated-gradients steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="saliency.png", metavar="FILE", help="image to write")
    return p


def main(argv=None):
    configure_tensorflow(input_gradients=True)  # before TensorFlow loads
    return run_main(lambda: run(build_parser().parse_args(argv)))


def pick_examples(labels, pred, per_class, seed=0):
    """Indices: for each class, `per_class` faces of that class (by label, or by prediction when
    there are no labels), alternating correct and wrong predictions while both last."""
    import numpy as np

    rng = np.random.default_rng(seed)
    group = pred if labels is None else labels
    chosen = []
    for c in range(7):
        idx = np.flatnonzero(group == c)
        if labels is None:
            chosen += list(rng.permutation(idx)[:per_class])
            continue
        right = list(rng.permutation(idx[pred[idx] == c]))
        wrong = list(rng.permutation(idx[pred[idx] != c]))
        take = []
        while len(take) < per_class and (right or wrong):
            src = right if (len(take) % 2 == 0 and right) or not wrong else wrong
            take.append(src.pop(0))
        chosen += take
    return [int(i) for i in chosen]


def compute_maps(model, images, classes, methods, layer=None, samples=25, steps=50, seed=0):
    """[(column title, maps)] for each method name."""
    from ferkit import explain

    cols = []
    for name in methods:
        if name == "vanilla":
            maps = explain.vanilla_saliency(model, images, classes)
        elif name == "smoothgrad":
            maps = explain.smoothgrad(model, images, classes, samples=samples, seed=seed)
        elif name == "gradcam":
            layer_name = layer or explain.gradcam_layer(model)
            maps = explain.gradcam(model, images, classes, layer=layer_name)
            cols.append((f"Grad-CAM ({layer_name})", maps))
            continue
        else:
            maps = explain.integrated_gradients(model, images, classes, steps=steps)
        cols.append((explain.METHODS[name][0], maps))
    return cols


def saliency_figure_for(model, info, ds, methods, per_class=2, layer=None, target="pred", samples=25, steps=50,
                        seed=0):
    """The saliency grid figure for a loaded run and a Dataset (shared with make_report.py)."""
    import numpy as np

    import data
    from ferkit import explain, figures
    from ferbase.errors import FERError
    from ferkit.inference import predict_proba

    if layer is not None and "gradcam" in methods:
        explain.get_map_layer(model, layer)  # fail before the slow part
    probs = predict_proba(model, ds.images)
    pred = probs.argmax(axis=1)
    idx = pick_examples(ds.labels, pred, per_class, seed)
    if not idx:
        raise FERError(f"{ds.path}: no faces to explain")
    images = ds.images[idx]
    classes = pred[idx] if (target == "pred" or ds.labels is None) else ds.labels[idx]
    cols = compute_maps(model, images, classes, methods, layer, samples, steps, seed)
    names = data.CLASS_NAMES
    titles, colors = [], []
    for i in idx:
        p = f"pred {names[pred[i]]} {probs[i, pred[i]]:.2f}"
        if ds.labels is None:
            titles.append(f"row {i}\n{p}")
            colors.append("black")
        else:
            titles.append(f"true {names[ds.labels[i]]}\n{p}")
            colors.append("green" if pred[i] == ds.labels[i] else "red")
    sup = f"{info['model']} ({info.get('run_dir', '')}): maps explain the {'predicted' if target == 'pred' else 'true'} class"
    fig = figures.saliency_figure(images, cols, titles, colors, suptitle=sup)
    return fig, {"rows": idx, "pred": [int(pred[i]) for i in idx],
                 "methods": [c[0] for c in cols], "explained": [int(c) for c in np.asarray(classes)]}


def run(args):
    import data
    from ferkit import explain, figures
    from ferbase.errors import FERError
    from models import load_run

    if not args.data:
        raise FERError("--data CSV is required: the file to take faces from (e.g. public_test.csv.gz)")
    if args.per_class < 1:
        raise FERError("--per-class must be at least 1")
    figures.check_format(args.out)
    ds = data.load_csv(args.data, usage=args.usage)
    model, info = load_run(args.weights)
    methods = list(METHOD_ORDER) if args.method == "all" else [args.method]
    if "gradcam" in methods and args.layer is None and args.method == "all":
        try:
            explain.gradcam_layer(model)
        except FERError as e:
            print(f"note: skipping Grad-CAM: {e}", file=sys.stderr)
            methods.remove("gradcam")
    fig, meta = saliency_figure_for(model, info, ds, methods, args.per_class, args.layer, args.target,
                                    args.samples, args.steps, args.seed)
    figures.save(fig, args.out)
    print(f"wrote {args.out}: {len(meta['rows'])} faces x {', '.join(meta['methods'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
