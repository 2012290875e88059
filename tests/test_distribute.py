"""train_cnn.py --distribute on TensorFlow, data-parallel over two logical CPU devices.

TensorFlow must be told to split the CPU before anything else touches it, so the training runs
in a fresh interpreter (subprocess) that configures two logical CPUs and then calls
train_cnn.main([... '--distribute' ...]) on a small synthetic data set.
"""
import csv
import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = textwrap.dedent("""
    import sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    assert len(tf.config.list_logical_devices("CPU")) == 2
    import train_cnn

    sys.exit(train_cnn.main(sys.argv[1:]))
""")


def _run_distributed(tmp_path, *extra):
    sys.path.insert(0, ROOT)
    from data.synthetic import make_faces, write_csv

    images, labels = make_faces(140, seed=3)
    train_csv = write_csv(str(tmp_path / "train.csv"), images[:112], labels[:112])
    val_csv = write_csv(str(tmp_path / "val.csv"), images[112:], labels[112:])
    out = tmp_path / "run"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "FER_CACHE_DIR": str(tmp_path / "cache"),
           "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
    env.pop("TF_CONFIG", None)
    args = [train_csv, "--model", "fernet", "--option", "width=8", "--option", "blocks=(1,1)",
            "--epochs", "2", "--batch-size", "8", "--val", val_csv, "--distribute", "--quiet",
            "--out", str(out), *extra]
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=600)
    return proc, out


@pytest.mark.slow
def test_tensorflow_mirrored_over_two_logical_cpus(tmp_path):
    pytest.importorskip("tensorflow")
    proc, out = _run_distributed(tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "distribute: MirroredStrategy over 2 replicas; global batch 16" in proc.stdout, log[-4000:]
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "done"
    assert info["epochs_done"] == 2
    assert info["args"]["distribute"] is True
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    # run.json keeps the best epoch of history.csv ...
    val = [float(r["val_accuracy"]) for r in rows]
    assert info["val_accuracy"] == max(val) and info["best_epoch"] == 1 + val.index(max(val))

    # ... and the weights saved under the strategy are that epoch's: loaded into a plain
    # (undistributed) model, they score exactly the recorded accuracy on the validation faces.
    check = subprocess.run(
        [sys.executable, "-c", "import sys, data; from ferkit.runs.load import load_run; m, i = load_run(sys.argv[1]); "
                               "ds = data.load_csv(sys.argv[2], cache=False); "
                               "print(m.count_params() == i['params'], "
                               "(m.predict(ds.images, verbose=0).argmax(1) == ds.labels).sum())",
         str(out), str(tmp_path / "val.csv")],
        cwd=ROOT, env={**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    same_params, correct = check.stdout.split()[-2:]
    assert same_params == "True"
    assert int(correct) == round(info["val_accuracy"] * 28), (correct, info["val_accuracy"])
