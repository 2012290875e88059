"""The model bundled in models/pretrained/: it loads, predicts, is the default, and scores what
docs/RESULTS.md says on real data."""
import glob
import os

import numpy as np
import pytest

from data import synthetic
from ferkit.runs import load as runs
from tests.conftest import real_data

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


def test_bundled_model_scores_its_documented_accuracy_on_public_test():
    import data

    ds = data.load_csv(real_data("public_test.csv.gz"))
    model, info = runs.load_run(bundled_dir())
    n = 1200  # a slice keeps this quick; its accuracy is within a few points of the whole file's
    accuracy = np.mean(model.predict(ds.images[:n], batch_size=256, verbose=0).argmax(1) == ds.labels[:n])
    assert abs(accuracy - info["val_accuracy"]) < 0.04
