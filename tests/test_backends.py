"""Every registered network builds and trains under a second Keras backend (PyTorch), and weights
saved under it load here (TensorFlow) with the same predictions: the models and augmentation
layers use keras.ops only, so the GPU plan's JAX runs and this CPU toolkit share run folders.
The explanation methods and scripts run under PyTorch too, with the same maps as here.

A backend is chosen once per process, so the torch side runs in a subprocess with
KERAS_BACKEND=torch. Skipped when torch is not installed (requirements-dev.txt brings it)."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch not installed (pip install -r requirements-dev.txt)")

# One training step (train_on_batch) of every registered model, with its augmentation layers on.
STEP_SCRIPT = r"""
import json, sys
import numpy as np
import keras
import models
from data import synthetic

assert keras.backend.backend() == "torch", keras.backend.backend()
x, y = synthetic.make_faces(8, seed=0)
y = keras.utils.to_categorical(y, 7)
out = {}
for name in models.available():
    n = 2 if name == "cnn2" else 8  # cnn2 has 40M parameters: keep its step small
    model = models.build_model(name, augment={"erasing": 0.5, "seed": 1})
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    logs = model.train_on_batch(x[:n], y[:n], return_dict=True)
    probs = np.asarray(model.predict(x[:n], verbose=0))
    out[name] = {"loss": float(logs["loss"]), "shape": list(probs.shape), "sum": probs.sum(axis=1).tolist(),
                 "params": int(model.count_params())}
print("RESULT " + json.dumps(out))
"""

# A fernet trained one step under torch: its weights file and its predictions on fixed images.
SAVE_SCRIPT = r"""
import sys
import numpy as np
import keras
import models
from data import synthetic

x, y = synthetic.make_faces(16, seed=3)
model = models.build_model("fernet", augment=True, width=8)
model.compile(optimizer="adam", loss="categorical_crossentropy")
model.train_on_batch(x, keras.utils.to_categorical(y, 7))
model.save_weights(sys.argv[1])
np.save(sys.argv[2], np.asarray(model.predict(x, verbose=0)))
"""


# Every explanation path under torch on the tiny trained run: the maps (compared with TensorFlow's
# by the test), filter patterns, feature maps, and saliency.py / filter_vis.py end to end.
EXPLAIN_SCRIPT = r"""
import sys
import numpy as np
import keras
import filter_vis
import saliency
from data import synthetic
from ferkit import explain
from ferkit.runs.load import load_run

assert keras.backend.backend() == "torch", keras.backend.backend()
run_dir, csv, out = sys.argv[1:4]
model, _ = load_run(run_dir)
x, y = synthetic.make_faces(2, seed=4)
np.savez(out + "/maps.npz", **{name: explain.explain(model, x, y, name, **options)
                              for name, options in EXPLAIN_CASES.items()},
         fmaps=explain.feature_maps(model, explain.default_maps_layer(model), x[0]),
         patterns=explain.filter_patterns(model, filters=2, steps=3).images)
assert saliency.main(["--data", csv, "--weights", run_dir, "--per-class", "1", "--samples", "2", "--steps", "2",
                      "--out", out + "/s.png"]) == 0
assert filter_vis.main(["--weights", run_dir, "--filters", "2", "--steps", "2", "--data", csv,
                        "--out", out + "/f.png"]) == 0
"""
EXPLAIN_CASES = {"vanilla": {"jitter": 2, "samples": 2}, "smoothgrad": {"samples": 2}, "gradcam": {},
                 "ig": {"steps": 4}}


def _run_torch(script, *args, timeout=600):
    env = dict(os.environ, KERAS_BACKEND="torch", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"torch backend failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout


@pytest.mark.slow
@needs_torch
def test_every_model_trains_one_step_under_the_torch_backend():
    import models

    stdout = _run_torch(STEP_SCRIPT)
    line = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")][-1]
    results = json.loads(line[len("RESULT "):])
    assert sorted(results) == models.available()
    for name, r in results.items():
        n = 2 if name == "cnn2" else 8
        assert np.isfinite(r["loss"]), (name, r)
        assert r["shape"] == [n, 7], (name, r)
        np.testing.assert_allclose(r["sum"], 1.0, atol=1e-4, err_msg=name)
        # same network as under TensorFlow: same parameter count
        options = {"width": 8} if name == "fernet" else {}
        if not options:
            assert r["params"] == models.build_model(name).count_params(), name


@pytest.mark.slow
@needs_torch
def test_weights_trained_under_torch_load_under_tensorflow(tmp_path):
    from data import synthetic
    import models
    from ferkit.runs import load as runs

    weights, probs = tmp_path / "fernet.weights.h5", tmp_path / "probs.npy"
    _run_torch(SAVE_SCRIPT, str(weights), str(probs))
    model = models.build_model("fernet", width=8)
    runs.load_weights(model, str(weights))
    x, _ = synthetic.make_faces(16, seed=3)
    np.testing.assert_allclose(model.predict(x, verbose=0), np.load(probs), atol=1e-4)


@pytest.mark.slow
@needs_torch
def test_explanations_and_their_scripts_run_under_torch_with_tensorflows_maps(trained_run, synthetic_csvs, tmp_path):
    from data import synthetic
    from ferkit import explain
    from ferkit.runs.load import load_run

    script = EXPLAIN_SCRIPT.replace("EXPLAIN_CASES", repr(EXPLAIN_CASES))
    _run_torch(script, str(trained_run), str(synthetic_csvs["val"]), str(tmp_path))
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "f-maps.png").stat().st_size > 0
    torch_maps = np.load(tmp_path / "maps.npz")
    model, _ = load_run(str(trained_run))
    x, y = synthetic.make_faces(2, seed=4)
    for name, options in EXPLAIN_CASES.items():
        ours = explain.explain(model, x, y, name, **options)
        np.testing.assert_allclose(torch_maps[name], ours, rtol=1e-3, atol=1e-4 * ours.max(), err_msg=name)
    fmaps = explain.feature_maps(model, explain.default_maps_layer(model), x[0])
    np.testing.assert_allclose(torch_maps["fmaps"], fmaps, rtol=1e-3, atol=1e-4 * fmaps.max())
    assert torch_maps["patterns"].shape == (2, 48, 48) and np.isfinite(torch_maps["patterns"]).all()
