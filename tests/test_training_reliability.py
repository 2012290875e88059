"""Training never saves a broken model, never writes into someone's files, says what it will do,
and a resumed run ends exactly as an uninterrupted one: options, --help, NaN losses, locks, a full
disk, Ctrl-C, resume. Trainings here are tiny (fernet width 4, 112 synthetic faces, a few epochs)."""
import csv
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import train_cnn
import train_dnn
from data import synthetic
from tests.conftest import ROOT, file_sha256, one_error_line


@pytest.fixture(scope="module")
def small_csvs(tmp_path_factory):
    d = tmp_path_factory.mktemp("small")
    x, y = synthetic.make_faces(112, seed=1)
    xv, yv = synthetic.make_faces(28, seed=2)
    return str(synthetic.write_csv(d / "train.csv", x, y)), str(synthetic.write_csv(d / "val.csv", xv, yv))


def tiny(small_csvs, out, *extra):
    train, val = small_csvs
    return [train, "--model", "fernet", "--option", "width=4", "--batch-size", "32", "--val", val,
            "--out", str(out), "--quiet", *extra]


def history(run):
    return list(csv.DictReader(open(run / "history.csv")))


# ---------------------------------------------------------------- --help


def help_entries(main, capsys):
    """{option: its help text on one line} from the script's --help."""
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    entries, current = {}, None
    for line in capsys.readouterr().out.splitlines():
        found = re.match(r"^  (-[-\w]+)", line)
        if found:
            current = found.group(1)
            entries[current] = line
        elif current and line.startswith("     "):
            entries[current] += " " + line.strip()
        else:
            current = None
    return {k: " ".join(v.split()) for k, v in entries.items()}


def test_help_shows_each_meaningful_default_once(capsys):
    entries = help_entries(train_cnn.main, capsys)
    for flag in ("--no-augment", "--no-batchnorm", "--no-standardize", "--resume", "--quiet", "--time-budget"):
        assert "default" not in entries[flag], entries[flag]  # "(default: True)" read as if the ablation were on
    for option, default in [("--epochs", "30"), ("--batch-size", "64"), ("--seed", "1337"), ("--lr", "0.001"),
                            ("--label-smoothing", "0.0"), ("--model", "cnn3"), ("--val-split", "0.1"),
                            ("--out", "runs/<model>-<time>/")]:
        assert entries[option].count("default") == 1 and f"default: {default})" in entries[option], entries[option]
    assert not [e for e in entries.values() if "default: None" in e or "default: False" in e]


def test_train_dnn_offers_no_model_choice(capsys):
    entries = help_entries(train_dnn.main, capsys)
    assert "--model" not in entries and "--match" in entries and "(default: cnn3)" in entries["--match"]


# ---------------------------------------------------------------- options checked before any work


@pytest.mark.parametrize("extra, message", [
    (["--lr", "nan"], "--lr nan: must be a finite number above 0"),
    (["--lr", "0"], "--lr 0.0: must be a finite number above 0"),
    (["--lr", "-0.001"], "--lr -0.001: must be a finite number above 0"),
    (["--batch-size", "0"], "--batch-size 0: must be at least 1"),
    (["--epochs", "0"], "--epochs 0: must be at least 1"),
    (["--time-budget", "0"], "--time-budget 0.0: must be a finite number of minutes above 0"),
    (["--warmup", "1"], "--warmup 1.0: must be at least 0 and below 1"),
    (["--label-smoothing", "1"], "--label-smoothing 1.0: must be at least 0 and below 1"),
    (["--erasing", "1.5"], "--erasing 1.5: must be between 0 and 1"),
    (["--ema", "1"], "--ema 1.0: must be at least 0 and below 1"),
    (["--mixup", "-0.2"], "--mixup -0.2: must be a finite number, at least 0"),
    (["--cutmix", "inf"], "--cutmix inf: must be a finite number, at least 0"),
    (["--weight-decay", "-1"], "--weight-decay -1.0: must be a finite number, at least 0"),
    (["--val-split", "1"], "--val-split 1.0: must be at least 0 (none held out) and below 1"),
    (["--val-split", "-0.1"], "--val-split -0.1: must be at least 0 (none held out) and below 1"),
    (["--val-split", "0", "--schedule", "plateau"], "--schedule plateau with --val-split 0: the plateau schedule"),
    (["--val-split", "0", "--split-seed", "3"], "--split-seed 3 with --val-split 0: no faces are held out"),
    (["--split-seed", "-1"], "--split-seed -1: must be a whole number from 0 to 4294967295"),
    (["--val", "v.csv", "--split-seed", "3"], "--split-seed 3 with --val v.csv: a validation file is given"),
    (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
])
def test_bad_options_are_one_line_before_anything_loads(extra, message, small_csvs, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ferkit.train.loop", None)  # importing the training routine would fail the test
    train, _ = small_csvs
    assert train_cnn.main([train, "--out", str(tmp_path / "run"), *extra]) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_a_missing_csv_is_one_line_without_loading_tensorflow(tmp_path):
    code = ("import sys, train_cnn; rc = train_cnn.main([sys.argv[1]]); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing.csv")], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr == f"error: {tmp_path / 'missing.csv'}: no such file\n"


def test_model_options_of_the_wrong_kind_are_one_line(small_csvs, tmp_path, capsys):
    assert train_cnn.main(tiny(small_csvs, tmp_path / "a", "--option", "width=abc")) == 2
    assert "--option width=abc: model fernet expects an integer 1..256 for width (its default is 32)" in one_error_line(capsys)
    assert train_cnn.main(tiny(small_csvs, tmp_path / "b", "--option", "depth=2")) == 2
    assert "--option depth=2: model fernet has no option depth (it takes: width, blocks, dropout)" in \
        one_error_line(capsys)
    assert not os.listdir(tmp_path)


def test_out_folder_holding_a_users_files_is_refused(small_csvs, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "history.csv").write_text("my own numbers\n")
    assert train_cnn.main(tiny(small_csvs, mine)) == 2
    assert f"{mine}: not a run folder (no run.json) and it already holds history.csv" in one_error_line(capsys)
    assert os.listdir(mine) == ["history.csv"] and (mine / "history.csv").read_text() == "my own numbers\n"
    (mine / "history.csv").rename(mine / "notes.txt")  # nothing the run would replace, but not its folder either
    assert train_cnn.main(tiny(small_csvs, mine)) == 2
    assert f"{mine}: not a run folder (no run.json) and not empty; choose a new or empty folder" in \
        one_error_line(capsys)
    assert os.listdir(mine) == ["notes.txt"]


def test_resume_needs_an_unfinished_run_and_says_so_before_anything_loads(small_csvs, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ferkit.train.loop", None)
    monkeypatch.chdir(tmp_path)
    assert train_cnn.main([small_csvs[0], "--resume"]) == 2
    assert "--resume: no unfinished run under runs/; name one with --out DIR" in one_error_line(capsys)
    (tmp_path / "empty").mkdir()
    assert train_cnn.main([small_csvs[0], "--resume", "--out", "empty"]) == 2
    assert "empty: not a run folder (no run.json); nothing to resume" in one_error_line(capsys)


def test_the_run_folder_names_are_defined_once_in_its_layout():
    from ferkit.runs import layout

    assert set(layout.OUTPUTS) >= {layout.RUN_FILE, layout.HISTORY_FILE, layout.WEIGHTS_FILE, layout.STATE_DIR}
    names = (layout.RUN_FILE, layout.WEIGHTS_FILE, layout.HISTORY_FILE, layout.STATE_DIR, layout.TEACHER_FILE,
             layout.LOCK_FILE)
    quoted = re.compile("|".join(f"[\"']{re.escape(n)}[\"']" for n in names))
    for root, dirs, files in os.walk(ROOT):  # every module and script names them through layout.py only
        dirs[:] = [d for d in dirs if d not in ("tests", "runs", "docs") and not d.startswith(".")]
        for f in files:
            path = os.path.join(root, f)
            if f.endswith(".py") and os.path.abspath(path) != os.path.abspath(layout.__file__):
                found = quoted.findall(open(path).read())
                assert not found, f"{path} spells out {found}; use ferkit.runs.layout"


# ---------------------------------------------------------------- the run folder's lock


def test_a_second_training_into_the_same_folder_is_refused_until_the_first_ends(tmp_path):
    from ferkit.errors import FERError
    from ferkit.runs.folder import RunFolder

    first = RunFolder.new(str(tmp_path / "run"))
    with pytest.raises(FERError, match=rf"run: another training \(pid {os.getpid()}\) is writing to this run folder"):
        RunFolder.existing(str(tmp_path / "run"))
    first.release()
    RunFolder.existing(str(tmp_path / "run")).release()
    assert os.listdir(tmp_path / "run") == []  # the lock file goes with its owner


def test_a_stale_lock_of_a_killed_training_does_not_block(tmp_path):
    from ferkit.runs.folder import LOCK_FILE, RunFolder

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK_FILE).write_text("999999999\n")  # what kill -9 leaves: a file, no lock held
    RunFolder.existing(str(tmp_path / "run")).release()


# ---------------------------------------------------------------- never a broken model


@pytest.mark.slow
def test_a_loss_that_turns_nan_stops_training_and_keeps_the_good_weights(small_csvs, tmp_path, capsys, monkeypatch):
    from ferkit.train import loop as train

    out = tmp_path / "run"
    seen = {}

    class Diverge(train.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:  # after a good first epoch, a learning rate no network survives
                seen["weights"] = file_sha256(out / "best.weights.h5")
                self.model.optimizer.learning_rate = 1e12

    original = train.Training.callbacks
    monkeypatch.setattr(train.Training, "callbacks", lambda self, *a: [Diverge()] + original(self, *a))
    assert train_cnn.main(tiny(small_csvs, out, "--epochs", "3", "--optimizer", "sgd", "--schedule", "constant",
                               "--lr", "1e-2")) == 2
    line = one_error_line(capsys)
    assert re.search(r"error: loss became (nan|inf) in epoch 2: training stopped and the best weights "
                     r"\(epoch 1, val_accuracy [\d.]+\) are kept in .*run; try a lower --lr \(this run: 0.01\)", line)
    info = json.load(open(out / "run.json"))
    assert info["status"] == "failed" and info["epochs_done"] == 1 and info["best_epoch"] == 1
    assert file_sha256(out / "best.weights.h5") == seen["weights"] == info["weights_sha256"]
    assert [r["epoch"] for r in history(out)] == ["1"]


@pytest.mark.slow
def test_a_training_that_fails_in_its_first_epoch_leaves_no_run_folder(small_csvs, tmp_path, capsys):
    out = tmp_path / "run"
    assert train_cnn.main(tiny(small_csvs, out, "--epochs", "2", "--optimizer", "sgd", "--schedule", "constant",
                               "--lr", "1e12")) == 2
    assert "in epoch 1: training stopped and no epoch had finished, so nothing was kept" in one_error_line(capsys)
    assert not out.exists()


# ---------------------------------------------------------------- a full disk, then --resume


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_the_run_resumes_afterwards(small_csvs, tmp_path, capsys, monkeypatch):
    from ferkit import files as outputs

    out = tmp_path / "run"
    original, writes = outputs.atomic_path, []

    def fill_up_at_second_history(path):
        writes.append(os.path.basename(path))
        if writes.count("history.csv") == 2:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return original(path)

    monkeypatch.setattr(outputs, "atomic_path", fill_up_at_second_history)
    assert train_cnn.main(tiny(small_csvs, out, "--epochs", "3")) == 2
    line = one_error_line(capsys)
    assert f"{out / 'history.csv'}: cannot write (no space left on the device; nothing was written); training " \
           f"stopped after epoch 1: free space, then continue with: python train_cnn.py " in line
    assert line.endswith(f"--out {out} --resume")
    assert json.load(open(out / "run.json"))["epochs_done"] == 1

    monkeypatch.setattr(outputs, "atomic_path", original)
    assert train_cnn.main([small_csvs[0], "--out", str(out), "--resume"]) == 0
    assert "resuming" in capsys.readouterr().out
    info = json.load(open(out / "run.json"))
    assert info["status"] == "done" and info["epochs_done"] == 3
    assert [r["epoch"] for r in history(out)] == ["1", "2", "3"]
    assert sorted(os.listdir(out)) == ["best.weights.h5", "history.csv", "run.json"]  # no lock, no state left


# ---------------------------------------------------------------- resume = uninterrupted


@pytest.mark.slow
@pytest.mark.parametrize("teachers", ["none", "cached", "online"])
def test_a_resumed_run_matches_an_uninterrupted_one(small_csvs, tmp_path, capsys, monkeypatch, teachers, request):
    """Augmentation, dropout, MixUp, shuffling and the EMA all draw from (seed, epoch): stopped after
    two epochs and resumed, a run logs and ends as the uninterrupted run with the same seed; with
    teachers too: cached (the resumed run reads their probabilities and builds none of them, so the
    student's random streams must not depend on their building) and online (their frozen weights
    ride along in the state a resume starts from)."""
    from ferkit.train import callbacks
    from ferkit.runs import load as runs

    settings = ("--epochs", "4", "--mixup", "0.2", "--ema", "0.5", "--lr", "3e-3")
    if teachers != "none":  # a resumed cached run reads the probabilities and builds no teacher
        settings += ("--teacher", str(request.getfixturevalue("trained_run")), "--teacher-mode", teachers)
    assert train_cnn.main(tiny(small_csvs, tmp_path / "whole", *settings)) == 0

    original = callbacks.RunKeeper.on_epoch_end

    def interrupt_after_second_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt  # as the training thread sees a Ctrl-C

    monkeypatch.setattr(callbacks.RunKeeper, "on_epoch_end", interrupt_after_second_epoch)
    assert train_cnn.main(tiny(small_csvs, tmp_path / "parts", *settings)) == 130
    assert f"interrupted after 2 epochs; continue with: python train_cnn.py {small_csvs[0]} --out " \
           f"{tmp_path / 'parts'} --resume" in capsys.readouterr().err
    monkeypatch.setattr(callbacks.RunKeeper, "on_epoch_end", original)
    assert train_cnn.main([small_csvs[0], "--out", str(tmp_path / "parts"), "--resume"]) == 0

    whole, parts = history(tmp_path / "whole"), history(tmp_path / "parts")
    assert [r["epoch"] for r in parts] == ["1", "2", "3", "4"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        np.testing.assert_allclose([float(r[key]) for r in parts], [float(r[key]) for r in whole],
                                   rtol=1e-4, atol=1e-6, err_msg=key)
    model_whole, _ = runs.load_run(str(tmp_path / "whole"))
    model_parts, _ = runs.load_run(str(tmp_path / "parts"))
    for a, b in zip(model_whole.get_weights(), model_parts.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "ferkit.train.loop", None)  # a finished run is refused before TensorFlow loads
    assert train_cnn.main([small_csvs[0], "--out", str(tmp_path / "parts"), "--resume"]) == 2
    assert "parts: this run already finished; nothing to resume" in one_error_line(capsys)


# ---------------------------------------------------------------- Ctrl-C


_SLOW_SECOND_EPOCH = """
import sys, time, train_cnn
from ferkit.train import callbacks
def slow(self, epoch, logs=None):  # a step that runs on (as a minutes-long first step can)
    if epoch == 1:
        print("slow step", flush=True)
        time.sleep(60)
callbacks.Progress.on_epoch_begin = slow
sys.exit(train_cnn.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_ctrl_c_stops_within_seconds_and_says_how_to_resume(small_csvs, tmp_path):
    out = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", _SLOW_SECOND_EPOCH, *tiny(small_csvs, out, "--epochs", "3")],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in child.stdout:
        if line.startswith("slow step"):
            break
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert time.monotonic() - sent < 5
    assert child.returncode == 130
    assert f"interrupted after 1 epoch; continue with: python train_cnn.py {small_csvs[0]} --out {out} --resume" in err
    info = json.load(open(out / "run.json"))
    assert info["status"] == "interrupted" and info["epochs_done"] == 1
    assert ".lock" not in os.listdir(out)


# ---------------------------------------------------------------- what a newcomer is told


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run_progress(progress, clock, seconds_per_step, steps):
    progress.set_params({"epochs": progress.epochs, "steps": 400, "verbose": 2})
    progress.on_train_begin()
    progress.on_epoch_begin(progress.initial_epoch)
    for batch in range(steps):
        clock.now += seconds_per_step
        progress.on_train_batch_end(batch)


def test_the_estimated_time_comes_after_a_few_steps_with_a_hint_when_long_on_a_cpu():
    from ferkit.train.callbacks import Progress

    lines, clock = [], FakeClock()
    progress = Progress(30, model_name="cnn3", clock=clock, print_fn=lambda *a, **k: lines.append(a[0]))
    run_progress(progress, clock, 5.0, 7)
    assert lines[0] == ("estimated training time: 16 h 40 min (30 epochs of 400 steps at 5.00 s per step, "
                        "validation not counted)")  # 5 s per step, the first (compiling) one not counted
    assert lines[1].startswith("hint: that is long for a machine without a GPU; try --model fernet "
                               "(a compact network made for CPUs) or --time-budget MINUTES")
    assert len(lines) == 2  # once, and no periodic lines on a terminal (Keras' progress bar is there)

    lines.clear()
    for kwargs in ({"gpu": True}, {"time_budget": 115}):
        run_progress(Progress(30, clock=clock, print_fn=lambda *a, **k: lines.append(a[0]), **kwargs), clock, 5.0, 7)
    assert len(lines) == 2 and not [line for line in lines if line.startswith("hint")]
    assert lines[1] == ("estimated training time: 1 h 55 min, the time budget (30 epochs of 400 steps at 5.00 s "
                        "per step would take 16 h 40 min)")


def test_without_a_terminal_a_progress_line_comes_every_few_minutes():
    from ferkit.train.callbacks import Progress

    lines, clock = [], FakeClock()
    progress = Progress(2, gpu=True, clock=clock, periodic=True, interval=180,
                        print_fn=lambda *a, **k: lines.append(a[0]))
    run_progress(progress, clock, 10.0, 40)  # 400 s: the estimate, then a line at 180 s and 360 s
    assert [line.split(":")[0] for line in lines] == ["estimated training time", "epoch 1/2, step 18/400",
                                                      "epoch 1/2, step 36/400"]
    assert lines[1] == "epoch 1/2, step 18/400: 10.00 s per step, about 2 h 10 min left"


# ---------------------------------------------------------------- library parts


def test_the_epoch_cosine_schedule_is_keras_cosine_decay_with_warmup():
    import argparse

    from ferkit.train.loop import _learning_rate, keras

    args = argparse.Namespace(schedule="cosine", time_budget=None, epochs=10, lr=1e-2, warmup=0.1)
    schedule = _learning_rate(args, steps=10)
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    lr = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]
    np.testing.assert_allclose(lr, [0.0, 5e-3, 1e-2, 5e-3, 0.0], atol=1e-8)
    args.time_budget = 60  # over wall time: a callback sets the rate, the optimizer gets a plain number
    assert _learning_rate(args, steps=10) == 1e-2
