"""Why did the network say that? Saliency maps, Grad-CAM, integrated gradients, filter patterns.

    from ferkit import explain
    maps = explain.vanilla_saliency(model, images, classes)     # (N, 48, 48) float, >= 0
    maps = explain.smoothgrad(model, images, classes, jitter=8)
    maps = explain.gradcam(model, images, classes)              # layer chosen automatically
    maps = explain.integrated_gradients(model, images, classes)
    cols = explain.saliency_columns(model, images, classes, ["vanilla", "gradcam"], jitter=8)
    pats = explain.filter_patterns(model, "conv2d_3", filters=16)
    fmap = explain.feature_maps(model, "conv2d_3", image)       # (h, w, channels)

`model` is any network from models.build_model / ferkit.runs.load.load_run: uint8-valued
(N, 48, 48, 1) input, a Dense layer named "logits", then the softmax "probs". Class scores are
taken before the softmax, with every layer in inference mode.

`jitter=J` averages each gradient over copies of the face shifted by up to J pixels: a strided
network's raw input gradient carries its sampling grid, which then averages out while the face's
evidence stays (jitter=0: the textbook maps). The one backend-specific helper is `_grad`; what
was measured, and why the scripts turn oneDNN off here: docs/PERFORMANCE.md, section 8.
"""
import dataclasses
import functools
import inspect

import numpy as np

from data import IMAGE_SIZE, NUM_CLASSES
from ferkit.backend import import_keras
from ferkit.errors import FERError

keras = import_keras()  # TensorFlow's start-up notices stay off stderr
ops = keras.ops

VALUE_RANGE = 255.0
GRADCAM_MIN_SIZE = 6  # Grad-CAM layer: the last feature map not coarser than this
MAPS_MIN_SIZE = 24  # feature maps shown by default: the last layer whose maps are still this fine
JITTER_SAMPLES = 16  # shifted copies for a shift-averaged vanilla gradient


# ---------------------------------------------------------------- the one backend-specific helper


def _grad(fn, x):
    """(value, gradient) of the scalar `fn(x)` with respect to the float32 array `x`, as numpy.

    `fn` takes a backend tensor and returns a scalar tensor (built with keras.ops)."""
    x = np.asarray(x, np.float32)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        t = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(t)
            value = fn(t)
        grad = tape.gradient(value, t)
        if grad is None:  # the output does not depend on x
            grad = tf.zeros_like(t)
        return float(value.numpy()), grad.numpy()
    if backend == "jax":
        import jax

        value, grad = jax.value_and_grad(fn)(jax.numpy.asarray(x))
        return float(value), np.asarray(grad)
    if backend == "torch":
        import torch

        t = ops.convert_to_tensor(x).detach().requires_grad_(True)  # on Keras's device
        value = fn(t)
        (grad,) = torch.autograd.grad(value, t, allow_unused=True)
        if grad is None:
            grad = torch.zeros_like(t)
        return float(value.detach().cpu()), grad.detach().cpu().numpy()
    raise FERError(f"explanations need the tensorflow, jax or torch backend (KERAS_BACKEND is {backend})")


def _numpy(t):
    """A forward-pass result as a float32 numpy array, its gradient stopped first (PyTorch
    refuses to hand out the array of a tensor that requires grad)."""
    return np.asarray(ops.convert_to_numpy(ops.stop_gradient(t)), np.float32)


# ---------------------------------------------------------------- layers


@functools.lru_cache(maxsize=None)
def _takes_training(cls):
    try:
        return "training" in inspect.signature(cls.call).parameters
    except (TypeError, ValueError, AttributeError):
        return False


def _call(op, *args, **kwargs):
    """Call a layer or model in inference mode (training=False where it takes that argument)."""
    if _takes_training(type(op)):
        kwargs["training"] = False
    return op(*args, **kwargs)


def _logits_layer(model):
    try:
        return model.get_layer("logits")
    except ValueError:
        raise FERError(f"model {model.name} has no layer named 'logits'; build it with models.build_model") from None


def logits_model(model):
    """The same network (shared weights) ending at the class scores before the softmax."""
    return keras.Model(model.input, _logits_layer(model).output, name=f"{model.name}_logits")


def _is_map(layer):
    shape = getattr(layer, "output", None)
    shape = getattr(shape, "shape", None)
    return shape is not None and len(shape) == 4


def _size(model, name):
    return min(model.get_layer(name).output.shape[1:3])


def map_layers(model):
    """Names of the layers with a feature map (4-D output), from the first convolution on."""
    names, seen_conv = [], False
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):  # Conv2D covers its subclasses (Conv2DTranspose...)
            seen_conv = True
        if seen_conv and _is_map(layer):
            names.append(layer.name)
    return names


def conv_layers(model):
    """Names of the convolution layers, input to output."""
    return [layer.name for layer in model.layers
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and _is_map(layer)]


def _names_hint(names, limit=8):
    if not names:
        return "this model has none"
    shown = names[-limit:]
    more = f" (last {limit} of {len(names)})" if len(names) > limit else ""
    return ", ".join(shown) + more


def get_map_layer(model, name):
    """The layer called `name`, which must have a feature map; FERError naming valid ones if not."""
    valid = map_layers(model)
    try:
        layer = model.get_layer(name)
    except ValueError:
        raise FERError(f"model {model.name} has no layer {name!r}; layers with feature maps: "
                       f"{_names_hint(valid)}") from None
    if not _is_map(layer):
        raise FERError(f"layer {name!r} of {model.name} has output shape {tuple(layer.output.shape)}, not a feature "
                       f"map; choose one of: {_names_hint(valid)}")
    return layer


def gradcam_layer(model, min_size=GRADCAM_MIN_SIZE):
    """Name of the last feature-map layer whose map is at least min_size x min_size."""
    candidates = [n for n in map_layers(model) if _size(model, n) >= min_size]
    if not candidates:
        raise FERError(f"model {model.name} has no convolutional feature map of at least {min_size}x{min_size}; "
                       "Grad-CAM needs one (use vanilla, smoothgrad or ig)")
    return candidates[-1]


def default_filter_layer(model, min_size=GRADCAM_MIN_SIZE):
    """The last convolution whose output is at least min_size x min_size (else the last one):
    deep enough for its filters' patterns to be more than edges."""
    convs = conv_layers(model)
    if not convs:
        raise FERError(f"model {model.name} has no convolution layer to visualize")
    fine = [n for n in convs if _size(model, n) >= min_size]
    return (fine or convs)[-1]


def default_maps_layer(model, min_size=MAPS_MIN_SIZE):
    """The last feature-map layer still at least min_size x min_size (fernet: the output of its
    first stage, 24x24), whose maps still show the face; else the first feature map."""
    names = map_layers(model)
    if not names:
        raise FERError(f"model {model.name} has no convolution layer to visualize")
    fine = [n for n in names if _size(model, n) >= min_size]
    return fine[-1] if fine else names[0]


# ---------------------------------------------------------------- inputs


def _as_batch(images):
    x = np.asarray(images)
    if x.ndim == 2:
        x = x[None, ..., None]
    elif x.ndim == 3:
        x = x[None] if x.shape[-1] == 1 and x.shape[0] == IMAGE_SIZE else x[..., None]
    if x.ndim != 4 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1):
        raise FERError(f"expected images of shape (N, 48, 48, 1), got {np.asarray(images).shape}")
    return x.astype(np.float32)


def _as_classes(classes, n):
    c = np.asarray(classes, np.int64).reshape(-1)
    if c.size == 1:
        c = np.repeat(c, n)
    if c.shape != (n,):
        raise FERError(f"expected one class index or {n}, got {c.size}")
    if c.size and (c.min() < 0 or c.max() >= NUM_CLASSES):
        raise FERError(f"class index {int(c.max() if c.max() >= NUM_CLASSES else c.min())} outside 0..6")
    return c


def _onehot(classes):
    return ops.convert_to_tensor(np.eye(NUM_CLASSES, dtype=np.float32)[classes])


def _score_fn(net, classes):
    """fn(x) = sum over the batch of each image's class score (images are independent in inference
    mode, so its gradient holds every image's own gradient)."""
    onehot = _onehot(classes)

    def fn(x):
        return ops.sum(ops.multiply(ops.cast(_call(net, x), "float32"), onehot))

    return fn


def _input_gradients(net, x, classes, batch_size):
    out = np.zeros_like(x)
    for i in range(0, len(x), batch_size):
        _, out[i:i + batch_size] = _grad(_score_fn(net, classes[i:i + batch_size]), x[i:i + batch_size])
    return out


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


def _split_at(model, layer):
    """(head, tail): head maps the image to `layer`'s output; tail maps [image, that output] to
    the class scores. The image stays an input of the tail for the paths that go around the
    layer (a residual shortcut), so any layer works, not only one that cuts the graph."""
    head = keras.Model(model.input, layer.output)
    tail = keras.Model([model.input, layer.output], _logits_layer(model).output)
    return head, tail


def gradcam(model, images, classes, layer=None, batch_size=64, upsample=True):
    """Grad-CAM (Selvaraju et al. 2017): ReLU(sum_k w_k A_k), w_k the spatial mean of
    d score_c / d A_k, at `layer`, resized to 48x48 (bilinear).

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        images: uint8-valued faces, (N, 48, 48, 1), (N, 48, 48) or one (48, 48).
        classes: the class index (0..6) each map explains, one per image or one for all.
        layer: name of the feature-map layer (None: gradcam_layer(model)).
        batch_size: images per gradient call.
        upsample: resize the maps to 48x48; False keeps the layer's (h, w).

    Returns float32 maps (N, 48, 48) or (N, h, w), >= 0."""
    x = _as_batch(images)
    c = _as_classes(classes, len(x))
    target = get_map_layer(model, layer or gradcam_layer(model))
    head, tail = _split_at(model, target)
    cams = []
    for i in range(0, len(x), batch_size):
        xt = ops.convert_to_tensor(x[i:i + batch_size])
        onehot = _onehot(c[i:i + batch_size])
        acts = _numpy(_call(head, xt))

        def score(a, xt=xt, onehot=onehot):
            return ops.sum(ops.multiply(ops.cast(_call(tail, [xt, a]), "float32"), onehot))

        _, g = _grad(score, acts)
        weights = g.mean(axis=(1, 2), keepdims=True)
        cams.append(np.maximum((weights * acts).sum(axis=-1), 0.0))
    cam = np.concatenate(cams) if cams else np.zeros((0,) + x.shape[1:3], np.float32)
    if upsample and cam.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        cam = ops.convert_to_numpy(ops.image.resize(cam[..., None], (IMAGE_SIZE, IMAGE_SIZE),
                                                    interpolation="bilinear"))[..., 0]
        cam = np.maximum(cam, 0.0)
    return cam.astype(np.float32)


# name -> (column title, function); also the order in which the figures show them
METHODS = {
    "vanilla": ("Gradient", vanilla_saliency),
    "smoothgrad": ("SmoothGrad", smoothgrad),
    "gradcam": ("Grad-CAM", gradcam),
    "ig": ("Integrated gradients", integrated_gradients),
}


def _method(name):
    if name not in METHODS:
        raise FERError(f"unknown method {name!r}: choose one of {', '.join(METHODS)}")
    return METHODS[name]


def explain(model, images, classes, method, **options):
    """Dispatch by name (vanilla, smoothgrad, gradcam or ig). Each method gets the options its
    signature names, so one set (samples, steps, jitter, layer, seed...) serves them all; an
    option no method takes is a TypeError.

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        images: uint8-valued faces, (N, 48, 48, 1), (N, 48, 48) or one (48, 48).
        classes: the class index (0..6) each map explains, one per image or one for all.
        method: a name of METHODS (FERError for another).
        **options: passed to the method that takes them.

    Returns the method's maps (N, 48, 48)."""
    fn = _method(method)[1]
    known = set().union(*(inspect.signature(f).parameters for _, f in METHODS.values()))
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"no explanation method takes {', '.join(unknown)}")
    accepted = inspect.signature(fn).parameters
    return fn(model, images, classes, **{k: v for k, v in options.items() if k in accepted})


def saliency_columns(model, images, classes, methods, **options):
    """[(column title, maps (N, 48, 48))] for each method name, in the order given; Grad-CAM's
    title names its layer (options["layer"], else gradcam_layer(model)).

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        images: uint8-valued faces, (N, 48, 48, 1), (N, 48, 48) or one (48, 48).
        classes: the class index (0..6) each map explains, one per image or one for all.
        methods: names of METHODS, one column each, in this order.
        **options: as explain() takes them."""
    cols = []
    for name in methods:
        title = _method(name)[0]
        if name == "gradcam":
            options = {**options, "layer": options.get("layer") or gradcam_layer(model)}
            title = f"{title} ({options['layer']})"
        cols.append((title, explain(model, images, classes, name, **options)))
    return cols


# ---------------------------------------------------------------- what the filters respond to


@dataclasses.dataclass
class Patterns:
    layer: str
    filters: np.ndarray  # (F,) filter indices
    images: np.ndarray  # float32 (F, 48, 48) in 0..255: the input each filter responds to most
    activation: np.ndarray  # (F,) mean activation reached
    start_activation: np.ndarray  # (F,) mean activation on the starting noise


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
