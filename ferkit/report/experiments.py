"""The course report's experiments as one plan, and the results table read from their run files.

    experiments.plan(gpu=False)            # the runs a CPU affords; gpu=True adds cnn2, cnn3 and theirs
    experiments.summarize(folder)          # one table row from a run's run.json + history.csv
    experiments.results_table(rows)        # the Markdown table (docs/experiments/results.md)

`scripts/run_experiments.py` trains the plan and keeps each run's run.json and history.csv under
docs/experiments/<name>/; anything that draws the table or the curves can read them back here
without retraining. Standard library only: importing this loads neither Keras nor TensorFlow.
"""
import dataclasses
import json
import os

from ferkit.runs.layout import RUN_FILE, read_history  # noqa: F401

# The course report's published test accuracies (%); its two ablation figures do not name the
# network ("adding BatchNormalization raised accuracy from 56% to 60%; augmentation from 60% to 65%").
PUBLISHED = {"cnn1": 60.94, "cnn2": 64.14, "cnn3": 65.25, "no-BN": 56.0, "no-augmentation": 60.0}


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str  # its folder under the runs and docs folders
    script: str  # train_cnn.py or train_dnn.py
    args: tuple  # what sets it apart; the runner adds data, budget and run folder
    what: str  # the report's question it answers, for the table
    published: str | None = None  # key of PUBLISHED: the report's figure for the same question
    gpu: bool = False  # hours per epoch on a CPU


PLAN = (
    Experiment("cnn1", "train_cnn.py", ("--model", "cnn1"), "report model (1)", "cnn1"),
    Experiment("cnn1_no_batchnorm", "train_cnn.py", ("--model", "cnn1", "--no-batchnorm"),
               "cnn1 without BatchNormalization", "no-BN"),
    Experiment("cnn1_no_augment", "train_cnn.py", ("--model", "cnn1", "--no-augment"),
               "cnn1 without augmentation", "no-augmentation"),
    Experiment("dnn_cnn1", "train_dnn.py", ("--match", "cnn1"), "fully connected, cnn1's size"),
    Experiment("dnn_cnn1_no_augment", "train_dnn.py", ("--match", "cnn1", "--no-augment"),
               "the same DNN without augmentation"),
    Experiment("fernet", "train_cnn.py", ("--model", "fernet"), "compact residual CNN (modern reference)"),
    Experiment("cnn2", "train_cnn.py", ("--model", "cnn2"), "report model (2)", "cnn2", gpu=True),
    Experiment("cnn3", "train_cnn.py", ("--model", "cnn3"), "report model (3), its best", "cnn3", gpu=True),
    Experiment("cnn3_no_batchnorm", "train_cnn.py", ("--model", "cnn3", "--no-batchnorm"),
               "cnn3 without BatchNormalization", "no-BN", gpu=True),
    Experiment("cnn3_no_augment", "train_cnn.py", ("--model", "cnn3", "--no-augment"),
               "cnn3 without augmentation", "no-augmentation", gpu=True),
    Experiment("dnn_cnn3", "train_dnn.py", ("--match", "cnn3"), "fully connected, cnn3's size", gpu=True),
)


def plan(gpu=False, only=None):
    """The experiments to run: all of them with a GPU, the CPU ones without; `only` picks by name."""
    chosen = [e for e in PLAN if gpu or not e.gpu]
    if only:
        chosen = [e for e in PLAN if e.name in only]
    return chosen


def summarize(folder):
    """A table row from a run folder: accuracies come from history.csv (the best and the last
    epoch's val_accuracy), the rest from run.json; None when the folder holds no finished epoch."""
    history = [r for r in read_history(folder) if r.get("val_accuracy") not in (None, "")]
    path = os.path.join(folder, RUN_FILE)
    if not history or not os.path.exists(path):
        return None
    with open(path) as f:
        info = json.load(f)
    ran = info.get("experiment", {})
    accuracies = [float(r["val_accuracy"]) for r in history]
    host = info.get("host", "")
    return {"params": info.get("params"), "best": max(accuracies), "last": accuracies[-1],
            "best_epoch": 1 + accuracies.index(max(accuracies)), "epochs": len(history),
            "minutes": (info.get("train_seconds") or 0) / 60, "status": info.get("status"),
            "hardware": ", ".join(x for x in (ran.get("accelerator"), host) if x),
            "command": ran.get("command") or info.get("command", "")}


def _pct(value):
    return "" if value is None else f"{100 * value:.2f}"


def results_table(experiments, summaries, gpu_note="needs a GPU"):
    """Markdown: one row per experiment, ours beside the report's figure. `summaries` maps a
    name to summarize()'s row or None (not run: a GPU experiment says `gpu_note`)."""
    lines = ["| run | network | parameters | report % | best val % (epoch) | last epoch val % | epochs "
             "| minutes | hardware | command |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for e in experiments:
        s = summaries.get(e.name)
        report = f"{PUBLISHED[e.published]:.2f}" if e.published else ""
        if s is None:
            missing = gpu_note if e.gpu else "not run yet"
            lines.append(f"| {e.name} | {e.what} | | {report} | {missing} | | | | | |")
            continue
        params = f"{s['params']:,}" if s["params"] else ""
        state = "" if s["status"] == "done" else f" ({s['status']})"
        lines.append(f"| {e.name} | {e.what} | {params} | {report} | {_pct(s['best'])} ({s['best_epoch']}) "
                     f"| {_pct(s['last'])} | {s['epochs']}{state} | {s['minutes']:.1f} | {s['hardware']} "
                     f"| `{s['command']}` |")
    lines += ["", "Our columns are accuracies on the validation file (`--val`, public_test.csv.gz by default), "
              "which also chose each run's best epoch; the report's are on the course's hidden test split, "
              "and its two ablation figures (56% without BatchNormalization, 60% without augmentation) "
              "do not name the network."]
    return "\n".join(lines) + "\n"
