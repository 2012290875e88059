"""serve.py's server (ferkit/web): camera frames over the WebSocket, photo and video uploads, and
what each kind of bad input gets: a one-line message, the server still answering the next
client, no upload left on disk. The routes run in-process (Starlette's TestClient, httpx) on a
stand-in reader that finds one fixed face, so these tests need no model; the last ones start
serve.py itself with the bundled model. The real browser: tests/test_serve_browser.py."""
import glob
import io
import os
import socket

import av
import cv2
import numpy as np
import pytest
from PIL import Image

TestClient = pytest.importorskip("fastapi.testclient", reason="httpx2 (requirements-dev.txt) drives Starlette's "
                                 "TestClient").TestClient

import serve  # noqa: E402
from ferkit.errors import FERError  # noqa: E402
from ferkit.faces import media  # noqa: E402
from ferkit.runs import load as runs  # noqa: E402
from ferkit.web import app as web  # noqa: E402
from ferkit.web import service as svc  # noqa: E402

BOX = (40, 30, 64, 64)
BUNDLED = os.path.dirname(sorted(glob.glob(os.path.join(runs.PRETRAINED_DIR, "*", runs.RUN_FILE)))[0])


class FakeFace:
    def __init__(self, box):
        self.box, self.label, self.emotion, self.score = box, 3, "Happy", 0.99
        self.probs = np.array([0.02, 0.01, 0.02, 0.85, 0.03, 0.03, 0.04])

    def as_dict(self):
        return {"box": list(self.box), "label": 3, "emotion": "Happy",
                "probs": dict(zip(("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"),
                                  map(float, self.probs))), "score": self.score}


class FakeReader:
    """A face at BOX in every picture of at least 128x128, none in smaller ones."""

    def __init__(self):
        self.calls = 0

    def read(self, rgb):
        self.calls += 1
        return [FakeFace(BOX)] if min(rgb.shape[:2]) >= 128 else []

    def describe(self):
        return "model: fake"


@pytest.fixture
def client(tmp_path):
    app = web.create_app(svc.Service(FakeReader()), workdir=tmp_path)
    with TestClient(app) as c:
        c.tempdir = app.state.tempdir
        yield c
    assert not os.path.exists(app.state.tempdir)  # the server's temporary folder goes with it


def jpeg(w=320, h=240, seed=0):
    rgb = (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG")
    return buf.getvalue()


def uploads_left(client):
    return os.listdir(os.path.join(client.tempdir, "uploads"))


def write_video(path, frames=6, size=(320, 240)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * i, np.uint8))
    writer.release()
    return path


# --- camera -------------------------------------------------------------------------------------

def test_camera_frame_gets_its_faces_and_stage_times(client):
    with client.websocket_connect("/ws/camera") as ws:
        ws.send_bytes(jpeg())
        reply = ws.receive_json()
    assert reply["width"] == 320 and reply["height"] == 240 and reply["frame"] == 1
    assert [f["box"] for f in reply["faces"]] == [list(BOX)] and reply["faces"][0]["emotion"] == "Happy"
    assert set(reply["ms"]) == {"decode", "faces", "server"} and reply["ms"]["server"] >= reply["ms"]["faces"]


@pytest.mark.parametrize("payload, problem", [
    (b"not a picture at all", "the frame is not a picture"),
    (jpeg()[:300], "the frame cannot be decoded"),
    ("a text message", "expected a camera frame as a binary message"),
    (b"\xff" * (svc.MAX_FRAME_BYTES + 1), "frame of 2,097,153 bytes; the limit is 2,097,152"),
])
def test_bad_frame_gets_a_message_and_the_stream_goes_on(client, payload, problem):
    with client.websocket_connect("/ws/camera") as ws:
        ws.send_text(payload) if isinstance(payload, str) else ws.send_bytes(payload)
        reply = ws.receive_json()
        assert reply["error"].startswith(problem) and "faces" not in reply
        ws.send_bytes(jpeg())  # the same stream answers the next good frame
        assert len(ws.receive_json()["faces"]) == 1


def test_huge_frame_by_pixels_is_refused_before_decoding(client):
    buf = io.BytesIO()
    Image.new("L", (4000, 3000)).save(buf, format="PNG")  # 4 KB of file, 12 megapixels
    with client.websocket_connect("/ws/camera") as ws:
        ws.send_bytes(buf.getvalue())
        assert ws.receive_json()["error"] == "frame of 4000x3000 pixels; the limit is 2,073,600"


def test_client_leaving_mid_stream_and_too_many_cameras(client):
    with client.websocket_connect("/ws/camera") as ws:  # leaves with a frame unanswered
        ws.send_bytes(jpeg())
    others = [client.websocket_connect("/ws/camera") for _ in range(svc.MAX_CAMERAS)]
    streams = [o.__enter__() for o in others]
    for ws in streams:  # every camera at once is answered
        ws.send_bytes(jpeg())
    assert all(len(ws.receive_json()["faces"]) == 1 for ws in streams)
    with client.websocket_connect("/ws/camera") as extra:
        assert extra.receive_json()["error"].startswith(f"busy: {svc.MAX_CAMERAS} cameras")
    for o in others:
        o.__exit__(None, None, None)
    with client.websocket_connect("/ws/camera") as ws:  # a place is free again
        ws.send_bytes(jpeg())
        assert len(ws.receive_json()["faces"]) == 1


# --- photo and video uploads --------------------------------------------------------------------

def test_photo_upload_gives_faces_and_an_annotated_jpeg(client):
    r = client.post("/api/photo", params={"name": "me.jpg"}, content=jpeg(400, 300))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (400, 300) and body["faces"][0]["box"] == list(BOX)
    assert body["image"].startswith("data:image/jpeg;base64,")
    assert uploads_left(client) == []


@pytest.mark.parametrize("route, name, content, status, message", [
    ("photo", "a/b/../notes.jpg", b"just text", 400, "notes.jpg: cannot read the picture"),
    ("photo", "x.png", b"", 400, "the upload is empty"),
    ("video", "/etc/passwd", b"not a video" * 50, 400, "passwd: not a video file name (expected .mp4"),
    ("video", "../../x.webm", b"not a video" * 50, 400, "x.webm: cannot open the video"),
    ("video", "clip.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2000, 400, "clip.mp4: cannot open the video"),
])
def test_bad_upload_is_one_message_naming_the_file_and_nothing_stays(client, route, name, content, status, message):
    r = client.post(f"/api/{route}", params={"name": name}, content=content)
    assert r.status_code == status and r.json()["error"].startswith(message), r.text
    assert client.tempdir not in r.json()["error"]  # the server's own paths are not shown
    assert uploads_left(client) == [] and os.listdir(os.path.join(client.tempdir, "results")) == []
    assert client.get("/api/info").status_code == 200  # still up


def test_a_bug_in_processing_is_a_message_and_the_server_goes_on(tmp_path):
    class Broken(FakeReader):
        def read(self, rgb):
            raise ZeroDivisionError("division by zero")

    app = web.create_app(svc.Service(Broken()), workdir=tmp_path)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/api/photo", params={"name": "me.jpg"}, content=jpeg())
        assert r.status_code == 500 and r.json()["error"] == "internal error: ZeroDivisionError: division by zero"
        with client.websocket_connect("/ws/camera") as ws:
            ws.send_bytes(jpeg())
            assert ws.receive_json()["error"] == "internal error: ZeroDivisionError: division by zero"
        assert client.get("/api/info").status_code == 200
        assert os.listdir(os.path.join(app.state.tempdir, "uploads")) == []


def test_upload_over_the_limit_is_refused_as_it_arrives(client, monkeypatch):
    monkeypatch.setattr(svc, "MAX_UPLOAD_BYTES", 10_000)
    big = jpeg(400, 300) + b"\x00" * 20_000
    r = client.post("/api/photo", params={"name": "big.jpg"}, content=big)
    assert r.status_code == 413 and r.json()["error"] == f"the upload is {len(big):,} bytes; the limit is 10,000 bytes"

    def chunks():  # no Content-Length: counted while it streams in
        for _ in range(5):
            yield b"\x00" * 4096

    r = client.post("/api/video", params={"name": "big.mp4"}, content=chunks())
    assert r.status_code == 413 and r.json()["error"] == "the upload is over the limit of 10,000 bytes"
    assert uploads_left(client) == []
    assert client.get("/api/info").json()["limits"]["upload_bytes"] == 10_000


def test_photo_over_the_pixel_limit_is_refused_before_decoding(client, monkeypatch):
    monkeypatch.setattr(svc, "MAX_PICTURE_PIXELS", 100 * 100)
    r = client.post("/api/photo", params={"name": "wide.jpg"}, content=jpeg(200, 100))
    assert r.status_code == 400 and r.json()["error"] == "wide.jpg: a picture of 200x100 pixels; the limit is 10,000 pixels"


def test_video_upload_gives_a_browser_playable_video_and_its_rows(client, tmp_path):
    clip = write_video(tmp_path / "clip.avi", frames=6)
    r = client.post("/api/video", params={"name": "my clip.avi", "every": 2}, content=clip.read_bytes())
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["frames"], body["sampled"], body["faces"], body["cut"]) == (6, 3, 3, False)
    assert uploads_left(client) == []
    rows = client.get(body["csv"]).text.splitlines()
    assert rows[0] == "file,frame,x,y,w,h,label,emotion,Angry,Disgust,Fear,Happy,Sad,Surprise,Neutral"
    assert [r.split(",")[:8] for r in rows[1:]] == [["my clip.avi", str(i), "40", "30", "64", "64", "3", "Happy"]
                                                    for i in (0, 2, 4)]
    video = client.get(body["video"])
    assert video.headers["content-type"] == "video/mp4"
    path = tmp_path / "back.mp4"
    path.write_bytes(video.content)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert sum(1 for _ in container.decode(video=0)) == 6
    assert client.get(body["video"].replace(body["video"].split("/")[3], "0" * 32)).status_code == 404
    assert client.get(body["video"].rsplit("/", 1)[0] + "/..%2f..%2fetc%2fpasswd").status_code == 404


def test_only_the_last_results_are_kept(client, tmp_path, monkeypatch):
    monkeypatch.setattr(svc, "MAX_RESULTS", 2)
    clip = write_video(tmp_path / "c.avi", frames=2).read_bytes()
    links = [client.post("/api/video", params={"name": "c.avi"}, content=clip).json()["csv"] for _ in range(3)]
    assert [client.get(u).status_code for u in links] == [404, 200, 200]
    assert len(os.listdir(os.path.join(client.tempdir, "results"))) == 2


def test_long_video_is_cut_at_the_frame_limit(client, tmp_path, monkeypatch):
    monkeypatch.setattr(svc, "MAX_VIDEO_FRAMES", 4)
    clip = write_video(tmp_path / "long.avi", frames=7).read_bytes()
    body = client.post("/api/video", params={"name": "long.avi"}, content=clip).json()
    assert (body["frames"], body["cut"]) == (4, True)


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="camera-start"' in page.text and "/static/app.js" in page.text
    assert "getUserMedia" in client.get("/static/app.js").text
    assert client.get("/static/../app.py").status_code == 404


def test_upload_names_never_become_paths():
    assert svc.safe_suffix("../../etc/passwd", media.IMAGE_SUFFIXES) == ""
    assert svc.safe_suffix("C:\\x\\photo.JPG", media.IMAGE_SUFFIXES) == ".jpg"
    assert web._display_name("../../a\\b/c.mp4", "video") == "c.mp4" and web._display_name("", "video") == "video"


# --- serve.py -----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [(["--port", "70000"], "70000 is not a port number"),
                                           (["--weights", "no/such/run"], "no/such/run: no such run folder")])
def test_serve_bad_options_are_one_line(capsys, argv, message):
    assert serve.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_serve_refuses_a_port_in_use_before_loading_the_model(capsys):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert serve.main(["--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}") and err.count("\n") == 1


def test_detector_default_is_auto_and_a_chosen_one_is_used_alone_everywhere(monkeypatch, capsys):
    # The audit: `--detector mtcnn` could not be told from the default, so camera frames and videos
    # still ran BlazeFace. Now None means the defaults (photos MTCNN, streams BlazeFace + MTCNN).
    from ferkit.faces import live
    from ferkit.faces.detect import default_detector
    from ferkit.faces.reader import FaceReader

    assert serve.build_parser().parse_args([]).detector is None
    assert serve.build_parser().parse_args(["--detector", "mtcnn"]).detector == "mtcnn"
    serve.build_parser().print_help()
    assert "camera frames and videos by blazeface" in " ".join(capsys.readouterr().out.split())
    made = []
    monkeypatch.setattr(live, "LiveTracker", lambda reader, **kw: made.append(kw) or "tracker")

    class Reader(FaceReader):  # no model: only what the streams and the model line read
        def __init__(self, name):
            self.detector = type("D", (), {"name": name})()

        def describe(self):
            return f"model: fake; faces found by {self.detector.name}"

    auto, chosen = svc.Service(Reader(default_detector())), svc.Service(Reader("mtcnn"), detector="mtcnn")
    for service in (auto, chosen):
        assert service.stream()._processor == "tracker"
        assert isinstance(service.stream(live=False)._processor, svc._Frames)  # photos: the reader's detector
    assert made == [{"detector": None, "second": "auto"}, {"detector": "mtcnn", "second": None}]
    if default_detector(live=True) == "blazeface":  # under TensorFlow
        assert auto.description.endswith("in photos; in camera frames and videos by blazeface on one frame in 3, "
                                         "followed by optical flow between, and by mtcnn on one frame in 15")
    assert chosen.description == ("model: fake; faces found by mtcnn in photos; in camera frames and videos by "
                                  "mtcnn on one frame in 3, followed by optical flow between")


@pytest.mark.slow
def test_serve_py_answers_on_localhost_with_the_model(capsys):
    """serve.py itself, with the bundled model: the address printed, the page, a frame with a face."""
    import json

    import matplotlib.cbook
    from websockets.sync.client import connect

    from tests.serve_helpers import running_serve

    hopper = open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), "rb").read()
    with running_serve(["--weights", BUNDLED]) as (url, box):
        assert url.startswith("http://127.0.0.1:")
        with connect(url.replace("http", "ws") + "/ws/camera", max_size=2**22) as ws:
            ws.send(hopper)
            reply = json.loads(ws.recv(timeout=120))
    assert box["rc"] == 0
    assert len(reply["faces"]) == 1 and 150 < reply["faces"][0]["box"][0] < 230
    out = capsys.readouterr().out
    assert f"serving on {url}/" in out and "faces found by" in out


# --- annotated videos browsers play (ferkit/faces/media.py video_writer, also predict.py --annotate)

@pytest.mark.parametrize("suffix, codec", [(".mp4", "h264"), (".webm", "vp9"), (".mov", "h264"), (".avi", "mjpeg")])
def test_video_writer_encodes_what_browsers_play_and_pads_odd_sides(tmp_path, suffix, codec):
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur((rng.random((121, 161, 3)) * 255).astype(np.uint8), (0, 0), 4)
    path = tmp_path / ("clip" + suffix)
    with media.video_writer(path, 12.5, (161, 121)) as writer:
        for i in range(8):
            writer.write(np.roll(base, i, axis=1))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert stream.codec_context.name == codec and float(stream.average_rate) == pytest.approx(12.5, abs=0.01)
    assert len(frames) == 8 and frames[0].shape == (122, 162, 3)  # 4:2:0 needs even sides: one edge row/column added
    assert np.abs(frames[3][:121, :161].astype(int) - np.roll(base, 3, axis=1)).mean() < 8  # the picture, not noise
    assert os.listdir(tmp_path) == [path.name]


def test_video_writer_leaves_no_file_when_writing_fails(tmp_path):
    path = tmp_path / "clip.mp4"
    with pytest.raises(FERError, match="video frame of 100x80 pixels in a video of 64x48"):
        with media.video_writer(path, 10, (64, 48)) as writer:
            writer.write(np.zeros((48, 64, 3), np.uint8))
            writer.write(np.zeros((80, 100, 3), np.uint8))
    assert os.listdir(tmp_path) == []
