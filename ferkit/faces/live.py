"""Faces and expressions in a stream of frames (webcam, video, a browser's frames), fast enough
for real time on a CPU: the one entry point for live use.

    from ferkit.faces.live import LiveTracker
    tracker = LiveTracker()                      # default run, BlazeFace; LiveTracker(reader, detector="mtcnn")
    for frame in frames:                         # uint8 (H, W, 3) RGB; order="bgr" for OpenCV's frames
        faces = tracker.process(frame)           # [Face(box, label, emotion, probs, score, track)]
        tracker.timings                          # the last frame's stage times in ms

The detector runs on every `every`-th frame (and on every frame while no face is tracked); in
between, each face's box follows the median optical flow (OpenCV's pyramidal Lucas-Kanade) of
corner points inside it. Every frame's faces are classified. A face keeps its `track` number
from frame to frame while its boxes overlap. What each lever buys and costs: docs/PERFORMANCE.md
(benchmarks/live.py measures it).
"""
import os
import time

import cv2
import numpy as np

from ferkit.faces.detect import Detector, default_detector
from ferkit.faces.media import to_rgb
from ferkit.faces.reader import FaceReader

DETECT_EVERY = 3  # frames per detection while faces are tracked (docs/PERFORMANCE.md)
_LK = dict(winSize=(21, 21), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
_MIN_POINTS = 4  # fewer flow points left in a box: look for new corners in it


def iou(a, b):
    """Intersection over union of boxes (x, y, w, h), (N, >=4) by (M, >=4) -> (N, M)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    y1 = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return inter / np.maximum(union, 1e-9)


class LiveTracker:
    """Frames in, faces with expressions out, with state across frames (see the module doc).

    Args:
        model: a FaceReader, or what FaceReader takes as weights (a run folder, a list of them for
            an ensemble, or None for the default run).
        detector: a name in ferkit.faces.detect.DETECTORS, a Detector, or None
            (default_detector(live=True): BlazeFace under TensorFlow, else Haar).
        every: detect on every this-many frames while faces are tracked; 1 detects on each frame.
        tta: test-time augmentation (when `model` is not a FaceReader already)."""

    def __init__(self, model=None, detector=None, every=DETECT_EVERY, tta=False):
        if every < 1:
            raise ValueError("every must be at least 1")
        self.detector = detector if isinstance(detector, Detector) else Detector(detector or default_detector(live=True))
        self.reader = model if isinstance(model, FaceReader) else FaceReader(model, tta=tta, detector=self.detector)
        self.every = every
        self.timings = {}
        self.reset()

    def describe(self):
        from ferkit.infer import model_line

        return (model_line(self.reader.infos, self.reader.tta) + f"; faces found by {self.detector.name}"
                + (f" on one frame in {self.every}, tracked in between" if self.every > 1 else ""))

    def reset(self):
        """Forget the faces tracked so far (a new stream)."""
        self._boxes = np.zeros((0, 5))  # x, y, w, h, score of the faces in the last frame
        self._tracks = np.zeros(0, int)
        self._points = []  # per face: float32 (K, 1, 2) corner points in the last frame
        self._gray = None
        self._since = 0  # frames since the last detection
        self._next_track = 0

    def process(self, frame, order="rgb"):
        """The faces in `frame` (uint8 (H, W, 3) RGB, 'bgr' for OpenCV, or grey), largest first:
        a list of ferkit.faces.reader.Face, each with `track` set."""
        t0 = time.perf_counter()
        rgb = to_rgb(frame, order)
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if self._gray is not None and self._gray.shape != gray.shape:
            self.reset()
        t1 = time.perf_counter()
        detect = self._since + 1 >= self.every or not len(self._boxes) or self._gray is None
        if detect:
            self._detected(self.detector(rgb), gray)
            self._since = 0
        else:
            self._follow(gray)
            self._since += 1
        self._gray = gray
        t2 = time.perf_counter()
        order_ = np.argsort(-self._boxes[:, 2] * self._boxes[:, 3], kind="stable")
        boxes, tracks = self._boxes[order_], self._tracks[order_]
        faces = self.reader.classify([rgb], [boxes], geometry=self.detector.geometry)[0]
        for face, track in zip(faces, tracks):
            face.track = int(track)
        t3 = time.perf_counter()
        self.timings = {"convert": 1000 * (t1 - t0), ("detect" if detect else "track"): 1000 * (t2 - t1),
                        "classify": 1000 * (t3 - t2)}
        return faces

    def _detected(self, boxes, gray):
        """New detections: keep the track number of the face each overlaps most, else a new one."""
        tracks = np.full(len(boxes), -1, int)
        if len(boxes) and len(self._boxes):
            overlap = iou(boxes, self._boxes)
            for _ in range(min(overlap.shape)):
                i, j = np.unravel_index(np.argmax(overlap), overlap.shape)
                if overlap[i, j] < 0.2:
                    break
                tracks[i] = self._tracks[j]
                overlap[i, :], overlap[:, j] = -1, -1
        for i in np.flatnonzero(tracks < 0):
            tracks[i], self._next_track = self._next_track, self._next_track + 1
        self._boxes, self._tracks = np.asarray(boxes, np.float64).reshape(-1, 5), tracks
        self._points = [self._corners(gray, b) for b in self._boxes]

    @staticmethod
    def _corners(gray, box):
        h, w = gray.shape
        x0, y0 = max(0, int(box[0] + 0.15 * box[2])), max(0, int(box[1] + 0.15 * box[3]))
        x1, y1 = min(w, int(box[0] + 0.85 * box[2])), min(h, int(box[1] + 0.85 * box[3]))
        if x1 - x0 < 4 or y1 - y0 < 4:
            return np.zeros((0, 1, 2), np.float32)
        pts = cv2.goodFeaturesToTrack(gray[y0:y1, x0:x1], maxCorners=30, qualityLevel=0.01,
                                      minDistance=max(3, int(box[2] / 12)))
        if pts is None:
            return np.zeros((0, 1, 2), np.float32)
        return (pts + np.array([x0, y0], np.float32)).astype(np.float32)

    def _follow(self, gray):
        """Move each box by the median flow of its points from the last frame to this one; a face
        whose points are all lost keeps its box until the next detection."""
        counts = [len(p) for p in self._points]
        if not sum(counts):
            return
        moved, status, _ = cv2.calcOpticalFlowPyrLK(self._gray, gray, np.concatenate(self._points), None, **_LK)
        start = 0
        for k, n in enumerate(counts):
            old, new, ok = self._points[k], moved[start:start + n], status[start:start + n, 0] == 1
            start += n
            if ok.sum() >= 2:
                shift = np.median(new[ok] - old[ok], axis=0)[0]
                self._boxes[k, :2] += shift
                self._points[k] = new[ok].reshape(-1, 1, 2)
            if len(self._points[k]) < _MIN_POINTS:
                self._points[k] = self._corners(gray, self._boxes[k])


def open_camera(index):
    """cv2.VideoCapture for a local camera by index, as a media.Video (frames as RGB). Raises FERError
    when it cannot be opened."""
    from ferkit.errors import FERError
    from ferkit.faces import media

    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # OpenCV's own notices stay off stderr
    cap = cv2.VideoCapture(int(index))
    if not cap.isOpened():
        cap.release()
        raise FERError(f"camera {index}: cannot open it (no such camera, or it is in use)")
    return media.Video(f"camera:{index}", cap)
