"""Pictures and videos in and out: what predict.py reads besides CSVs, and what --annotate writes.

    kind = input_kind(path)                  # one of KINDS: CSV, IMAGE, VIDEO or FOLDER
    rgb = read_image("photo.jpg")            # uint8 (H, W, 3) RGB, EXIF orientation applied
    files = list_images("photos/")           # every picture under a folder, recursively, sorted
    with open_video("clip.mp4") as video:    # frames as RGB, every Nth one
        for index, frame in video.frames(every=5): ...
    annotated = draw_faces(rgb, faces)       # boxes, emotion and confidence drawn on a copy

Nothing here loads Keras, so bad input is reported before TensorFlow starts. Every problem with
a file is a FERError naming it; written files appear whole or not at all (ferkit.files).
Stills are decoded by Pillow (strict: a truncated JPEG or PNG is an error, not a grey band) and
videos by OpenCV's FFmpeg backend.
"""
import contextlib
import dataclasses
import os

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ferkit.errors import FERError
from ferkit.files import output_path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pgm", ".ppm", ".pnm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
# Annotated videos: OpenCV's pip wheels write MPEG-4 Part 2 into .mp4/.mov/.m4v and MJPEG into .avi.
_FOURCC = {".avi": "MJPG", ".mp4": "mp4v", ".mov": "mp4v", ".m4v": "mp4v"}
PARTIAL_EXIT = 3  # predict.py on a folder: some pictures could not be read; the others' rows are written
# One colour per class (RGB), in data.CLASS_NAMES order: Angry .. Neutral.
COLORS = ((230, 40, 40), (120, 170, 20), (150, 60, 200), (255, 200, 0), (40, 110, 230), (255, 120, 0),
          (200, 200, 200))


@dataclasses.dataclass(frozen=True)
class InputKind:
    """One kind of input predict.py takes. ADD AN INPUT KIND HERE: a row of KINDS (input_kind picks
    it by suffix), and in reader.predict_files how its pictures are read."""
    name: str  # as messages name it
    suffixes: tuple  # file suffixes that choose this kind (FOLDER: a directory; CSV: anything else)
    faces: bool  # photos: faces are found by a detector (CSV rows are FER2013 crops already)
    frames: bool  # read frame by frame, annotated as a video
    unit: str  # what predict.py counts: "row", "picture" or "frame"
    start: object = None  # path -> (files to read, the first picture decoded or None), checking it

    def __str__(self):
        return self.name


def _video_files(path):
    with open_video(path):
        return [path], None


CSV = InputKind("csv", (), faces=False, frames=False, unit="row")
IMAGE = InputKind("image", IMAGE_SUFFIXES, faces=True, frames=False, unit="picture",
                  start=lambda path: ([path], read_image(path)))
VIDEO = InputKind("video", VIDEO_SUFFIXES, faces=True, frames=True, unit="frame", start=_video_files)
FOLDER = InputKind("folder", (), faces=True, frames=False, unit="picture",
                   start=lambda path: (list_images(path), None))
KINDS = {k.name: k for k in (CSV, IMAGE, VIDEO, FOLDER)}
# A local camera (predict.py --camera N): read as a video, chosen by the option, not by a path.
CAMERA = InputKind("camera", (), faces=True, frames=True, unit="frame")


def input_kind(path):
    """What predict.py should do with `path`: FOLDER, IMAGE, VIDEO or CSV (anything else), rows of KINDS."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return FOLDER
    suffix = os.path.splitext(path)[1].lower()
    return next((k for k in KINDS.values() if suffix in k.suffixes), CSV)


def is_image_name(path):
    name = os.path.basename(path)
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def list_images(folder):
    """Every picture under `folder` (recursively; hidden files and folders skipped), sorted by path.
    Raises FERError when there is none."""
    folder = os.fspath(folder)
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [os.path.join(root, f) for f in files if is_image_name(f)]
    if not found:
        raise FERError(f"{folder}: no pictures in this folder or below it "
                       f"(looked for {', '.join(IMAGE_SUFFIXES)})")
    return sorted(found)


def read_image(path):
    """A picture file as uint8 RGB (H, W, 3), turned as its EXIF orientation says (as viewers and
    cv2.imread show it). Raises FERError naming the file when it cannot be decoded whole."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FERError(f"{path}: no such file" if not os.path.exists(path) else f"{path}: not a file")
    try:
        with Image.open(path) as im:
            im.load()  # decodes the whole picture: a truncated file fails here
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit grey: keep the top 8 bits
                gray = (np.asarray(im, np.uint32) >> 8).clip(0, 255).astype(np.uint8)
                return np.repeat(gray[:, :, None], 3, axis=2)
            return np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, PermissionError):
            reason = "permission denied"
        elif isinstance(e, UnidentifiedImageError):
            reason = "not a picture format Pillow reads, or a damaged file"
        raise FERError(f"{path}: cannot read the picture ({reason})") from None


def to_rgb(image, order="rgb"):
    """Any picture array a user may hold as uint8 RGB (H, W, 3).

    Accepts (H, W) grey, (H, W, 1), (H, W, 3) and (H, W, 4) arrays; `order` says whether colour
    arrays are 'rgb' (Pillow, matplotlib, imageio) or 'bgr' (cv2.imread); alpha is dropped.
    uint8 is taken as is; floats are taken as 0..1 (as matplotlib gives) when none exceeds 1,
    else as 0..255."""
    if order not in ("rgb", "bgr"):
        raise FERError(f"order must be 'rgb' or 'bgr', not {order!r}")
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or 0 in a.shape:
        raise FERError(f"expected a picture of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {a.shape}")
    if a.dtype != np.uint8:
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise FERError(f"expected a numeric picture array, got dtype {a.dtype}")
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise FERError("the picture holds NaN or infinite values")
        a = np.clip(np.rint(a * 255 if a.max() <= 1 else a), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        return np.repeat(a[:, :, None], 3, axis=2)
    a = a[:, :, :3]
    return np.ascontiguousarray(a[:, :, ::-1] if order == "bgr" else a)


class Video:
    """An opened video file: its frames as RGB arrays. Use open_video(path)."""

    def __init__(self, path, capture):
        self.path, self._cap = path, capture
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else 25.0  # some containers report 0 or nonsense
        self.size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def frames(self, every=1, all_frames=False):
        """Yield (index, rgb, sampled) for frames 0, every, 2*every, ... (sampled=True); with
        `all_frames` also every frame in between (sampled=False, decoded for an annotated copy)."""
        index = 0
        while True:
            sampled = index % every == 0
            if sampled or all_frames:
                ok, frame = self._cap.read()
                if not ok:
                    return
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), sampled
            elif not self._cap.grab():  # skips the colour conversion of frames nobody looks at
                return
            index += 1

    def close(self):
        self._cap.release()


@contextlib.contextmanager
def open_video(path):
    """Open a video file for reading frames; FERError naming it if it cannot be opened or holds
    no frame."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FERError(f"{path}: no such file" if not os.path.exists(path) else f"{path}: not a file")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own notices stay off stderr
    cap = cv2.VideoCapture(path)
    try:
        if not cap.isOpened() or cap.get(cv2.CAP_PROP_FRAME_WIDTH) <= 0:
            raise FERError(f"{path}: cannot open the video (not a video file, or a codec OpenCV lacks)")
        if not cap.grab():
            raise FERError(f"{path}: the video holds no frame that can be decoded")
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        if cap.get(cv2.CAP_PROP_POS_FRAMES) != 0:  # could not rewind: open it afresh
            cap.release()
            cap = cv2.VideoCapture(path)
        video = Video(path, cap)
        yield video
    finally:
        cap.release()


@contextlib.contextmanager
def open_camera(index):
    """A local camera by index (or its camera_name) as a Video whose frames never end; FERError
    when it cannot be opened."""
    index = int(str(index).removeprefix("camera:"))
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # OpenCV's probing notices stay off stderr
    cap = cv2.VideoCapture(index)
    try:
        if not cap.isOpened():
            raise FERError(f"camera {index}: cannot open it (no such camera, it is in use, or no permission)")
        yield Video(camera_name(index), cap)
    finally:
        cap.release()


def camera_name(index):
    """What the rows' `file` column says for camera `index`."""
    return f"camera:{int(index)}"


def camera_job(index, annotate=None):
    """The Job of predict.py --camera N: frames from the camera, rows as for a video; with
    `annotate`, DIR/camera-N.mp4 (checked as plan() checks a video's copy)."""
    name = camera_name(index)
    annotated = {}
    if annotate is not None:
        annotate = os.fspath(annotate)
        if os.path.exists(annotate) and not os.path.isdir(annotate):
            raise FERError(f"{annotate}: is a file; --annotate needs a folder (it is created if missing)")
        annotated[name] = os.path.join(annotate, f"camera-{int(index)}.mp4")
    return Job(CAMERA, name, [name], annotated)


def draw_faces(rgb, faces, class_names=None):
    """A copy of `rgb` with each face's box, emotion and confidence drawn, sized to the picture so
    that they stay legible from thumbnails to 4K frames. `faces`: ferkit.faces.Face objects (or
    anything with .box, .label, .emotion, .probs)."""
    out = np.ascontiguousarray(rgb).copy()
    h, w = out.shape[:2]
    thick = max(2, round(min(h, w) / 250))
    font = cv2.FONT_HERSHEY_SIMPLEX
    for face in faces:
        x, y, bw, bh = (int(v) for v in face.box)
        color = COLORS[face.label % len(COLORS)]
        cv2.rectangle(out, (x, y), (x + bw - 1, y + bh - 1), color, thick, cv2.LINE_AA)
        text = f"{face.emotion} {face.probs[face.label]:.0%}"
        scale = max(0.45, min(h, w) / 700, bw / 260)
        weight = max(1, round(scale * 2.5))  # stroke width of the letters
        (tw, th), base = cv2.getTextSize(text, font, scale, weight)
        top = y - th - base - 2 * thick if y - th - base - 2 * thick >= 0 else min(y + bh, h - th - base - 2 * thick)
        top = max(0, top)
        left = min(max(0, x - thick // 2), max(0, w - tw - 2 * thick))
        cv2.rectangle(out, (left, top), (left + tw + 2 * thick, top + th + base + 2 * thick), color, -1)
        ink = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
        cv2.putText(out, text, (left + thick, top + th + thick), font, scale, ink, weight, cv2.LINE_AA)
    return out


def write_image(path, rgb):
    """Save an RGB array atomically; the format follows the suffix (JPEG at quality 92)."""
    with output_path(path) as tmp:
        fmt = Image.registered_extensions().get(os.path.splitext(path)[1].lower())
        try:
            Image.fromarray(rgb).save(tmp, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
        except (KeyError, ValueError):
            raise FERError(f"{path}: Pillow cannot write this format") from None


def annotated_name(name, kind):
    """File name of an annotated copy of a file of `kind` (an InputKind): the same for pictures
    Pillow writes (else + '.png'); videos keep .mp4/.avi/.mov/.m4v and get + '.mp4' otherwise."""
    suffix = os.path.splitext(name)[1].lower()
    if kind.frames:
        return name if suffix in _FOURCC else name + ".mp4"
    writable = suffix in (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
    return name if writable else name + ".png"


@dataclasses.dataclass
class Job:
    """What predict.py will read and write for a picture, folder or video (see plan())."""
    kind: InputKind  # IMAGE, FOLDER or VIDEO
    path: str  # the input as given
    files: list  # pictures to read, in order (the video itself for a video)
    annotated: dict  # input file -> path of its annotated copy (empty without --annotate)
    first: np.ndarray | None = None  # a single picture, already decoded by plan()


def plan(path, annotate=None):
    """Check a picture, folder or video input before any model loads, and name the annotated copies.

    Raises FERError (one line naming the file) for a missing, unreadable or truncated picture, a
    video that cannot be opened, a folder without pictures, an --annotate path that is a file or
    a copy that would overwrite an input."""
    path = os.fspath(path)
    kind = input_kind(path)
    if kind.start is None:
        raise FERError(f"{path}: not a picture, folder or video")
    files, first = kind.start(path)
    annotated = {}
    if annotate is not None:
        annotate = os.fspath(annotate)
        if os.path.exists(annotate) and not os.path.isdir(annotate):
            raise FERError(f"{annotate}: is a file; --annotate needs a folder (it is created if missing)")
        for f in files:
            rel = os.path.relpath(f, path) if kind is FOLDER else os.path.basename(f)
            annotated[f] = os.path.join(annotate, annotated_name(rel, kind))
        inputs = {os.path.realpath(f) for f in files}
        for f, out in annotated.items():
            if os.path.realpath(out) in inputs:
                raise FERError(f"{out}: the annotated copy would overwrite an input picture; "
                               "choose another --annotate folder")
    return Job(kind, path, files, annotated, first)


@contextlib.contextmanager
def video_writer(path, fps, size):
    """A cv2.VideoWriter-like object with .write(rgb) whose file appears only when the block ends
    without error."""
    suffix = os.path.splitext(path)[1].lower()
    with output_path(path) as tmp:
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*_FOURCC.get(suffix, "mp4v")), fps, size)
        if not writer.isOpened():
            raise FERError(f"{path}: OpenCV cannot write a video here")

        class _Writer:
            def write(self, rgb):
                writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

        try:
            yield _Writer()
        finally:
            writer.release()
