"""Class probabilities from one or several saved runs, with optional test-time augmentation.

    probs = predict_proba([model_a, model_b], images, tta=True)   # ensemble of two, 10 views each

TTA averages the softmax over 10 views of each face: the image and its mirror, each at the
centre and shifted 2 pixels towards each corner (edge-padded), as in Khaireddin & Chen's
ten-crop evaluation scaled to 48x48 inputs. An ensemble averages the models' softmax.
"""
import numpy as np

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
    from models import load_run

    return [load_run(w) for w in (weights_args or [None])]


def adapt_batchnorm(model, images, batch_size=128, passes=2, seed=0):
    """AdaBN (Li et al. 2016): re-estimate every BatchNormalization layer's moving mean and
    variance on unlabelled images of the target domain; all learned weights stay as they are.

    Why: the training split of this FER2013 copy is blurrier and flatter than the test splits
    (benchmarks/domain_shift.py), so the statistics BatchNorm learned on it misfit test faces.
    Uses no labels. Returns the number of BatchNormalization layers adapted."""
    import keras

    from models.preprocess import GaussianBlur

    every = list(_all_layers(model))
    bns = [layer for layer in every if isinstance(layer, keras.layers.BatchNormalization)]
    if not bns:
        return 0
    saved = [layer.momentum for layer in bns]
    # BatchNorm updates its statistics only in training mode, where an inference-only blur
    # would stand aside; the target faces must reach BatchNorm as they will at inference.
    test_blurs = [layer for layer in every if isinstance(layer, GaussianBlur) and layer.inference_only]
    for layer in test_blurs:
        layer.inference_only = False
    order = np.random.default_rng(seed).permutation(len(images))
    try:
        # Start from the first batch's statistics, then a running average over all batches.
        first = images[order[:batch_size]].astype("float32")
        for layer in bns:
            layer.momentum = 0.0
        model(first, training=True)
        for layer in bns:
            layer.momentum = 1.0 - 1.0 / max(2, passes * len(images) // batch_size)
        for _ in range(passes):
            for i in range(0, len(order) - batch_size + 1, batch_size):
                model(images[order[i:i + batch_size]].astype("float32"), training=True)
    finally:
        for layer, momentum in zip(bns, saved):
            layer.momentum = momentum
        for layer in test_blurs:
            layer.inference_only = True
    return len(bns)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
