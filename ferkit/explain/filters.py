"""What a layer's filters respond to: activation maximization (Erhan et al. 2009; Olah et al.
2017), which filters it could not activate at all (dead), and a face's feature maps."""
import dataclasses

import numpy as np

from data import IMAGE_SIZE
from ferkit.errors import FERError
from ferkit.explain.core import (VALUE_RANGE, _call, _grad, _numpy, _as_batch, default_filter_layer, get_map_layer,
                                 keras, ops)


# ---------------------------------------------------------------- what the filters respond to


@dataclasses.dataclass
class Patterns:
    layer: str
    filters: np.ndarray  # (F,) filter indices
    images: np.ndarray  # float32 (F, 48, 48) in 0..255: the input each filter responds to most
    activation: np.ndarray  # (F,) mean activation reached
    start_activation: np.ndarray  # (F,) mean activation on the starting noise

    def subset(self, keep):
        """The patterns of the filters where the bool mask `keep` is True."""
        keep = np.asarray(keep, bool)
        return Patterns(self.layer, self.filters[keep], self.images[keep], self.activation[keep],
                        self.start_activation[keep])


DEAD_FRACTION = 0.1  # a filter is dead when ascent cannot take it past this share of the layer's best


def dead_filters(patterns, fraction=DEAD_FRACTION):
    """Filters gradient ascent could not activate: mean activation reached at most 0, or at most
    `fraction` of the strongest filter's. Their "pattern" is leftover noise, not something the
    filter looks for, so figures leave them out and say how many.

    Args:
        patterns: a Patterns from filter_patterns.
        fraction: the share of the largest activation reached below which a filter counts as dead.

    Returns a bool mask (F,), True for dead filters."""
    act = np.asarray(patterns.activation, np.float64)
    if act.size == 0:
        return np.zeros(0, bool)
    return (act <= 0) | (act <= fraction * max(float(act.max()), 0.0))


def _filter_objective(features, filters, border):
    """fn(x) = (F,) mean activation of filter filters[j] on image j, leaving `border` cells out on
    each side of the map."""
    pick = ops.convert_to_tensor(np.eye(int(features.output.shape[-1]), dtype=np.float32)[filters])  # (F, C)

    def per_image(x):
        acts = ops.cast(_call(features, x), "float32")
        h, w = acts.shape[1], acts.shape[2]
        inner = acts[:, border:h - border, border:w - border, :]
        return ops.sum(ops.multiply(ops.mean(inner, axis=(1, 2)), pick), axis=1)

    return per_image


def _tv_grad(x):
    """Gradient of the anisotropic total variation sum |x[i+1]-x[i]| over rows and columns."""
    g = np.zeros_like(x)
    dy = np.sign(np.diff(x, axis=1))
    dx = np.sign(np.diff(x, axis=2))
    g[:, :-1] -= dy
    g[:, 1:] += dy
    g[:, :, :-1] -= dx
    g[:, :, 1:] += dx
    return g


def filters_note(model, layer_name, asked):
    """A one-line note when `asked` (--filters N) is more than the layer's filters, which are then
    all shown; None otherwise. The count is known only once the model has loaded: a note, not an error."""
    count = int(get_map_layer(model, layer_name).output.shape[-1])
    if asked > count:
        return f"note: --filters {asked}: layer {layer_name} has {count} filters; showing all {count}"
    return None


def _filter_indices(filters, channels, name):
    if isinstance(filters, (int, np.integer)):
        idx = np.arange(min(int(filters), channels))
    else:
        idx = np.asarray(list(filters), np.int64)
    if idx.size == 0 or idx.min() < 0 or idx.max() >= channels:
        raise FERError(f"layer {name} has filters 0..{channels - 1}; asked for {list(map(int, idx)) or 'none'}")
    return idx


def _ascend(objective, x, rng, steps, step_size, jitter, penalty, weight):
    """Gradient ascent of sum(objective) on the batch x (in place), as filter_patterns describes."""
    grey = VALUE_RANGE / 2

    def total(t):
        return ops.sum(objective(t))

    for _ in range(steps):
        dy, dx = (rng.integers(-jitter, jitter + 1, size=2) if jitter else (0, 0))
        _, g = _grad(total, np.roll(x, (dy, dx), axis=(1, 2)))
        g = np.roll(g, (-dy, -dx), axis=(1, 2))
        g /= np.sqrt(np.mean(g ** 2, axis=(1, 2, 3), keepdims=True)) + 1e-8
        x += step_size * g
        if penalty == "l2":
            x[:] = grey + (x - grey) * (1.0 - weight)
        else:
            x -= weight * step_size * _tv_grad(x[..., 0])[..., None]
        np.clip(x, 0.0, VALUE_RANGE, out=x)
    return x


def filter_patterns(model, layer_name=None, filters=16, steps=80, step_size=3.0, jitter=2, penalty="l2",
                    weight=None, border=None, noise=8.0, seed=0, batch_size=64):
    """Activation maximization (Erhan et al. 2009; Olah et al. 2017): gradient ascent on the input,
    from grey plus low-amplitude noise, on each filter's mean activation over its map (a border
    left out), with random jitter of up to `jitter` pixels, gradient normalization (each step
    moves pixels by `step_size` in RMS), and an L2 ('l2': decay towards grey) or total-variation
    ('tv') penalty of strength `weight`.

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        layer_name: the feature-map layer (None: default_filter_layer(model)).
        filters: a count (the first N filters) or a list of filter indices.
        steps: gradient-ascent steps.
        step_size: the RMS change of the pixels per step.
        jitter: random shift of up to this many pixels before each step.
        penalty: 'l2' (decay towards grey) or 'tv' (total variation).
        weight: the penalty's strength (None: 0.01 for l2, 0.3 for tv).
        border: rows and columns of the map left out of the objective (None: an eighth of it).
        noise: standard deviation of the starting noise around grey (0..255 scale).
        seed: seeds the noise and the shifts.
        batch_size: filters optimized at once.

    Returns a Patterns (layer, filter indices, images (F, 48, 48) in 0..255, activations)."""
    if penalty not in ("l2", "tv"):
        raise FERError(f"unknown penalty {penalty!r}: choose l2 or tv")
    name = layer_name or default_filter_layer(model)
    layer = get_map_layer(model, name)
    idx = _filter_indices(filters, int(layer.output.shape[-1]), name)
    h = int(layer.output.shape[1])
    border = (h // 8 if h >= 8 else 0) if border is None else border
    weight = (0.01 if penalty == "l2" else 0.3) if weight is None else weight
    features = keras.Model(model.input, layer.output)
    rng = np.random.default_rng(seed)
    images = np.empty((len(idx), IMAGE_SIZE, IMAGE_SIZE), np.float32)
    reached = np.empty(len(idx), np.float32)
    start = np.empty(len(idx), np.float32)
    for b in range(0, len(idx), batch_size):
        fb = idx[b:b + batch_size]
        objective = _filter_objective(features, fb, border)
        x = (VALUE_RANGE / 2 + rng.normal(0.0, noise, size=(len(fb), IMAGE_SIZE, IMAGE_SIZE, 1))).astype(np.float32)
        start[b:b + len(fb)] = _numpy(objective(ops.convert_to_tensor(x)))
        x = _ascend(objective, x, rng, steps, step_size, jitter, penalty, weight)
        reached[b:b + len(fb)] = _numpy(objective(ops.convert_to_tensor(x)))
        images[b:b + len(fb)] = x[..., 0]
    return Patterns(name, idx, images, reached, start)


def feature_maps(model, layer_name, image):
    """The layer's activations (h, w, channels) for one image.

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        layer_name: the name of a layer with a spatial map (map_layers(model) lists them).
        image: one uint8-valued face, (48, 48), (48, 48, 1) or (1, 48, 48, 1)."""
    layer = get_map_layer(model, layer_name)
    x = _as_batch(image)[:1]
    features = keras.Model(model.input, layer.output)
    return _numpy(_call(features, ops.convert_to_tensor(x)))[0]
