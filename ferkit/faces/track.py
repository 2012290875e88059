"""Face boxes across the frames of a stream: detect on some frames, follow the faces between.

    boxes = BoxTracker(Detector("blazeface"), every=3)  # second=Detector("mtcnn"): see BoxTracker
    for rgb in frames:
        found, tracks = boxes.update(rgb)   # (N, 5) x, y, w, h, score; (N,) track numbers

The detector runs on every `every`-th frame, and on every frame while no face is followed; in
between, each box moves by the median optical flow (OpenCV's pyramidal Lucas-Kanade) of corner
points inside it, about 1 ms a frame against 6-150 ms for a detection (docs/PERFORMANCE.md). A
face keeps its track number while its boxes overlap from one detection to the next. No model
here: ferkit.faces.live.LiveTracker adds the expressions, reader.predict_files uses it for videos.
"""
import time

import cv2
import numpy as np

DETECT_EVERY = 3  # frames per detection while faces are followed, by default (docs/PERFORMANCE.md)
SECOND_EVERY = 15  # frames per run of a second detector, by default
# Detectors on streams look at a copy of at most 320 px on the long side (faces from about 40 px in
# a 640x480 frame): MTCNN then finds every face of benchmarks/live.py's streams with no false boxes
# instead of 31-90, at half its CPU time (docs/PERFORMANCE.md). BlazeFace looks at 192x192 anyway.
LIVE_MAX_SIDE = 320
_LK = dict(winSize=(21, 21), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
_MIN_POINTS = 4  # fewer flow points left in a box: look for new corners in it
_FB_ERROR = 1.0  # px: a point whose flow traced back misses its start by more is not followed
_SAME_FACE = 0.2  # intersection over union above which a new detection continues a track
_SAME_LOOK = 0.5  # a kept face whose box correlates less with how it looked when found is gone


def iou(a, b):
    """Intersection over union of boxes (x, y, w, h, ...): (N, >=4) by (M, >=4) -> (N, M)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    y1 = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return inter / np.maximum(union, 1e-9)


class BoxTracker:
    """Boxes of the faces in each frame of one stream (see the module doc).

    Args:
        detector: a ferkit.faces.detect.Detector, the fast one.
        every: frames per detection while faces are followed.
        second: optionally a slower, surer Detector run on one frame in `second_every` besides the
            first: the faces only it finds are added (as boxes in the first detector's convention,
            so that one crop geometry fits all) and followed until its next run, even where the
            first detector misses them in between."""

    def __init__(self, detector, every=1, second=None, second_every=SECOND_EVERY):
        if every < 1 or second_every < 1:
            raise ValueError("every and second_every must be at least 1")
        self.detector, self.every, self.second, self.second_every = detector, every, second, second_every
        self.timings = {}
        self.reset()

    def reset(self):
        """Forget the faces followed so far (a new stream)."""
        self.boxes = np.zeros((0, 5))  # x, y, w, h, score in the last frame
        self.tracks = np.zeros(0, int)
        self._seen = np.zeros(0, int)  # per face: the frame number when a detector last found it
        self._points = []  # per face: float32 (K, 1, 2) corner points in the last frame
        self._looks = []  # per face: _looks() when a detector last found it
        self._gray = None
        self._frame = -1
        self._detected_at = -1  # the frame number of the last detection
        self._since = 0  # frames since the last detection
        self._next_track = 0

    def update(self, rgb, gray=None):
        """Boxes (N, 5) and track numbers (N,) of the faces in this frame (uint8 RGB (H, W, 3);
        `gray`: its grey version if the caller has it). Sets .timings (ms of 'detect' or 'track')."""
        t0 = time.perf_counter()
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if gray is None else gray
        if self._gray is not None and self._gray.shape != gray.shape:
            self.reset()
        self._frame += 1
        detect = self._gray is None or not len(self.boxes) or self._since + 1 >= self.every
        both = self.second is not None and self._frame % self.second_every == 0
        if detect or both:
            found = self.detector(rgb)
            if both:
                found = merge_detections(found, self.second(rgb), self.detector.geometry, self.second.geometry)
            self._detected(found, gray, both)
            self._since = 0
        else:
            lost = self._follow(gray)
            # faces no detector saw at the last detection (the second's, kept) go when flow loses
            # them or their box stops looking like them
            kept = self._seen < self._detected_at
            for k in np.flatnonzero(kept & ~lost):
                lost[k] = _looks(gray, self.boxes[k]) @ self._looks[k] <= _SAME_LOOK
            self._drop(lost & kept)
            self._since += 1
        self._gray = gray
        self.timings = {"detect" if detect or both else "track": 1000 * (time.perf_counter() - t0)}
        return self.boxes.copy(), self.tracks.copy()

    def _detected(self, boxes, gray, complete=True):
        """New detections keep the track number of the box each overlaps most, else get a new one.
        Unless the detections are `complete` (every detector ran), faces they miss that a detector
        found within the last `second_every` frames stay, followed by flow."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 5)
        tracks, matched = match_tracks(boxes, self.boxes, self.tracks)
        for i in np.flatnonzero(tracks < 0):
            tracks[i], self._next_track = self._next_track, self._next_track + 1
        points = [corners(gray, b) for b in boxes]
        looks = [_looks(gray, b) for b in boxes]
        seen = np.full(len(boxes), self._frame)
        if not complete and self.second is not None:
            keep = ~matched & (self._frame - self._seen < self.second_every)
            if keep.any():
                keep &= ~self._follow(gray)  # the kept faces move with this frame too, unless flow lost them
                # and still look like the face the detector saw (not background the flow slid onto)
                keep &= np.array([_looks(gray, b) @ t > _SAME_LOOK for b, t in zip(self.boxes, self._looks)])
            if keep.any():
                boxes = np.concatenate([boxes, self.boxes[keep]])
                tracks = np.concatenate([tracks, self.tracks[keep]])
                seen = np.concatenate([seen, self._seen[keep]])
                points += [p for p, k in zip(self._points, keep) if k]
                looks += [t for t, k in zip(self._looks, keep) if k]
        self.boxes, self.tracks, self._seen, self._points, self._looks = boxes, tracks, seen, points, looks
        self._detected_at = self._frame

    def _follow(self, gray):
        """Move each box by the median flow of its points from the last frame to this one. Points
        whose flow, traced back, does not return to where they were (within _FB_ERROR px) are
        dropped: on a face that left, or a cut to another scene, most fail. Returns, per box,
        whether it lost most of its points (it then stays where it was)."""
        counts = [len(p) for p in self._points]
        lost = np.zeros(len(counts), bool)
        if sum(counts):
            old_all = np.concatenate(self._points)
            moved, status, _ = cv2.calcOpticalFlowPyrLK(self._gray, gray, old_all, None, **_LK)
            back, status2, _ = cv2.calcOpticalFlowPyrLK(gray, self._gray, moved, None, **_LK)
            good = (status[:, 0] == 1) & (status2[:, 0] == 1) & \
                (np.abs(back - old_all).reshape(-1, 2).max(axis=1) < _FB_ERROR)
        start = 0
        for k, n in enumerate(counts):
            if n:
                old, new, ok = self._points[k], moved[start:start + n], good[start:start + n]
                start += n
                lost[k] = ok.sum() < max(2, n / 2)
                if ok.sum() >= 2:
                    self.boxes[k, :2] += np.median(new[ok] - old[ok], axis=0)[0]
                    self._points[k] = new[ok].reshape(-1, 1, 2)
            if len(self._points[k]) < _MIN_POINTS:
                self._points[k] = corners(gray, self.boxes[k])
        return lost

    def _drop(self, gone):
        keep = ~gone
        self.boxes, self.tracks, self._seen = self.boxes[keep], self.tracks[keep], self._seen[keep]
        self._points = [p for p, k in zip(self._points, keep) if k]
        self._looks = [t for t, k in zip(self._looks, keep) if k]


def merge_detections(first, second, first_geometry, second_geometry):
    """The first detector's boxes, plus the second's that overlap none of them, converted to the
    first's convention: the same crop square (the detectors' CROP_GEOMETRY) around the same centre."""
    second = np.asarray(second, np.float64).reshape(-1, 5)
    if len(first):
        second = second[iou(second, first).max(axis=1) < _SAME_FACE] if len(second) else second
    if not len(second):
        return first
    side = second[:, 2] * second_geometry[0] / first_geometry[0]
    cx, cy = second[:, 0] + second[:, 2] / 2, second[:, 1] + second[:, 3] / 2
    converted = np.stack([cx - side / 2, cy - side / 2, side, side, second[:, 4]], axis=1)
    return np.concatenate([np.asarray(first, np.float64).reshape(-1, 5), converted])


def match_tracks(boxes, old_boxes, old_tracks):
    """Greedy matching by overlap: each new box takes the track number of the old box it overlaps
    most (above _SAME_FACE), else -1. Returns (tracks (N,), which old boxes were matched (M,))."""
    tracks = np.full(len(boxes), -1, int)
    matched = np.zeros(len(old_boxes), bool)
    if len(boxes) and len(old_boxes):
        overlap = iou(boxes, old_boxes)
        for _ in range(min(overlap.shape)):
            i, j = np.unravel_index(np.argmax(overlap), overlap.shape)
            if overlap[i, j] < _SAME_FACE:
                break
            tracks[i], matched[j] = old_tracks[j], True
            overlap[i, :], overlap[:, j] = -1, -1
    return tracks, matched


def corners(gray, box):
    """Corner points in the middle of a box (its edges may hold background that moves otherwise)."""
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


def _looks(gray, box, size=16):
    """A box's grey content shrunk to size x size, zero mean and unit norm: dot products of two are
    their normalized cross-correlation."""
    h, w = gray.shape
    x0, y0 = int(np.clip(box[0], 0, w - 1)), int(np.clip(box[1], 0, h - 1))
    x1, y1 = int(np.clip(box[0] + box[2], x0 + 1, w)), int(np.clip(box[1] + box[3], y0 + 1, h))
    v = cv2.resize(gray[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    v -= v.mean()
    return v / max(float(np.linalg.norm(v)), 1e-6)
