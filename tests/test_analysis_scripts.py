"""plot_confusion.py, saliency.py, filter_vis.py and make_report.py on the tiny trained run
(conftest.trained_run) and the synthetic labelled set; called in-process through main(argv).
The figures' layout is checked on the drawn figures themselves (titles clear of each other and
of the page edge, colorbars, one colour scale), the report against the run files it reads."""
import csv
import json
import os
import re
import shutil

import numpy as np
import pytest

import filter_vis
import make_report
import plot_confusion
import saliency


def _image(path):
    """The image exists and is not blank; returns its pixels."""
    from matplotlib.image import imread

    assert os.path.exists(path)
    img = imread(path)
    assert img[..., :3].std() > 0.05, "blank image"
    return img


def _one_error_line(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for w in words:
        assert w in err[0], err
    return err[0]


def pdf_pages(path):
    """Text drawn in a PDF, one string per page in order (pypdf's text extraction)."""
    import pypdf

    return [page.extract_text() for page in pypdf.PdfReader(path).pages]


A4_POINTS = (595.28, 841.89)  # 210 x 297 mm


def pdf_layout_problems(path):
    """Every page that is not A4 portrait, and every string drawn past a page's edge: its start
    from pypdf's text visitor (the text matrix times the current matrix), its end that start
    plus the string's width in matplotlib's font metrics, along the text's direction."""
    import pypdf

    from ferkit.report import figures

    problems = []
    for k, page in enumerate(pypdf.PdfReader(path).pages, start=1):
        w, h = float(page.mediabox.width), float(page.mediabox.height)
        if abs(w - A4_POINTS[0]) > 1 or abs(h - A4_POINTS[1]) > 1:
            problems.append(f"page {k}: {w:.0f}x{h:.0f} pt, not A4")

        def visit(text, cm, tm, font, size, k=k, w=w, h=h):
            if not text.strip():
                return
            a, b, c, d, e, f = pypdf.mult(tm, cm)
            x0, y0 = e, f
            length = figures.text_width(text.strip(), size) * 72
            scale = max((a * a + b * b) ** 0.5, 1e-9)
            x1, y1 = x0 + length * a / scale, y0 + length * b / scale
            if min(x0, x1) < -1 or max(x0, x1) > w + 1 or min(y0, y1) < -1 or max(y0, y1) > h + 1:
                problems.append(f"page {k}: {text.strip()[:40]!r} runs outside the page")

        page.extract_text(visitor_text=visit)
    return problems


def pdf_text(path):
    return "\n".join(pdf_pages(path))


def _page(pages, title):
    """The page whose text holds `title`, with its lines joined by spaces (wrapped lines read on)."""
    found = [p for p in pages if title in p]
    assert len(found) == 1, (title, len(found))
    return " ".join(found[0].split())


# ---------------------------------------------------------------- plot_confusion.py


@pytest.mark.slow
def test_plot_confusion(trained_run, synthetic_csvs, tmp_path, capsys):
    out = tmp_path / "conf.png"
    rc = plot_confusion.main(["--data", str(synthetic_csvs["val"]), "--weights", str(trained_run),
                              "--out", str(out), "--json"])
    assert rc == 0
    _image(out)
    printed = capsys.readouterr().out
    assert "precision" in printed and "Angry" in printed and "macro avg" in printed  # scikit-learn's report
    m = json.loads((tmp_path / "conf.json").read_text())
    info = json.loads((trained_run / "run.json").read_text())
    # The run validated on this very file: our accuracy is its best val_accuracy.
    assert m["accuracy"] == pytest.approx(info["val_accuracy"], abs=1e-6)
    counts = np.array(m["confusion"])
    assert counts.sum() == m["n"] == 210
    assert np.trace(counts) == round(m["accuracy"] * 210)
    assert np.allclose(np.array(m["confusion_normalized"]).sum(axis=1), 1.0)
    assert [r["class"] for r in m["per_class"]] == ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]
    assert [r["support"] for r in m["per_class"]] == counts.sum(axis=1).tolist()
    recall = [r["recall"] for r in m["per_class"]]
    np.testing.assert_allclose(recall, np.diag(counts) / counts.sum(axis=1))


@pytest.mark.slow
def test_plot_confusion_ensemble_tta_and_confused_pairs(trained_run, tmp_path, capsys):
    from data import synthetic

    # Faces with the patch of one class but labelled as another: most confused pairs appear.
    x, y = synthetic.make_faces(70, seed=9)
    y_wrong = y.copy()
    y_wrong[:10] = (y[:10] + 1) % 7
    data_csv = synthetic.write_csv(tmp_path / "mixed.csv", x, y_wrong)
    out = tmp_path / "c.svg"
    rc = plot_confusion.main(["--data", str(data_csv), "--weights", str(trained_run), "--weights", str(trained_run),
                              "--tta", "--out", str(out), "--json", str(tmp_path / "m.json")])
    assert rc == 0 and out.exists() and out.read_text().lstrip().startswith("<?xml")
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["tta"] and len(m["runs"]) == 2
    assert len(m["most_confused"]) == 3
    assert "most confused" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["data", "run.json", "weights"])
def test_plot_confusion_never_writes_over_an_input(trained_run, synthetic_csvs, tmp_path, capsys, case):
    """`--json L.csv` used to replace the labelled data with JSON (and a run's files alike)."""
    data_csv = tmp_path / "labelled.csv"
    shutil.copy(synthetic_csvs["val"], data_csv)
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    target = {"data": data_csv, "run.json": run / "run.json", "weights": run / "best.weights.h5"}[case]
    before = target.read_bytes()
    assert plot_confusion.main(["--data", str(data_csv), "--weights", str(run), "--out", str(tmp_path / "c.png"),
                                "--json", str(target)]) == 2
    _one_error_line(capsys, str(target), "is also an input")
    assert target.read_bytes() == before
    assert not (tmp_path / "c.png").exists()


# ---------------------------------------------------------------- saliency.py


@pytest.mark.slow
def test_saliency_script(trained_run, synthetic_csvs, tmp_path, capsys):
    out = tmp_path / "sal.png"
    rc = saliency.main(["--data", str(synthetic_csvs["val"]), "--weights", str(trained_run), "--out", str(out),
                        "--per-class", "1", "--samples", "3", "--steps", "6"])
    assert rc == 0
    _image(out)
    printed = capsys.readouterr().out
    assert re.search(r"7 faces x Gradient, SmoothGrad, Grad-CAM \(\w+\), Integrated gradients$", printed.strip())


def _boxes(fig, suptitle):
    """Draw the figure; (suptitle box, [axes-title boxes], figure box) in display pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    sup = [c for c in fig.get_children() if isinstance(c, Text) and c.get_text().replace("\n", " ") == suptitle]
    assert len(sup) == 1, "the title is drawn once"
    titles = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.get_title()]
    bars = [ax.xaxis.label.get_window_extent(renderer) for ax in fig.axes if ax.get_label() == "<colorbar>"]
    return sup[0].get_window_extent(renderer), titles, bars, fig.bbox


def _inside(box, page):
    return page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1


@pytest.mark.slow
@pytest.mark.parametrize("faces, methods", [(14, 4), (7, 1)])
def test_saliency_figure_title_is_clear_of_the_headers_and_inside_the_page(faces, methods):
    """With the default 2 faces per class (14 rows) the title used to run into the column
    headers; with one method it was clipped on both sides."""
    from ferkit.report import figures

    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, (faces, 48, 48, 1))
    cols = [(f"Method {k}", rng.random((faces, 48, 48))) for k in range(methods)]
    title = ("fernet (models/pretrained/fernet): maps explain the predicted class; gradients averaged over "
             "random shifts of up to 8 px")
    fig = figures.saliency_figure(imgs, cols, [f"true Happy\npred Sad 0.{i}" for i in range(faces)],
                                  suptitle=title)
    sup, heads, bars, page = _boxes(fig, title)
    assert len(heads) == faces + methods  # a title over each face, a header over each method's column
    assert not any(sup.overlaps(h) for h in heads) and _inside(sup, page)
    assert len(bars) == 1 and _inside(bars[0], page)  # one colorbar, its label on the page
    assert "99.5th percentile" in next(ax for ax in fig.axes if ax.get_label() == "<colorbar>").get_xlabel()


def test_saliency_target_true_needs_labels(trained_run, synthetic_csvs, tmp_path, capsys):
    out = tmp_path / "s.png"
    assert saliency.main(["--data", str(synthetic_csvs["test"]), "--weights", str(trained_run), "--target", "true",
                          "--out", str(out)]) == 2
    _one_error_line(capsys, str(synthetic_csvs["test"]), "no label column", "--target pred")
    assert not out.exists()


def test_saliency_example_choice_mixes_right_and_wrong():
    from ferkit.report.evaluate import pick_examples

    labels = np.array([0] * 6 + [1] * 3)
    pred = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1])
    idx = pick_examples(labels, pred, per_class=4)
    zeros = [i for i in idx if labels[i] == 0]
    assert len(zeros) == 4
    assert sum(pred[i] == 0 for i in zeros) == 2 and sum(pred[i] != 0 for i in zeros) == 2
    assert len([i for i in idx if labels[i] == 1]) == 3


# ---------------------------------------------------------------- filter_vis.py


@pytest.mark.slow
def test_filter_vis_script(trained_run, synthetic_csvs, tmp_path, capsys):
    from ferkit import explain
    from ferkit.runs.load import load_run

    out = tmp_path / "f.png"
    rc = filter_vis.main(["--weights", str(trained_run), "--filters", "4", "--steps", "8",
                          "--data", str(synthetic_csvs["val"]), "--image", "5", "--out", str(out)])
    assert rc == 0
    _image(out)
    _image(tmp_path / "f-maps.png")
    printed = capsys.readouterr().out
    # by default, the maps of a layer that still shows the face: 24x24, not fernet's 6x6 stage
    model, _ = load_run(str(trained_run))
    channels = model.get_layer(explain.default_maps_layer(model)).output.shape[-1]
    assert re.search(rf"f-maps.png: feature maps of \w+ \(24x24x{channels}\) for row 5", printed), printed


def test_feature_maps_share_one_scale_with_a_colorbar():
    from ferkit.report import figures

    maps = np.random.default_rng(0).random((24, 24, 8)).astype(np.float32) * np.arange(1, 9)  # map 7 brightest
    fig = figures.feature_maps_figure(np.zeros((48, 48)), maps, "layer_x")
    shown = [ax.images[0] for ax in fig.axes if ax.images and ax.get_title().startswith("map ")]
    assert len(shown) == 8
    assert len({im.get_clim() for im in shown}) == 1  # one scale: a bright map is a strongly active one
    lo, hi = shown[0].get_clim()
    assert lo == 0 and hi == pytest.approx(np.percentile(maps, 99.5))
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)


@pytest.mark.parametrize("script, argv, words", [
    (saliency, ["--method", "gradcam", "--layer", "no_such_layer"], ["no_such_layer", "feature maps"]),
    (filter_vis, ["--layer", "no_such_layer", "--steps", "1"], ["no_such_layer"]),
    (filter_vis, ["--image", "99999"], ["--image 99999"]),
    (saliency, ["--out", "x.nosuchformat"], ["nosuchformat"]),
    (saliency, ["--jitter", "30"], ["--jitter 30"]),
])
def test_bad_arguments_exit_2_with_one_line(trained_run, synthetic_csvs, tmp_path, capsys, script, argv, words):
    argv = argv + ["--weights", str(trained_run), "--data", str(synthetic_csvs["val"])]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "o.png")]
    assert script.main(argv) == 2
    _one_error_line(capsys, *words)
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("script, argv, words", [
    (saliency, ["--data", "x.csv", "--seed", "-1"], ["argument --seed: -1 must be a whole number from 0 to 4294967295"]),
    (saliency, ["--data", "x.csv", "--seed", str(2**32)], ["--seed", "NumPy's seed range"]),
    (filter_vis, ["--seed", "-1"], ["argument --seed: -1 must be a whole number"]),
    (filter_vis, ["--image", "3"], ["--image need --data"]),
    (filter_vis, ["--steps", "-1"], ["argument --steps: -1 must be at least 0"]),
    (make_report, ["--filter-steps", "-5"], ["argument --filter-steps: -5 must be at least 1"]),
    (make_report, ["--filter-steps", "0"], ["argument --filter-steps: 0 must be at least 1"]),
])
def test_bad_numbers_are_refused_before_the_model_loads(tmp_path, capsys, script, argv, words):
    # The audit: a negative seed was NumPy's ValueError traceback once TensorFlow had loaded, and
    # --filter-steps was not checked at all. No run or data is needed to be refused.
    assert script.main(argv + ["--weights", str(tmp_path / "no_run"), "--out", str(tmp_path / "o.png")]) == 2
    _one_error_line(capsys, *words)
    assert os.listdir(tmp_path) == []


def test_more_filters_than_the_layer_has_is_a_note_naming_its_count():
    keras = pytest.importorskip("keras")
    from ferkit import explain

    inp = keras.Input((48, 48, 1))
    model = keras.Model(inp, keras.layers.Conv2D(4, 3, name="conv")(inp))
    assert explain.filters_note(model, "conv", 4) is None
    assert explain.filters_note(model, "conv", 100000) == "note: --filters 100000: layer conv has 4 filters; showing all 4"
    assert len(explain.filter_patterns(model, "conv", filters=100000, steps=1).filters) == 4


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
        _one_error_line(capsys, "weights file", "finish an epoch")
    unlabelled = synthetic_csvs["test"]
    assert plot_confusion.main(["--data", str(unlabelled), "--weights", str(trained_run)]) == 2
    _one_error_line(capsys, "no label column")


# ---------------------------------------------------------------- make_report.py

HOST = "Test CPU (AVX2), x86_64, 2 CPU cores, Linux"
LONG_COMMAND = ("python train_cnn.py ../shared/data/fer2013/train.csv.gz --model {model} --val "
                "../shared/data/fer2013/public_test.csv.gz --time-budget 45 --out runs/experiments/{name} --quiet")


def _fake_experiment(root, name, model, val_accuracy, options=None, augment=True):
    """A docs/experiments-like folder: run.json and history.csv only, no weights."""
    folder = root / name
    folder.mkdir(parents=True)
    rows = [{"epoch": e + 1, "accuracy": v + 0.05, "loss": 1.0, "val_accuracy": v, "val_loss": 1.2, "lr": 1e-3,
             "seconds": 60.0 * (e + 1)} for e, v in enumerate(val_accuracy)]
    with open(folder / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    info = {"model": model, "options": options or {}, "augment": {"erasing": 0.0} if augment else None,
            "params": 2_659_851, "host": HOST, "status": "done", "train_seconds": 60.0 * len(rows),
            "val_accuracy": max(val_accuracy), "args": {"val": "../shared/data/fer2013/public_test.csv.gz"},
            "experiment": {"name": name, "command": LONG_COMMAND.format(model=model, name=name)}}
    (folder / "run.json").write_text(json.dumps(info))
    return folder


@pytest.fixture
def experiments_dir(tmp_path):
    root = tmp_path / "docs" / "experiments"
    _fake_experiment(root, "cnn1", "cnn1", [0.41, 0.5712, 0.5531])
    _fake_experiment(root, "cnn1_no_batchnorm", "cnn1", [0.38, 0.4923], options={"batchnorm": False})
    _fake_experiment(root, "cnn1_no_augment", "cnn1", [0.40, 0.5344, 0.5202, 0.5101], augment=False)
    _fake_experiment(root, "dnn_cnn1", "dnn", [0.30, 0.3877], options={"match": "cnn1"})
    return root


def test_make_report_default_out_is_not_the_tracked_report():
    out = make_report.build_parser().parse_args([]).out
    assert os.path.abspath(out) != os.path.abspath("report.pdf") and out.endswith(".pdf")


@pytest.mark.slow
def test_make_report(trained_run, synthetic_csvs, experiments_dir, tmp_path, capsys, monkeypatch):
    from matplotlib.backends.backend_pdf import PdfPages

    from ferkit.report import figures
    from ferkit.report.pages import repo_path

    # Each page is checked as matplotlib draws it, before it is saved: no text past its edges.
    drawn = []
    save = PdfPages.savefig

    def checked(self, fig=None, **kw):
        drawn.append((tuple(fig.get_size_inches().round(2)), figures.outside_texts(fig)))
        return save(self, fig, **kw)

    monkeypatch.setattr(PdfPages, "savefig", checked)
    out = tmp_path / "out" / "report.pdf"
    argv = ["--experiments", str(experiments_dir), "--weights", str(trained_run), "--data", str(synthetic_csvs["val"]),
            "--out", str(out), "--samples", "2", "--steps", "4", "--filters", "4", "--filter-steps", "5",
            "--faithfulness-faces", "4", "--average-faces", "2"]
    assert make_report.main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"model: fernet ({trained_run})"  # the model line first, as predict.py prints it
    assert out.read_bytes().startswith(b"%PDF")
    assert drawn and all(size == (8.27, 11.69) and not outside for size, outside in drawn), drawn
    assert pdf_layout_problems(out) == []  # the saved PDF: every page A4, every string on its page
    numbers = json.loads((tmp_path / "out" / "report.json").read_text())
    assert numbers["sections"] == list(make_report.SECTIONS)
    pages = pdf_pages(out)
    assert len(pages) == len(drawn)
    text = "\n".join(pages)
    # paths relative to the repository (../../tmp/... here), never this machine's absolute ones
    assert not re.search(r"(^|[\s(:=])" + re.escape(str(tmp_path)), text)
    assert sum("How to read:" in p for p in pages) >= 9  # every figure page says how to read it
    faithful = _page(pages, "Faithfulness of the maps")  # issue 28: the maps' metrics and class averages
    assert "random order" in faithful and "centre prior" in faithful and "4 faces" in faithful
    assert "Class averages:" in text and "mean face" in text
    assert "dead" in _page(pages, "Filters:") and "dead" in json.dumps(numbers["model_shown"]["filters"])
    titles = ("results at a glance", "experiments, measured here", "How this report was made", "Appendix: the layers")
    first = [next(i for i, p in enumerate(pages) if t in p) for t in titles]
    assert first[:2] == [0, 1] and first[2] + 1 == first[3]  # the closing page, then the appendix to the end
    assert all(titles[3] in p for p in pages[first[3]:])
    glance = _page(pages, titles[0])  # page 1: ours beside the report's figures
    assert "60.94" in glance and "64.14" in glance and "65.25" in glance
    assert "56% -> 60%" in glance and "60% -> 65%" in glance
    assert "57.12" in glance and "49.23 -> 57.12" in glance and "53.44 -> 57.12" in glance  # ablations, from history
    # each number of ours equals the best val_accuracy in that run's history.csv
    rows = {r["name"]: r for r in numbers["experiments"]}
    for name in ("cnn1", "cnn1_no_batchnorm", "cnn1_no_augment", "dnn_cnn1"):
        with open(experiments_dir / name / "history.csv") as f:
            history = [float(r["val_accuracy"]) for r in csv.DictReader(f)]
        assert rows[name]["best_val_accuracy"] == max(history) and rows[name]["last_val_accuracy"] == history[-1]
        assert f"{100 * max(history):.2f}" in text
    for name in ("cnn2", "cnn3"):
        assert rows[name]["status"] == "needs a GPU" and rows[name]["best_val_accuracy"] is None
    assert glance.count("needs a GPU") >= 2
    # the model shown: named as a run of its own (not an experiment of the table), validated on
    # the very file the report tests on, and the report says so
    shown = numbers["model_shown"]
    info = json.loads((trained_run / "run.json").read_text())
    assert shown["run_dir"] == repo_path(trained_run) and not os.path.isabs(shown["run_dir"])
    assert shown["name"] == "fernet run tiny" and "fernet run tiny" in glance and "(the model shown)" in glance
    assert shown["same_as_validation"]
    assert shown["test_accuracy"] == pytest.approx(info["val_accuracy"], abs=1e-6)
    assert "is also this run's validation set" in glance
    # percent everywhere: the per-class page's table and matrix cells
    per_class = _page(pages, "Per class:")
    assert re.search(r"\d+\.\d% \d", per_class) and "macro average" in per_class
    # closing page: hardware, and every command whole (wrapped at spaces, never inside a word)
    closing = _page(pages, titles[2])
    assert HOST in closing
    words = set(closing.split())
    for name in ("cnn1", "dnn_cnn1"):
        command = LONG_COMMAND.format(model="dnn" if name == "dnn_cnn1" else "cnn1", name=name)
        assert set(command.split()) <= words, set(command.split()) - words
    assert "make_report.py" in closing and repo_path(out) in words
    # A report without --data would be shorter: refused in one line, the full one kept, unless --force.
    before = out.read_bytes()
    short = ["--experiments", str(experiments_dir), "--weights", str(trained_run), "--out", str(out), "--filters", "2",
             "--filter-steps", "2"]
    assert make_report.main(short) == 2
    _one_error_line(capsys, str(out), "Per class", "--force")
    assert out.read_bytes() == before
    assert make_report.main(short + ["--force"]) == 0
    assert "Per class" not in json.loads((tmp_path / "out" / "report.json").read_text())["sections"]


def test_make_report_help_names_the_default_model(capsys):
    with pytest.raises(SystemExit):
        make_report.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "models/pretrained/" in text and "highest recorded validation accuracy" in text
    assert "--force" in text


def test_wrapping_keeps_a_parenthesis_on_one_line():
    """"(best val" and "%)" were stranded on separate lines."""
    from ferkit.report import figures

    line = "augmentation: the report 60% -> 65% (without -> with); ours cnn1 58.71 -> 59.01 (best val %)"
    for width in range(30, len(line)):
        for part in figures.wrap(line, width):
            assert part.count("(") == part.count(")"), (width, part)
    for inches in (2.0, 3.0, 4.5):
        parts = figures.wrap_inches(line, inches, 9)
        assert all(p.count("(") == p.count(")") for p in parts), parts
        assert all(figures.text_width(p, 9) <= inches for p in parts)
        assert " ".join(parts) == line
    # a group longer than a line is broken like any words rather than running off the page
    assert len(figures.wrap("(" + "word " * 30 + ")", 40)) > 1


def test_confusion_page_is_a4_and_legible():
    """plot_confusion.py's image and the report's page: percent in each cell with its count, the
    x labels clear of each other, every text inside its cell and on the page."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from ferkit.report import figures
    from ferkit.report.evaluate import confusion_metrics

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 3589)
    pred = np.where(rng.random(3589) < 0.7, labels, rng.integers(0, 7, 3589))
    m = confusion_metrics(labels, pred)
    fig = figures.confusion_figure(m, "Per class: a model on public_test.csv.gz")
    assert tuple(fig.get_size_inches().round(2)) == (8.27, 11.69)
    assert figures.outside_texts(fig) == []
    ax = next(a for a in fig.axes if a.get_xlabel() == "predicted class")
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    ticks = [t.get_window_extent(renderer) for t in ax.get_xticklabels()]
    assert len(ticks) == 7 and not any(a.overlaps(b) for a, b in zip(ticks, ticks[1:]))
    cells = [t for t in ax.texts if t.get_text().endswith("%")]
    assert len(cells) == 49
    rates = 100 * np.asarray(m["confusion_normalized"])
    assert cells[8].get_text() == f"{rates[1, 1]:.1f}%"
    cell_px = ax.get_window_extent(renderer).width / 7
    assert all(t.get_window_extent(renderer).width < 0.9 * cell_px for t in ax.texts)


@pytest.mark.slow
def test_make_report_runs_without_weights_and_without_data(trained_run, experiments_dir, tmp_path, capsys):
    """A run folder with only run.json and history.csv gives its table row and curves; a model
    named with --weights must have weights; without --data the report still comes out."""
    from ferkit.report.pages import repo_path

    runs = tmp_path / "runs"
    _fake_experiment(runs, "my-fernet", "fernet", [0.5, 0.6187, 0.61], options={"width": 32})
    out = tmp_path / "r.pdf"
    base = ["--experiments", str(experiments_dir), "--runs", str(runs), "--out", str(out), "--filters", "2",
            "--filter-steps", "2"]
    assert make_report.main(base + ["--weights", str(runs / "my-fernet")]) == 2
    _one_error_line(capsys, "weights file", "finish an epoch")
    assert not out.exists()
    assert make_report.main(base + ["--weights", str(trained_run)]) == 0
    numbers = json.loads((tmp_path / "r.json").read_text())
    mine = next(r for r in numbers["experiments"] if r["name"] == "my-fernet")
    assert mine["best_val_accuracy"] == 0.6187 and mine["network"] == "fernet"
    assert mine["folder"] == repo_path(runs / "my-fernet")
    assert "Saliency maps" not in numbers["sections"] and "Experiments" in numbers["sections"]
    text = pdf_text(out)
    assert "61.87" in text and "no --data" in text


def test_make_report_errors(tmp_path, capsys):
    assert make_report.main(["--runs", str(tmp_path / "none"), "--out", str(tmp_path / "r.pdf")]) == 2
    _one_error_line(capsys, "no such folder", "--runs")
    assert make_report.main(["--experiments", str(tmp_path / "none"), "--out", str(tmp_path / "r.pdf")]) == 2
    _one_error_line(capsys, "no such folder", "--experiments")
    assert make_report.main(["--out", str(tmp_path / "r.png")]) == 2
    _one_error_line(capsys, "name it .pdf")
