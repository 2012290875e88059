"""What the page asks of the model: faces in camera frames, a photo, a video; the limits on them.

    service = Service.load(weights, tta=False)       # the model and the detector, loaded once
    stream = service.stream()                        # one per camera or video: .process(rgb) -> [Face]
    rgb = decode_frame(jpeg_bytes)                   # FERError for anything that is not a picture

All clients share one model; `Service.stream()` objects take one lock around each frame, so the
model runs one frame at a time (TensorFlow spreads each call over the cores already) and a long video
interleaves frame by frame with the cameras instead of stalling them. Nothing here knows HTTP.
"""
import base64
import csv
import io
import os
import threading
import time

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

import data
from ferkit.errors import FERError
from ferkit.faces import media
from ferkit.files import open_output
from ferkit.limits import MAX_UPLOAD_BYTES  # noqa: F401 -- one photo or video upload, with the CLI's limits

# The limits (README, "Live page"); the upload size lives in ferkit/limits.py with the toolkit's
# other input limits. Bytes are checked while an upload arrives, pixels before decoding.
MAX_FRAME_BYTES = 2 * 2**20  # one camera frame (a 640x480 JPEG is 30-80 KB)
MAX_FRAME_PIXELS = 1920 * 1080
MAX_PICTURE_PIXELS = 40_000_000  # a photo (Pillow's own bomb limit is 179M, 537 MB of RGB)
MAX_VIDEO_PIXELS = 1920 * 1080  # per frame of an uploaded video
MAX_VIDEO_FRAMES = 1800  # frames of an uploaded video read (a minute at 30 frames/s); the rest is cut
MAX_CAMERAS = 4  # camera streams at once; each has at most one frame in flight
MAX_JOBS = 2  # photo or video uploads being received or processed at once
MAX_RESULTS = 4  # annotated videos kept for download; the oldest is deleted first
PHOTO_SIDE = 2048  # annotated photos sent back are shrunk to at most this side


class _Frames:
    """Each frame read afresh by the FaceReader (detect, crop, classify): photos."""

    def __init__(self, reader):
        self.reader = reader

    def process(self, rgb):
        return self.reader.read(rgb)


def frame_processor(reader, live=True, detector=None):
    """THE adapter between the page and the face pipeline: an object whose .process(rgb) gives the
    faces (ferkit.faces.Face) of each frame of one stream (a camera, a video; `live=False`: a
    photo). Streams get issue 29's LiveTracker sharing the reader's model: with `detector` None
    (serve.py's default) BlazeFace on 1 frame in 3 and MTCNN on 1 in 15, optical flow between
    (docs/PERFORMANCE.md section 9); with a name (--detector), that detector alone on the same
    schedule, as predict.py runs one. A photo, or a reader that is not a FaceReader (the tests'),
    is read afresh as predict.py reads pictures."""
    from ferkit.faces.reader import FaceReader

    if live and isinstance(reader, FaceReader):
        from ferkit.faces.live import LiveTracker

        return LiveTracker(reader, detector=detector, second="auto" if detector is None else None)
    return _Frames(reader)


def _describe(reader, detector=None):
    """The page's model line: the model, and how faces are found in photos and in streams
    (`detector`: the one chosen for both, None for the defaults)."""
    from ferkit.faces.detect import default_detector, default_second
    from ferkit.faces.track import DETECT_EVERY, SECOND_EVERY

    if getattr(reader, "detector", None) is None:  # a reader without a detector of its own (tests' stand-ins)
        return reader.describe()
    first = detector or default_detector(live=True)
    second = default_second(first) if detector is None else None
    return (reader.describe() + f" in photos; in camera frames and videos by {first} on one frame in "
            f"{DETECT_EVERY}, followed by optical flow between"
            + (f", and by {second} on one frame in {SECOND_EVERY}" if second else ""))


class _Locked:
    def __init__(self, processor, lock):
        self._processor, self._lock = processor, lock

    def process(self, rgb):
        with self._lock:
            return self._processor.process(rgb)


class Service:
    """The model (or ensemble) and detector, loaded once, shared by every client."""

    def __init__(self, reader, describe=None, detector=None):
        """`detector`: the name chosen for photos and streams alike (serve.py --detector), or None:
        the reader's own (default_detector()) for photos, frame_processor's pair for streams."""
        self.reader, self.detector = reader, detector
        self._lock = threading.Lock()
        self.description = describe or _describe(reader, detector)

    @classmethod
    def load(cls, weights=None, tta=False, detector=None):
        from ferkit.faces.reader import FaceReader  # Keras loads here

        return cls(FaceReader(weights, tta=tta, detector=detector), detector=detector)

    def stream(self, live=True):
        """A frame processor for one stream; its frames take turns with every other client's."""
        return _Locked(frame_processor(self.reader, live, self.detector), self._lock)

    def frame(self, stream, payload):
        """A camera frame (JPEG or PNG bytes) -> the reply the page draws: faces and stage times."""
        t0 = time.perf_counter()
        rgb = decode_frame(payload)
        t1 = time.perf_counter()
        faces = stream.process(rgb)
        t2 = time.perf_counter()
        return {"width": int(rgb.shape[1]), "height": int(rgb.shape[0]), "faces": [f.as_dict() for f in faces],
                "ms": {"decode": round(1000 * (t1 - t0), 1), "faces": round(1000 * (t2 - t1), 1)}}

    def photo(self, path, name):
        """An uploaded picture file -> its faces and the annotated picture as a data: URL (JPEG)."""
        check_pixels(path, name, MAX_PICTURE_PIXELS)
        rgb = media.read_image(path)
        faces = self.stream(live=False).process(rgb)
        annotated = media.draw_faces(rgb, faces)
        scale = PHOTO_SIDE / max(annotated.shape[:2])
        if scale < 1:
            size = (round(annotated.shape[1] * scale), round(annotated.shape[0] * scale))
            annotated = cv2.resize(annotated, size, interpolation=cv2.INTER_AREA)
        buf = io.BytesIO()
        Image.fromarray(annotated).save(buf, format="JPEG", quality=90)
        return {"width": int(rgb.shape[1]), "height": int(rgb.shape[0]), "faces": [f.as_dict() for f in faces],
                "image": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")}

    def video(self, path, name, out_video, out_csv, every=1):
        """An uploaded video file -> an annotated H.264 copy (`out_video`, .mp4) and its rows
        (`out_csv`, predict.py's columns with the probabilities), classifying frames 0, every, ...
        Every frame is drawn with the boxes of the last classified one, as predict.py --annotate."""
        t0 = time.perf_counter()
        stream = self.stream()
        counts = {"frames": 0, "sampled": 0, "faces": 0, "cut": False}
        with media.open_video(path) as video:
            w, h = video.size
            if w * h > MAX_VIDEO_PIXELS:
                raise FERError(f"{name}: frames of {w}x{h} pixels; the limit is {MAX_VIDEO_PIXELS:,} pixels a frame")
            with media.video_writer(out_video, video.fps, video.size) as writer, \
                    open_output(out_csv, "w", newline="") as f:
                rows = csv.writer(f, lineterminator="\n")
                rows.writerow(["file", "frame", "x", "y", "w", "h", "label", "emotion", *data.CLASS_NAMES])
                faces = []
                for index, rgb, sampled in video.frames(every, all_frames=True):
                    if index >= MAX_VIDEO_FRAMES:
                        counts["cut"] = True
                        break
                    if rgb.shape[1::-1] != (w, h):  # a stream that changes size midway
                        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
                    if sampled:
                        faces = stream.process(rgb)
                        counts["sampled"] += 1
                        counts["faces"] += len(faces)
                        for face in faces:
                            rows.writerow([name, index, *face.box, face.label, face.emotion,
                                           *(f"{p:.5f}" for p in face.probs)])
                    writer.write(media.draw_faces(rgb, faces))
                    counts["frames"] += 1
        counts["seconds"] = round(time.perf_counter() - t0, 2)
        counts["fps"] = round(video.fps, 3)
        return counts


def check_pixels(path, name, limit):
    """Refuse a picture file above `limit` pixels from its header, before it is decoded."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return  # media.read_image names the problem
    if w * h > limit:
        raise FERError(f"{name}: a picture of {w}x{h} pixels; the limit is {limit:,} pixels")


def decode_frame(payload):
    """JPEG/PNG/WebP bytes of a camera frame -> uint8 RGB (H, W, 3); FERError when it is too big or
    not a picture Pillow decodes whole."""
    if len(payload) > MAX_FRAME_BYTES:
        raise FERError(f"frame of {len(payload):,} bytes; the limit is {MAX_FRAME_BYTES:,}")
    try:
        with Image.open(io.BytesIO(payload)) as im:
            if im.size[0] * im.size[1] > MAX_FRAME_PIXELS:
                raise FERError(f"frame of {im.size[0]}x{im.size[1]} pixels; the limit is {MAX_FRAME_PIXELS:,}")
            im.load()
            return np.asarray(im.convert("RGB"))
    except FERError:
        raise
    except UnidentifiedImageError:
        raise FERError("the frame is not a picture (expected JPEG or PNG bytes)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FERError(f"the frame cannot be decoded ({reason})") from None


def safe_suffix(name, allowed):
    """The suffix of a client's file name if it is one of `allowed`, else ''. The name itself is
    never a path on the server: uploads are saved under names the server makes."""
    suffix = os.path.splitext(os.path.basename(str(name)))[1].lower()
    return suffix if suffix in allowed else ""
