"""The model bundled in models/pretrained/: it loads, predicts, is the default, and scores what
docs/RESULTS.md says on real data."""
import glob
import os

import numpy as np
import pytest

from data import synthetic
from ferkit.runs import load as runs
from tests.conftest import file_sha256, load_script, one_error_line, real_data

BUNDLED = sorted(glob.glob(os.path.join(runs.PRETRAINED_DIR, "*", runs.RUN_FILE)))
pytestmark = pytest.mark.skipif(not BUNDLED, reason="no bundled model in models/pretrained/")


def bundled_dir():
    return os.path.dirname(BUNDLED[0])


def test_bundled_model_is_small_and_loads():
    weights = os.path.join(bundled_dir(), runs.WEIGHTS_FILE)
    assert os.path.getsize(weights) <= 10_000_000
    model, info = runs.load_run(bundled_dir())
    x, _ = synthetic.make_faces(8)
    probs = model.predict(x, verbose=0)
    assert probs.shape == (8, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert info["class_names"][3] == "Happy"


def test_bundled_model_is_the_default_without_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no runs/ here
    assert os.path.abspath(runs.resolve(None)) == os.path.abspath(bundled_dir())


@pytest.mark.slow
def test_bundled_model_scores_its_documented_accuracy_on_public_test():
    import data

    ds = data.load_csv(real_data("public_test.csv.gz"))
    model, info = runs.load_run(bundled_dir())
    n = 1200  # a slice keeps this quick; its accuracy is within a few points of the whole file's
    accuracy = np.mean(model.predict(ds.images[:n], batch_size=256, verbose=0).argmax(1) == ds.labels[:n])
    assert abs(accuracy - info["val_accuracy"]) < 0.04


ENSEMBLE = os.path.join(runs.PRETRAINED_DIR, "ensemble")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(ENSEMBLE), reason="no bundled ensemble")
def test_bundled_ensemble_members_are_float16_checked_runs_and_predict_together(tmp_path, capsys):
    import h5py

    import predict
    from ferkit.runs.layout import members

    found = members(ENSEMBLE)
    assert len(found) >= 2 and all(os.path.isfile(os.path.join(m, runs.RUN_FILE)) for m in found)
    for member in found:
        info = runs.read_info(member)
        assert info["weights_dtype"] == "float16" and len(info["weights_sha256"]) == 64
        with h5py.File(os.path.join(member, runs.WEIGHTS_FILE)) as f:
            kernels = []
            f.visititems(lambda name, obj: kernels.append(obj.dtype) if isinstance(obj, h5py.Dataset) else None)
        assert {str(k) for k in kernels} <= {"float16", "int64"}
    x, y = synthetic.make_faces(14)
    csv = synthetic.write_csv(tmp_path / "faces.csv", x, y)
    assert predict.main([str(csv), str(tmp_path / "out.csv"), "--weights", ENSEMBLE]) == 0
    printed = capsys.readouterr().out
    # every member named on the model line, as the user would type it (relative to the working folder)
    assert all(os.path.relpath(m) in printed for m in found), printed
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 15


@pytest.mark.parametrize("name", ["a/b", "ensemble/", "ensemble/..", "ensemble/x/y", "../x", "a b"])
def test_bundle_script_refuses_a_name_outside_its_folders(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runs, "PRETRAINED_DIR", str(tmp_path))
    assert load_script("scripts/bundle_pretrained.py").main([str(tmp_path), "--name", name]) == 2
    assert f"--name {name!r}" in one_error_line(capsys) and not os.listdir(tmp_path)


@pytest.mark.slow
def test_bundle_script_adds_a_float16_member_to_an_ensemble(trained_run, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "PRETRAINED_DIR", str(tmp_path))
    assert load_script("scripts/bundle_pretrained.py").main([str(trained_run), "--name", "ensemble/tiny"]) == 0
    member = tmp_path / "ensemble" / "tiny"
    info = runs.read_info(str(member))
    assert info["weights_dtype"] == "float16" and info["weights_sha256"] == file_sha256(member / runs.WEIGHTS_FILE)
    model, _ = runs.load_run(str(member))  # the sha256 check passes
    assert model.output_shape == (None, 7)
