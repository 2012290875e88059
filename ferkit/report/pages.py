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
from ferkit.runs.load import PRETRAINED_DIR
from ferkit.report import experiments, figures
from ferkit.report.experiments import PUBLISHED

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def repo_path(path):
    """`path` as the report prints it: relative to the repository, never this machine's absolute
    path (a file outside the repository gets ../ steps)."""
    if not path:
        return path
    return os.path.relpath(os.path.abspath(os.fspath(path)), REPO)


def repo_command(command):
    """A command line with every absolute path in it (also after --opt=) made repo_path()."""
    def one(word):
        key, eq, value = word.rpartition("=") if "=" in word and not word.startswith("/") else ("", "", word)
        return key + eq + (repo_path(value) if os.path.isabs(value) else value)

    return " ".join(one(w) for w in command.split(" "))


def is_bundled(run_dir):
    """Whether a run folder is one of the models shipped in models/pretrained/."""
    inside = os.path.realpath(run_dir)
    return os.path.commonpath([inside, os.path.realpath(PRETRAINED_DIR)]) == os.path.realpath(PRETRAINED_DIR)


def shown_name(model, run_dir):
    """How the report names the model it shows: "bundled fernet" for models/pretrained/fernet,
    else "<network> run <folder name>", so it is never mistaken for the experiment of that name."""
    if is_bundled(run_dir):
        return f"bundled {model}"
    return f"{model} run {os.path.basename(os.path.normpath(run_dir))}"


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
    model: str | None = None  # the network (run.json "model"), to tell two trainings of one network apart


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
    info = read_info(folder)
    row.val_file, row.model = _validated_on(info), info.get("model")
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


def glance_rows(rows, shown=None):
    """Page 1: every run with a figure of the report's, every run measured here, and last the
    model shown when it is none of those (the bundled model is not the experiments' fernet)."""
    out = []
    for r in rows:
        if r.summary is None and r.published is None:
            continue
        s = r.summary
        what = r.what + (" (the model shown)" if _is_shown(r, shown) else "")
        out.append([r.name, what, _report(r), _pct(s["best"]) if s else _absent(r), _pct(s["last"]) if s else ""])
    s = shown_summary(rows, shown)
    if s:
        out.append([shown["name"], f"{shown['label']} in {shown['run_dir']} (the model shown)", "-", _pct(s["best"]),
                    _pct(s["last"])])
    return out


def _is_shown(row, shown):
    return bool(shown and shown.get("run_dir") and row.folder
                and os.path.realpath(row.folder) == os.path.realpath(os.path.join(REPO, shown["run_dir"])))


def shown_summary(rows, shown):
    """The model shown as a table row's numbers, when it is not one of `rows`; else None."""
    if not shown or not shown.get("run_dir") or any(_is_shown(r, shown) for r in rows):
        return None
    return experiments.summarize(os.path.join(REPO, shown["run_dir"]))


def namesake_lines(rows, shown):
    """One sentence per run of the table that trained the same network as the model shown but is
    another run (the experiments' 45-minute fernet beside the bundled fernet): two figures for
    "fernet" must not read as one."""
    s = shown_summary(rows, shown)
    if not s:
        return []
    return [f"{r.name} ({_pct(r.summary['best'])}% best val) is the experiments' own training of the "
            f"{r.model} network ({r.summary['minutes']:.0f} minutes); {shown['name']} ({_pct(s['best'])}%, "
            f"{s['minutes']:.0f} minutes) is another training of it, {shown['run_dir']}, the model the following "
            "pages show." for r in measured(rows) if r.model == shown.get("label") and not _is_shown(r, shown)]


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
        lines.append(f"{what}, without -> with: the report {without:.0f}% -> {with_:.0f}%; ours, best val %: "
                     + ("; ".join(found) if found else "not measured yet"))
    for r in rows:
        base = by_name.get(r.name.removeprefix("dnn_"))
        if r.name.startswith("dnn_") and base is not None and r.summary and base.summary:
            lines.append(f"Same size, fully connected, best val %: {r.name} {_pct(r.summary['best'])} against "
                         f"{base.name} {_pct(base.summary['best'])}")
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

ROW_H = 0.2  # inches per table row on the A4 pages
GLANCE_READING = ("the table puts each run measured here beside the course report's figure for the same network; "
                  "the notes answer the report's questions from those runs. Below: the model the following pages "
                  "show, and its confusion matrix, each row one true class summing to 100%.")


def glance_page(rows, shown, created):
    """Page 1: the results table beside the report's, the comparisons, and the model shown with
    its confusion matrix (or, without test data, its accuracy curves)."""
    page = figures.Page("FER2013 expression recognition: results at a glance", GLANCE_READING,
                        f"made {created:%Y-%m-%d %H:%M}")
    table = glance_rows(rows, shown)
    h = ROW_H * (len(table) + 1)
    ax = page.axes(page.left, page.y - h, page.text_width, h)
    figures.draw_table(ax, GLANCE_HEADER, table, fontsize=figures.SMALL_SIZE, col_widths=[0.19, 0.41, 0.1, 0.15, 0.15],
                       fill=True)
    page.y -= h + 0.1
    page.lines(comparison_lines(rows) + [""] + [val_note(rows, shown.get("data"))], figures.SMALL_SIZE)
    page.y -= 0.08
    page.lines(shown_lines(shown) + namesake_lines(rows, shown), figures.SMALL_SIZE)
    room = page.y - page.bottom - 0.95  # the title above the matrix, the labels below it
    name = f"{shown.get('name')} ({shown.get('run_dir')})"
    if shown.get("metrics") and room >= 7 * 0.42:
        side = min(room, 7 * 0.6)
        ax = page.axes(page.left + 1.1, page.y - 0.35 - side, side, side)
        figures.draw_confusion(ax, shown["metrics"], figures.SMALL_SIZE,
                               colorbar=page.axes(page.left + 1.25 + side, page.y - 0.35 - side, 0.1, side))
        ax.set_title(f"confusion matrix of {name} on {os.path.basename(shown['data'])}", fontsize=figures.SMALL_SIZE)
    elif shown.get("metrics"):
        page.paragraph("Its confusion matrix is on the Per class page.", figures.SMALL_SIZE)
    elif shown.get("history"):
        h = min(page.y - page.bottom - 0.9, 3.5)
        ax = page.axes(page.left + 0.6, page.y - 0.35 - h, page.text_width - 0.7, h)
        figures.draw_accuracy_curves(ax, [(shown.get("name"), shown.get("history") or [])])
        ax.set_title(f"{name}: accuracy per epoch (no --data: no confusion matrix)", fontsize=figures.SMALL_SIZE)
    return page.fig


def shown_lines(shown):
    """What page 1 says about the model whose figures follow."""
    if shown.get("error"):
        return [f"No model figures: {shown['error']}"]
    lines = [f"The model shown on the following pages: {shown['name']}, the {shown['label']} network in "
             f"{shown['run_dir']}; {shown['why']}."]
    if shown.get("metrics"):
        m = shown["metrics"]
        lines.append(f"Its accuracy on {shown['data']}: {m['accuracy']:.2%} of {m['n']:,} faces "
                     f"(macro F1 {m['macro_f1']:.1%}).")
        if shown.get("same_as_validation"):
            lines.append(_same_set_line(shown, m))
        elif _validated_on(shown.get("info") or {}):
            lines.append(f"Its best val % in the table is on {_validated_on(shown['info'])}, which chose its epoch; "
                         f"{os.path.basename(shown['data'])} played no part in training it or choosing the epoch.")
    return lines


def _same_set_line(shown, m):
    """The test data is the run's validation set: say whether the accuracy scored here is the one
    its history.csv recorded in training (the table's), and if not, by how many faces they differ."""
    name = os.path.basename(shown["data"])
    vals = figures.history_column(shown.get("history") or [], "val_accuracy")
    faces = round(abs(max(vals) - m["accuracy"]) * m["n"]) if vals else 0
    if not faces:
        return (f"{name} is also this run's validation set: this is the same figure as its best validation "
                "accuracy, and the epoch kept was chosen on it.")
    return (f"{name} is also this run's validation set, and the epoch kept was chosen on it: its history.csv "
            f"records {max(vals):.2%} for that epoch (the table's figure); scored again here the same weights get "
            f"{m['accuracy']:.2%}, {faces} face{'s' if faces > 1 else ''} of {m['n']:,} apart.")


EXPERIMENTS_READING = ("one row per run: its best validation accuracy (the epoch it was reached) and the last "
                       "epoch's, beside the course report's figure. In the plot, each colour is one run: solid "
                       "lines are validation accuracy per epoch, dashed lines training accuracy.")


def experiments_page(rows):
    """The experiments table (ours beside the report's) and one plot of every run's training and
    validation accuracy per epoch."""
    page = figures.Page("The report's experiments, measured here", EXPERIMENTS_READING,
                        "accuracies from each run's history.csv; hardware keys below the table")
    table, hardware = table_rows(rows)
    h = ROW_H * (len(table) + 1)
    ax = page.axes(page.left - 0.25, page.y - h, page.text_width + 0.5, h)
    figures.draw_table(ax, TABLE_HEADER, table, fontsize=6.5, fill=True,
                       col_widths=[0.15, 0.25, 0.09, 0.06, 0.11, 0.08, 0.07, 0.07, 0.06])
    page.y -= h + 0.1
    page.lines([f"{key} {hw}" for key, hw in hardware.items()] + [val_note(rows)], figures.SMALL_SIZE)
    n = len(measured(rows)) + 2
    legend = 0.55 + 0.16 * -(-n // 4)
    h = max(page.y - page.bottom - 0.35 - legend, 2.0)
    ax = page.axes(page.left + 0.6, page.y - 0.3 - h, page.text_width - 0.7, h)
    files = sorted({r.val_file for r in measured(rows) if r.val_file})
    figures.draw_accuracy_curves(ax, [(r.name, r.history) for r in measured(rows)],
                                 f"validation ({', '.join(files)})" if files else "validation", legend_below=True)
    ax.set_title("accuracy per epoch of every run: validation (solid) and training (dashed)",
                 fontsize=figures.TEXT_SIZE)
    return page.fig


def closing_pages(rows, shown, command, hosts, created):
    """Hardware, software, the commands of every run and of this report, and where the files are:
    as many pages as the runs need. Paths are the repository's, not this machine's."""
    lines = [f"Made: {created:%Y-%m-%d %H:%M}", "", "Hardware of the runs:"]
    lines += [f"  {h}" for h in hosts] or ["  (not recorded)"]
    lines += ["", "Runs (name: folder; the command that trained it):"]
    for r in measured(rows):
        lines.append(f"  {r.name}: {repo_path(r.folder)}")
        lines.append(f"    {repo_command(r.summary['command']) or '(no command recorded)'}")
    missing = [r.name for r in rows if r.summary is None and (r.gpu or r.published is not None)]
    if missing:
        lines += ["", "Not measured here: " + ", ".join(missing)]
    if shown.get("run_dir"):
        lines += ["", f"Model shown: {shown['name']}, {shown['run_dir']}", f"Test data: {shown.get('data') or '(none)'}"]
    lines += ["", "This report was made with:", f"  {command}", "",
              "The report's figures are typed in ferkit/report/experiments.py and ferkit/report/pages.py and labelled "
              "as the report's; every other number is read from the run files or computed from the test data."]
    return figures.text_pages(lines, "How this report was made")


def architecture_rows(model):
    rows = []
    for layer in model.layers:
        out = getattr(layer, "output", None)
        shape = tuple(out.shape) if out is not None and hasattr(out, "shape") else "?"
        rows.append([layer.name, type(layer).__name__, str(shape).replace("None", "N"), f"{layer.count_params():,}"])
    rows.append(["total", "", "", f"{model.count_params():,}"])
    return rows


def appendix_pages(model, name):
    return figures.table_pages(["layer", "type", "output shape", "params"], architecture_rows(model),
                               f"Appendix: the layers of {name}", per_page=40, col_widths=[0.3, 0.25, 0.3, 0.15],
                               subtitle=f"{model.count_params():,} parameters")


def numbers(rows):
    """The report's numbers as JSON: one entry per row of the experiments table."""
    out = []
    for r in rows:
        s = r.summary or {}
        out.append({"name": r.name, "network": r.what, "folder": repo_path(r.folder), "published": r.published,
                    "best_val_accuracy": s.get("best"), "best_epoch": s.get("best_epoch"),
                    "last_val_accuracy": s.get("last"), "epochs": s.get("epochs"),
                    "minutes": None if not s else round(s["minutes"], 1), "params": s.get("params"),
                    "network_name": r.model,
                    "hardware": s.get("hardware"), "validated_on": r.val_file,
                    "status": "measured" if r.summary else _absent(r)})
    return out


def same_file_name(a, b):
    """Whether two data paths name the same file (same real path, or the same file name)."""
    if not a or not b:
        return False
    return os.path.realpath(a) == os.path.realpath(b) or os.path.basename(a) == os.path.basename(b)
