"""Class probabilities from one or several saved runs, with optional test-time augmentation.

    model, info = load_run("runs/fernet-20261127-120000")  # or load_run() for the default run
    probs = predict_proba(model, images)                          # (N, 7), classes data.CLASS_NAMES
    probs = predict_proba([model_a, model_b], images, tta=True)   # ensemble of two, 10 views each

`images` may be what a user has at hand (as_model_input): a batch (N, 48, 48, 1) or (N, 48, 48),
one face (48, 48), gray or RGB/RGBA (converted to gray with ITU-R BT.601 luma), of any size
(resized to 48x48; crop the face first), integer pixels 0..255 or floats. A float array whose
maximum is at most 1.0 is taken as 0..1 and scaled to 0..255 (the usual Keras habit); other floats
are taken as 0..255. Anything else is one FERError line saying what is expected.

TTA averages the softmax over 10 views of each face: the image and its mirror, each at the
centre and shifted 2 pixels towards each corner (edge-padded), as in Khaireddin & Chen's
ten-crop evaluation scaled to 48x48 inputs. An ensemble averages the models' softmax.
"""
import os

import numpy as np

from ferkit.backend import import_keras
from ferkit.errors import FERError
from ferkit.runs.load import load_run
from models import INPUT_SHAPE

keras = import_keras()  # TensorFlow's start-up notices stay off stderr

TTA_SHIFT = 2


def tta_views(images, shift=TTA_SHIFT):
    """The 10 views of a uint8 batch (N,48,48,1): list of arrays of the same shape."""
    n, h, w, c = images.shape
    padded = np.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode="edge")
    offsets = [(shift, shift), (0, 0), (0, 2 * shift), (2 * shift, 0), (2 * shift, 2 * shift)]
    views = []
    for flip in (False, True):
        src = padded[:, :, ::-1] if flip else padded
        views += [np.ascontiguousarray(src[:, r:r + h, q:q + w]) for r, q in offsets]
    return views


EXPECTED = ("expected face images: (N, 48, 48, 1), (N, 48, 48) or one (48, 48) array, gray or RGB/RGBA "
            "(last axis 3 or 4), pixels 0..255 (or floats 0..1)")
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601


def as_model_input(images):
    """What users hand a model, as the models take it: uint8 (N, 48, 48, 1). See the module doc."""
    size = INPUT_SHAPE[:2]
    x = np.asarray(images)
    if x.dtype == np.uint8 and x.ndim == 4 and x.shape[1:] == INPUT_SHAPE:
        return x  # already the model's input: no copy
    if x.dtype == bool or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise FERError(f"{EXPECTED}; got an array of {x.dtype}")
    shape, floating = x.shape, np.issubdtype(x.dtype, np.floating)
    if x.ndim == 2:
        x = x[None, :, :, None]
    elif x.ndim == 3:
        x = x[None] if shape[-1] in (1, 3, 4) else x[..., None]  # one (H, W, C) image, or (N, H, W) gray
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4) or 0 in x.shape[1:3]:
        raise FERError(f"{EXPECTED}; got shape {shape}")
    x = x.astype(np.float32)
    if x.size and not np.isfinite(x).all():
        raise FERError(f"{EXPECTED}; got NaN or infinite values")
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if lo < 0 or hi > 255.5:
        raise FERError(f"{EXPECTED}; got values {lo:g}..{hi:g}")
    if floating and hi <= 1.0:
        x = x * 255.0  # floats in 0..1, the usual Keras habit
    if x.shape[-1] > 1:
        x = (x[..., :3] @ _LUMA)[..., None]  # RGBA: the alpha channel is dropped
    if x.shape[1:3] != size and len(x):
        x = keras.ops.convert_to_numpy(keras.ops.image.resize(x, size, interpolation="bilinear", antialias=True))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8).reshape((len(x),) + INPUT_SHAPE)


def predict_proba(models, images, tta=False, batch_size=256):
    """Mean softmax over `models` and, with `tta`, over 10 views of each face.

    Args:
        models: a Keras model (as load_run returns it) or a list of them (an ensemble).
        images: faces in any form as_model_input takes (the module doc): (N, 48, 48, 1) uint8 at best.
        tta: also average 10 shifted and mirrored views of each face.
        batch_size: images per model.predict call.

    Returns float32 (N, 7), each row summing to 1, columns in data.CLASS_NAMES order."""
    if not isinstance(models, (list, tuple)):
        models = [models]
    images = as_model_input(images)
    if not len(images):
        return np.zeros((0, 7), np.float32)
    views = tta_views(images) if tta else [images]
    total = np.zeros((len(images), 7), np.float64)
    for model in models:
        for view in views:
            total += predict_batches(model, view, batch_size).astype(np.float64)
    return (total / (len(models) * len(views))).astype(np.float32)


def predict_batches(model, x, batch_size=256):
    """model.predict(x) without its tf.data pipeline: predict_on_batch on each slice, concatenated.

    Under TensorFlow, destroying predict()'s dataset iterator sometimes blocks for about 5 s
    (a prefetch thread's shutdown; predict.py on test.csv.gz took 16 s instead of 11 in about one
    run of four; docs/PERFORMANCE.md 4a), and for a few faces its set-up costs 140 ms against 15 (live use)."""
    if not len(x):
        return np.zeros((0,) + tuple(model.output_shape[1:]), np.float32)
    outs = [np.asarray(model.predict_on_batch(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
    return outs[0] if len(outs) == 1 else np.concatenate(outs)


def load_runs(weights_args):
    """[(model, info)] for each --weights argument (None: the default run)."""
    return [load_run(w) for w in (weights_args or [None])]


def model_line(infos, tta=False):
    """'model: fernet (models/pretrained/fernet), ... with TTA': what a script says it predicts with."""
    names = ", ".join(f"{info['model']} ({_shown(info['run_dir'])})" for info in infos)
    return f"model: {names}" + (" with TTA" if tta else "")


def _shown(path):
    """A run folder as the user would type it: relative to the working folder when inside it, so
    lines, pages and screenshots don't carry this machine's absolute paths."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel
