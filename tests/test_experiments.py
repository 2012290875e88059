"""scripts/run_experiments.py: the report's table in one command. The plan and its commands
(--dry-run), skipping finished and resuming unfinished runs, and one real --smoke run whose
files and table row are checked against its history.csv."""
import csv
import json
import os

import pytest

from ferkit.report import experiments
from tests.conftest import load_script

run_experiments = load_script("scripts/run_experiments.py")

CPU_PLAN = ["cnn1", "cnn1_no_batchnorm", "cnn1_no_augment", "dnn_cnn1", "dnn_cnn1_no_augment", "fernet"]


def _commands(out):
    """{name: command} from the '> name: command' lines the runner prints."""
    lines = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith(">")]
    return {line.split(":", 1)[0].removeprefix("resume "): line.split(": ", 1)[1] for line in lines}


def test_dry_run_prints_the_cpu_plan_and_a_gpu_adds_cnn2_cnn3(synthetic_csvs, tmp_path, capsys):
    base = ["--dry-run", "--train", str(synthetic_csvs["train"]), "--val", str(synthetic_csvs["val"]),
            "--runs", str(tmp_path / "runs")]
    assert run_experiments.main(base + ["--gpu", "no"]) == 0
    cpu = _commands(capsys.readouterr().out)
    assert list(cpu) == CPU_PLAN
    for name, cmd in cpu.items():  # one budget, one schedule, one validation file for every run
        assert " --time-budget 45 " in cmd and f" --val {synthetic_csvs['val']} " in cmd, cmd
        assert f"--out {tmp_path / 'runs' / name} " in cmd and "blur" not in cmd
    assert cpu["dnn_cnn1_no_augment"].startswith("python train_dnn.py ")
    assert "--match cnn1 --no-augment" in cpu["dnn_cnn1_no_augment"]
    assert "--model cnn1 --no-batchnorm" in cpu["cnn1_no_batchnorm"]

    assert run_experiments.main(base + ["--gpu", "yes", "--budget", "20"]) == 0
    gpu = _commands(capsys.readouterr().out)
    assert list(gpu) == CPU_PLAN + ["cnn2", "cnn3", "cnn3_no_batchnorm", "cnn3_no_augment", "dnn_cnn3"]
    assert all(" --time-budget 20 " in c for c in gpu.values())
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_finished_runs_are_skipped_and_unfinished_ones_resumed(synthetic_csvs, tmp_path, capsys):
    runs = tmp_path / "runs"
    for name, status in (("cnn1", "training"), ("fernet", "done")):
        (runs / name).mkdir(parents=True)
        (runs / name / "run.json").write_text(json.dumps({"model": name, "status": status}))
    assert run_experiments.main(["--dry-run", "--gpu", "no", "--train", str(synthetic_csvs["train"]),
                                 "--val", str(synthetic_csvs["val"]), "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "> resume cnn1: " in out and _commands(out)["cnn1"].endswith(" --resume")
    assert "= fernet: finished, skipped" in out and "fernet" not in _commands(out)
    assert not _commands(out)["cnn1_no_augment"].endswith("--resume")


def test_unknown_experiment_or_missing_data_is_one_line(tmp_path, capsys):
    assert run_experiments.main(["--dry-run", "--gpu", "no", "--only", "cnn4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --only cnn4: no such experiment (choose from cnn1, ") and err.count("\n") == 1
    missing = tmp_path / "train.csv"
    assert run_experiments.main(["--dry-run", "--gpu", "no", "--train", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: {missing}: no such file (pass --train/--val, or --smoke for synthetic faces)\n"


@pytest.mark.slow
def test_smoke_run_keeps_run_files_and_writes_the_table_row_from_history(tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = ["--smoke", "--only", "dnn_cnn1", "--gpu", "no", "--runs", str(runs)]
    assert run_experiments.main(argv) == 0
    kept = runs / "docs" / "dnn_cnn1"
    assert sorted(os.listdir(kept)) == ["history.csv", "run.json"]  # no weights in docs
    info = json.loads((kept / "run.json").read_text())
    assert info["status"] == "done" and info["model"] == "dnn"
    assert info["experiment"]["command"].startswith("python train_dnn.py ")
    command = info["experiment"]["command"]
    assert " --match cnn1 " in command and " --time-budget 0.01 " in command
    with open(kept / "history.csv") as f:
        val = [float(r["val_accuracy"]) for r in csv.DictReader(f)]
    table = (runs / "docs" / "results.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| dnn_cnn1 |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    # the table's accuracies are history.csv's best and last val_accuracy, to the hundredth of a point
    assert cells[4] == f"{100 * max(val):.2f} ({val.index(max(val)) + 1})" and cells[5] == f"{100 * val[-1]:.2f}"
    assert cells[2] == f"{info['params']:,}"
    cnn3 = next(line for line in table.splitlines() if line.startswith("| cnn3 |"))
    assert "65.25" in cnn3 and "needs a GPU" in cnn3
    capsys.readouterr()

    # The same command again trains nothing: the finished run is skipped, its files kept.
    log = (runs / "dnn_cnn1.log").read_text()
    assert run_experiments.main(argv) == 0
    assert "= dnn_cnn1: finished, skipped" in capsys.readouterr().out
    assert (runs / "dnn_cnn1.log").read_text() == log
    assert experiments.summarize(str(kept))["best"] == max(val)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="pinning runs to cores needs Linux and two cores")
@pytest.mark.slow
def test_jobs_train_runs_side_by_side_each_pinned_to_its_own_core(tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = ["--smoke", "--only", "dnn_cnn1", "dnn_cnn1_no_augment", "--gpu", "no", "--runs", str(runs), "--jobs", "2"]
    assert run_experiments.main(argv) == 0
    out = capsys.readouterr().out
    cores = sorted(os.sched_getaffinity(0))
    assert f"> dnn_cnn1 [core {cores[0]}]: " in out and f"> dnn_cnn1_no_augment [core {cores[1]}]: " in out
    for name in ("dnn_cnn1", "dnn_cnn1_no_augment"):
        info = json.loads((runs / "docs" / name / "run.json").read_text())
        assert info["status"] == "done"
        assert f", 1 of {os.cpu_count()} CPU cores," in info["host"]  # the share each run had, for the table


def test_more_jobs_than_cores_is_one_line(capsys):
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert run_experiments.main(["--dry-run", "--gpu", "no", "--jobs", str(n + 1)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --jobs {n + 1}: only {n} CPU core") and err.count("\n") == 1


def test_a_last_epoch_cut_short_by_the_budget_is_recognized():
    from ferkit.report.figures import cut_short_last_epoch

    rows = lambda secs: [{"epoch": str(i + 1), "seconds": str(s)} for i, s in enumerate(secs)]
    assert cut_short_last_epoch(rows([10, 20, 30, 32]))       # 2 s against 10 s epochs: a few batches
    assert not cut_short_last_epoch(rows([10, 20, 30, 38]))   # 8 s: most of an epoch
    assert not cut_short_last_epoch(rows([10, 12]))           # too short a history to tell
    budget = [{"epoch": "1", "lr": "1e-3", "seconds": "16"}, {"epoch": "2", "lr": "1e-5", "seconds": "32"},
              {"epoch": "3", "lr": "0.0", "seconds": "42"}]  # validation kept the cut epoch long
    assert cut_short_last_epoch(budget)


def test_a_run_at_another_learning_rate_is_not_given_the_reports_figure():
    from ferkit.report import pages as report

    info = {"model": "cnn3", "options": {"batchnorm": False}, "augment": {}, "args": {"lr": 1e-4}}
    what, published = report.describe(info)
    assert what == "cnn3 without BatchNormalization, lr 1e-4" and published is None
    info["args"]["lr"] = 1e-3  # the default: the report's no-BatchNorm row
    assert report.describe(info) == ("cnn3 without BatchNormalization", experiments.PUBLISHED["no-BN"])


@pytest.mark.slow
def test_text_too_long_for_a_page_continues_on_the_next_without_splitting_a_line():
    from ferkit.report import figures

    lines = ["word " * 60] * 40  # each wraps to the same number of printed lines (>= 2) on an A4 page
    pages = figures.text_pages(lines, "How this report was made", fontsize=8)
    per_line = len(figures.wrap_inches(lines[0].strip(), figures.A4_PORTRAIT[0] - 2 * figures.MARGIN - 0.2, 8))
    titles = [fig.texts[0].get_text() for fig in pages]
    body = [len(fig.texts) - 1 for fig in pages]  # printed lines under each title
    assert per_line >= 2 and len(pages) >= 2
    assert titles == [f"How this report was made ({k + 1}/{len(pages)})" for k in range(len(pages))]
    assert sum(body) == 40 * per_line and all(n % per_line == 0 for n in body)  # whole lines only
    assert all(figures.outside_texts(fig) == [] for fig in pages)  # and all of them on the page
    assert len(figures.text_pages(lines[:3], "Short")) == 1


@pytest.mark.parametrize("args, expected", [
    ({"val": None, "val_split": 0.1}, "Its best val % in the table is on a 10% split of the training file"),
    ({"val": "other.csv", "val_split": 0.1}, "Its best val % in the table is on other.csv"),
    ({"val": None, "val_split": 0.0}, None),  # no validation: nothing to explain
])
def test_page_one_says_which_set_chose_the_shown_models_epoch(args, expected):
    """The bundled model validated on a held-out split: page 1 must not let its 'best val' read as
    a public_test figure (the table's note speaks of the experiments, validated on public_test)."""
    from ferkit.report import pages

    shown = {"name": "bundled fernet", "label": "fernet", "run_dir": "models/pretrained/fernet", "why": "the default",
             "data": "../shared/data/fer2013/public_test.csv.gz", "same_as_validation": False, "info": {"args": args},
             "metrics": {"accuracy": 0.6882, "n": 3589, "macro_f1": 0.657}}
    text = " ".join(pages.shown_lines(shown))
    assert "68.82% of 3,589 faces" in text
    if expected:
        assert expected in text and "public_test.csv.gz played no part" in text
    else:
        assert "Its best val" not in text
