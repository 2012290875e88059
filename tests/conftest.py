"""Shared fixtures: synthetic learnable data written as CSV, an isolated parse cache, and one
tiny trained run reused by every test that needs a model."""
import hashlib
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One process runs training and explanations alike, so the whole suite takes the explanation
# scripts' setting (oneDNN input gradients crash on AVX-512 CPUs); before TensorFlow loads.
from ferkit.backend import configure_tensorflow  # noqa: E402

configure_tensorflow(input_gradients=True)

from data import synthetic  # noqa: E402

REAL_DATA = os.path.join(ROOT, "..", "shared", "data", "fer2013")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    # Parsed-CSV cache and the default runs/ folder stay inside each test's tmp dir.
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def synthetic_csvs(tmp_path_factory):
    """Paths of a learnable 7-class train/val/test set: {'train', 'val', 'test', 'test_labels'}."""
    d = tmp_path_factory.mktemp("synthetic")
    x_train, y_train = synthetic.make_faces(700, seed=1)
    x_val, y_val = synthetic.make_faces(210, seed=2)
    return {
        "train": synthetic.write_csv(d / "train.csv", x_train, y_train),
        "val": synthetic.write_csv(d / "val.csv", x_val, y_val),
        "test": synthetic.write_csv(d / "test.csv", x_val, ids=1000 + __import__("numpy").arange(len(x_val))),
        "test_labels": y_val,
    }


@pytest.fixture(scope="session")
def trained_run(synthetic_csvs, tmp_path_factory):
    """A tiny fernet trained on the synthetic set through train_cnn.main: its run folder."""
    import train_cnn

    out = tmp_path_factory.mktemp("runs") / "tiny"
    # Batch 16: 264 steps, enough for BatchNormalization's moving statistics to settle (with 32, the
    # validation accuracy is still near 0.5 after 6 epochs, though training accuracy reaches 1).
    rc = train_cnn.main([str(synthetic_csvs["train"]), "--model", "fernet", "--option", "width=8",
                         "--epochs", "6", "--batch-size", "16", "--lr", "3e-3", "--no-augment",
                         "--val", str(synthetic_csvs["val"]), "--out", str(out), "--quiet"])
    assert rc == 0
    return out


def one_error_line(capsys):
    """The one stderr line of a refused command (exit 2: `error: ...`)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def file_sha256(path):
    """A file's content, to show a refused command left it untouched."""
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def load_script(path):
    """A script outside the packages (scripts/NAME.py), imported as a module so a test calls its main()."""
    import importlib.util

    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def real_data(name):
    path = os.path.join(REAL_DATA, name)
    if not os.path.exists(path):
        pytest.skip(f"real FER2013 not available at {REAL_DATA}")
    return path


def pytest_collection_modifyitems(items):
    """A test that needs the trained_run fixture (a tiny training, about 40 s on a busy 2-core
    CPU) is slow by that alone, so `pytest -m "not slow"` never pays for it."""
    for item in items:
        if "trained_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
