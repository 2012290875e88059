#!/usr/bin/env python
"""What a layer's filters look for: activation-maximization patterns and feature maps of a face.

    python filter_vis.py --out filters.png                    # patterns of the last conv of >= 6x6
    python filter_vis.py --layer conv2d_3 --filters 32 --data public_test.csv.gz --image 12

The first figure shows, for each filter of --layer, the input found by gradient ascent from faint
noise (with jitter and an L2 or total-variation penalty), titled with the filter index and the
mean activation it reaches. Dead filters, which the ascent could not take past a tenth of the
layer's strongest activation, are left out and counted in the title (--show-dead keeps them).
With --data, a second figure (--maps-out, default <out>-maps.<ext>)
shows the feature maps of --maps-layer (default: the last layer still 24x24 or finer, where the
face is still recognizable) for row --image of that file, all on one colour scale.
"""
import sys

from ferkit.cli import Parser, add_data, add_usage, add_weights, non_negative_int, positive_int, run_main, seed
from ferkit.backend import configure_tensorflow


def build_parser():
    p = Parser(prog="filter_vis.py", description=__doc__.split("\n\n")[0])
    add_weights(p)
    p.add_argument("--layer", metavar="NAME", help="layer whose filters to visualize (default: the last convolution "
                                                   "of at least 6x6)")
    p.add_argument("--filters", type=positive_int, default=16, metavar="N",
                   help="visualize the first N filters (all of them, with a note, when the layer has fewer)")
    p.add_argument("--steps", type=non_negative_int, default=80, metavar="N",
                   help="gradient-ascent steps (0: the starting noise)")
    p.add_argument("--penalty", choices=["l2", "tv"], default="l2",
                   help="regularizer of the ascent: decay towards grey (l2) or total variation (tv)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the starting noise and jitter (0..2**32-1)")
    p.add_argument("--show-dead", action="store_true",
                   help="draw dead filters too (marked), instead of leaving them out")
    add_data(p, "CSV to take the face for the feature maps from")
    add_usage(p)
    p.add_argument("--image", type=int, metavar="CSV_ROW", help="0-based row of --data (default: 0)")
    p.add_argument("--maps-layer", metavar="NAME",
                   help="layer whose feature maps to show (default: the last one of at least 24x24)")
    p.add_argument("--maps", type=positive_int, default=32, metavar="N", help="feature maps shown at most")
    p.add_argument("--out", default="filters.png", metavar="FILE", help="patterns image to write")
    p.add_argument("--maps-out", metavar="FILE", help="feature-maps image (default: <out>-maps.<ext>)")
    return p


def main(argv=None):
    configure_tensorflow(input_gradients=True)  # before TensorFlow loads
    return run_main(lambda: run(build_parser().parse_args(argv)))


def check_args(args):
    """Everything refused before TensorFlow loads: (outputs, the face for the maps or None)."""
    import data
    from ferkit.errors import FERError
    from ferkit import preflight
    from ferkit.report import figures

    maps_out = args.maps_out or figures.derived_path(args.out, "-maps")
    if args.data is None and (args.maps_out or args.maps_layer or args.image is not None):
        raise FERError("--maps-out, --maps-layer and --image need --data CSV (the face whose feature maps to show)")
    args.image = args.image or 0
    outputs = [args.out] + ([maps_out] if args.data else [])
    for path in outputs:
        figures.check_format(path)
    derived = outputs[1:] if not args.maps_out else []  # the maps beside --out: never over a user's file
    preflight.check(outputs[:1] if derived else outputs, [args.data], [args.weights], usage=args.usage,
                    derived=derived)
    if args.data is None:
        return outputs, None
    ds = data.load_csv(args.data, usage=args.usage)
    if not 0 <= args.image < len(ds):
        raise FERError(f"--image {args.image}: {args.data} has rows 0..{len(ds) - 1}")
    return outputs, ds.images[args.image]


def run(args):
    outputs, face = check_args(args)
    # Keras (and TensorFlow) load here, after the checks: configure_tensorflow ran first.
    from ferkit import explain
    from ferkit.infer import model_line
    from ferkit.report import figures
    from ferkit.report.evaluate import load_models

    model, info = load_models([args.weights], outputs=outputs)[0]
    print(model_line([info]), flush=True)
    layer = explain.get_map_layer(model, args.layer or explain.default_filter_layer(model)).name
    if note := explain.filters_note(model, layer, args.filters):  # more than the layer has: all of them
        print(note, file=sys.stderr)
    maps_layer = explain.get_map_layer(model, args.maps_layer or explain.default_maps_layer(model)).name
    pats = explain.filter_patterns(model, layer, filters=args.filters, steps=args.steps, penalty=args.penalty,
                                   seed=args.seed)
    dead = explain.dead_filters(pats)
    shown = pats if args.show_dead else pats.subset(~dead)
    names = ", ".join(str(int(f)) for f in pats.filters[dead])
    dead_text = (f"{int(dead.sum())} of {len(dead)} filters dead (activation under "
                 f"{explain.DEAD_FRACTION:.0%} of the strongest: {names})" if dead.any() else "no dead filters")
    title = (f"{info['model']} layer {layer}: inputs that excite each filter; {dead_text}"
             + ("" if args.show_dead or not dead.any() else ", left out"))
    if len(shown.filters):
        fig = figures.patterns_figure(shown, title)
        if args.show_dead:
            from ferkit.report.faithfulness import mark_dead
            mark_dead(fig, dead)
    else:
        fig = figures.text_pages(["every filter shown is dead: gradient ascent could not activate any"], title)[0]
    figures.save(fig, outputs[0])
    gain = ", ".join(f"{int(f)}: {a0:.2f}->{a:.2f}" for f, a0, a in
                     zip(pats.filters[:8], pats.start_activation[:8], pats.activation[:8]))
    print(f"wrote {outputs[0]}: {len(shown.filters)} of {len(pats.filters)} filters of {layer}; {dead_text} "
          f"(activation from noise -> reached: {gain}{', ...' if len(pats.filters) > 8 else ''})")
    if face is not None:
        maps = explain.feature_maps(model, maps_layer, face)
        figures.save(figures.feature_maps_figure(face, maps, maps_layer, args.maps), outputs[1])
        print(f"wrote {outputs[1]}: feature maps of {maps_layer} ({'x'.join(map(str, maps.shape))}) for row "
              f"{args.image} of {args.data}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
