"""Faithfulness measurements (ferkit/explain/faithfulness.py), class averages, dead filters, and
saliency.py's --evaluate and --class-average modes, on cases whose answer is known: a model
that reads only one quadrant of the face, a layer with filters that can never fire."""
import csv
import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import filter_vis  # noqa: E402
import saliency  # noqa: E402
from ferkit import explain  # noqa: E402
from ferkit.explain import faithfulness  # noqa: E402
from ferkit.runs.load import load_run  # noqa: E402


def _quadrant_model(gain, threshold):
    """Class 0's probability rises with the mean brightness (0..1) of the top-left 24x24 quadrant
    and nothing else: logit_0 = gain * (mean - threshold), every other logit 0."""
    L = keras.layers
    inp = keras.Input((48, 48, 1), name="image")
    h = L.Rescaling(1 / 255)(inp)
    h = L.Cropping2D(((0, 24), (0, 24)))(h)
    h = L.GlobalAveragePooling2D()(h)
    dense = L.Dense(7, name="logits")
    logits = dense(h)
    w = np.zeros((1, 7), np.float32)
    w[0, 0] = gain
    b = np.zeros(7, np.float32)
    b[0] = -gain * threshold
    dense.set_weights([w, b])
    return keras.Model(inp, L.Activation("softmax", name="probs")(logits))


@pytest.fixture(scope="module")
def quadrant_model():
    return _quadrant_model(20.0, 0.5)


@pytest.fixture(scope="module")
def quadrant_faces():
    """Bright top-left quadrant, dark noise elsewhere: the model says class 0 with p ~ 1."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 40, (6, 48, 48, 1)).astype(np.uint8)
    x[:, :24, :24] = 255
    return x


def _quadrant_maps(n, where):
    maps = np.zeros((n, 48, 48), np.float32)
    if where == "top-left":
        maps[:, :24, :24] = 1.0
    else:
        maps[:, 24:, 24:] = 1.0
    return maps


def test_deletion_drops_faster_and_insertion_rises_faster_on_the_evidence(quadrant_model, quadrant_faces):
    x = quadrant_faces
    assert (quadrant_model.predict(x, verbose=0)[:, 0] > 0.99).all()
    on = _quadrant_maps(len(x), "top-left")
    off = _quadrant_maps(len(x), "bottom-right")
    rand = faithfulness.baseline_maps("random", len(x))
    d = {k: faithfulness.perturbation_curves(quadrant_model, x, 0, m, "deletion", steps=8)
         for k, m in (("on", on), ("off", off), ("random", rand))}
    assert d["on"].shape == (len(x), 9)
    np.testing.assert_allclose(d["on"][:, 0], quadrant_model.predict(x, verbose=0)[:, 0], rtol=1e-5)
    # the quadrant is the first quarter of the pixels: by step 2 of 8 the evidence is gone
    assert (d["on"][:, 2] < 0.01).all() and (d["off"][:, 2] > 0.99).all()
    auc = {k: faithfulness.auc(v).mean() for k, v in d.items()}
    assert auc["on"] < auc["random"] - 0.2 and auc["random"] < auc["off"], auc
    # insertion starts from the blurred face, whose quadrant is still fairly bright: a model that
    # needs the quadrant sharp and whole (mean above 0.95) tells the orders apart
    sharp = _quadrant_model(100.0, 0.95)
    assert (sharp.predict(x, verbose=0)[:, 0] > 0.9).all()
    ins = {k: faithfulness.auc(faithfulness.perturbation_curves(sharp, x, 0, m, "insertion", steps=8)).mean()
           for k, m in (("on", on), ("off", off), ("random", rand))}
    assert ins["on"] > ins["random"] + 0.2 and ins["random"] > ins["off"], ins


def test_auc_and_block_order():
    assert faithfulness.auc(np.ones((1, 5)))[0] == pytest.approx(1.0)
    assert faithfulness.auc(np.linspace(1, 0, 9)[None])[0] == pytest.approx(0.5)
    m = np.zeros((1, 48, 48), np.float32)
    m[0, 8:12, 20:24] = 1.0  # exactly one 4x4 block
    order = faithfulness._order(m, np.random.default_rng(0), patch=4)[0]
    assert sorted(order[:16]) == sorted(r * 48 + c for r in range(8, 12) for c in range(20, 24))
    assert sorted(order) == list(range(48 * 48))  # every pixel once
    centre = faithfulness.baseline_maps("centre", 2)
    assert centre.shape == (2, 48, 48) and centre[0].argmax() in (23 * 48 + 23, 23 * 48 + 24, 24 * 48 + 23, 24 * 48 + 24)


def test_spearman_and_bad_shapes(quadrant_model, quadrant_faces):
    rng = np.random.default_rng(1)
    a = rng.random((3, 48, 48))
    rho = faithfulness.spearman(a, a * 2 + 1)
    np.testing.assert_allclose(rho, 1.0)
    assert np.isnan(faithfulness.spearman(np.zeros((1, 48, 48)), a[:1])[0])  # a constant map has no ranks
    with pytest.raises(Exception, match="maps of shape"):
        faithfulness.perturbation_curves(quadrant_model, quadrant_faces, 0, np.zeros((2, 48, 48)))


@pytest.fixture(scope="module")
def tiny(trained_run, synthetic_csvs):
    import data

    model, _ = load_run(str(trained_run))
    ds = data.load_csv(synthetic_csvs["val"])
    return model, ds


def test_randomization_check_returns_a_correlation_per_face(tiny):
    model, ds = tiny
    x = ds.images[:4]
    c = model.predict(x, verbose=0).argmax(1)
    randomized = faithfulness.randomized_model(model, seed=3)
    w0 = model.get_layer("logits").get_weights()[0]
    assert not np.allclose(w0, randomized.get_layer("logits").get_weights()[0])  # re-initialized
    assert np.allclose(w0, model.get_layer("logits").get_weights()[0])  # the trained model is untouched
    rho = faithfulness.randomization_check(model, x, c, "vanilla", randomized=randomized)
    assert rho.shape == (4,) and np.isfinite(rho).all() and (np.abs(rho) <= 1).all()
    same = faithfulness.randomization_check(model, x, c, "vanilla", randomized=model)
    np.testing.assert_allclose(same, 1.0, atol=1e-6)  # the same network: the same maps


@pytest.mark.slow
def test_evaluate_cli_prints_the_table_and_writes_csv(trained_run, synthetic_csvs, tmp_path, capsys):
    out = tmp_path / "faith.csv"
    rc = saliency.main(["--data", str(synthetic_csvs["val"]), "--weights", str(trained_run), "--evaluate",
                        "--faces", "5", "--samples", "2", "--steps", "3", "--curve-steps", "4", "--out-csv", str(out)])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("model: fernet (")  # the model line first
    assert "deletion AUC" in lines[2] and "Spearman vs random weights" in lines[2]
    names = [line.split()[0] for line in lines[4:10]]
    assert names == ["vanilla", "smoothgrad", "gradcam", "ig", "random", "centre"]
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == names
    for r in rows:
        assert 0 <= float(r["deletion"]) <= 1 and 0 <= float(r["insertion"]) <= 1 and r["n"] == "5"
    assert rows[0]["randomization"] != "nan" and rows[-1]["randomization"] == "nan"


def test_out_csv_needs_evaluate(trained_run, synthetic_csvs, tmp_path, capsys):
    assert saliency.main(["--data", str(synthetic_csvs["val"]), "--weights", str(trained_run),
                          "--out-csv", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out-csv needs --evaluate" in err[0]


@pytest.mark.slow
def test_class_average_cli_and_maps(tiny, trained_run, synthetic_csvs, tmp_path, capsys):
    model, ds = tiny
    avg = explain.class_averages(model, ds.images, ds.labels, ["gradcam", "vanilla"], per_class=3)
    assert avg.faces.shape == (7, 48, 48) and set(avg.maps) == {"gradcam", "vanilla"}
    for c in range(7):
        if avg.counts[c]:
            assert avg.maps["vanilla"][c].sum() == pytest.approx(1.0, rel=1e-4)  # mean of maps summing to 1
    assert 0 < avg.counts.sum() <= 21
    out = tmp_path / "avg.png"
    rc = saliency.main(["--data", str(synthetic_csvs["val"]), "--weights", str(trained_run), "--class-average",
                        "--per-class", "2", "--out", str(out)])
    assert rc == 0 and os.path.getsize(out) > 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("model: ") and "class averages of SmoothGrad over" in printed[-1]


def test_empty_gradcam_is_replaced_by_negative_evidence_and_noted(tiny):
    from ferkit.report import figures
    from ferkit.report.faithfulness import empty_notes, note_panels

    model, ds = tiny
    x, c = ds.images[:3], ds.labels[:3]
    layer = explain.gradcam_layer(model)
    maps = explain.gradcam(model, x, c, layer=layer)
    maps[1] = 0.0  # pretend face 1 had no positive evidence
    filled, empty = explain.fill_empty(model, x, c, maps, layer)
    assert list(empty) == [False, True, False]
    np.testing.assert_allclose(filled[1], explain.negative_gradcam(model, x[1:2], c[1:2], layer=layer)[0], atol=1e-6)
    np.testing.assert_array_equal(filled[0], maps[0])
    fig = figures.saliency_figure(x, [("Grad-CAM", filled)], ["a", "b", "c"])
    note_panels(fig, 2, empty_notes(empty, 1, layer))
    texts = [[t.get_text() for t in ax.texts] for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert any("no positive evidence" in t for t in texts[3]) and not any(texts[1]) and not any(texts[5])


def test_dead_filters_are_found_counted_and_left_out(tmp_path):
    """Filters 2 and 3 have zero weights and a negative bias: after ReLU they never fire."""
    L = keras.layers
    inp = keras.Input((48, 48, 1))
    conv = L.Conv2D(4, 3, padding="same", activation="relu", name="conv")
    model = keras.Model(inp, conv(L.Rescaling(1 / 255)(inp)))
    k = np.abs(np.random.default_rng(0).normal(0, 1, (3, 3, 1, 4))).astype(np.float32)  # 0, 1: fire on grey
    k[..., 2:] = 0
    conv.set_weights([k, np.array([0.1, 0.1, -1.0, -1.0], np.float32)])
    pats = explain.filter_patterns(model, "conv", filters=4, steps=5)
    dead = explain.dead_filters(pats)
    assert list(dead) == [False, False, True, True]
    live = pats.subset(~dead)
    assert list(live.filters) == [0, 1] and live.images.shape == (2, 48, 48)


def test_filter_vis_states_the_dead_count(trained_run, tmp_path, capsys):
    out = tmp_path / "f.png"
    assert filter_vis.main(["--weights", str(trained_run), "--filters", "4", "--steps", "4", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("model: fernet (")
    assert "dead" in lines[-1] and " of 4 filters of " in lines[-1]


def test_saliency_script_constants_match_the_package():
    """saliency.py names the methods and the default one without loading Keras."""
    assert saliency.METHOD_CHOICES == tuple(explain.METHODS) + ("all",)
    assert saliency.DEFAULT_METHOD == explain.DEFAULT_METHOD
    assert set(explain.DEFAULT_SETTINGS) == set(explain.METHODS)


def test_dead_filters_are_marked_when_shown():
    from ferkit.explain.filters import Patterns
    from ferkit.report import figures
    from ferkit.report.faithfulness import mark_dead

    rng = np.random.default_rng(0)
    pats = Patterns("conv", np.arange(4), rng.random((4, 48, 48)).astype(np.float32) * 255,
                    np.array([1.0, 0.05, 2.0, 0.0], np.float32), np.zeros(4, np.float32))
    dead = explain.dead_filters(pats)
    assert list(dead) == [False, True, False, True]  # under a tenth of 2.0, or zero
    fig = mark_dead(figures.patterns_figure(pats), dead)
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert [t.endswith("(dead)") for t in titles] == [False, True, False, True]


def test_bad_patch_is_one_line(trained_run, synthetic_csvs, capsys):
    assert saliency.main(["--data", str(synthetic_csvs["val"]), "--weights", str(trained_run), "--evaluate",
                          "--patch", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--patch 5: must divide 48" in err[0]


def test_report_pages_are_a4_with_nothing_outside():
    """The pages make_report.py can add (explanation_pages): the table and the class averages."""
    from ferkit.explain.averages import ClassAverages
    from ferkit.report import figures
    from ferkit.report.faithfulness import class_average_page, faithfulness_page

    rows = [{"method": m, "n": 5, "deletion": 0.3, "insertion": 0.5, "gap": 0.2, "randomization": float("nan"),
             "empty": 0.0, "seconds_per_face": 0.1} for m in ("vanilla", "gradcam", "random")]
    rng = np.random.default_rng(0)
    avg = ClassAverages(rng.random((7, 48, 48)) * 255, {"gradcam": rng.random((7, 48, 48))},
                        np.array([3, 0, 3, 3, 3, 3, 3]))
    for fig in (faithfulness_page(rows, "Saliency faithfulness", subtitle="5 faces"),
                class_average_page(avg, {"gradcam": "Grad-CAM (re_lu_10) with a long name"}, "Class averages")):
        assert tuple(fig.get_size_inches()) == pytest.approx(figures.A4_PORTRAIT)
        assert figures.outside_texts(fig) == []
