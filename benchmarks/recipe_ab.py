#!/usr/bin/env python
"""Issue 25's recipe A/B: one line per run of scripts/recipe_ab.sh, best last.

    python benchmarks/recipe_ab.py runs/ab --test ../shared/data/fer2013/public_test.csv.gz

The choice between recipes is made on the held-out tenth of train.csv.gz each run validated on
(its best and last epoch); --test adds the accuracy of each run's kept weights on a file that
played no part in choosing them, which is the figure to report.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from ferkit.cli import Parser, run_main  # noqa: E402
from ferkit.errors import FERError  # noqa: E402

NEEDED = ("epoch", "seconds", "accuracy", "val_accuracy")  # the history.csv columns the table shows


def build_parser():
    p = Parser(prog="recipe_ab.py", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run folders, or a folder of them (runs/ab)")
    p.add_argument("--test", metavar="CSV", help="labelled CSV to score each run's kept weights on")
    return p


def main(argv=None):
    return run_main(lambda: summarize(build_parser().parse_args(argv)))


def summarize(args):
    from ferkit.runs.layout import read_info

    folders = sorted({f for root in args.runs for f in _runs_under(root)})
    rows = []
    for folder in folders:
        info = read_info(folder)
        history = _history(folder)
        if not history:  # started, no epoch finished yet
            continue
        best = max(history, key=lambda r: r["val_accuracy"])
        last = history[-1]
        row = {"run": os.path.relpath(folder), "epochs": len(history), "status": info.get("status", "?"),
               "minutes": last["seconds"] / 60, "best": best["val_accuracy"],
               "best_epoch": int(best["epoch"]), "last": last["val_accuracy"],
               "train": last["accuracy"], "params": info.get("params")}
        if args.test:
            row["test"] = _test_accuracy(folder, args.test)
        rows.append(row)
    if not rows:
        raise FERError(f"{', '.join(args.runs)}: no run has finished an epoch yet (an empty or missing history.csv)")
    rows.sort(key=lambda r: r["best"])
    w = max([len(r["run"]) for r in rows] + [3])
    print(f"{'run':{w}s} {'epochs':>6s} {'min':>5s} {'held-out best (ep)':>19s} {'last':>7s} {'train':>7s}"
          + (f" {'test':>7s}" if args.test else ""))
    for r in rows:
        print(f"{r['run']:{w}s} {r['epochs']:6d} {r['minutes']:5.0f} {r['best']:12.2%} ({r['best_epoch']:3d})"
              f" {r['last']:7.2%} {r['train']:7.2%}" + (f" {r['test']:7.2%}" if args.test else "")
              + ("" if r["status"] == "done" else f"  [{r['status']}]"))
    return 0


def _runs_under(root):
    """The run folders under `root`; a path that is none (a typo) is one line, not an empty table."""
    from ferkit.runs.layout import RUN_FILE, find_runs

    if not os.path.isdir(root):
        raise FERError(f"{root}: " + ("is a file, expected" if os.path.exists(root) else "no such folder, expected")
                       + " a run folder or a folder of them")
    found = find_runs(root)
    if not found:
        raise FERError(f"{root}: no run folders found under it (folders holding {RUN_FILE})")
    return found


def _history(folder):
    """history.csv as [{column: float}] for NEEDED; a missing column or a value that is not a
    number is one line naming the file (and the line)."""
    from ferkit.runs.layout import HISTORY_FILE, read_history

    path = os.path.join(folder, HISTORY_FILE)
    rows = read_history(folder)
    missing = [c for c in NEEDED if rows and c not in rows[0]]
    if missing:
        hint = "; was the run trained without validation?" if "val_accuracy" in missing else ""
        raise FERError(f"{path}: no {', '.join(missing)} column (the table needs {', '.join(NEEDED)}{hint})")
    out = []
    for line, row in enumerate(rows, start=2):
        values = {}
        for c in NEEDED:
            try:
                values[c] = float(row[c])
            except (TypeError, ValueError):  # not a number, or None: a short row
                problem = "missing (a short row)" if row[c] is None else f"{row[c]!r} is not a number"
                raise FERError(f"{path}, line {line}: {c} {problem}") from None
        out.append(values)
    return out


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
