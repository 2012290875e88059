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
videos are read by OpenCV's FFmpeg backend and written by PyAV's (H.264 or VP9, which browsers play).
A picture above ferkit.limits.MAX_PICTURE_PIXELS is refused from its header, before it is decoded
(no DecompressionBombWarning, bounded memory); pictures below it are read whole, and detection runs
on a copy shrunk to reader.MAX_SIDE pixels on the long side. Float pictures (32-bit TIFF) follow
to_rgb's rule, as arrays given to the Python API do.
"""
import contextlib
import dataclasses
import os
import re
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ferkit.errors import FERError
from ferkit.files import output_path
from ferkit.limits import MAX_PICTURE_PIXELS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pgm", ".ppm", ".pnm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
# Annotated videos, written by PyAV (the `av` wheel bundles FFmpeg with libx264 and libvpx): H.264
# in .mp4/.mov/.m4v and VP9 in .webm, which Chrome, Firefox and Safari play (OpenCV's pip wheels
# only write MPEG-4 Part 2, which they do not); MJPEG in .avi as before. suffix -> (codec, pixels,
# options); other suffixes get '.mp4' added. Speed: benchmarks/video_encode.py, README.
VIDEO_CODECS = {
    ".mp4": ("libx264", "yuv420p", {"preset": "veryfast", "crf": "23"}),
    ".mov": ("libx264", "yuv420p", {"preset": "veryfast", "crf": "23"}),
    ".m4v": ("libx264", "yuv420p", {"preset": "veryfast", "crf": "23"}),
    ".webm": ("libvpx-vp9", "yuv420p", {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0"}),
    ".avi": ("mjpeg", "yuvj420p", {"q:v": "3"}),
}
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


def list_images(folder, unreadable=None):
    """Every picture under `folder` (recursively; hidden files and folders skipped), sorted by path.
    Subfolders that cannot be read are appended to `unreadable` as (path, reason) when it is a
    list (predict.py names them as skipped), else raise FERError. Raises FERError when there is
    no picture."""
    folder = os.fspath(folder)
    found, failed = [], []

    def onerror(e):
        failed.append((os.fspath(e.filename or folder), _reason(e)))

    for root, dirs, files in os.walk(folder, onerror=onerror):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [os.path.join(root, f) for f in files if is_image_name(f)]
    if failed and (unreadable is None or not found):
        where, why = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise FERError(f"{where}: cannot read this folder ({why}){more}")
    if not found:
        raise FERError(f"{folder}: no pictures in this folder or below it "
                       f"(looked for {', '.join(IMAGE_SUFFIXES)})")
    if unreadable is not None:
        unreadable += failed
    return sorted(found)


def _reason(e):
    if isinstance(e, PermissionError):
        return "permission denied"
    return (e.strerror or str(e) or type(e).__name__).splitlines()[0]


def csv_name(path):
    """A path as a CSV cell: file names that are not valid UTF-8 (bytes the file system allows)
    keep their valid part and show each other byte as \\xNN, instead of failing the write."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def read_image(path):
    """A picture file as uint8 RGB (H, W, 3), turned as its EXIF orientation says (as viewers and
    cv2.imread show it). Raises FERError naming the file when it cannot be decoded whole, or when
    it has more than MAX_PICTURE_PIXELS pixels (refused from its header, before decoding)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FERError(f"{path}: no such file" if not os.path.exists(path) else f"{path}: not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit is below Pillow's
            with Image.open(path) as im:
                check_pixels(path, im.size)
                im.load()  # decodes the whole picture: a truncated file fails here
                ImageOps.exif_transpose(im, in_place=True)  # in place: no copy of a big picture
                if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16/32-bit grey, float grey (TIFF)
                    return _wide_rgb(path, np.asarray(im))  # by to_rgb's rule, as arrays given to the API
                return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except Image.DecompressionBombError as e:  # Pillow's own limit, above ours, refused it at open
        found = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(found[1]):,} pixels" if found else "more pixels"
        raise FERError(f"{path}: {size}, above the limit of {MAX_PICTURE_PIXELS:,} for a picture "
                       "(ferkit/limits.py); shrink it first") from None
    except (OSError, SyntaxError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, PermissionError):
            reason = "permission denied"
        elif isinstance(e, UnidentifiedImageError):
            reason = "not a picture format Pillow reads, or a damaged file"
        raise FERError(f"{path}: cannot read the picture ({reason})") from None


def check_pixels(path, size):
    """Refuse a picture of `size` (width, height) above MAX_PICTURE_PIXELS, in one line."""
    w, h = size
    if w * h > MAX_PICTURE_PIXELS:
        raise FERError(f"{path}: {w}x{h} is {w * h:,} pixels, above the limit of {MAX_PICTURE_PIXELS:,} "
                       "for a picture (ferkit/limits.py); shrink it first")


def _wide_rgb(path, a):
    if a.dtype.byteorder not in ("=", "|"):
        a = a.astype(a.dtype.newbyteorder("="))
    try:
        return to_rgb(a)
    except FERError as e:
        raise FERError(f"{path}: {e}") from None


def to_rgb(image, order="rgb"):
    """Any picture array a user may hold as uint8 RGB (H, W, 3).

    Accepts (H, W) grey, (H, W, 1), (H, W, 3) and (H, W, 4) arrays; `order` says whether colour
    arrays are 'rgb' (Pillow, matplotlib, imageio) or 'bgr' (cv2.imread); alpha is dropped.
    The one rule for pixel values, for arrays and for picture files alike (read_image uses it):
    uint8 is taken as is; floats are taken as 0..1 (as matplotlib gives) when none exceeds 1,
    else as 0..255; uint16, and other integers holding a value above 255, are 16-bit (0..65535)
    and keep their top 8 bits; other integers (and booleans) follow the float rule."""
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
        wide = np.issubdtype(a.dtype, np.integer) and (a.dtype == np.uint16 or a.max() > 255)
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise FERError("the picture holds NaN or infinite values")
        if wide:  # 16-bit: the top 8 bits
            a = np.floor(np.clip(a, 0, 65535) / 256)
        a = np.clip(np.rint(a * 255 if not wide and a.max() <= 1 else a), 0, 255).astype(np.uint8)
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
        check_pixels(path, (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))))
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


_CAMERAS = {}  # index -> the capture check_camera opened, handed to open_camera: opening one can take a second


def check_camera(index):
    """Open camera `index` now, before a model loads: FERError when it cannot be. It stays open for
    open_camera (one left by an earlier check that was never read is released first)."""
    stale = _CAMERAS.pop(index, None)
    if stale is not None:
        stale.release()
    _CAMERAS[index] = _open_capture(index)


def _open_capture(index):
    # OpenCV reads OPENCV_LOG_LEVEL once, when it loads: its '[ WARN:0@...] can't open camera by
    # index' lines (one per backend it tries) are silenced through its logging API instead
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(min(level, cv2.utils.logging.LOG_LEVEL_ERROR))
    try:
        cap = cv2.VideoCapture(index)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not cap.isOpened():
        cap.release()
        raise FERError(f"camera {index}: cannot open it (no such camera, it is in use, or no permission)")
    return cap


@contextlib.contextmanager
def open_camera(index):
    """A local camera by index (or its camera_name) as a Video whose frames never end; FERError
    when it cannot be opened."""
    index = int(str(index).removeprefix("camera:"))
    cap = _CAMERAS.pop(index, None) or _open_capture(index)
    try:
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
        return name if suffix in VIDEO_CODECS else name + ".mp4"
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
    skipped: list = dataclasses.field(default_factory=list)  # (subfolder, reason): folders that cannot be read


def plan(path, annotate=None):
    """Check a picture, folder or video input before any model loads, and name the annotated copies.

    Raises FERError (one line naming the file) for a missing, unreadable or truncated picture, a
    video that cannot be opened, a folder without pictures, an --annotate path that is a file or
    a copy that would overwrite an input. The copies are outputs the user did not name one by one:
    predict.py hands them to the outputs guard (ferkit.files.check_outputs, `derived`) with the CSV,
    before any model loads."""
    path = os.fspath(path)
    kind = input_kind(path)
    if kind.start is None:
        raise FERError(f"{path}: not a picture, folder or video")
    skipped = []
    if kind is FOLDER:  # unreadable subfolders are skipped, as unreadable pictures are
        files, first = list_images(path, unreadable=skipped), None
    else:
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
    return Job(kind, path, files, annotated, first, skipped)


class _VideoWriter:
    """Frames (uint8 RGB, all of one size) into an open PyAV container; see video_writer."""

    def __init__(self, container, codec, pixels, options, fps, size):
        import fractions

        self._container = container
        rate = fractions.Fraction(fps).limit_denominator(1001)
        self._stream = container.add_stream(codec, rate=rate, options=dict(options))
        # 4:2:0 needs even sides: odd ones are padded by one repeated edge pixel
        self.size = tuple(int(v) for v in size)
        self._stream.width, self._stream.height = (v + v % 2 for v in self.size)
        self._stream.pix_fmt = pixels
        self.frames = 0

    def write(self, rgb):
        import av

        rgb = np.asarray(rgb, np.uint8)
        if rgb.shape[1::-1] != self.size:
            raise FERError(f"video frame of {rgb.shape[1]}x{rgb.shape[0]} pixels in a video of "
                           f"{self.size[0]}x{self.size[1]}")
        pad = (self._stream.height - rgb.shape[0], self._stream.width - rgb.shape[1])
        if any(pad):
            rgb = np.pad(rgb, ((0, pad[0]), (0, pad[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def finish(self):
        self._container.mux(self._stream.encode(None))  # flush the encoder's delayed frames


@contextlib.contextmanager
def video_writer(path, fps, size):
    """An object with .write(rgb) (uint8 RGB frames of `size` = (width, height)) that encodes a
    video the suffix chooses (VIDEO_CODECS: H.264 for .mp4, VP9 for .webm) and whose file appears
    only when the block ends without error. MP4s are written with their index first (faststart),
    so that a browser starts playing before the whole file has arrived. Before the file takes its
    name it is read back: it must hold every frame written (a full disk or a failing encoder that
    reported nothing would leave a short video), else one FERError line and no file."""
    import av  # PyAV: only where a video is written

    suffix = os.path.splitext(os.fspath(path))[1].lower()
    codec, pixels, options = VIDEO_CODECS.get(suffix, VIDEO_CODECS[".mp4"])
    fmt = {".webm": "webm", ".avi": "avi", ".mov": "mov"}.get(suffix, "mp4")
    muxer = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
    calls = [0]

    def check(tmp):
        found = _frame_count(tmp)
        if found != calls[0]:
            raise FERError(f"{path}: cannot write (the video came out with {found} of {calls[0]} frames; "
                           "is the disk full?); nothing was written")

    with output_path(path, check=check) as tmp:
        try:
            container = av.open(tmp, mode="w", format=fmt, options=muxer)
        except (OSError, av.FFmpegError) as e:
            raise FERError(f"{path}: cannot write a video here ({e})") from None
        try:
            writer = _VideoWriter(container, codec, pixels, options, fps, size)
            encode = writer.write

            def write(rgb):  # counted here, whatever the encoder does with it
                calls[0] += 1
                encode(rgb)

            writer.write = write
            yield writer
            writer.finish()
        except av.FFmpegError as e:
            raise FERError(f"{path}: the video encoder failed ({e})") from None
        finally:
            try:
                container.close()  # writes the index: a full disk may show only here
            except av.FFmpegError as e:
                raise FERError(f"{path}: cannot write ({str(e).splitlines()[0][:200]}); nothing was written") from None


def _frame_count(path):
    """Video frames in a written file, counted by reading its packets (no decoding); 0 if unreadable."""
    import av

    try:
        with av.open(os.fspath(path)) as container:
            stream = container.streams.video[0]
            return sum(1 for packet in container.demux(stream) if packet.size)
    except (OSError, IndexError, av.FFmpegError):
        return 0
