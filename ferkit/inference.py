"""Class probabilities from one or several saved runs, with optional test-time augmentation.

    probs = predict_proba([model_a, model_b], images, tta=True)   # ensemble of two, 10 views each

TTA averages the softmax over 10 views of each face: the image and its mirror, each at the
centre and shifted 2 pixels towards each corner (edge-padded), as in Khaireddin & Chen's
ten-crop evaluation scaled to 48x48 inputs. An ensemble averages the models' softmax.
"""
import numpy as np

from models import load_run

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


def predict_proba(models, images, tta=False, batch_size=256):
    """Mean softmax (N, 7) over `models` (a model or a list) and, with `tta`, over 10 views."""
    if not isinstance(models, (list, tuple)):
        models = [models]
    views = tta_views(images) if tta else [images]
    total = np.zeros((len(images), 7), np.float64)
    for model in models:
        for view in views:
            total += np.asarray(model.predict(view, batch_size=batch_size, verbose=0), np.float64)
    return (total / (len(models) * len(views))).astype(np.float32)


def load_runs(weights_args):
    """[(model, info)] for each --weights argument (None: the default run)."""
    return [load_run(w) for w in (weights_args or [None])]
