"""Facial expressions in photos and video frames: find faces, crop them as FER2013 did, classify.

    from ferkit.faces import FaceReader
    reader = FaceReader()                        # default run; FaceReader(["runs/a", "runs/b"], tta=True)
    faces = reader.read(rgb)                     # [Face(box=(x, y, w, h), label=3, emotion='Happy', probs=...)]
    faces = reader.read(cv2.imread(p), order="bgr")
    per_picture = reader.read_many([rgb1, rgb2])  # one model.predict for all faces of all pictures

Detection (ferkit/faces/detect.py, the DETECTORS table): MTCNN (the `mtcnn` package, weights
inside its wheel) by default for pictures; BlazeFace (ferkit.faces.detect) and OpenCV's Haar
cascade (`detector="haar"`, the default under a Keras backend other than TensorFlow, since the
others are TensorFlow code) on request. Videos and cameras go through ferkit.faces.track: BlazeFace
on some frames, MTCNN now and then, optical flow between. Why: README, "Photos, folders and
videos", and docs/PERFORMANCE.md (benchmarks/face_detectors.py, benchmarks/live.py).

Cropping: FER2013's faces are square crops around a face detection. Pasting FER2013 faces into
pictures and detecting them again tells where that square lies around each detector's box
(benchmarks/face_detectors.py, `measure` and `margin`): CROP_GEOMETRY below. The square is cut
from the grey picture (edge pixels repeated where it leaves the picture), shrunk with area
averaging to 48x48, and all faces of a batch go through ferkit.infer.predict_proba in one call,
so --tta and ensembles work as for CSV rows.
"""
import contextlib
import csv
import dataclasses
import os
import sys
import time

import cv2
import numpy as np

import data
from ferkit.cli import plural
from ferkit.errors import FERError
from ferkit.infer import load_runs, model_line, predict_proba
from ferkit.files import open_output
from ferkit.faces import media
from ferkit.faces.detect import DETECTORS, Detector, default_detector  # noqa: F401  (Detector, default_detector: re-exported)
from ferkit.faces.media import to_rgb
from ferkit.faces.track import DETECT_EVERY, LIVE_MAX_SIDE, SECOND_EVERY, BoxTracker
from ferkit.backend import import_keras

keras = import_keras()  # TensorFlow's start-up notices stay off stderr


CROP_GEOMETRY = {name: kind.geometry for name, kind in DETECTORS.items()}


@dataclasses.dataclass
class Face:
    box: tuple  # (x, y, w, h): the detector's box in pixels of the picture, clipped to it
    label: int  # 0..6, see data.CLASS_NAMES
    emotion: str  # the label's name
    probs: np.ndarray  # (7,) class probabilities, in label order
    score: float = 1.0  # the detector's confidence (1.0 for Haar, which gives none)
    track: int = -1  # LiveTracker: the same number for the same face across frames

    @property
    def confidence(self):
        return float(self.probs[self.label])

    def as_dict(self):
        """Plain Python types, e.g. for json.dumps."""
        return {"box": [int(v) for v in self.box], "label": int(self.label), "emotion": self.emotion,
                "probs": {n: float(p) for n, p in zip(data.CLASS_NAMES, self.probs)}, "score": float(self.score),
                "track": int(self.track)}


def crop_squares(boxes, geometry):
    """Square crops (N, 3): x0, y0, side (floats) around detector boxes (N, >=4)."""
    scale, dx, dy = geometry
    b = np.asarray(boxes, np.float64)
    b = b.reshape(-1, b.shape[-1]) if b.size else np.zeros((0, 4))
    side = scale * b[:, 2]
    cx = b[:, 0] + b[:, 2] * (0.5 + dx)
    cy = b[:, 1] + b[:, 3] * (0.5 + dy)
    return np.stack([cx - side / 2, cy - side / 2, side], axis=1)


def cut_faces(gray, squares, size=data.IMAGE_SIZE):
    """uint8 (N, size, size, 1): each square (x0, y0, side) of the grey picture, edge pixels repeated
    where it leaves the picture, resized with area averaging (shrinking) or bicubic (enlarging)."""
    h, w = gray.shape
    out = np.empty((len(squares), size, size, 1), np.uint8)
    for i, (x0, y0, side) in enumerate(squares):
        x0, y0, s = int(round(x0)), int(round(y0)), max(1, int(round(side)))
        xs = np.clip(np.arange(x0, x0 + s), 0, w - 1)
        ys = np.clip(np.arange(y0, y0 + s), 0, h - 1)
        inside = x0 >= 0 and y0 >= 0 and x0 + s <= w and y0 + s <= h
        patch = gray[y0:y0 + s, x0:x0 + s] if inside else gray[np.ix_(ys, xs)]
        interp = cv2.INTER_AREA if s >= size else cv2.INTER_CUBIC
        out[i, :, :, 0] = cv2.resize(patch, (size, size), interpolation=interp)
    return out


def clip_box(box, shape):
    """(x, y, w, h) rounded to whole pixels and clipped to a picture of `shape`."""
    h, w = shape[:2]
    x0, y0 = max(0, int(round(box[0]))), max(0, int(round(box[1])))
    x1, y1 = min(w, int(round(box[0] + box[2]))), min(h, int(round(box[1] + box[3])))
    return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))


class FaceReader:
    """A model (or ensemble) loaded once, and a face detector: pictures in, faces with emotions out.

    Args:
        weights: a run folder or .weights.h5 path, a list of them (an ensemble), or None (the
            default run: of the finished runs under runs/ and the bundled models, the one with the highest
            recorded validation accuracy).
        tta: average 10 views of each face.
        detector: a name in ferkit.faces.detect.DETECTORS, a Detector, or None (default_detector()).
        batch_size: faces per model call."""

    def __init__(self, weights=None, tta=False, detector=None, batch_size=256):
        weights = [weights] if isinstance(weights, (str, os.PathLike)) else weights
        loaded = load_runs(weights)
        self.models = [m for m, _ in loaded]
        self.infos = [info for _, info in loaded]
        self.tta, self.batch_size = tta, batch_size
        self.detector = detector if isinstance(detector, Detector) else Detector(detector)
        self.geometry = CROP_GEOMETRY[self.detector.name]

    def describe(self):
        return model_line(self.infos, self.tta) + f"; faces found by {self.detector.name}"

    def read(self, image, order="rgb"):
        """Faces in one picture (a NumPy array as Pillow, 'rgb', or cv2.imread, 'bgr', gives it;
        grey works too), largest first: a list of Face."""
        return self.read_many([image], order=order)[0]

    def read_many(self, images, order="rgb"):
        """read() for several pictures, with one classification call for all their faces."""
        pictures = [to_rgb(im, order) for im in images]
        return self.classify(pictures, self.detector.many(pictures))

    def classify(self, pictures, found, geometry=None):
        """Faces for RGB `pictures` given each one's detector boxes (N_i, 5): the model part of
        read_many, for callers that detect on their own schedule (`geometry`: the crop for another
        detector's boxes, a row of CROP_GEOMETRY)."""
        geometry = geometry or self.geometry
        found = [b[np.argsort(-b[:, 2] * b[:, 3], kind="stable")] for b in found]  # largest first
        crops = [cut_faces(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), crop_squares(boxes, geometry))
                 for rgb, boxes in zip(pictures, found) if len(boxes)]
        result = [[] for _ in pictures]
        if not crops:
            return result
        probs = predict_proba(self.models, np.concatenate(crops), tta=self.tta, batch_size=self.batch_size)
        row = 0
        for k, boxes in enumerate(found):
            for b in boxes:
                p = probs[row]
                label = int(p.argmax())
                result[k].append(Face(clip_box(b, pictures[k].shape), label, data.CLASS_NAMES[label], p, float(b[4])))
                row += 1
        return result


GROUP = 16  # pictures or sampled frames whose faces are classified together


def predict_files(job, out_csv, weights=None, tta=False, probs=False, every=1, detector=None, batch_size=256,
                  detect_every=DETECT_EVERY, second=None, second_every=SECOND_EVERY):
    """predict.py for a picture, folder or video (a media.Job from media.plan): one CSV row per face,
    `file,frame,x,y,w,h,label,emotion` (+ the 7 probabilities with `probs`), annotated copies where
    the job names them (a camera's job: media.camera_job; its rows are also printed as they come,
    and Ctrl-C ends it). `detect_every`, `second` (a detector name), `second_every`: videos and
    cameras, see _video and ferkit.faces.track.BoxTracker. Notes (no face, unreadable pictures
    in a folder) go to stderr. Returns the
    exit status: 0, or media.PARTIAL_EXIT when some pictures of a folder were skipped."""
    t0 = time.time()
    reader = FaceReader(weights, tta=tta, detector=detector, batch_size=batch_size)
    line = reader.describe()
    second = Detector(second, max_side=LIVE_MAX_SIDE) if second is not None and job.kind.frames else None
    if job.kind.frames and every == 1 and detect_every > 1:
        line += f" on one frame in {detect_every}, followed by optical flow between"
    if second is not None:
        line += f", and by {second.name} on one {'frame' if every == 1 else 'sampled frame'} in {second_every}"
    print(line, flush=True)
    header = ["file", "frame", "x", "y", "w", "h", "label", "emotion"] + list(data.CLASS_NAMES) * probs
    counts = {"faces": 0, "pictures": 0, "skipped": 0}
    with open_output(out_csv, "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(header)

        def write(name, frame, faces):
            counts["faces"] += len(faces)
            for face in faces:
                row = [media.csv_name(name), frame, *face.box, face.label, face.emotion]
                out.writerow(row + [f"{p:.5f}" for p in face.probs] * probs)
            if job.kind is media.CAMERA:  # live: say what the camera sees as it comes
                f.flush()
                print(f"frame {frame}: " + (", ".join(f"{face.emotion} {face.confidence:.0%} at {face.box}"
                                                      for face in faces) or "no face"), flush=True)

        for folder, why in job.skipped:  # subfolders that could not be read, as unreadable pictures
            print(f"skipped: {folder}: cannot read this folder ({why})", file=sys.stderr)
            counts["skipped"] += 1
        if job.kind.frames:
            tracker = BoxTracker(reader.detector, detect_every if every == 1 else 1, second, second_every)
            _video(reader, job, every, write, counts, tracker)
        else:
            _pictures(reader, job, write, counts)
            if not counts["pictures"]:  # nothing to show for it: an error, and no output file
                raise FERError(f"{job.path}: none of its {counts['skipped']} pictures could be read")
    unit = job.kind.unit
    msg = (f"wrote {plural(counts['faces'], 'face')} from {plural(counts['pictures'], unit)} to {out_csv} "
           f"in {time.time() - t0:.1f} s")
    if counts["skipped"]:
        what = "unreadable picture" if not job.skipped else "unreadable picture or folder"
        what = plural(counts["skipped"], what).replace("picture or folders", "pictures or folders")
        msg += f"; {what} skipped (named above), exit status {media.PARTIAL_EXIT}"
    print(msg)
    return media.PARTIAL_EXIT if counts["skipped"] else 0


def _pictures(reader, job, write, counts):
    for start in range(0, len(job.files), GROUP):
        names, pictures = [], []
        for name in job.files[start:start + GROUP]:
            try:
                rgb = job.first if job.first is not None and name == job.files[0] else media.read_image(name)
            except FERError as e:  # one bad picture of a folder: name it, go on with the others
                print(f"skipped: {e}", file=sys.stderr)
                counts["skipped"] += 1
                continue
            names.append(name)
            pictures.append(rgb)
        for name, rgb, faces in zip(names, pictures, reader.read_many(pictures)):
            counts["pictures"] += 1
            if not faces:
                print(f"note: {name}: no face found", file=sys.stderr)
            write(name, 0, faces)
            if name in job.annotated:
                media.write_image(job.annotated[name], media.draw_faces(rgb, faces))


def _video(reader, job, every, write, counts, boxes):
    """Rows for the sampled frames of a video or camera. Boxes come from the BoxTracker `boxes`
    (which detects on each sampled frame unless every frame is sampled: optical flow needs close
    frames); their faces are classified GROUP frames at a time, or frame by
    frame when annotating or reading a camera. Ctrl-C ends a camera's stream with its rows so far."""
    path = job.files[0]
    annotated = job.annotated.get(path)
    camera = job.kind is media.CAMERA
    empty = 0
    with (media.open_camera if camera else media.open_video)(path) as video, contextlib.ExitStack() as stack:
        writer = stack.enter_context(media.video_writer(annotated, video.fps, video.size)) if annotated else None
        pending, last = [], [[]]  # sampled frames not classified yet; the faces drawn on frames now

        def flush():
            nonlocal empty
            if pending:
                found = reader.classify([rgb for _, rgb, _ in pending], [b for _, _, b in pending])
                for (index, _, _), faces in zip(pending, found):
                    counts["pictures"] += 1
                    empty += not faces
                    write(path, index, faces)
                    last[0] = faces
                pending.clear()

        try:
            for index, rgb, sampled in video.frames(every, all_frames=writer is not None):
                if sampled:
                    pending.append((index, rgb, boxes.update(rgb)[0]))
                    if writer is not None or camera or len(pending) == GROUP:
                        flush()
                if writer is not None:
                    writer.write(media.draw_faces(rgb, last[0]))
        except KeyboardInterrupt:
            if not camera:
                raise
            pending.clear()
            print(f"stopped by Ctrl-C after {plural(counts['pictures'], 'frame')}", file=sys.stderr)
        flush()
    if empty:
        print(f"note: {path}: no face in {empty} of {counts['pictures']} sampled frames", file=sys.stderr)
