"""Expressions in photos, folders and videos (ferkit.faces, ferkit.faces.media, predict.py on pictures):
faces found where they are, labelled as predict.py labels the same faces given as CSV rows, one
row per face per sampled video frame, annotated copies, the README's API example, and one-line
errors for bad input. Pictures are made here from what packages ship (matplotlib's grace_hopper.jpg,
scikit-learn's china.jpg) and, where present, real FER2013 faces; nothing is downloaded."""
import csv
import glob
import importlib.util
import os
import re
import subprocess
import sys

import cv2
import matplotlib.cbook
import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_sample_images

import predict
from data import synthetic
from ferkit.faces import media
from ferkit.runs import load as runs
from tests.conftest import ROOT, real_data

BUNDLED = os.path.dirname(sorted(glob.glob(os.path.join(runs.PRETRAINED_DIR, "*", runs.RUN_FILE)))[0])
HOPPER = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
HOPPER_FACE = (150, 105, 230)  # a square (x, y, side) around her face in the 512x600 picture


def hopper():
    return np.asarray(Image.open(HOPPER).convert("RGB"))


def background(size=(640, 480)):
    """A picture without faces: scikit-learn's china.jpg (a temple), resized."""
    return cv2.resize(load_sample_images().images[0], size, interpolation=cv2.INTER_AREA)


def hopper_composite(seed, count=3, size=(640, 480), sides=(110, 170)):
    """Her face pasted `count` times at random places: (picture, squares)."""
    x, y, s = HOPPER_FACE
    face = cv2.cvtColor(hopper()[y:y + s, x:x + s], cv2.COLOR_RGB2GRAY)
    squares = synthetic.random_squares(np.random.default_rng(seed), (size[1], size[0]), count, sides, gap=20)
    return synthetic.paste_faces(background(size), [face] * len(squares), squares), squares


def matched(boxes, squares):
    """Index of the pasted square each box sits on (centre within a quarter side, width 0.35-1.3
    sides), or None."""
    out = []
    for x, y, w, h in boxes:
        cx, cy = x + w / 2, y + h / 2
        hit = [i for i, (sx, sy, s) in enumerate(squares)
               if abs(cx - sx - s / 2) < s / 4 and abs(cy - sy - s / 2) < s / 4 and 0.35 * s <= w <= 1.3 * s]
        out.append(hit[0] if hit else None)
    return out


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_predict(args, capsys):
    rc = predict.main([str(a) for a in args] + ["--weights", BUNDLED])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def reader():
    from ferkit.faces.reader import FaceReader

    return FaceReader(BUNDLED)


# --- the API ------------------------------------------------------------------------------------

def test_grace_hopper_has_exactly_one_face_on_her_face(reader):
    faces = reader.read(hopper())
    assert len(faces) == 1
    x, y, w, h = faces[0].box
    assert abs(x + w / 2 - 265) < 30 and abs(y + h / 2 - 220) < 40 and 120 < w < 260  # her face, not the flag
    assert faces[0].emotion == ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")[faces[0].label]
    assert faces[0].probs.shape == (7,) and abs(faces[0].probs.sum() - 1) < 1e-4


@pytest.mark.slow
def test_opencv_bgr_and_gray_pictures_give_the_same_box(reader):
    rgb_box = reader.read(hopper())[0].box
    assert reader.read(cv2.imread(HOPPER), order="bgr")[0].box == rgb_box
    gray = cv2.imread(HOPPER, cv2.IMREAD_GRAYSCALE)
    assert len(reader.read(gray)) == 1


@pytest.mark.slow
def test_faces_pasted_at_known_places_are_found_there(reader):
    pictures = [hopper_composite(seed) for seed in (1, 2)]
    for (picture, squares), faces in zip(pictures, reader.read_many([p for p, _ in pictures])):
        hits = matched([f.box for f in faces], squares)
        assert None not in hits, "a box where no face was pasted"
        assert sorted(hits) == list(range(len(squares))), "a pasted face was not found"


def test_haar_detector_finds_her_face_too():
    from ferkit.faces.reader import Detector

    boxes = Detector("haar")(hopper())
    assert len(boxes) == 1 and matched(boxes[:, :4], [HOPPER_FACE]) == [0]


def test_picture_arrays_of_every_usual_kind_become_rgb():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(media.to_rgb(rgb[:, :, ::-1], order="bgr"), rgb)
    np.testing.assert_array_equal(media.to_rgb(np.dstack([rgb, np.full((2, 3), 9, np.uint8)])), rgb)
    np.testing.assert_array_equal(media.to_rgb(rgb / 255.0), rgb)  # floats 0..1, as matplotlib reads PNGs
    assert media.to_rgb(rgb[:, :, 0]).shape == (2, 3, 3)
    with pytest.raises(Exception, match=r"got \(2, 3, 5\)"):
        media.to_rgb(np.zeros((2, 3, 5)))


@pytest.mark.slow
def test_readme_api_example_runs_as_written(tmp_path, monkeypatch, capsys):
    text = open(os.path.join(ROOT, "README.md")).read()
    section = text.split("## Photos, folders and videos")[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 5
    monkeypatch.chdir(tmp_path)  # no runs/ here: the bundled model, as in a fresh clone
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and re.search(r"\(\d+, \d+, \d+, \d+\) \d (Angry|Disgust|Fear|Happy|Sad|Surprise|Neutral) ",
                                           printed[0])


# --- predict.py on pictures, folders and videos -------------------------------------------------

@pytest.mark.slow
def test_predict_on_a_photo_writes_rows_and_an_annotated_copy(tmp_path, capsys):
    out, ann = tmp_path / "faces.csv", tmp_path / "annotated"
    rc, _, err = run_predict([HOPPER, out, "--annotate", ann, "--probs", "--tta"], capsys)
    assert rc == 0, err
    rows = read_rows(out)
    assert list(rows[0])[:8] == ["file", "frame", "x", "y", "w", "h", "label", "emotion"] and len(rows[0]) == 15
    assert len(rows) == 1 and rows[0]["file"] == HOPPER and rows[0]["frame"] == "0"
    assert abs(sum(float(rows[0][c]) for c in list(rows[0])[8:]) - 1) < 1e-3
    copy = np.asarray(Image.open(ann / "grace_hopper.jpg"))
    assert copy.shape == hopper().shape
    x, y, w, h = (int(rows[0][k]) for k in "xywh")
    changed = np.abs(copy.astype(int) - hopper()).sum(axis=2) > 60
    assert changed[y:y + h, x].mean() > 0.5  # the box's left edge is drawn
    assert changed[y - 5:y, x:x + w].mean() > 0.3  # the label sits above it
    assert changed[y + h + 10:, :].mean() < 0.01  # and nothing below


@pytest.mark.slow
def test_picture_without_a_face_gives_no_rows_and_a_note(tmp_path, capsys):
    picture = tmp_path / "temple.png"
    Image.fromarray(background()).save(picture)
    rc, _, err = run_predict([picture, tmp_path / "faces.csv"], capsys)
    assert rc == 0 and read_rows(tmp_path / "faces.csv") == []
    assert f"{picture}: no face found" in err


@pytest.mark.slow
def test_folder_is_read_recursively_in_order_and_bad_files_are_named(tmp_path, capsys):
    folder = tmp_path / "photos"
    (folder / "b").mkdir(parents=True)
    for name, seed in (("b/2.png", 1), ("a.jpg", 2)):
        Image.fromarray(hopper_composite(seed, count=2)[0]).save(folder / name)
    raw = open(HOPPER, "rb").read()
    (folder / "b" / "cut.jpg").write_bytes(raw[:len(raw) // 2])  # a truncated JPEG
    (folder / "text.png").write_text("not a picture")
    (folder / "notes.txt").write_text("not a picture either, and not named like one: ignored")
    out, ann = tmp_path / "faces.csv", tmp_path / "annotated"
    rc, _, err = run_predict([folder, out, "--annotate", ann], capsys)
    assert rc == media.PARTIAL_EXIT == 3
    assert re.search(r"cut\.jpg: cannot read the picture \(image file is truncated", err)
    assert "text.png: cannot read the picture" in err and "notes.txt" not in err
    files = [r["file"] for r in read_rows(out)]
    assert files == [str(folder / "a.jpg")] * 2 + [str(folder / "b" / "2.png")] * 2
    assert sorted(str(p.relative_to(ann)) for p in ann.rglob("*.*") if not p.name.startswith(".")) == \
        ["a.jpg", "b/2.png"]  # the tree mirrored (hidden: the outputs guard's record, ferkit/files.py)


@pytest.mark.slow
@pytest.mark.parametrize("every, sampled, annotate", [(1, 7, False), (3, 3, True)])
def test_video_gives_one_row_per_face_per_sampled_frame(tmp_path, capsys, every, sampled, annotate):
    picture, _ = hopper_composite(3, count=2, size=(480, 360))
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (480, 360))
    for i in range(7):
        writer.write(cv2.cvtColor(np.roll(picture, 2 * i, axis=1), cv2.COLOR_RGB2BGR))  # a slow pan
    writer.release()
    out, ann = tmp_path / "faces.csv", tmp_path / "annotated"
    rc, _, err = run_predict([video, out, "--every", every] + ["--annotate", ann] * annotate, capsys)
    assert rc == 0, err
    frames = [int(r["frame"]) for r in read_rows(out)]
    assert frames == sorted(list(range(0, 7, every)) * 2) and len(frames) == 2 * sampled
    if not annotate:  # frames go through the detector in batches: the same boxes as one by one
        assert len({(r["x"], r["w"]) for r in read_rows(out) if r["frame"] == "0"}) == 2
        return
    copy = cv2.VideoCapture(str(ann / "clip.avi"))
    assert int(copy.get(cv2.CAP_PROP_FRAME_COUNT)) == 7  # every frame, boxes held between samples
    assert (copy.get(cv2.CAP_PROP_FRAME_WIDTH), copy.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (480, 360)


def _bad_inputs(tmp_path):
    raw = open(HOPPER, "rb").read()
    (tmp_path / "cut.jpg").write_bytes(raw[:-4000])
    (tmp_path / "junk.png").write_bytes(b"\x89PNG but not really")
    (tmp_path / "junk.mp4").write_bytes(b"not a video" * 100)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no pictures here")
    return {"truncated JPEG": ("cut.jpg", "cannot read the picture (image file is truncated"),
            "unreadable picture": ("junk.png", "cannot read the picture"),
            "video that cannot be opened": ("junk.mp4", "cannot open the video"),
            "empty folder": ("empty", "no pictures in this folder")}


@pytest.mark.parametrize("case", ["truncated JPEG", "unreadable picture", "video that cannot be opened",
                                  "empty folder"])
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, capsys, case):
    name, problem = _bad_inputs(tmp_path)[case]
    out, ann = tmp_path / "out" / "faces.csv", tmp_path / "annotated"
    rc, _, err = run_predict([tmp_path / name, out, "--annotate", ann], capsys)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith(f"error: {tmp_path / name}: {problem}")
    assert not out.exists() and not ann.exists()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_under_the_pytorch_backend_the_haar_detector_is_used(tmp_path):
    # The mtcnn package is TensorFlow code; a backend is chosen once per process: a subprocess.
    env = dict(os.environ, KERAS_BACKEND="torch")
    done = subprocess.run([sys.executable, "predict.py", HOPPER, str(tmp_path / "faces.csv"), "--weights", BUNDLED],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "faces found by haar" in done.stdout and len(read_rows(tmp_path / "faces.csv")) == 1


@pytest.mark.slow
def test_folder_where_no_picture_can_be_read_is_an_error_without_output(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.png").write_text("not a picture")
    rc, _, err = run_predict([tmp_path / "photos", tmp_path / "faces.csv"], capsys)
    assert rc == 2 and err.strip().splitlines()[-1] == f"error: {tmp_path / 'photos'}: none of its 1 pictures could be read"
    assert not (tmp_path / "faces.csv").exists()


def test_photo_options_are_refused_for_csv_input(tmp_path, synthetic_csvs, capsys):
    rc, _, err = run_predict([synthetic_csvs["test"], tmp_path / "out.csv", "--annotate", tmp_path / "a"], capsys)
    assert rc == 2 and "apply to pictures, folders and videos" in err


# --- real FER2013 faces --------------------------------------------------------------------------

@pytest.mark.slow
def test_real_fer_faces_are_found_where_pasted_and_labelled_as_their_csv_rows(tmp_path, capsys):
    import data

    faces = data.load_csv(real_data("public_test.csv.gz")).images[:24]
    rng = np.random.default_rng(0)
    folder, truth = tmp_path / "photos", {}
    folder.mkdir()
    for p in range(8):
        squares = synthetic.random_squares(rng, (480, 640), 3, (90, 180), gap=20)
        name = folder / f"{p}.png"
        Image.fromarray(synthetic.paste_faces(background(), faces[3 * p:3 * p + 3], squares)).save(name)
        truth[str(name)] = (squares, list(range(3 * p, 3 * p + 3)))
    csv_path = synthetic.write_csv(tmp_path / "faces.csv", faces)
    assert run_predict([csv_path, tmp_path / "csv_out.csv"], capsys)[0] == 0
    csv_labels = [int(r["label"]) for r in read_rows(tmp_path / "csv_out.csv")]
    assert run_predict([folder, tmp_path / "out.csv"], capsys)[0] == 0
    found = agree = false = 0
    for name, (squares, rows) in truth.items():
        mine = [r for r in read_rows(tmp_path / "out.csv") if r["file"] == name]
        for r, hit in zip(mine, matched([[int(r[k]) for k in "xywh"] for r in mine], squares)):
            false += hit is None
            found += hit is not None
            agree += hit is not None and int(r["label"]) == csv_labels[rows[hit]]
    assert found >= 0.75 * 24 and false <= 1
    assert agree >= 0.6 * found  # the same model labels a face alike from the photo and from the CSV
