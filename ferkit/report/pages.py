"""The pages of report.pdf (make_report.py): what each page shows, from run files and a model.

    rows = collect(experiments_dir="docs/experiments", runs_dir="runs")   # [Row], the plan's order
    fig = glance_page(rows, shown)        # page 1: ours beside the report's, the model shown
    fig = experiments_page(rows)          # the table and one plot of every run's accuracy curves

Every accuracy of ours is read from a run's history.csv (ferkit.report.experiments.summarize: the best
and the last epoch's val_accuracy), so a run without weights (docs/experiments/<name>/ keeps
only run.json and history.csv) gives its table row and curves like any other. The only numbers
typed in are the course report's, labelled as such.
"""
import dataclasses
import functools
import os

from ferkit.errors import FERError
from ferkit.runs.layout import find_runs, read_info
from ferkit.report import experiments, figures
from ferkit.report.experiments import PUBLISHED

# The course report's two ablations, as it states them without naming the network: (what,
# suffix of our experiment without it, report % without, report % with).
ABLATIONS = (("BatchNormalization", "_no_batchnorm", 56.0, 60.0), ("augmentation", "_no_augment", 60.0, 65.0))
GLANCE_HEADER = ["run", "network", "report %", "ours: best val %", "ours: last epoch %"]
TABLE_HEADER = ["run", "network", "parameters", "report %", "best val % (epoch)", "last epoch %", "epochs",
                "minutes", "hardware"]


@dataclasses.dataclass
class Row:
    name: str  # experiment name (its folder's name)
    what: str  # the network in words
    published: float | None  # the report's figure for the same question
    gpu: bool  # a GPU experiment (says "needs a GPU" when absent)
    folder: str | None = None  # where its run files are; None: not run
    summary: dict | None = None  # ferkit.report.experiments.summarize(folder)
    history: list = dataclasses.field(default_factory=list)
    val_file: str | None = None  # what it validated on (a file name, or "a 10% split")


def describe(info):
    """(network in words, the report's figure or None) of a run not in the plan, from run.json."""
    model, options = info["model"], info.get("options") or {}
    words = [f"{model} (size of {options['match']})" if model == "dnn" and options.get("match") else model]
    key = model if model in PUBLISHED else None
    if options.get("batchnorm") is False:
        words.append("without BatchNormalization")
        key = "no-BN"
    if "augment" in info and info["augment"] is None:
        words.append("without augmentation")
        key = key if key == "no-BN" else "no-augmentation"
    lr = (info.get("args") or {}).get("lr")
    if lr is not None and lr != _default_lr():  # a run of another learning rate is not the report's row
        words[-1] += f", lr {lr:.0e}".replace("e-0", "e-")
        key = None
    return " ".join(words), (PUBLISHED[key] if key else None)


@functools.cache  # one parser for the whole table, not one per run
def _default_lr():
    from ferkit.train.config import build_parser  # here: the report reads runs, it does not train

    return build_parser("train_cnn.py", "").get_default("lr")


def _validated_on(info):
    args = info.get("args") or {}
    if args.get("val"):
        return os.path.basename(args["val"])
    return f"a {args['val_split']:.0%} split of the training file" if args.get("val_split") else None


def _fill(row, folder):
    """Row with the run files of `folder` read in (None summary: no finished epoch there)."""
    row.folder, row.summary = folder, experiments.summarize(folder)
    row.history = experiments.read_history(folder)
    row.val_file = _validated_on(read_info(folder))
    return row


def collect(experiments_dir=None, runs_dir=None, warn=print):
    """[Row]: every experiment of the plan (found under experiments_dir/<name>/ or not), then any
    other run folder under either folder. A folder of runs_dir whose name is already a row is
    skipped with a note, so a run kept both in runs/ and in docs/experiments/ counts once."""
    rows = [Row(e.name, e.what, PUBLISHED.get(e.published), e.gpu) for e in experiments.PLAN]
    by_name = {r.name: r for r in rows}
    for root in (experiments_dir, runs_dir):
        if not root:
            continue
        for folder in find_runs(root):
            name = os.path.basename(os.path.normpath(folder))
            try:
                if name in by_name and by_name[name].folder is None:
                    _fill(by_name[name], folder)
                elif name in by_name:
                    warn(f"note: {folder}: {name} is already in the table (from {by_name[name].folder}); skipped")
                else:
                    what, published = describe(read_info(folder))
                    by_name[name] = _fill(Row(name, what, published, False), folder)
                    rows.append(by_name[name])
            except FERError as e:
                warn(f"note: skipping {e}")
    return rows


def measured(rows):
    return [r for r in rows if r.summary is not None]


def _pct(value):
    return "-" if value is None else f"{100 * value:.2f}"


def _absent(row):
    return "needs a GPU" if row.gpu else "not run yet"


def _report(row):
    return "-" if row.published is None else f"{row.published:.2f}"


def glance_rows(rows):
    """Page 1: every run with a figure of the report's, and every run measured here."""
    out = []
    for r in rows:
        if r.summary is None and r.published is None:
            continue
        s = r.summary
        out.append([r.name, r.what, _report(r), _pct(s["best"]) if s else _absent(r), _pct(s["last"]) if s else ""])
    return out


def table_rows(rows):
    """The experiments table, and the hardware strings its keys ([A], [B], ...) stand for."""
    keys, out = {}, []
    for r in rows:
        s = r.summary
        if s is None:
            if r.published is not None or r.gpu:
                out.append([r.name, r.what, "", _report(r), _absent(r), "", "", "", ""])
            continue
        hw = s["hardware"] or "not recorded"
        key = keys.setdefault(hw, f"[{chr(ord('A') + len(keys))}]")
        state = "" if s["status"] in (None, "done") else f" ({s['status']})"
        out.append([r.name, r.what, f"{s['params']:,}" if s["params"] else "-", _report(r),
                    f"{_pct(s['best'])} ({s['best_epoch']})", _pct(s["last"]), f"{s['epochs']}{state}",
                    f"{s['minutes']:.1f}", key])
    return out, {v: k for k, v in keys.items()}


def comparison_lines(rows):
    """The report's questions answered from our runs, where both runs of a pair were measured."""
    by_name = {r.name: r for r in rows}
    lines = []
    for what, suffix, without, with_ in ABLATIONS:
        pairs = [(by_name[n], by_name[n + suffix]) for n in by_name if n + suffix in by_name]
        found = [f"{base.name} {_pct(ab.summary['best'])} -> {_pct(base.summary['best'])}"
                 for base, ab in pairs if base.summary and ab.summary]
        lines.append(f"{what}: the report {without:.0f}% -> {with_:.0f}% (without -> with); ours "
                     + ("; ".join(found) if found else "not measured yet") + " (best val %)")
    for r in rows:
        base = by_name.get(r.name.removeprefix("dnn_"))
        if r.name.startswith("dnn_") and base is not None and r.summary and base.summary:
            lines.append(f"Same size, fully connected: {r.name} {_pct(r.summary['best'])} against "
                         f"{base.name} {_pct(base.summary['best'])} (best val %)")
    return lines


def val_note(rows, data_path=None):
    """Which set our accuracies are on, and what that means for them."""
    files = sorted({r.val_file for r in measured(rows) if r.val_file})
    on = ", ".join(files) if files else "each run's validation set"
    note = (f"Ours: accuracy on the validation set ({on}), which also chose each run's best epoch, so the "
            "best-epoch figure leans optimistic; the last epoch's is not chosen. The report's figures are on the "
            "course's test split; its ablation figures do not name the network.")
    if data_path and os.path.basename(data_path) in files:
        note += (f" {os.path.basename(data_path)} is both the validation set and the test data of this report: "
                 "for runs validated on it, validation and test accuracy are the same figure.")
    return note


# ---------------------------------------------------------------- pages


def _heading(fig, title, subtitle=None):
    fig.text(0.5, 0.965, title, ha="center", fontsize=15, weight="bold")
    if subtitle:
        fig.text(0.5, 0.945, subtitle, ha="center", fontsize=9, color="0.3")


def glance_page(rows, shown, created):
    """Page 1: the results table beside the report's, the comparisons, and the model shown with
    its confusion matrix (or, without test data, its accuracy curves)."""
    fig = figures.new_figure(*figures.A4_PORTRAIT)
    _heading(fig, "FER2013 expression recognition: results at a glance", f"made {created:%Y-%m-%d %H:%M}")
    table = glance_rows(rows)
    ax = figures.table_axes(fig, len(table), 0.92)
    figures.draw_table(ax, GLANCE_HEADER, table, fontsize=7.5, col_widths=[0.2, 0.38, 0.1, 0.16, 0.16], fill=True)
    y = figures.text_block(fig, comparison_lines(rows) + [""] + [val_note(rows, shown.get("data"))],
                           ax.get_position().y0 - 0.03, left=0.05, fontsize=7.5, width=118, family="sans-serif")
    y = figures.text_block(fig, shown_lines(shown), y - 0.01, left=0.05, fontsize=8, width=110,
                           family="sans-serif")
    ax = fig.add_axes([0.2, 0.09, 0.62, max(min(y - 0.14, 0.36), 0.15)])
    if shown.get("metrics"):
        figures.draw_confusion(ax, shown["metrics"])
        ax.set_title(f"{shown['label']}: confusion matrix on {os.path.basename(shown['data'])} "
                     "(rows normalized, counts in brackets)", fontsize=8)
    else:
        figures.draw_accuracy_curves(ax, [(shown["label"], shown.get("history") or [])])
        ax.set_title(f"{shown['label']}: accuracy per epoch (no --data: no confusion matrix)", fontsize=8)
    return fig


def shown_lines(shown):
    """What page 1 says about the model whose figures follow."""
    if shown.get("error"):
        return [f"No model figures: {shown['error']}"]
    lines = [f"The model shown in this report's figures: {shown['label']} ({shown['run_dir']}; {shown['why']})."]
    if shown.get("metrics"):
        m = shown["metrics"]
        lines.append(f"Its accuracy on {shown['data']}: {m['accuracy']:.2%} of {m['n']:,} faces "
                     f"(macro F1 {m['macro_f1']:.3f}).")
        if shown.get("same_as_validation"):
            lines.append(f"{os.path.basename(shown['data'])} is also this run's validation set: this is the same "
                         "figure as its best validation accuracy, and the epoch kept was chosen on it.")
    return lines


def experiments_page(rows):
    """The experiments table (ours beside the report's) and one plot of every run's training and
    validation accuracy per epoch."""
    fig = figures.new_figure(*figures.A4_PORTRAIT)
    _heading(fig, "The report's experiments, measured here",
             "accuracies from each run's history.csv; hardware keys below the table")
    table, hardware = table_rows(rows)
    ax = figures.table_axes(fig, len(table), 0.92, left=0.02, width=0.96)
    figures.draw_table(ax, TABLE_HEADER, table, fontsize=6.5, fill=True,
                       col_widths=[0.15, 0.24, 0.09, 0.06, 0.11, 0.08, 0.07, 0.07, 0.07])
    notes = [f"{key} {hw}" for key, hw in hardware.items()] + [val_note(rows)]
    y = figures.text_block(fig, notes, ax.get_position().y0 - 0.025, left=0.04, fontsize=7, width=125,
                           family="sans-serif")
    ax = fig.add_axes([0.1, 0.15, 0.85, max(y - 0.18, 0.2)])  # the legend goes below
    files = sorted({r.val_file for r in measured(rows) if r.val_file})
    figures.draw_accuracy_curves(ax, [(r.name, r.history) for r in measured(rows)],
                                 f"validation ({', '.join(files)})" if files else "validation", legend_below=True)
    ax.set_title("accuracy per epoch of every run: validation (solid) and training (dashed)", fontsize=9)
    return fig


def closing_pages(rows, shown, command, hosts, created):
    """Hardware, software, the commands of every run and of this report, and where the files are:
    as many pages as the runs need."""
    lines = [f"Made: {created:%Y-%m-%d %H:%M}", "", "Hardware of the runs:"]
    lines += [f"  {h}" for h in hosts] or ["  (not recorded)"]
    lines += ["", "Runs (name: folder; the command that trained it):"]
    for r in measured(rows):
        lines.append(f"  {r.name}: {r.folder}")
        lines.append(f"    {r.summary['command'] or '(no command recorded)'}")
    missing = [r.name for r in rows if r.summary is None and (r.gpu or r.published is not None)]
    if missing:
        lines += ["", "Not measured here: " + ", ".join(missing)]
    if shown.get("run_dir"):
        lines += ["", f"Model shown: {shown['run_dir']}", f"Test data: {shown.get('data') or '(none)'}"]
    lines += ["", "This report was made with:", f"  {command}", "",
              "The report's figures are typed in ferkit/report/experiments.py and ferkit/report/pages.py and labelled as "
              "the report's; every other number is read from the run files or computed from the test data."]
    return figures.text_pages(lines, "How this report was made", fontsize=8, width=100)


def architecture_rows(model):
    rows = []
    for layer in model.layers:
        out = getattr(layer, "output", None)
        shape = tuple(out.shape) if out is not None and hasattr(out, "shape") else "?"
        rows.append([layer.name, type(layer).__name__, str(shape).replace("None", "N"), f"{layer.count_params():,}"])
    rows.append(["total", "", "", f"{model.count_params():,}"])
    return rows


def appendix_pages(model, label):
    return figures.table_pages(["layer", "type", "output shape", "params"], architecture_rows(model),
                               f"Appendix: the layers of {label}, {model.count_params():,} parameters",
                               per_page=45, col_widths=[0.3, 0.25, 0.3, 0.15])


def numbers(rows):
    """The report's numbers as JSON: one entry per row of the experiments table."""
    out = []
    for r in rows:
        s = r.summary or {}
        out.append({"name": r.name, "network": r.what, "folder": r.folder, "published": r.published,
                    "best_val_accuracy": s.get("best"), "best_epoch": s.get("best_epoch"),
                    "last_val_accuracy": s.get("last"), "epochs": s.get("epochs"),
                    "minutes": None if not s else round(s["minutes"], 1), "params": s.get("params"),
                    "hardware": s.get("hardware"), "validated_on": r.val_file,
                    "status": "measured" if r.summary else _absent(r)})
    return out


def same_file_name(a, b):
    """Whether two data paths name the same file (same real path, or the same file name)."""
    if not a or not b:
        return False
    return os.path.realpath(a) == os.path.realpath(b) or os.path.basename(a) == os.path.basename(b)
