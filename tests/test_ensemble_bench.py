"""benchmarks/ensemble.py --held-out: it scores exactly the faces the runs held out from their
training CSV, and refuses runs that did not all hold out the same ones (untrained tiny runs)."""
import json

import numpy as np
import pytest

import data
import models
from benchmarks import ensemble
from data import synthetic
from ferkit.runs import load as runs


def tiny_run(folder, rows, seed=7, val_split=0.2, val=None, split_seed=None, train_limit=None):
    """A run folder of an untrained fernet of width 8 whose run.json says how it split `rows` faces."""
    folder.mkdir()
    runs.save_weights(models.build_model("fernet", width=8), str(folder / runs.WEIGHTS_FILE))
    n_val = int(round(rows * val_split))
    info = {"model": "fernet", "options": {"width": 8}, "train_rows": train_limit or rows - n_val, "val_rows": n_val,
            "args": {"seed": seed, "val_split": val_split, "val": val, "split_seed": split_seed,
                     "train_limit": train_limit}}
    (folder / runs.RUN_FILE).write_text(json.dumps(info))
    return folder


@pytest.fixture
def faces(tmp_path):
    x, y = synthetic.make_faces(35, seed=3)  # 5 faces of each class
    return synthetic.write_csv(tmp_path / "train.csv", x, y), y


def test_held_out_scores_the_split_the_runs_held_out(tmp_path, faces, capsys):
    csv, labels = faces
    a, b = tiny_run(tmp_path / "a", 35), tiny_run(tmp_path / "b", 35)
    rc = ensemble.main([str(csv), str(a), str(b), "--held-out", "--cache", str(tmp_path / "ens")])
    assert rc == 0
    out = capsys.readouterr().out.splitlines()
    _, va = data.stratified_split(labels, 0.2, seed=7)
    assert out[0].startswith(f"scoring the {len(va)} faces of {csv} held out by every run")
    assert len(va) == 7 and sorted(labels[va].tolist()) == list(range(7))  # one face of each class
    assert sum(line.startswith("ensemble a + b:") for line in out) == 1
    cached = sorted(p.name for p in (tmp_path / "ens").iterdir())
    assert [name[:-len("-0123456789.npz")] for name in cached] == ["a-train-heldout-0.2-7", "b-train-heldout-0.2-7"]
    assert np.load(tmp_path / "ens" / cached[0])["plain"].shape == (7, 7)


def test_runs_of_other_seeds_and_one_split_seed_are_scored_together(tmp_path, faces, capsys):
    csv, _ = faces
    a, b = tiny_run(tmp_path / "a", 35), tiny_run(tmp_path / "b", 35, seed=8, split_seed=7)
    assert ensemble.main([str(csv), str(a), str(b), "--held-out", "--cache", str(tmp_path / "c")]) == 0
    assert "held out by every run (--val-split 0.2, split seed 7)" in capsys.readouterr().out


@pytest.mark.parametrize("seed, split_seed, drawn_by", [(1, None, 1), (2, None, 2), (1, 7, 7), (2, 7, 7)])
def test_training_holds_out_the_faces_its_split_seed_draws(tmp_path, seed, split_seed, drawn_by):
    """--split-seed, not --seed, draws the held-out faces when given: members of other seeds share them."""
    from ferkit.train.config import build_parser
    from ferkit.train.loop import load_data

    x, y = synthetic.make_faces(70, seed=1)
    csv = synthetic.write_csv(tmp_path / "train.csv", x, y)
    argv = [str(csv), "--val-split", "0.2", "--seed", str(seed)] + (["--split-seed", str(split_seed)] if split_seed else [])
    _, val = load_data(build_parser("train_cnn.py", "").parse_args(argv))
    _, va = data.stratified_split(y, 0.2, seed=drawn_by)
    assert np.array_equal(val.images, x[va])


@pytest.mark.parametrize("second, message", [
    (dict(seed=8), "held out different faces (--val-split, split seed: 0.2, 7 against 0.2, 8)"),
    (dict(seed=7, split_seed=8), "held out different faces"),
    (dict(val="public_test.csv"), "validated on public_test.csv, not on a split held out"),
])
def test_held_out_refuses_runs_that_saw_each_others_faces(tmp_path, faces, capsys, second, message):
    csv, _ = faces
    a, b = tiny_run(tmp_path / "a", 35), tiny_run(tmp_path / "b", 35, **second)
    assert ensemble.main([str(csv), str(a), str(b), "--held-out", "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_a_run_trained_on_part_of_the_rest_is_scored_on_the_same_held_out_faces(tmp_path, faces, capsys):
    csv, _ = faces
    a, b = tiny_run(tmp_path / "a", 35), tiny_run(tmp_path / "b", 35, train_limit=14)  # --train-limit 14
    assert ensemble.main([str(csv), str(a), str(b), "--held-out", "--cache", str(tmp_path / "c")]) == 0
    assert capsys.readouterr().out.startswith(f"scoring the 7 faces of {csv} held out by every run")
    c = tiny_run(tmp_path / "c2", 40, train_limit=14)  # 8 held out: another file's split
    assert ensemble.main([str(csv), str(c), "--held-out", "--cache", str(tmp_path / "c")]) == 2
    assert "not its training CSV" in capsys.readouterr().err


def test_held_out_refuses_a_csv_the_runs_were_not_trained_on(tmp_path, faces, capsys):
    csv, _ = faces
    a = tiny_run(tmp_path / "a", 40)
    assert ensemble.main([str(csv), str(a), "--held-out", "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "35 rows, but" in err[0] and "not its training CSV" in err[0]


def test_an_unlabelled_csv_or_an_unusable_cache_is_one_line(tmp_path, capsys):
    x, _ = synthetic.make_faces(14, seed=3)
    test = synthetic.write_csv(tmp_path / "test.csv", x, ids=np.arange(14))
    a = tiny_run(tmp_path / "a", 14)
    assert ensemble.main([str(test), str(a), "--cache", str(tmp_path / "ens")]) == 2
    assert capsys.readouterr().err == f"error: {test}: no label column, nothing to score against\n"
    (tmp_path / "file").write_text("")
    labelled = synthetic.write_csv(tmp_path / "l.csv", *synthetic.make_faces(14, seed=3))
    assert ensemble.main([str(labelled), str(a), "--cache", str(tmp_path / "file" / "ens")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "cannot make the folder" in err[0]


def test_pairs_count_the_faces_only_one_run_gets_right(capsys):
    labels = np.array([0, 1, 2, 3, 4, 5])
    onehot = lambda pred: {"plain": np.eye(7)[pred]}  # noqa: E731
    probs = {"r/a": onehot([0, 1, 2, 3, 0, 0]), "r/b": onehot([0, 1, 0, 0, 0, 5])}  # a: 4 right, b: 3
    ensemble.print_pairs(["r/a", "r/b"], probs, labels)
    # a alone is right on faces 2 and 3, b alone on face 5; binomial(2 of 3, 1/2) two-sided p = 1
    assert capsys.readouterr().out.strip() == (
        "pair a vs b: +16.67% (2 faces only the first gets right, 1 only the second), McNemar p = 1.000")
