"""serve.py's page in a real browser: headless Chromium (Debian's `chromium`; .ci/run installs it)
driven by Playwright, without Playwright's own browser download.

Chromium's fake camera plays a .y4m made here: grace_hopper.jpg's face pasted twice at known
places on a sample photo (MTCNN finds her face, see tests/test_faces.py). The test checks that
the boxes the page received over the WebSocket and drew on its overlay lie on those places with
emotion labels; two browsers stream at once and one leaves mid-stream; photo and video uploads
give their results; bad uploads and a frame that is not a picture give a message on the page.
FERKIT_FIGURES=1 also saves the screenshot as docs/figures/live.png (the README's)."""
import os
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("playwright", reason="playwright (requirements-dev.txt) drives the browser")
CHROMIUM = os.environ.get("FERKIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium; .ci/run does)")]

from tests.conftest import ROOT  # noqa: E402
from tests.test_faces import BUNDLED, hopper_composite, matched  # noqa: E402
from tests.serve_helpers import running_serve  # noqa: E402

FIGURE = os.path.join(ROOT, "docs", "figures", "live.png")
CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")


def write_y4m(path, rgb, frames=10, fps=10):
    """A still picture as an uncompressed YUV4MPEG2 clip (4:2:0), what Chromium's fake camera plays."""
    h, w = rgb.shape[:2]
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + i420)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    picture, squares = hopper_composite(5, count=2, size=(640, 480), sides=(130, 170))
    write_y4m(folder / "camera.y4m", picture)
    Image.fromarray(picture).save(folder / "photo.jpg", quality=92)
    writer = cv2.VideoWriter(str(folder / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for i in range(5):
        writer.write(cv2.cvtColor(np.roll(picture, 2 * i, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()
    (folder / "junk.mp4").write_bytes(b"not a video" * 100)
    (folder / "junk.jpg").write_bytes(b"not a picture" * 100)
    return folder, squares


@pytest.fixture(scope="module")
def server():
    with running_serve(["--weights", BUNDLED]) as (url, box):
        yield url


@pytest.fixture(scope="module")
def browser(scene):
    from playwright.sync_api import sync_playwright

    folder, _ = scene
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox",  # CI runs as root
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={folder / 'camera.y4m'}"])
        yield b
        b.close()


def open_page(browser, url):
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("window.ferkit && window.ferkit.info !== null")
    return page


def test_camera_boxes_received_and_drawn_where_the_faces_are(browser, server, scene, tmp_path):
    _, squares = scene
    page = open_page(browser, server)
    page.click("#camera-start")
    page.wait_for_function("ferkit.camera.replies >= 3 && ferkit.camera.drawn.length >= 2", timeout=180_000)
    received = page.evaluate("ferkit.camera.received")
    drawn = page.evaluate("ferkit.camera.drawn")
    assert (received["width"], received["height"]) == (640, 480)
    assert sorted(matched([f["box"] for f in received["faces"]], squares)) == [0, 1]
    assert sorted(matched([d["box"] for d in drawn], squares)) == [0, 1]
    assert all(d["emotion"] in CLASSES and d["text"].startswith(d["emotion"]) for d in drawn)
    for d in drawn:  # the overlay really holds the box: its left edge is painted, its centre is clear
        x, y, w, h = d["box"]
        edge = page.evaluate(f"Array.from(document.getElementById('camera-overlay').getContext('2d')"
                             f".getImageData({x}, {y + h // 2}, 1, 1).data)")
        centre = page.evaluate(f"Array.from(document.getElementById('camera-overlay').getContext('2d')"
                               f".getImageData({x + w // 2}, {y + h // 3}, 1, 1).data)")
        assert edge[3] == 255 and centre[3] == 0
    stats = page.inner_text("#camera-stats")
    assert "frames/s" in stats and "latency" in stats
    assert len(page.query_selector_all("#camera-faces .face")) == len(received["faces"])
    page.wait_for_timeout(1500)  # a few more frames, so that frames/s is measured over several
    page.screenshot(path=str(tmp_path / "live.png"))
    if os.environ.get("FERKIT_FIGURES"):
        os.makedirs(os.path.dirname(FIGURE), exist_ok=True)
        page.screenshot(path=FIGURE)

    # a frame that is not a picture: a message on the page, and the stream goes on
    before = page.evaluate("ferkit.camera.replies")
    page.evaluate("cam.ws.send(new TextEncoder().encode('not a picture'))")
    page.wait_for_function("ferkit.camera.errors.length >= 1", timeout=60_000)
    assert page.evaluate("ferkit.camera.errors[0]").startswith("the frame is not a picture")
    page.wait_for_function(f"ferkit.camera.replies >= {before} + 3", timeout=60_000)
    page.context.close()


def test_two_browsers_at_once_and_one_leaving_mid_stream(browser, server):
    pages = [open_page(browser, server) for _ in range(2)]
    for page in pages:
        page.click("#camera-start")
    for page in pages:
        page.wait_for_function("ferkit.camera.replies >= 2 && ferkit.camera.drawn.length >= 2", timeout=180_000)
    pages[0].context.close()  # leaves with a frame in flight, most likely
    count = pages[1].evaluate("ferkit.camera.replies")
    pages[1].wait_for_function(f"ferkit.camera.replies >= {count} + 3", timeout=60_000)
    assert pages[1].evaluate("ferkit.camera.errors") == []
    pages[1].context.close()


def test_photo_upload_shows_the_annotated_picture_and_its_faces(browser, server, scene):
    folder, squares = scene
    page = open_page(browser, server)
    page.click("#tab-photo")
    page.set_input_files("#photo-file", str(folder / "photo.jpg"))
    page.wait_for_function("ferkit.photo !== null", timeout=120_000)
    result = page.evaluate("ferkit.photo")
    assert sorted(matched([f["box"] for f in result["faces"]], squares)) == [0, 1]
    assert page.is_visible("#photo-result") and page.evaluate("document.getElementById('photo-result').naturalWidth") == 640
    assert len(page.query_selector_all("#photo-table tr")) == 3  # header + 2 faces
    assert page.inner_text("#photo-message").startswith("2 faces in photo.jpg")

    page.set_input_files("#photo-file", str(folder / "junk.jpg"))
    page.wait_for_function("ferkit.photo !== null && ferkit.photo.error !== undefined", timeout=60_000)
    message = page.locator("#photo-message")
    assert message.inner_text().startswith("junk.jpg: cannot read the picture")
    assert "error" in message.get_attribute("class")
    page.context.close()


def test_video_upload_plays_in_the_browser_with_its_rows(browser, server, scene):
    folder, _ = scene
    page = open_page(browser, server)
    page.click("#tab-video")
    page.fill("#video-every", "2")
    page.set_input_files("#video-file", str(folder / "clip.avi"))
    page.wait_for_function("ferkit.video !== null && (ferkit.video.playable || ferkit.video.error)", timeout=180_000)
    result = page.evaluate("ferkit.video")
    assert result.get("error") is None and result["playable"] and result["videoWidth"] == 640
    assert (result["frames"], result["sampled"], result["faces"], result["rows"]) == (5, 3, 6, 6)
    assert len(page.query_selector_all("#video-table tr")) == 7
    assert page.get_attribute("#video-csv", "href") == result["csv"]

    for name, problem in [("junk.mp4", "junk.mp4: cannot open the video"),
                          ("photo.jpg", "photo.jpg: not a video file name")]:
        page.set_input_files("#video-file", str(folder / name))
        page.wait_for_function("ferkit.video !== null && ferkit.video.error !== undefined", timeout=60_000)
        assert page.inner_text("#video-message").startswith(problem)
    # a file over the upload limit is refused by the page before it is sent
    page.evaluate("ferkit.info.limits.upload_bytes = 1000")
    page.set_input_files("#video-file", str(folder / "clip.avi"))
    page.wait_for_function("ferkit.video !== null && ferkit.video.error !== undefined", timeout=60_000)
    assert "the limit is 1,000 bytes" in page.inner_text("#video-message")
    page.context.close()
