"""Class-average maps: one face's map is noisy, but FER2013's faces are roughly aligned, so the
mean map over many correctly classified faces of a class shows which face parts (mouth, eyes,
brows) the model uses for it."""
import dataclasses

import numpy as np

from data import NUM_CLASSES
from ferkit.errors import FERError
from ferkit.explain.methods import explain
from ferkit.infer import predict_batches


@dataclasses.dataclass
class ClassAverages:
    faces: np.ndarray  # float32 (7, 48, 48): the mean face of the faces used per class
    maps: dict  # method name -> float32 (7, 48, 48): mean of the non-empty maps, each normalized to sum 1
    counts: np.ndarray  # int (7,): faces averaged per class (0: none correctly classified)


def pick_correct(labels, pred, per_class, seed=0):
    """Up to `per_class` row indices per class, chosen at random among its correctly classified
    faces; a list of 7 arrays.

    Args:
        labels: true classes (N,).
        pred: predicted classes (N,).
        per_class: rows per class at most.
        seed: seeds the random choice."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(np.flatnonzero((labels == c) & (pred == c)))[:per_class] for c in range(NUM_CLASSES)]


def class_averages(model, images, labels, methods, per_class=40, seed=0, batch_size=256, **options):
    """Average each method's maps per class over up to `per_class` correctly classified faces
    (the maps explain the true, here also the predicted, class).

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        images: uint8-valued faces (N, 48, 48, 1) or (N, 48, 48).
        labels: their true classes (N,).
        methods: names of METHODS.
        per_class: faces averaged per class at most.
        seed: seeds the choice of faces and the methods.
        batch_size: faces per prediction call.
        **options: the methods' options, as explain() takes them.

    Returns a ClassAverages."""
    x = np.asarray(images)
    x = x.reshape(len(x), 48, 48, 1)
    labels = np.asarray(labels)
    if labels.shape != (len(x),):
        raise FERError(f"class averages need one label per face; got {labels.shape} for {len(x)} faces")
    pred = predict_batches(model, x, batch_size).argmax(axis=1)
    picks = pick_correct(labels, pred, per_class, seed)
    rows = np.concatenate(picks).astype(int)
    classes = labels[rows]
    faces = np.zeros((NUM_CLASSES, 48, 48), np.float32)
    counts = np.array([len(p) for p in picks])
    for c, p in enumerate(picks):
        if len(p):
            faces[c] = x[p, ..., 0].mean(axis=0)
    out = {}
    for name in methods:
        maps = explain(model, x[rows], classes, name, seed=seed, **options) if len(rows) else np.zeros((0, 48, 48))
        total = maps.reshape(len(maps), -1).sum(axis=1)
        maps = maps / np.maximum(total, 1e-12)[:, None, None]  # every face weighs the same
        mean = np.zeros((NUM_CLASSES, 48, 48), np.float32)
        for c in range(NUM_CLASSES):
            used = (classes == c) & (total > 0)  # an empty map (no positive Grad-CAM evidence) has no "where"
            if used.any():
                mean[c] = maps[used].mean(axis=0)
        out[name] = mean
    return ClassAverages(faces, out, counts)
