#!/usr/bin/env python
"""A PDF report of every training run under a folder: architectures, curves, accuracies beside
the course report's published figures, and, for the best run, its confusion matrix, saliency
maps and filters.

    python make_report.py --runs runs --data public_test.csv.gz --out report.pdf

Every number comes from the run folders (run.json, history.csv) or is computed from --data;
the only numbers typed in are the course report's published accuracies, labelled as such.
A run is a BatchNorm ablation when its options have batchnorm false, and an augmentation
ablation when its run.json "augment" is null. A JSON of the report's numbers is written beside
the PDF (--json).
"""
import argparse
import datetime
import os
import shlex
import sys

from ferbase.cli import run_main
from ferbase.quiet import configure_tensorflow

# The course report's published test accuracies (%), shown beside ours and labelled as published.
PUBLISHED = {"cnn1": 60.94, "cnn2": 64.14, "cnn3": 65.25, "no-BN": 56.0, "no-augmentation": 60.0}
BASE_MODELS = ("cnn1", "cnn2", "cnn3", "dnn")
SECTIONS = ("Title", "Accuracy", "Architecture", "Training curves", "Confusion matrix", "Saliency maps", "Filters")


def build_parser():
    p = argparse.ArgumentParser(prog="make_report.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--runs", default="runs", metavar="DIR", help="folder holding run folders (those with run.json)")
    p.add_argument("--data", metavar="CSV", help="labelled test CSV: test accuracy, confusion matrix, saliency")
    p.add_argument("--usage", help="Kaggle fer2013.csv: only rows of this Usage")
    p.add_argument("--out", default="report.pdf", metavar="FILE", help="PDF to write")
    p.add_argument("--json", metavar="FILE", help="the report's numbers as JSON (default: <out>.json)")
    p.add_argument("--per-class", type=int, default=1, help="saliency faces per class")
    p.add_argument("--samples", type=int, default=25, help="SmoothGrad noisy copies")
    p.add_argument("--steps", type=int, default=50, help="integrated-gradients steps")
    p.add_argument("--filters", type=int, default=16, help="filter patterns shown")
    p.add_argument("--filter-steps", type=int, default=80, help="gradient-ascent steps per pattern")
    return p


def main(argv=None):
    configure_tensorflow(input_gradients=True)  # before TensorFlow loads
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_main(lambda: report(build_parser().parse_args(argv), argv))


def find_runs(root):
    """Run folders under root (root itself included), sorted; backup/ folders are skipped."""
    from models import runs

    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "backup" and not d.startswith("."))
        if runs.RUN_FILE in files:
            found.append(folder)
    return sorted(found)


def classify(info):
    """(row label, published key or None, kind) of a run from its run.json."""
    model = info["model"]
    no_bn = (info.get("options") or {}).get("batchnorm") is False
    no_aug = "augment" in info and info["augment"] is None
    label = model + (" no-BN" if no_bn else "") + (" no-augmentation" if no_aug else "")
    if no_bn:
        return label, "no-BN", "BN ablation"
    if no_aug:
        return label, "no-augmentation", "augmentation ablation"
    return label, (model if model in PUBLISHED else None), ("report model" if model in BASE_MODELS else "other")


def _pct(v):
    return "-" if v is None else f"{100 * v:.2f}"


def _read_history(run_dir):
    import csv

    from models import runs

    path = os.path.join(run_dir, runs.HISTORY_FILE)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def architecture_rows(model):
    rows = []
    for layer in model.layers:
        out = getattr(layer, "output", None)
        shape = tuple(out.shape) if out is not None and hasattr(out, "shape") else "?"
        rows.append([layer.name, type(layer).__name__, str(shape).replace("None", "N"), f"{layer.count_params():,}"])
    rows.append(["total", "", "", f"{model.count_params():,}"])
    return rows


def report(args, argv):
    import numpy as np
    from matplotlib.backends.backend_pdf import PdfPages

    import data
    import plot_confusion
    import saliency
    from ferkit import explain, figures
    from ferbase.atomic import atomic_path, write_json
    from ferbase.errors import FERError
    from models import runs

    if not os.path.isdir(args.runs):
        raise FERError(f"{args.runs}: no such folder")
    if os.path.splitext(args.out)[1].lower() != ".pdf":
        raise FERError(f"{args.out}: the report is a PDF; name it .pdf")
    json_path = args.json or figures.derived_path(args.out, "", ".json")
    folders = find_runs(args.runs)
    if not folders:
        raise FERError(f"{args.runs}: no run folders (none holds {runs.RUN_FILE}); train one with train_cnn.py")
    ds = None
    if args.data:
        ds = data.load_csv(args.data, usage=args.usage)
        if ds.labels is None:
            raise FERError(f"{args.data}: no label column; the report needs labelled test data")

    entries = []
    for folder in folders:
        try:
            info = runs.read_info(folder)
        except FERError as e:
            print(f"note: skipping {e}", file=sys.stderr)
            continue
        label, pub_key, kind = classify(info)
        e = {"run_dir": folder, "model": info["model"], "label": label, "kind": kind, "info": info,
             "published_key": pub_key, "published": PUBLISHED.get(pub_key) if pub_key else None,
             "val_accuracy": info.get("val_accuracy"), "test_accuracy": None, "net": None, "metrics": None}
        try:
            e["net"], _ = runs.load_run(folder)
        except FERError as err:
            print(f"note: {err}", file=sys.stderr)
        if ds is not None and e["net"] is not None:
            m, _, _ = plot_confusion.evaluate([e["net"]], ds)
            e["metrics"], e["test_accuracy"] = m, m["accuracy"]
        entries.append(e)
    if not entries:
        raise FERError(f"{args.runs}: no readable run folders")

    # Accuracy table: cnn1, cnn2, cnn3, dnn (a row each even when not trained), then ablations, then others.
    order = {"report model": 0, "BN ablation": 1, "augmentation ablation": 2, "other": 3}
    rows, table = [], []
    for model in BASE_MODELS:
        mine = [e for e in entries if e["kind"] == "report model" and e["model"] == model]
        if not mine:
            rows.append({"label": model, "run_dir": None, "published": PUBLISHED.get(model)})
    ranked = sorted(entries, key=lambda e: (order[e["kind"]], BASE_MODELS.index(e["model"])
                                            if e["model"] in BASE_MODELS else 9, e["run_dir"]))
    rows = sorted(rows + [{"label": e["label"], "run_dir": e["run_dir"], "published": e["published"], "e": e}
                          for e in ranked],
                  key=lambda r: (order[r["e"]["kind"]] if "e" in r else 0,
                                 BASE_MODELS.index(r["label"].split()[0]) if r["label"].split()[0] in BASE_MODELS else 9))
    for r in rows:
        e = r.get("e")
        info = e["info"] if e else {}
        table.append([r["label"], os.path.basename(r["run_dir"]) if r["run_dir"] else "(not trained)",
                      f"{info['params']:,}" if info.get("params") else "-", info.get("epochs_done", "-"),
                      info.get("best_epoch", "-"), _pct(e["val_accuracy"]) if e else "-",
                      _pct(e["test_accuracy"]) if e else "-",
                      "-" if r["published"] is None else f"{r['published']:.2f}"])
    header = ["run", "folder", "params", "epochs", "best epoch", "val acc % (ours)",
              "test acc % (ours)" if ds is not None else "test acc % (no --data)", "report % (published)"]

    with_weights = [e for e in entries if e["net"] is not None]
    key = (lambda e: e["test_accuracy"]) if ds is not None else (lambda e: e["val_accuracy"] or -1.0)
    best = max(with_weights, key=key) if with_weights else None

    print(f"{'run':<28} {'val %':>7} {'test %':>7} {'published %':>12}")
    for t in table:
        print(f"{t[0]:<28} {t[5]:>7} {t[6]:>7} {t[7]:>12}")

    hosts = sorted({e["info"].get("host") for e in entries if e["info"].get("host")})
    now = datetime.datetime.now()
    command = "python make_report.py " + " ".join(shlex.quote(a) for a in argv)
    sections = []
    numbers = {"created": now.isoformat(timespec="seconds"), "command": command, "hosts": hosts,
               "data": args.data, "published": PUBLISHED, "best_run": best["run_dir"] if best else None,
               "runs": [{k: e[k] for k in ("run_dir", "model", "label", "kind", "val_accuracy", "test_accuracy",
                                           "published")} | {"params": e["info"].get("params"),
                                                            "epochs_done": e["info"].get("epochs_done"),
                                                            "best_epoch": e["info"].get("best_epoch")}
                        for e in entries]}

    with atomic_path(args.out) as tmp:
        with PdfPages(tmp) as pdf:
            def page(fig, section):
                pdf.savefig(fig)
                if section not in sections:
                    sections.append(section)

            lines = [f"Date: {now:%Y-%m-%d %H:%M}",
                     "Hardware: " + ("; ".join(hosts) if hosts else "(not recorded in run.json)"),
                     "Keras: " + ", ".join(sorted({f"{e['info'].get('keras', '?')} ({e['info'].get('backend', '?')})"
                                                    for e in entries})),
                     f"Runs ({len(entries)}) under {args.runs}:"]
            lines += [f"  {e['label']:<30} {e['run_dir']}" for e in entries]
            lines += ["", f"Test data: {args.data or '(none: no test accuracy, confusion matrix or saliency)'}",
                      f"Best run: {best['run_dir'] if best else '(none with weights)'}", "",
                      "Rebuild this report with:"]
            lines += ["  " + command[i:i + 85] for i in range(0, len(command), 85)]
            lines += ["", "Published figures are the course report's test accuracies,", "typed in make_report.py "
                      "and labelled 'report % (published)'; every other number", "is read from the run folders "
                      "or computed from the test data."]
            page(figures.text_page(lines, "FER2013 expression recognition: report"), "Title")

            fig = figures.new_figure(11.69, 8.27)
            fig.suptitle("Accuracy: our runs beside the report's published figures", fontsize=12)
            figures.draw_table(fig.add_axes([0.02, 0.05, 0.96, 0.85]), header, table, fontsize=8)
            page(fig, "Accuracy")

            for e in entries:
                net = e["net"] or runs.build_from_info(e["info"])
                info = e["info"]
                title = (f"Architecture: {e['label']} ({os.path.basename(e['run_dir'])}), "
                         f"{net.count_params():,} parameters")
                for fig in figures.table_pages(["layer", "type", "output shape", "params"], architecture_rows(net),
                                               title, per_page=45, col_widths=[0.3, 0.25, 0.3, 0.15]):
                    page(fig, "Architecture")
                history = _read_history(e["run_dir"])
                sub = (f"Training curves: {e['label']} ({os.path.basename(e['run_dir'])}): best val acc "
                       f"{_pct(e['val_accuracy'])}% at epoch {info.get('best_epoch', '-')}, "
                       f"{info.get('epochs_done', '-')} epochs, {info.get('train_seconds', 0) / 60:.1f} min")
                page(figures.curves_figure(history, sub), "Training curves")

            if best is not None:
                name = f"{best['label']} ({os.path.basename(best['run_dir'])})"
                if ds is not None:
                    page(figures.confusion_figure(best["metrics"], f"Confusion matrix: {name}"), "Confusion matrix")
                    methods = list(saliency.METHOD_ORDER)
                    try:
                        explain.gradcam_layer(best["net"])
                    except FERError:
                        methods.remove("gradcam")
                    fig, _ = saliency.saliency_figure_for(best["net"], {**best["info"], "run_dir": best["run_dir"]},
                                                          ds, methods, args.per_class, samples=args.samples,
                                                          steps=args.steps)
                    fig.suptitle(f"Saliency maps: {name}", fontsize=10)
                    page(fig, "Saliency maps")
                try:
                    layer = explain.default_filter_layer(best["net"])
                except FERError as err:
                    print(f"note: no filter figures: {err}", file=sys.stderr)
                else:
                    pats = explain.filter_patterns(best["net"], layer, filters=args.filters, steps=args.filter_steps)
                    page(figures.patterns_figure(pats, f"Filters: {name}, layer {layer}"), "Filters")
                    numbers["filters"] = {"layer": layer, "filters": pats.filters.tolist(),
                                          "activation": np.round(pats.activation, 4).tolist(),
                                          "start_activation": np.round(pats.start_activation, 4).tolist()}
                    if ds is not None:
                        maps = explain.feature_maps(best["net"], layer, ds.images[0])
                        page(figures.feature_maps_figure(ds.images[0], maps, layer,
                                                         suptitle=f"Filters: feature maps of {layer} for test row 0"),
                             "Filters")
            d = pdf.infodict()
            d["Title"] = "FER2013 expression recognition: report"
            d["Subject"] = "Sections: " + ", ".join(sections)
            d["Keywords"] = ", ".join(sections)
            d["Creator"] = command
            d["CreationDate"] = now
    numbers["sections"] = sections
    write_json(json_path, numbers)
    print(f"wrote {args.out} ({', '.join(sections)}) and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
