"""plot_confusion.py, saliency.py, filter_vis.py and make_report.py on the tiny trained run
(conftest.trained_run) and the synthetic labelled set; called in-process through main(argv)."""
import json
import os
import re
import shutil
import zlib

import numpy as np
import pytest

import filter_vis
import make_report
import plot_confusion
import saliency


def _image(path, width, height):
    """The image exists, has the figure's pixel size and is not blank."""
    from matplotlib.image import imread

    assert os.path.exists(path)
    img = imread(path)
    assert img.shape[:2] == (height, width), img.shape
    assert img[..., :3].std() > 0.05, "blank image"
    return img


def _one_error_line(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for w in words:
        assert w in err[0], err
    return err[0]


def pdf_text(path):
    """Text drawn in a matplotlib PDF: the strings of its Tj/TJ operators (streams inflated)."""
    raw = open(path, "rb").read()
    chunks = []
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", raw, re.S):
        body = m.group(1)
        try:
            body = zlib.decompress(body)
        except zlib.error:
            pass
        for t in re.finditer(rb"\[(.*?)\]\s*TJ|\(((?:\\.|[^\\)])*)\)\s*Tj", body, re.S):
            if t.group(1) is not None:
                parts = re.findall(rb"\(((?:\\.|[^\\)])*)\)", t.group(1))
                chunks.append(b"".join(parts))
            else:
                chunks.append(t.group(2))
    text = b"\n".join(chunks).decode("latin-1")
    return re.sub(r"\\(.)", r"\1", text)


def test_plot_confusion(trained_run, synthetic_csvs, tmp_path, capsys):
    out = tmp_path / "conf.png"
    rc = plot_confusion.main(["--data", str(synthetic_csvs["val"]), "--weights", str(trained_run),
                              "--out", str(out), "--json"])
    assert rc == 0
    _image(out, 1300, 600)
    printed = capsys.readouterr().out
    assert "precision" in printed and "Angry" in printed
    m = json.loads((tmp_path / "conf.json").read_text())
    info = json.loads((trained_run / "run.json").read_text())
    # The run validated on this very file: our accuracy is its best val_accuracy.
    assert m["accuracy"] == pytest.approx(info["val_accuracy"], abs=1e-6)
    counts = np.array(m["confusion"])
    assert counts.sum() == m["n"] == 210
    assert np.allclose(np.array(m["confusion_normalized"]).sum(axis=1), 1.0)
    assert [r["class"] for r in m["per_class"]] == ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]


def test_plot_confusion_ensemble_tta_and_confused_pairs(trained_run, tmp_path, capsys):
    from data import synthetic

    # Faces with the patch of one class but labelled as another: most confused pairs appear.
    x, y = synthetic.make_faces(70, seed=9)
    y_wrong = y.copy()
    y_wrong[:10] = (y[:10] + 1) % 7
    csv = synthetic.write_csv(tmp_path / "mixed.csv", x, y_wrong)
    out = tmp_path / "c.svg"
    rc = plot_confusion.main(["--data", str(csv), "--weights", str(trained_run), "--weights", str(trained_run),
                              "--tta", "--out", str(out), "--json", str(tmp_path / "m.json")])
    assert rc == 0 and out.exists() and out.read_text().lstrip().startswith("<?xml")
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["tta"] and len(m["runs"]) == 2
    assert len(m["most_confused"]) == 3
    assert "most confused" in capsys.readouterr().out


def test_saliency_script(trained_run, synthetic_csvs, tmp_path):
    out = tmp_path / "sal.png"
    rc = saliency.main(["--data", str(synthetic_csvs["val"]), "--weights", str(trained_run), "--out", str(out),
                        "--per-class", "1", "--samples", "3", "--steps", "6"])
    assert rc == 0
    # 7 rows (one face per class) x 5 columns (face + 4 methods)
    _image(out, 5 * 170, int(round((1.9 * 7 + 0.5) * 100)))


def test_saliency_example_choice_mixes_right_and_wrong():
    labels = np.array([0] * 6 + [1] * 3)
    pred = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1])
    idx = saliency.pick_examples(labels, pred, per_class=4)
    zeros = [i for i in idx if labels[i] == 0]
    assert len(zeros) == 4
    assert sum(pred[i] == 0 for i in zeros) == 2 and sum(pred[i] != 0 for i in zeros) == 2
    assert len([i for i in idx if labels[i] == 1]) == 3


def test_filter_vis_script(trained_run, synthetic_csvs, tmp_path, capsys):
    out = tmp_path / "f.png"
    rc = filter_vis.main(["--weights", str(trained_run), "--filters", "4", "--steps", "8",
                          "--data", str(synthetic_csvs["val"]), "--image", "5", "--out", str(out)])
    assert rc == 0
    _image(out, 2 * 160, int(round((1.75 * 2 + 0.5) * 100)))
    maps = tmp_path / "f-maps.png"
    assert maps.exists()
    # the face + the layer's (at most 32) maps in a near-square grid
    from ferkit import explain
    from models import load_run

    model, _ = load_run(str(trained_run))
    k = min(model.get_layer(explain.default_filter_layer(model)).output.shape[-1], 32) + 1
    cols = int(np.ceil(np.sqrt(k)))
    _image(maps, int(1.5 * cols * 100), int(round((1.6 * int(np.ceil(k / cols)) + 0.5) * 100)))
    assert "f-maps.png" in capsys.readouterr().out


@pytest.mark.parametrize("script, argv, words", [
    (saliency, ["--method", "gradcam", "--layer", "no_such_layer"], ["no_such_layer", "feature maps"]),
    (filter_vis, ["--layer", "no_such_layer", "--steps", "1"], ["no_such_layer"]),
    (filter_vis, ["--image", "99999"], ["--image 99999"]),
    (saliency, ["--out", "x.nosuchformat"], ["nosuchformat"]),
])
def test_bad_arguments_exit_2_with_one_line(trained_run, synthetic_csvs, tmp_path, capsys, script, argv, words):
    argv = argv + ["--weights", str(trained_run), "--data", str(synthetic_csvs["val"])]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "o.png")]
    assert script.main(argv) == 2
    _one_error_line(capsys, *words)
    assert not (tmp_path / "o.png").exists()


def test_missing_data_and_missing_weights(trained_run, synthetic_csvs, tmp_path, capsys):
    missing = str(tmp_path / "nope.csv")
    assert plot_confusion.main(["--data", missing, "--weights", str(trained_run)]) == 2
    _one_error_line(capsys, "nope.csv", "no such file")
    assert saliency.main(["--weights", str(trained_run)]) == 2
    _one_error_line(capsys, "--data")
    no_weights = tmp_path / "empty_run"
    no_weights.mkdir()
    shutil.copy(trained_run / "run.json", no_weights / "run.json")
    for script, extra in ((plot_confusion, ["--data", str(synthetic_csvs["val"])]),
                          (saliency, ["--data", str(synthetic_csvs["val"])]), (filter_vis, [])):
        assert script.main(extra + ["--weights", str(no_weights), "--out", str(tmp_path / "o.png")]) == 2
        _one_error_line(capsys, "no weights file")
    unlabelled = synthetic_csvs["test"]
    assert plot_confusion.main(["--data", str(unlabelled), "--weights", str(trained_run)]) == 2
    _one_error_line(capsys, "no label column")


def test_make_report(trained_run, synthetic_csvs, tmp_path, capsys):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    shutil.copytree(trained_run, runs_dir / "tiny")
    # A second run folder without weights still gets its architecture and curves.
    (runs_dir / "cnn1-noweights").mkdir()
    info = json.loads((trained_run / "run.json").read_text())
    other = {**info, "model": "cnn1", "options": {"batchnorm": False}, "val_accuracy": 0.4321}
    (runs_dir / "cnn1-noweights" / "run.json").write_text(json.dumps(other))
    out = tmp_path / "report.pdf"
    rc = make_report.main(["--runs", str(runs_dir), "--data", str(synthetic_csvs["val"]), "--out", str(out),
                           "--samples", "2", "--steps", "4", "--filters", "4", "--filter-steps", "5"])
    assert rc == 0
    assert out.read_bytes().startswith(b"%PDF")
    numbers = json.loads((tmp_path / "report.json").read_text())
    assert numbers["sections"] == list(make_report.SECTIONS)
    text = pdf_text(out)
    for section in make_report.SECTIONS[1:]:
        assert section in text, section
    assert "report % (published)" in text and "60.94" in text and "65.25" in text
    by_dir = {os.path.basename(r["run_dir"]): r for r in numbers["runs"]}
    tiny = by_dir["tiny"]
    assert tiny["val_accuracy"] == info["val_accuracy"] and tiny["epochs_done"] == info["epochs_done"]
    assert tiny["test_accuracy"] == pytest.approx(info["val_accuracy"], abs=1e-6)  # same file it validated on
    assert tiny["kind"] == "augmentation ablation" and tiny["published"] == 60.0  # trained with --no-augment
    assert f"{100 * info['val_accuracy']:.2f}" in text
    assert f"{info['params']:,}" in text
    noweights = by_dir["cnn1-noweights"]
    assert noweights["kind"] == "BN ablation" and noweights["published"] == 56.0
    assert "43.21" in text and noweights["test_accuracy"] is None
    assert numbers["best_run"].endswith("tiny")
    assert info["host"] in text
    assert "make_report.py --runs" in text
    assert "no weights file" in capsys.readouterr().err


def test_make_report_errors(tmp_path, capsys):
    assert make_report.main(["--runs", str(tmp_path / "none"), "--out", str(tmp_path / "r.pdf")]) == 2
    _one_error_line(capsys, "no such folder")
    assert make_report.main(["--runs", str(tmp_path), "--out", str(tmp_path / "r.pdf")]) == 2
    _one_error_line(capsys, "no run folders")
