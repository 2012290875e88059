"""End to end through the scripts' main(): train on a learnable synthetic set, predict, resume,
and the one-line errors with no output file left behind."""
import csv
import json
import os

import numpy as np
import pandas as pd
import pytest

import predict
import train_cnn
import train_dnn
from data import synthetic


def read_submission(path):
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["id", "label"]
    return frame


def test_training_writes_a_complete_run_folder_and_learns(trained_run):
    files = set(os.listdir(trained_run))
    assert files == {"run.json", "best.weights.h5", "history.csv"}  # no resume state, lock or temporary file left
    info = json.load(open(trained_run / "run.json"))
    assert info["model"] == "fernet" and info["options"] == {"width": 8}
    assert info["class_names"] == ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]
    assert info["status"] == "done" and info["epochs_done"] == 6
    history = list(csv.DictReader(open(trained_run / "history.csv")))
    assert [int(r["epoch"]) for r in history] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr"} <= set(history[0])
    assert info["val_accuracy"] == pytest.approx(max(float(r["val_accuracy"]) for r in history))
    # It learned the synthetic task (chance is 1/7): loss falls, accuracy ends far above chance.
    assert float(history[-1]["loss"]) < float(history[0]["loss"]) / 5
    assert float(history[-1]["accuracy"]) > 0.95 and info["val_accuracy"] > 0.9
    from ferkit.runs import load as runs

    assert info["weights_sha256"] == runs.file_sha256(trained_run / "best.weights.h5")


def test_run_json_records_the_command_line_once(trained_run):
    info = json.load(open(trained_run / "run.json"))
    assert "cli_args" not in info  # the resolved settings ("args") and the command are enough
    assert info["command"].startswith("train_cnn.py ") and "--option width=8" in info["command"]
    assert info["args"]["batch_size"] == 16 and info["args"]["model"] == "fernet"


@pytest.mark.slow
def test_predict_scores_well_above_chance_and_keeps_ids_and_order(trained_run, synthetic_csvs, tmp_path, capsys):
    out = tmp_path / "out.csv"
    assert predict.main([str(synthetic_csvs["test"]), str(out), "--weights", str(trained_run)]) == 0
    sub = read_submission(out)
    np.testing.assert_array_equal(sub["id"], 1000 + np.arange(210))
    accuracy = np.mean(sub["label"].to_numpy() == synthetic_csvs["test_labels"])
    assert accuracy > 0.9


@pytest.mark.slow
def test_predict_on_a_labelled_file_prints_accuracy_and_numbers_rows(trained_run, synthetic_csvs, tmp_path, capsys):
    out = tmp_path / "out.csv"
    assert predict.main([str(synthetic_csvs["val"]), str(out), "--weights", str(trained_run / "best.weights.h5"),
                         "--chunk-rows", "50", "--tta"]) == 0
    printed = capsys.readouterr().out
    accuracy = float(printed.split("accuracy ")[1].split()[0])
    assert accuracy > 0.9
    np.testing.assert_array_equal(read_submission(out)["id"], np.arange(210))


@pytest.mark.slow
def test_ensemble_of_two_weights_arguments(trained_run, synthetic_csvs, tmp_path, capsys):
    out = tmp_path / "out.csv"
    assert predict.main([str(synthetic_csvs["val"]), str(out), "--weights", str(trained_run),
                         "--weights", str(trained_run), "--probs"]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns)[:2] == ["id", "label"] and len(frame.columns) == 9
    np.testing.assert_allclose(frame.iloc[:, 2:].sum(axis=1), 1, atol=1e-3)


@pytest.mark.slow
def test_an_ensemble_prints_no_tensorflow_retracing_warnings(trained_run, synthetic_csvs, tmp_path, capfd, caplog):
    """Three members and two batch shapes (210 faces in batches of 64) trace six predict steps:
    TensorFlow's logger warned "5 out of the last 5 calls ... triggered tf.function retracing",
    a paragraph per call, on the user's stderr (here pytest's log capture stands in for it)."""
    args = [str(synthetic_csvs["val"]), str(tmp_path / "out.csv"), "--batch-size", "64"]
    assert predict.main(args + ["--weights", str(trained_run)] * 3) == 0
    assert "retracing" not in capfd.readouterr().err + caplog.text


@pytest.mark.slow
def test_a_folder_of_run_folders_is_an_ensemble(trained_run, synthetic_csvs, tmp_path, capsys):
    import shutil

    ensemble = tmp_path / "ensemble"
    for member in ("a", "b"):
        shutil.copytree(trained_run, ensemble / member)
    out, alone = tmp_path / "out.csv", tmp_path / "alone.csv"
    assert predict.main([str(synthetic_csvs["val"]), str(out), "--weights", str(ensemble), "--probs"]) == 0
    printed = capsys.readouterr().out
    assert f"fernet ({ensemble / 'a'}), fernet ({ensemble / 'b'})" in printed
    # Two copies of one run average to that run's own probabilities.
    assert predict.main([str(synthetic_csvs["val"]), str(alone), "--weights", str(trained_run), "--probs"]) == 0
    np.testing.assert_allclose(pd.read_csv(out).iloc[:, 2:], pd.read_csv(alone).iloc[:, 2:], atol=2e-5)
    # An ensemble's files are inputs: the output may not replace one of them.
    target = ensemble / "b" / "run.json"
    assert predict.main([str(synthetic_csvs["val"]), str(target), "--weights", str(ensemble)]) == 2
    assert "run.json" in capsys.readouterr().err and (ensemble / "b" / "run.json").read_text().startswith("{")


def test_predict_uses_the_newest_run_under_runs(trained_run, synthetic_csvs, tmp_path, monkeypatch, capsys):
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(trained_run, tmp_path / "runs" / "copy")
    assert predict.main([str(synthetic_csvs["test"]), "out.csv"]) == 0
    assert "runs/copy" in capsys.readouterr().out
    assert len(read_submission("out.csv")) == 210


@pytest.mark.slow
def test_train_dnn_shares_the_routine(synthetic_csvs, tmp_path, capsys):
    out = tmp_path / "dnn"
    assert train_dnn.main([str(synthetic_csvs["train"]), "--match", "cnn1", "--depth", "2", "--epochs", "1",
                           "--out", str(out), "--quiet"]) == 0
    assert " 1 epoch in " in capsys.readouterr().out
    info = json.load(open(out / "run.json"))
    assert info["model"] == "dnn" and info["options"] == {"match": "cnn1", "depth": 2}
    assert abs(info["params"] / 2_659_851 - 1) < 0.05


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0]
    return err[0]


@pytest.mark.slow
def test_bad_inputs_get_one_line_and_no_output_file(trained_run, synthetic_csvs, tmp_path, capsys):
    x, y = synthetic.make_faces(40, seed=9)
    good = open(synthetic.write_csv(tmp_path / "g.csv", x, ids=np.arange(40))).read().splitlines()
    good[35] = good[35].rsplit(" ", 1)[0]  # line 36 (row 35) loses a pixel, after the first chunk
    (tmp_path / "late_bad.csv").write_text("\n".join(good) + "\n")
    out = tmp_path / "out.csv"
    assert predict.main([str(tmp_path / "late_bad.csv"), str(out), "--weights", str(trained_run),
                         "--chunk-rows", "10"]) == 2
    assert "late_bad.csv, line 36: 2303 pixels" in one_error_line(capsys)
    assert not out.exists() and os.listdir(tmp_path).count("out.csv") == 0
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]

    assert predict.main([str(tmp_path / "missing.csv"), str(out), "--weights", str(trained_run)]) == 2
    assert "missing.csv: no such file" in one_error_line(capsys)
    assert train_cnn.main([str(tmp_path / "missing.csv"), "--out", str(tmp_path / "r")]) == 2
    assert "missing.csv: no such file" in one_error_line(capsys)
    assert train_cnn.main([str(synthetic_csvs["test"]), "--out", str(tmp_path / "r2")]) == 2
    assert "no label column" in one_error_line(capsys)
    assert not out.exists()


def test_weights_of_another_model_are_refused(trained_run, synthetic_csvs, tmp_path, capsys):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(trained_run, other)
    info = json.load(open(other / "run.json"))
    info["model"], info["options"] = "cnn1", {}
    json.dump(info, open(other / "run.json", "w"))
    assert predict.main([str(synthetic_csvs["test"]), str(tmp_path / "o.csv"), "--weights", str(other)]) == 2
    assert "weights do not fit model cnn1" in one_error_line(capsys)
    (other / "best.weights.h5").write_text("not hdf5")
    assert predict.main([str(synthetic_csvs["test"]), str(tmp_path / "o.csv"), "--weights", str(other)]) == 2
    assert "not a readable HDF5 weights file" in one_error_line(capsys)
    assert not (tmp_path / "o.csv").exists()


def test_no_run_anywhere_is_a_clear_message(synthetic_csvs, tmp_path, monkeypatch, capsys):
    from ferkit.runs import load as runs

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runs, "PRETRAINED_DIR", str(tmp_path / "none"))
    assert predict.main([str(synthetic_csvs["test"]), "out.csv"]) == 2
    assert "no trained run under runs/" in one_error_line(capsys)


@pytest.mark.slow
def test_ema_keeps_the_averaged_weights_it_validated(synthetic_csvs, tmp_path):
    """With --ema the saved best weights are the averaged ones that validation scored: loading them
    reproduces the logged val_loss (the raw weights, saved by a misordered callback, would not)."""
    import data
    from ferkit.runs import load as runs
    from ferkit.backend import import_keras

    keras = import_keras()

    out = tmp_path / "ema"
    assert train_cnn.main([str(synthetic_csvs["train"]), "--model", "fernet", "--option", "width=4",
                           "--epochs", "2", "--lr", "3e-3", "--no-augment", "--ema", "0.9",
                           "--val", str(synthetic_csvs["val"]), "--out", str(out), "--quiet"]) == 0
    model, info = runs.load_run(str(out))
    assert info["args"]["ema"] == 0.9
    val = data.load_csv(str(synthetic_csvs["val"]))
    model.compile(loss="categorical_crossentropy")
    loss = model.evaluate(val.images, keras.utils.to_categorical(val.labels, 7), verbose=0)
    assert abs(loss - info["val_loss"]) < 1e-3 * max(1.0, info["val_loss"])


def test_ema_momentum_must_be_below_one(synthetic_csvs, tmp_path, capsys):
    assert train_cnn.main([str(synthetic_csvs["train"]), "--ema", "1", "--out", str(tmp_path / "r")]) == 2
    assert "--ema 1.0: must be at least 0 and below 1" in capsys.readouterr().err


def test_hardware_names_cpu_model_and_vector_width(tmp_path):
    from ferkit.runs.folder import hardware as _hardware

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert _hardware(str(info)).startswith("AMD EPYC (AVX-512), ")
    info.write_text("model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2\n")
    assert _hardware(str(info)).startswith("AMD EPYC (AVX2), ")
    assert "CPU cores" in _hardware(str(tmp_path / "missing"))  # no /proc (macOS): still a line


def test_train_limit_draws_fewer_training_faces_and_keeps_the_held_out_ones(synthetic_csvs, tmp_path, capsys):
    from data import load_csv, stratified_split

    out = tmp_path / "limited"
    assert train_cnn.main([str(synthetic_csvs["train"]), "--model", "fernet", "--option", "width=4", "--epochs", "1",
                           "--batch-size", "32", "--train-limit", "140", "--out", str(out), "--quiet"]) == 0
    info = json.load(open(out / "run.json"))
    full = load_csv(str(synthetic_csvs["train"]))
    tr, va = stratified_split(full.labels, 0.1, seed=1337)
    assert (info["train_rows"], info["val_rows"]) == (140, len(va))
    # Stratified: each class keeps its share of the training part, to within a face.
    from ferkit.train.loop import _limit

    part = load_csv(str(synthetic_csvs["train"]))
    limited = _limit(type(part)(part.images[tr], part.labels[tr], None, part.path), 140, 1337, "x.csv")
    np.testing.assert_allclose(np.bincount(limited.labels, minlength=7),
                               140 * np.bincount(full.labels[tr], minlength=7) / len(tr), atol=1)
    capsys.readouterr()
    rc = train_cnn.main([str(synthetic_csvs["train"]), "--train-limit", str(len(tr)), "--out", str(tmp_path / "r")])
    assert rc == 2 and not (tmp_path / "r").exists()
    assert capsys.readouterr().err == (f"error: --train-limit {len(tr)}: {synthetic_csvs['train']} leaves {len(tr)} "
                                       "training faces; give a smaller number\n")


def test_split_seed_draws_the_train_limit_when_a_validation_file_is_given(synthetic_csvs, tmp_path):
    from ferkit.train.config import build_parser, check_args
    from ferkit.train.loop import load_data

    def drawn(*extra):
        argv = [str(synthetic_csvs["train"]), "--val", str(synthetic_csvs["val"]), "--train-limit", "70", *extra]
        args = build_parser("train_cnn.py", "").parse_args(argv)
        check_args(args)  # --split-seed with --val is refused unless --train-limit draws with it
        return load_data(args)[0].images

    assert np.array_equal(drawn("--seed", "1", "--split-seed", "5"), drawn("--seed", "2", "--split-seed", "5"))
    assert not np.array_equal(drawn("--seed", "1"), drawn("--seed", "2"))


def test_val_split_0_trains_on_every_face_and_keeps_the_last_epoch(synthetic_csvs, tmp_path, capsys):
    """The final fit of a chosen recipe: no face held out, the last epoch's (EMA) weights kept and
    recorded as such, and the run usable by predict.py like any other."""
    from ferkit.runs.load import file_sha256

    out = tmp_path / "full"
    argv = [str(synthetic_csvs["train"]), "--model", "fernet", "--option", "width=4", "--epochs", "2",
            "--batch-size", "64", "--val-split", "0", "--ema", "0.9", "--out", str(out), "--quiet"]
    assert train_cnn.main(argv) == 0
    printed = capsys.readouterr().out
    assert "700 training images, none held out (--val-split 0" in printed
    assert "no validation; kept the last epoch, 2" in printed
    info = json.load(open(out / "run.json"))
    assert (info["train_rows"], info["val_rows"], info["best_epoch"], info["epochs_done"]) == (700, 0, 2, 2)
    assert info["val_accuracy"] is None and info["status"] == "done"
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "val_accuracy" not in history[0]
    assert file_sha256(str(out / info["weights"])) == info["weights_sha256"]  # written at epoch 2, the last
    sub = tmp_path / "out.csv"
    assert predict.main([str(synthetic_csvs["test"]), str(sub), "--weights", str(out)]) == 0
    assert len(read_submission(sub)) == len(synthetic_csvs["test_labels"])
