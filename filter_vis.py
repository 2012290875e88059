#!/usr/bin/env python
"""What a layer's filters look for: activation-maximization patterns and feature maps of a face.

    python filter_vis.py --out filters.png                                # last conv of >= 6x6
    python filter_vis.py --layer conv2d_3 --filters 32 --data public_test.csv.gz --image 12

The first figure shows, for each filter, the input found by gradient ascent from faint noise
(with jitter and an L2 or total-variation penalty), titled with the filter index and the mean
activation it reaches. With --data, a second figure (--maps-out, default <out>-maps.<ext>)
shows the layer's feature maps for row --image of that file.
"""
import argparse
import sys

from ferbase.cli import run_main
from ferbase.quiet import configure_tensorflow


def build_parser():
    p = argparse.ArgumentParser(prog="filter_vis.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--weights", metavar="RUN_DIR", help="run folder or .weights.h5 (default: newest run, else the bundled model)")
    p.add_argument("--layer", metavar="NAME", help="layer to visualize (default: the last convolution of at least 6x6)")
    p.add_argument("--filters", type=int, default=16, metavar="N", help="visualize the first N filters")
    p.add_argument("--steps", type=int, default=80, help="gradient-ascent steps")
    p.add_argument("--penalty", choices=["l2", "tv"], default="l2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", metavar="CSV", help="CSV to take the face for the feature maps from")
    p.add_argument("--image", type=int, default=0, metavar="CSV_ROW", help="0-based row of --data")
    p.add_argument("--maps", type=int, default=32, help="feature maps shown at most")
    p.add_argument("--out", default="filters.png", metavar="FILE", help="patterns image to write")
    p.add_argument("--maps-out", metavar="FILE", help="feature-maps image (default: <out>-maps.<ext>)")
    return p


def main(argv=None):
    configure_tensorflow(input_gradients=True)  # before TensorFlow loads
    return run_main(lambda: run(build_parser().parse_args(argv)))


def run(args):
    import data
    from ferkit import explain, figures
    from ferbase.errors import FERError
    from models import load_run

    if args.filters < 1 or args.steps < 0:
        raise FERError("--filters must be at least 1 and --steps not negative")
    figures.check_format(args.out)
    maps_out = args.maps_out or figures.derived_path(args.out, "-maps")
    face = None
    if args.data:
        figures.check_format(maps_out)
        ds = data.load_csv(args.data)
        if not 0 <= args.image < len(ds):
            raise FERError(f"--image {args.image}: {args.data} has rows 0..{len(ds) - 1}")
        face = ds.images[args.image]
    elif args.maps_out:
        raise FERError("--maps-out needs --data CSV (the face whose feature maps to show)")
    model, info = load_run(args.weights)
    layer = args.layer or explain.default_filter_layer(model)
    explain.get_map_layer(model, layer)
    pats = explain.filter_patterns(model, layer, filters=args.filters, steps=args.steps, penalty=args.penalty,
                                   seed=args.seed)
    figures.save(figures.patterns_figure(pats, f"{info['model']} layer {layer}: inputs that excite each filter"),
                 args.out)
    gain = ", ".join(f"{int(f)}: {a0:.2f}->{a:.2f}" for f, a0, a in
                     zip(pats.filters[:8], pats.start_activation[:8], pats.activation[:8]))
    print(f"wrote {args.out}: {len(pats.filters)} filters of {layer} (activation from noise -> reached: {gain}"
          f"{', ...' if len(pats.filters) > 8 else ''})")
    if face is not None:
        maps = explain.feature_maps(model, layer, face)
        figures.save(figures.feature_maps_figure(face, maps, layer, args.maps), maps_out)
        print(f"wrote {maps_out}: feature maps of {layer} for row {args.image} of {args.data}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
