#!/usr/bin/env python
"""A PDF report: our runs beside the course report's published figures, the experiments table
and learning curves, and one model's confusion matrix, saliency maps and filters.

    python make_report.py --data public_test.csv.gz                   # -> report-out/report.pdf
    python make_report.py --experiments docs/experiments --runs runs --weights runs/cnn1 --data public_test.csv.gz

Every page is A4 portrait. Pages: 1 at a glance (ours beside the report's, the model shown and
its confusion matrix); 2 the experiments table and one plot of every run's accuracy per epoch;
then the model shown (curves, per-class table, saliency, filters, feature maps); how the report
was made (hardware, commands, runs); an appendix with the model's layers. The table's runs come
from --experiments (run.json and history.csv are enough: no weights needed) and --runs; the
model shown is --weights (default: of the finished runs under runs/ and the models bundled in
models/pretrained/, the one with the highest recorded validation accuracy). Every number is read
from run files or computed from --data; the report's own figures are labelled as such. Paths in
the report are relative to the repository. A report without --data (or without a model) is
shorter; it does not replace a fuller one at --out unless --force is given.
The repository's report.pdf is rebuilt by scripts/cpu_results.sh, not by this default.
"""
import datetime
import os
import shlex
import sys

from ferkit.cli import Parser, add_data, add_usage, add_weights, positive_int, run_main
from ferkit.backend import configure_tensorflow

DEFAULT_OUT = os.path.join("report-out", "report.pdf")
DEFAULT_EXPERIMENTS = os.path.join("docs", "experiments")
SECTIONS = ("At a glance", "Experiments", "Training curves", "Per class", "Saliency maps", "Class averages",
            "Faithfulness", "Filters", "Feature maps", "How this report was made", "Appendix: layers")
DATA_SECTIONS = ("Per class", "Saliency maps", "Class averages", "Faithfulness", "Feature maps")  # lacking without --data
MODEL_SECTIONS = ("Training curves", "Filters", "Appendix: layers")  # and one without a model
DEFAULT_MODEL = ("of the finished runs under runs/ and the models bundled in models/pretrained/, the one with the "
                 "highest recorded validation accuracy")


def build_parser():
    p = Parser(prog="make_report.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--experiments", metavar="DIR",
                   help=f"folder of experiment runs (run.json + history.csv each; default: {DEFAULT_EXPERIMENTS} "
                        "when it exists)")
    p.add_argument("--runs", metavar="DIR", help="another folder of run folders for the table (e.g. runs)")
    add_weights(p, help=f"the model shown (default: {DEFAULT_MODEL})")
    add_data(p, "labelled test CSV: accuracy, confusion matrix, saliency")
    add_usage(p)
    p.add_argument("--out", default=DEFAULT_OUT, metavar="FILE", help="PDF to write")
    p.add_argument("--json", metavar="FILE", help="the report's numbers as JSON (default: beside --out, .json)")
    p.add_argument("--per-class", type=positive_int, default=1, metavar="N", help="saliency faces per class")
    p.add_argument("--samples", type=positive_int, default=25, metavar="N", help="SmoothGrad noisy copies")
    p.add_argument("--steps", type=positive_int, default=50, metavar="N", help="integrated-gradients steps")
    p.add_argument("--jitter", type=int, metavar="PX",
                   help="saliency: average over shifts of up to PX (default: each method's setting in "
                        "ferkit/explain/methods.py, chosen by the faithfulness sweep)")
    p.add_argument("--faithfulness-faces", type=positive_int, default=80, metavar="N",
                   help="faces of --data the faithfulness table measures (saliency.py --evaluate)")
    p.add_argument("--average-faces", type=positive_int, default=40, metavar="N",
                   help="correctly classified faces per class in the class-average maps")
    p.add_argument("--filters", type=positive_int, default=16, metavar="N",
                   help="filter patterns shown (all, with a note, when the layer has fewer)")
    p.add_argument("--filter-steps", type=positive_int, default=80, metavar="N", help="gradient-ascent steps per pattern")
    p.add_argument("--force", action="store_true",
                   help="replace the report at --out even when the new one has fewer sections (no --data, no model)")
    return p


def main(argv=None):
    configure_tensorflow(input_gradients=True)  # before TensorFlow loads
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_main(lambda: report(build_parser().parse_args(argv), argv))


def check_args(args):
    """Everything refused before TensorFlow loads; returns (outputs, labelled Dataset or None)."""
    import data
    from ferkit.errors import FERError
    from ferkit.files import check_outputs
    from ferkit import preflight
    from ferkit.report import figures

    if os.path.splitext(args.out)[1].lower() != ".pdf":
        raise FERError(f"{args.out}: the report is a PDF; name it .pdf")
    if args.experiments is None and os.path.isdir(DEFAULT_EXPERIMENTS):
        args.experiments = DEFAULT_EXPERIMENTS
    for option, folder in (("--experiments", args.experiments), ("--runs", args.runs)):
        if folder is not None and not os.path.isdir(folder):
            raise FERError(f"{folder}: no such folder ({option})")
    if args.jitter is not None and not 0 <= args.jitter <= 23:
        raise FERError(f"--jitter {args.jitter}: a shift of 0..23 pixels")
    outputs = [args.out, args.json or figures.derived_path(args.out, "", ".json")]
    # the .json beside --out, unless named with --json, is derived: it never replaces a user's file
    named, derived = (outputs, []) if args.json else (outputs[:1], outputs[1:])
    preflight.check(named, [args.data], [args.weights], usage=args.usage, derived=derived)
    check_outputs(named, [args.experiments, args.runs], derived=derived)  # every file under those folders is an input
    check_not_shorter(outputs, DATA_SECTIONS if args.data is None else (), args.force)
    if args.data is None:
        return outputs, None
    ds = data.load_csv(args.data, usage=args.usage)
    if ds.labels is None:
        raise FERError(f"{args.data}: no label column; the report needs labelled test data")
    return outputs, ds


def check_not_shorter(outputs, lacking, force):
    """Refuse, in one line, to replace a report whose JSON (beside it) lists sections that this
    one will lack: a run without --data would quietly swap the full report for a short one."""
    import json

    from ferkit.errors import FERError

    if force or not lacking or not os.path.exists(outputs[0]):
        return
    try:
        with open(outputs[1]) as f:
            had = json.load(f).get("sections") or []
    except (OSError, ValueError, AttributeError, RecursionError):
        return  # no readable record of the old report's sections: nothing to compare
    if not isinstance(had, list):
        return
    lost = [s for s in had if isinstance(s, str) and s in lacking]
    if lost:
        why = "without --data" if set(lacking) == set(DATA_SECTIONS) else "without a model"
        raise FERError(f"{outputs[0]}: holds a fuller report ({', '.join(lost)}), which this one {why} would "
                       "lack; pass --data, another --out, or --force to replace it")


def load_shown(args, ds, outputs):
    """The model whose figures the report shows: (model or None, dict describing it)."""
    from ferkit.errors import FERError
    from ferkit.infer import model_line
    from ferkit.report import pages
    from ferkit.report.evaluate import evaluate, load_models
    from ferkit.report.experiments import read_history

    data = pages.repo_path(args.data)
    try:
        model, info = load_models([args.weights], outputs=outputs)[0]
    except FERError as e:
        if args.weights:
            raise
        print(f"note: no model figures: {e}", file=sys.stderr)
        return None, {"error": str(e), "data": data}
    print(model_line([info]), flush=True)  # first, as predict.py does: which model the figures are of
    val = (info.get("args") or {}).get("val")
    same = pages.same_file_name(val, args.data)
    why = ("chosen with --weights" if args.weights else
           f"the toolkit's default ({DEFAULT_MODEL})"
           + (f"; that accuracy is on {os.path.basename(val)}, the set reported here" if same else ""))
    run_dir = pages.repo_path(info["run_dir"])
    shown = {"label": info["model"], "name": pages.shown_name(info["model"], info["run_dir"]), "run_dir": run_dir,
             "why": why, "data": data, "info": info, "same_as_validation": same,
             "history": read_history(info["run_dir"])}
    if ds is not None:
        shown["metrics"] = evaluate([model], ds).metrics
    return model, shown


def model_pages(model, shown, ds, args):
    """(section, A4 figure) of the model shown, one at a time: curves, per class, saliency,
    explanation_pages(), filters, feature maps."""
    from ferkit.errors import FERError
    from ferkit import explain
    from ferkit.report import figures
    from ferkit.report.evaluate import explain_examples

    name = f"{shown['name']} ({shown['run_dir']})"
    note = ("its validation set is the test data of this report" if shown["same_as_validation"] else None)
    yield "Training curves", figures.curves_page(shown["history"], f"Training curves: {name}", note=note)
    if ds is not None:
        yield "Per class", figures.confusion_figure(shown["metrics"], f"Per class: {name}",
                                                    data_name=os.path.basename(args.data))
        methods = [m for m in explain.METHODS if m != "gradcam" or _has_gradcam_layer(model)]
        faces = explain_examples(model, ds, methods, args.per_class, **_options(args))
        notes = _fill_empty_gradcam(model, faces, methods)
        what = "maps explain the predicted class; " + explain.describe_settings(methods, _given(args))
        for fig in figures.saliency_pages(faces.images, faces.columns, faces.titles, faces.colors,
                                          f"Saliency maps: {name}", subtitle=what, notes=notes):
            yield "Saliency maps", fig
        yield from explanation_pages(model, shown, ds, args, methods, name)
    try:
        layer = explain.default_filter_layer(model)
    except FERError as err:  # a model without convolutions (dnn): no filter pages
        print(f"note: no filter figures: {err}", file=sys.stderr)
        return
    if note := explain.filters_note(model, layer, args.filters):  # more than the layer has: all of them
        print(note, file=sys.stderr)
    pats = explain.filter_patterns(model, layer, filters=args.filters, steps=args.filter_steps)
    dead = explain.dead_filters(pats)
    shown["filters"] = {"layer": layer, "filters": pats.filters.tolist(),
                        "activation": [round(float(a), 4) for a in pats.activation],
                        "dead": pats.filters[dead].tolist()}
    dead_text = (f"{int(dead.sum())} of {len(dead)} filters left out as dead (gradient ascent reached under "
                 f"{explain.DEAD_FRACTION:.0%} of the strongest filter's activation: "
                 f"{', '.join(str(int(f)) for f in pats.filters[dead])})" if dead.any() else "no dead filters")
    if dead.all():
        yield "Filters", figures.text_pages([f"Every filter drawn from {layer} is dead: {dead_text}."],
                                            f"Filters: {name}")[0]
    else:
        yield "Filters", figures.patterns_page(pats.subset(~dead), f"Filters: {name}", subtitle=dead_text)
    if ds is not None:
        maps_layer = explain.default_maps_layer(model)
        maps = explain.feature_maps(model, maps_layer, ds.images[0])
        yield "Feature maps", figures.feature_maps_page(ds.images[0], maps, maps_layer, f"Feature maps: {name}",
                                                        face_name=f"row 0 of {os.path.basename(args.data)}")


def explanation_pages(model, shown, ds, args, methods, name):
    """The pages after the saliency maps: each method's mean map per class over correctly
    classified faces, then the faithfulness table (saliency.py --class-average and --evaluate)."""
    import numpy as np

    from ferkit import explain
    from ferkit.infer import predict_proba
    from ferkit.report.faithfulness import class_average_page, faithfulness_page

    options = _options(args)
    avg = explain.class_averages(model, ds.images, ds.labels, methods, per_class=args.average_faces, **options)
    titles = {m: explain.METHODS[m][0] + (f" ({explain.gradcam_layer(model)})" if m == "gradcam" else "")
              for m in methods}
    yield "Class averages", class_average_page(avg, titles, f"Class averages: {name}",
                                               subtitle=f"over {os.path.basename(args.data)}")
    rows = np.sort(np.random.default_rng(0).permutation(len(ds))[:args.faithfulness_faces])
    x = ds.images[rows]
    table = explain.evaluate_methods(model, x, predict_proba(model, x).argmax(axis=1), methods, **options)
    shown["faithfulness"] = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in table]
    yield "Faithfulness", faithfulness_page(
        table, f"Faithfulness of the maps: {name}",
        subtitle=f"{len(x)} faces of {os.path.basename(args.data)}, the predicted class; "
                 "python saliency.py --evaluate gives the same table")


def _given(args):
    return {"jitter": args.jitter} if args.jitter is not None else {}


def _options(args):
    """The saliency methods' options: --jitter (when given) over ferkit.explain.DEFAULT_SETTINGS."""
    from ferkit import explain

    return {"samples": args.samples, "steps": args.steps, "settings": explain.DEFAULT_SETTINGS, **_given(args)}


def _fill_empty_gradcam(model, faces, methods):
    """Replace each empty Grad-CAM map by the face's negative evidence, as saliency.py does;
    returns the panels' notes {(face, column): text}."""
    from ferkit import explain
    from ferkit.report.faithfulness import empty_notes

    if "gradcam" not in methods:
        return {}
    j = list(methods).index("gradcam")
    layer = explain.gradcam_layer(model)
    label, maps = faces.columns[j]
    maps, empty = explain.fill_empty(model, faces.images, faces.explained, maps, layer)
    faces.columns[j] = (label, maps)
    return empty_notes(empty, j + 1, layer)


def _has_gradcam_layer(model):
    from ferkit.errors import FERError
    from ferkit import explain

    try:
        explain.gradcam_layer(model)
    except FERError:
        return False
    return True


def write_pdf(path, pages, command, created):
    """Save each (section, figure) as a page, atomically; returns the sections in page order."""
    from matplotlib.backends.backend_pdf import PdfPages

    from ferkit.files import output_path

    sections = []
    with output_path(path) as tmp, PdfPages(tmp) as pdf:
        for section, fig in pages:
            pdf.savefig(fig)  # A4 as drawn: no bbox_inches="tight", which would cut the page to the figure
            if section not in sections:
                sections.append(section)
        info = pdf.infodict()
        info.update({"Title": "FER2013 expression recognition: report", "Subject": "Sections: " + ", ".join(sections),
                     "Keywords": ", ".join(sections), "Creator": command, "CreationDate": created})
    return sections


def report(args, argv):
    outputs, ds = check_args(args)
    from ferkit.report import pages

    rows = pages.collect(args.experiments, args.runs, warn=lambda m: print(m, file=sys.stderr))
    # Keras (and TensorFlow) load here, after the checks: configure_tensorflow ran first.
    model, shown = load_shown(args, ds, outputs)
    if model is None:
        check_not_shorter(outputs, MODEL_SECTIONS, args.force)
    created = datetime.datetime.now()
    command = pages.repo_command("python make_report.py " + " ".join(shlex.quote(a) for a in argv))
    hosts = sorted({r.summary["hardware"] for r in pages.measured(rows) if r.summary["hardware"]})

    def all_pages():
        yield "At a glance", pages.glance_page(rows, shown, created)
        yield "Experiments", pages.experiments_page(rows)
        if model is not None:
            yield from model_pages(model, shown, ds, args)
        for fig in pages.closing_pages(rows, shown, command, hosts, created):
            yield "How this report was made", fig
        if model is not None:
            for fig in pages.appendix_pages(model, shown["name"]):
                yield "Appendix: layers", fig

    sections = write_pdf(outputs[0], all_pages(), command, created)
    from ferkit.files import write_json

    kept = {k: v for k, v in shown.items()
            if k in ("label", "name", "run_dir", "why", "data", "same_as_validation", "filters")}
    if shown.get("metrics"):
        kept["test_accuracy"] = shown["metrics"]["accuracy"]
    write_json(outputs[1], {"created": created.isoformat(timespec="seconds"), "command": command, "hosts": hosts,
                            "published": pages.PUBLISHED, "experiments": pages.numbers(rows), "model_shown": kept,
                            "sections": sections})
    for r in pages.measured(rows):
        print(f"{r.name:<22} best val {100 * r.summary['best']:.2f}%  last {100 * r.summary['last']:.2f}%")
    print(f"wrote {outputs[0]} ({', '.join(sections)}) and {outputs[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
