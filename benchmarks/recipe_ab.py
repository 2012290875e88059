#!/usr/bin/env python
"""Issue 25's recipe A/B: one line per run of scripts/recipe_ab.sh, best last.

    python benchmarks/recipe_ab.py runs/ab --test ../shared/data/fer2013/public_test.csv.gz

The choice between recipes is made on the held-out tenth of train.csv.gz each run validated on
(its best and last epoch); --test adds the accuracy of each run's kept weights on a file that
played no part in choosing them, which is the figure to report.
"""
import csv
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from ferkit.cli import Parser, run_main  # noqa: E402


def build_parser():
    p = Parser(prog="recipe_ab.py", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run folders, or a folder of them (runs/ab)")
    p.add_argument("--test", metavar="CSV", help="labelled CSV to score each run's kept weights on")
    return p


def main(argv=None):
    return run_main(lambda: summarize(build_parser().parse_args(argv)))


def summarize(args):
    from ferkit.runs.layout import HISTORY_FILE, find_runs, read_info

    folders = sorted({f for root in args.runs for f in find_runs(root)})
    rows = []
    for folder in folders:
        info = read_info(folder)
        history_path = os.path.join(folder, HISTORY_FILE)
        if not os.path.exists(history_path):
            continue
        with open(history_path, newline="") as f:
            history = list(csv.DictReader(f))
        if not history:
            continue
        best = max(history, key=lambda r: float(r["val_accuracy"]))
        last = history[-1]
        row = {"run": os.path.relpath(folder), "epochs": len(history), "status": info.get("status", "?"),
               "minutes": float(last["seconds"]) / 60, "best": float(best["val_accuracy"]),
               "best_epoch": int(best["epoch"]), "last": float(last["val_accuracy"]),
               "train": float(last["accuracy"]), "params": info.get("params")}
        if args.test:
            row["test"] = _test_accuracy(folder, args.test)
        rows.append(row)
    rows.sort(key=lambda r: r["best"])
    w = max([len(r["run"]) for r in rows] + [3])
    print(f"{'run':{w}s} {'epochs':>6s} {'min':>5s} {'held-out best (ep)':>19s} {'last':>7s} {'train':>7s}"
          + (f" {'test':>7s}" if args.test else ""))
    for r in rows:
        print(f"{r['run']:{w}s} {r['epochs']:6d} {r['minutes']:5.0f} {r['best']:12.2%} ({r['best_epoch']:3d})"
              f" {r['last']:7.2%} {r['train']:7.2%}" + (f" {r['test']:7.2%}" if args.test else "")
              + ("" if r["status"] == "done" else f"  [{r['status']}]"))
    return 0


_TEST = {}


def _test_accuracy(folder, path):
    from ferkit.backend import configure_tensorflow

    configure_tensorflow()
    import data
    from ferkit.infer import predict_proba
    from ferkit.runs.load import load_run

    if path not in _TEST:
        _TEST[path] = data.load_csv(path)
    ds = _TEST[path]
    model, _ = load_run(folder)
    return float((predict_proba(model, ds.images).argmax(1) == ds.labels).mean())


if __name__ == "__main__":
    sys.exit(main())
