"""Input-gradient maps: the plain gradient, SmoothGrad and integrated gradients, each optionally
averaged over random shifts of the face ("jitter"), which removes the lattice a strided network's
sampling grid leaves in raw gradients (measurements: docs/EXPLAIN.md)."""
import numpy as np

from data import IMAGE_SIZE
from ferkit.errors import FERError
from ferkit.explain.core import VALUE_RANGE, _as_batch, _as_classes, _input_gradients, logits_model

JITTER_SAMPLES = 16  # shifted copies for a shift-averaged vanilla gradient


# ---------------------------------------------------------------- shift averaging (see the module doc)


def _shift(x, dy, dx):
    """x (N, H, W, C) moved down by dy and right by dx pixels, border pixels replicated into the
    space left behind."""
    j = max(abs(dy), abs(dx))
    if j == 0:
        return x
    h, w = x.shape[1:3]
    padded = np.pad(x, ((0, 0), (j, j), (j, j), (0, 0)), mode="edge")
    return padded[:, j - dy:j - dy + h, j - dx:j - dx + w]


def _unshift(g, dy, dx):
    """A gradient taken on _shift(x, dy, dx), moved back onto x's pixels, and the (H, W) mask of
    the pixels that were in view (the others get 0)."""
    h, w = g.shape[1:3]
    out = np.zeros_like(g)
    seen = np.zeros((h, w), np.float32)
    rows, cols = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
    out[:, rows, cols] = g[:, rows.start + dy:rows.stop + dy, cols.start + dx:cols.stop + dx]
    seen[rows, cols] = 1.0
    return out, seen


def _mean_gradient(net, points, classes, batch_size, jitter=0, seed=0, magnitude=False):
    """Weighted mean of the input gradient over `points`, an iterable of (weight, images): with
    `magnitude`, of |gradient|. With `jitter`, each is taken on a copy shifted by a random
    (dy, dx) in -jitter..jitter and mapped back; each pixel is averaged over the shifts that
    kept it in view."""
    rng = np.random.default_rng(seed)
    total = seen = 0.0
    for weight, x in points:
        dy, dx = (int(v) for v in rng.integers(-jitter, jitter + 1, size=2)) if jitter else (0, 0)
        g = _input_gradients(net, np.ascontiguousarray(_shift(x, dy, dx)), classes, batch_size)
        g, mask = _unshift(np.abs(g) if magnitude else g, dy, dx)
        total = total + weight * g
        seen = seen + weight * mask
    return total / np.maximum(seen, 1e-12)[None, :, :, None]


def _check_jitter(jitter):
    if not 0 <= int(jitter) < IMAGE_SIZE // 2:
        raise FERError(f"jitter {jitter}: a shift of 0..{IMAGE_SIZE // 2 - 1} pixels")
    return int(jitter)


# ---------------------------------------------------------------- attribution maps


def vanilla_saliency(model, images, classes, jitter=0, samples=JITTER_SAMPLES, seed=0, batch_size=64):
    """|d score_c / d pixel| (Simonyan et al. 2013), the class score taken before the softmax;
    with `jitter`, the mean |gradient| over `samples` randomly shifted copies (module doc).

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        images: uint8-valued faces, (N, 48, 48, 1), (N, 48, 48) or one (48, 48).
        classes: the class index (0..6) each map explains, one per image or one for all.
        jitter: shift each copy by up to this many pixels (0..23; module doc); 0: no shifts.
        samples: shifted copies averaged when jitter > 0.
        seed: seeds the random shifts.
        batch_size: images per gradient call.

    Returns float32 maps (N, 48, 48), >= 0."""
    x = _as_batch(images)
    c = _as_classes(classes, len(x))
    jitter = _check_jitter(jitter)
    n = max(int(samples), 1) if jitter else 1
    g = _mean_gradient(logits_model(model), ((1.0, x) for _ in range(n)), c, batch_size, jitter, seed,
                       magnitude=True)
    return g.max(axis=-1)


def smoothgrad(model, images, classes, samples=25, sigma=0.15, jitter=0, seed=0, batch_size=64):
    """SmoothGrad (Smilkov et al. 2017): the mean |gradient| over `samples` copies of each image
    with Gaussian noise of standard deviation `sigma` times the input range (0..255), each
    copy also shifted by up to `jitter` pixels (module doc).

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        images: uint8-valued faces, (N, 48, 48, 1), (N, 48, 48) or one (48, 48).
        classes: the class index (0..6) each map explains, one per image or one for all.
        samples: noisy copies averaged.
        sigma: the noise's standard deviation, as a fraction of the input range 0..255.
        jitter: shift each copy by up to this many pixels (0..23; module doc); 0: no shifts.
        seed: seeds the random shifts and noise.
        batch_size: images per gradient call.

    Returns float32 maps (N, 48, 48), >= 0."""
    x = _as_batch(images)
    c = _as_classes(classes, len(x))
    jitter = _check_jitter(jitter)
    rng = np.random.default_rng(seed)
    noisy = ((1.0, x + rng.normal(0.0, sigma * VALUE_RANGE, size=x.shape).astype(np.float32))
             for _ in range(max(int(samples), 1)))
    return _mean_gradient(logits_model(model), noisy, c, batch_size, jitter, seed + 1, magnitude=True).max(axis=-1)


def integrated_gradients(model, images, classes, steps=50, baseline=None, jitter=0, seed=0, batch_size=64,
                         return_attributions=False):
    """Integrated gradients (Sundararajan et al. 2017) from a black baseline: (x - x0) times the
    path-averaged gradient, the path integral by the trapezoid rule over `steps` intervals; with
    `jitter`, each path point's gradient taken on a randomly shifted copy (module doc), which
    keeps completeness only on average.

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        images: uint8-valued faces, (N, 48, 48, 1), (N, 48, 48) or one (48, 48).
        classes: the class index (0..6) each map explains, one per image or one for all.
        steps: intervals of the path from the baseline to the image.
        baseline: the path's start, broadcast to the images' shape (None: black).
        jitter: shift each copy by up to this many pixels (0..23; module doc); 0: no shifts.
        seed: seeds the random shifts.
        batch_size: images per gradient call.
        return_attributions: return the signed (N, 48, 48, 1) attributions instead.

    Returns |attribution| summed over channels (N, 48, 48), or the signed attributions."""
    x = _as_batch(images)
    c = _as_classes(classes, len(x))
    jitter = _check_jitter(jitter)
    x0 = np.zeros_like(x) if baseline is None else np.broadcast_to(np.asarray(baseline, np.float32), x.shape)
    steps = max(int(steps), 1)
    path = ((0.5 if k in (0, steps) else 1.0, x0 + (k / steps) * (x - x0)) for k in range(steps + 1))
    attributions = (x - x0) * _mean_gradient(logits_model(model), path, c, batch_size, jitter, seed)
    if return_attributions:
        return attributions
    return np.abs(attributions.sum(axis=-1))


