#!/usr/bin/env python
"""Predict expressions for a FER2013 CSV and write a submission file `id,label`.

    python predict.py test.csv.gz out.csv                       # newest run under runs/, else the bundled model
    python predict.py test.csv.gz out.csv --weights runs/cnn3-20261127-120000
    python predict.py public_test.csv.gz out.csv --tta --weights runs/a --weights runs/b   # TTA + ensemble

Rows keep the input's order; ids come from the file's id column, else they are 0..N-1. When
the input has labels, the accuracy is printed too. The input is read in chunks, so memory
stays flat however long it is; the output appears only when it is complete.
"""
import argparse
import sys
import time

from ferbase.cli import run_main
from ferbase.quiet import configure_tensorflow


def build_parser():
    p = argparse.ArgumentParser(prog="predict.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("test_csv", help="CSV with id,feature or label,feature (or Kaggle fer2013.csv), plain or .gz")
    p.add_argument("out_csv", help="where to write id,label")
    p.add_argument("--weights", action="append", metavar="RUN_DIR",
                   help="run folder or .weights.h5 (repeat for an ensemble; default: newest run, "
                        "else the bundled model)")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: average 10 flipped/shifted views")
    p.add_argument("--usage", help="Kaggle fer2013.csv: only rows of this Usage (e.g. PrivateTest)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--chunk-rows", type=int, default=8192, help="rows read and predicted at a time")
    p.add_argument("--probs", action="store_true", help="also write each class's probability")
    return p


def main(argv=None):
    configure_tensorflow()  # before TensorFlow loads
    return run_main(lambda: predict(build_parser().parse_args(argv)))


def predict(args):
    import numpy as np

    import data
    from ferbase.atomic import atomic_open
    from ferbase.errors import FERError
    from ferkit.inference import load_runs, predict_proba

    if args.chunk_rows < 1 or args.batch_size < 1:
        raise FERError("--chunk-rows and --batch-size must be positive")
    t0 = time.time()
    loaded = load_runs(args.weights)
    nets = [m for m, _ in loaded]
    names = ", ".join(f"{info['model']} ({info['run_dir']})" for _, info in loaded)
    print(f"model: {names}" + (" with TTA" if args.tta else ""), flush=True)
    correct = labelled = rows = 0
    with atomic_open(args.out_csv, "w", newline="") as out:
        out.write("id,label" + "".join(f",{c}" for c in data.CLASS_NAMES) * args.probs + "\n")
        for chunk in data.iter_csv(args.test_csv, chunk_rows=args.chunk_rows, usage=args.usage):
            probs = predict_proba(nets, chunk.images, tta=args.tta, batch_size=args.batch_size)
            pred = probs.argmax(axis=1)
            ids = chunk.output_ids(offset=rows)
            if args.probs:
                lines = [f"{i},{p}," + ",".join(f"{v:.5f}" for v in pr) for i, p, pr in zip(ids, pred, probs)]
            else:
                lines = [f"{i},{p}" for i, p in zip(ids, pred)]
            out.write("\n".join(lines) + "\n")
            rows += len(chunk)
            if chunk.labels is not None:
                correct += int(np.sum(pred == chunk.labels))
                labelled += len(chunk)
    msg = f"wrote {rows} predictions to {args.out_csv} in {time.time() - t0:.1f} s"
    if labelled:
        msg += f"; accuracy {correct / labelled:.4f} ({correct}/{labelled})"
    print(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
