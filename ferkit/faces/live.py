"""Faces and expressions in a stream of frames (webcam, video, a browser's frames), fast enough
for real time on a CPU: the one entry point for live use.

    from ferkit.faces.live import LiveTracker
    tracker = LiveTracker()                      # default run; BlazeFace + MTCNN; LiveTracker(reader, detector="mtcnn")
    for frame in frames:                         # uint8 (H, W, 3) RGB; order="bgr" for OpenCV's frames
        faces = tracker.process(frame)           # [Face(box, label, emotion, probs, score, track)]
        tracker.timings                          # the last frame's stage times in ms

The detector runs on one frame in `every` (and on every frame while no face is followed); in
between, the boxes follow the faces by optical flow (ferkit.faces.track). By default BlazeFace
detects, and MTCNN runs on one frame in 15 as well, for the faces BlazeFace misses. Every frame's faces are
classified. A face keeps its `track` number from frame to frame. What each lever buys and costs:
docs/PERFORMANCE.md (benchmarks/live.py measures it).
"""
import time

import cv2
import numpy as np

from ferkit.faces.detect import Detector, default_detector, default_second
from ferkit.faces.media import to_rgb
from ferkit.faces.reader import FaceReader
from ferkit.faces.track import DETECT_EVERY, LIVE_MAX_SIDE, SECOND_EVERY, BoxTracker


class LiveTracker:
    """Frames in, faces with expressions out, with state across frames (see the module doc): one
    per stream (camera, client), used from one thread at a time. Several trackers may share one
    FaceReader (`model`), so that the model loads once.

    Args:
        model: a FaceReader, or what FaceReader takes as weights (a run folder, a list of them for
            an ensemble, or None for the default run).
        detector: a name in ferkit.faces.detect.DETECTORS, a Detector, or None
            (default_detector(live=True): BlazeFace under TensorFlow, else Haar).
        every: detect on one frame in this many while faces are followed; 1 detects on each frame.
        tta: test-time augmentation (when `model` is not a FaceReader already).
        second, second_every: a second detector (name or Detector) run on one frame in
            `second_every` as well, whose extra faces are followed until its next run
            (ferkit.faces.track.BoxTracker); "auto": default_second(detector), MTCNN beside
            BlazeFace; None: only `detector`."""

    def __init__(self, model=None, detector=None, every=DETECT_EVERY, tta=False, second="auto",
                 second_every=SECOND_EVERY):
        if not isinstance(detector, Detector):
            detector = Detector(detector or default_detector(live=True), max_side=LIVE_MAX_SIDE)
        if second == "auto":
            second = default_second(detector.name)
        if second is not None and not isinstance(second, Detector):
            second = Detector(second, max_side=LIVE_MAX_SIDE)
        self.reader = model if isinstance(model, FaceReader) else FaceReader(model, tta=tta, detector=detector)
        self.boxes = BoxTracker(detector, every, second, second_every)
        self.detector, self.every, self.second, self.second_every = detector, every, second, second_every
        self.timings = {}

    def describe(self):
        from ferkit.infer import model_line

        return (model_line(self.reader.infos, self.reader.tta) + f"; faces found by {self.detector.name}"
                + (f" on one frame in {self.every}, followed by optical flow between" if self.every > 1 else "")
                + (f", and by {self.second.name} on one frame in {self.second_every}" if self.second else ""))

    def reset(self):
        """Forget the faces followed so far (a new stream)."""
        self.boxes.reset()

    def process(self, frame, order="rgb"):
        """The faces in `frame` (uint8 (H, W, 3) RGB, 'bgr' for OpenCV, or grey), largest first:
        a list of ferkit.faces.reader.Face, each with `track` set."""
        t0 = time.perf_counter()
        rgb = to_rgb(frame, order)
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        t1 = time.perf_counter()
        boxes, tracks = self.boxes.update(rgb, gray)
        t2 = time.perf_counter()
        largest = np.argsort(-boxes[:, 2] * boxes[:, 3], kind="stable")
        faces = self.reader.classify([rgb], [boxes[largest]], geometry=self.detector.geometry)[0]
        for face, track in zip(faces, tracks[largest]):
            face.track = int(track)
        t3 = time.perf_counter()
        self.timings = {"convert": 1000 * (t1 - t0), **self.boxes.timings, "classify": 1000 * (t3 - t2)}
        return faces
