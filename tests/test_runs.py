"""ferkit.runs.load: checksums of saved weights, one-line errors for damaged or foreign weights, and
which run scripts use when none is named."""
import json
import os
import shutil
import time
import warnings

import h5py
import pytest

import models
from ferkit.errors import FERError
from ferkit.runs import load as runs


def copy_run(trained_run, tmp_path, name="run", **changes):
    run = tmp_path / name
    shutil.copytree(trained_run, run)
    info = json.load(open(run / "run.json"))
    info.update(changes)
    json.dump(info, open(run / "run.json", "w"))
    return run


def test_save_weights_returns_the_files_sha256(tmp_path):
    model = models.build_model("fernet", width=8)
    digest = runs.save_weights(model, tmp_path / "w.weights.h5")
    assert len(digest) == 64 and digest == runs.file_sha256(tmp_path / "w.weights.h5")


def damage_data(path):
    """Flip bytes inside the largest weight array: HDF5 still reads, the numbers are wrong."""
    with h5py.File(path, "r") as f:
        arrays = []
        f.visititems(lambda _n, o: arrays.append((o.size, o.id.get_offset())) if isinstance(o, h5py.Dataset) else None)
    _, offset = max(a for a in arrays if a[1] is not None)
    with open(path, "r+b") as f:
        f.seek(offset + 64)
        f.write(b"\xff" * 64)


def test_load_run_refuses_weights_whose_checksum_does_not_match(trained_run, tmp_path):
    run = copy_run(trained_run, tmp_path, weights_sha256=runs.file_sha256(trained_run / "best.weights.h5"))
    runs.load_run(str(run))  # intact: loads
    damage_data(run / "best.weights.h5")
    for path in (run, run / "best.weights.h5"):
        with pytest.raises(FERError) as e:
            runs.load_run(str(path))
        assert str(e.value) == (f"{run / 'best.weights.h5'}: damaged (checksum does not match run.json); "
                                "retrain or restore it")


def test_a_damaged_hdf5_structure_is_called_damaged_not_another_model(trained_run, tmp_path):
    run = copy_run(trained_run, tmp_path, weights_sha256=None)  # no checksum: the structure check speaks
    raw = bytearray((run / "best.weights.h5").read_bytes())
    at = raw.rindex(b"TREE")  # the signature of a B-tree node deep in the file
    raw[at:at + 4] = b"XXXX"
    (run / "best.weights.h5").write_bytes(bytes(raw))
    with pytest.raises(FERError) as e:
        runs.load_run(str(run))
    assert "best.weights.h5: damaged (not a readable HDF5 weights file" in str(e.value)
    assert "another model" not in str(e.value) and "\n" not in str(e.value)


def test_weights_of_another_model_are_one_line_without_keras_warnings(trained_run, tmp_path, capfd):
    run = copy_run(trained_run, tmp_path, options={"width": 16})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(FERError) as e:
            runs.load_run(str(run))
    assert str(e.value).startswith(f"{run / 'best.weights.h5'}: weights do not fit model fernet; they belong to "
                                   "another model (")
    assert "\n" not in str(e.value)
    assert not [w for w in caught if "Skipping" in str(w.message)]  # Keras warned once per layer before
    assert capfd.readouterr().err == ""


def test_a_weights_file_argument_is_named_in_errors(trained_run, tmp_path):
    lone = tmp_path / "lone" / "model.weights.h5"
    lone.parent.mkdir()
    shutil.copy(trained_run / "best.weights.h5", lone)
    with pytest.raises(FERError, match=rf"^{lone}: no run\.json beside this weights file"):
        runs.load_run(str(lone))
    (lone.parent / "notes.txt").write_text("not weights")
    shutil.copy(trained_run / "run.json", lone.parent / "run.json")
    with pytest.raises(FERError, match=rf"^{lone.parent / 'notes.txt'}: not a readable HDF5 weights file"):
        runs.load_run(str(lone.parent / "notes.txt"))
    with pytest.raises(FERError, match=rf"^{lone.parent / 'best.weights.h5'}: no such weights file"):
        runs.load_run(str(lone.parent))


def fake_run(folder, status="done", val_accuracy=0.5, weights=True, age=0.0):
    os.makedirs(folder, exist_ok=True)
    info = {"model": "fernet", "status": status}
    if val_accuracy is not None:
        info["val_accuracy"] = val_accuracy
    with open(os.path.join(folder, "run.json"), "w") as f:
        json.dump(info, f)
    if weights:
        path = os.path.join(folder, "best.weights.h5")
        open(path, "wb").write(b"")
        t = time.time() - age
        os.utime(path, (t, t))
    return str(folder)


def test_the_default_run_is_the_best_finished_one(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "PRETRAINED_DIR", str(tmp_path / "pretrained"))
    r = tmp_path / "runs"
    fake_run(r / "dnn-newest", val_accuracy=0.19)  # the README's last command: newest, but poor
    best = fake_run(r / "cnn3-older", val_accuracy=0.64, age=3600)
    fake_run(r / "unfinished", status="training", val_accuracy=0.9)
    fake_run(r / "interrupted", status="interrupted", val_accuracy=0.91)
    fake_run(r / "no-weights", val_accuracy=0.95, weights=False)
    os.makedirs(r / "broken")
    (r / "broken" / "run.json").write_text("{not json")
    (r / "broken" / "best.weights.h5").write_bytes(b"")
    assert runs.default_run(str(r)) == best
    bundled = fake_run(tmp_path / "pretrained" / "fernet", status="training", val_accuracy=0.66, age=7200)
    assert runs.default_run(str(r)) == bundled  # the bundled model competes on the same terms
    tie = fake_run(r / "tie-newer", val_accuracy=0.66, age=10)
    assert runs.default_run(str(r)) == tie  # ties go to the newest
    shutil.rmtree(r)
    assert runs.default_run(str(r)) == bundled
    shutil.rmtree(tmp_path / "pretrained")
    assert runs.default_run(str(r)) is None


def test_resolve_none_uses_the_default_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runs, "PRETRAINED_DIR", str(tmp_path / "pretrained"))
    fake_run("runs/a", val_accuracy=0.3)
    fake_run("runs/b", val_accuracy=0.4, age=100)
    assert runs.resolve(None) == os.path.join("runs", "b")
    assert sorted(os.path.basename(p) for p in runs.run_inputs(None)) == ["best.weights.h5", "run.json"]
