"""Why did the network say that? Saliency maps, Grad-CAM, integrated gradients, filter patterns.

    from ferkit import explain
    maps = explain.vanilla_saliency(model, images, classes)     # (N, 48, 48) float, >= 0
    maps = explain.smoothgrad(model, images, classes)
    maps = explain.gradcam(model, images, classes)              # layer chosen automatically
    maps = explain.integrated_gradients(model, images, classes)
    pats = explain.filter_patterns(model, "conv2d_3", filters=16)
    fmap = explain.feature_maps(model, "conv2d_3", image)       # (h, w, channels)

`model` is any network from models.build_model / models.load_run: uint8-valued (N, 48, 48, 1)
input, a Dense layer named "logits" and then the softmax "probs". Class scores are taken before
the softmax (Simonyan et al. 2013), and every layer runs in inference mode (BatchNorm uses its
moving statistics, Dropout and augmentation are off).

Gradients work under the TensorFlow, JAX and PyTorch backends of Keras 3: all the
backend-specific code is the one helper `_grad`; everything else is keras.ops or numpy.

On CPUs with AVX-512, TensorFlow 2.21's oneDNN kernels corrupt the heap when they take the input
gradient through small strided convolutions (a width-8 fernet crashed every vanilla-gradient run
on a 2-core AVX-512 EPYC; the plain kernels ran clean), so the explanation scripts call
fer.plain_kernels_for_input_gradients() before TensorFlow loads; training keeps them.
"""
import dataclasses
import functools
import inspect

import numpy as np

from ferbase.errors import FERError
from ferbase.quiet import import_keras

keras = import_keras()  # TensorFlow's start-up notices stay off stderr
ops = keras.ops

IMAGE_SIZE = 48
VALUE_RANGE = 255.0
GRADCAM_MIN_SIZE = 6  # Grad-CAM layer: the last feature map not coarser than this


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


def logits_model(model):
    """The same network (shared weights) ending at the class scores before the softmax."""
    try:
        logits = model.get_layer("logits")
    except ValueError:
        raise FERError(f"model {model.name} has no layer named 'logits'; build it with models.build_model") from None
    return keras.Model(model.inputs, logits.output, name=f"{model.name}_logits")


def _is_map(layer):
    shape = getattr(layer, "output", None)
    shape = getattr(shape, "shape", None)
    return shape is not None and len(shape) == 4


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
    candidates = [n for n in map_layers(model) if min(model.get_layer(n).output.shape[1:3]) >= min_size]
    if not candidates:
        raise FERError(f"model {model.name} has no convolutional feature map of at least {min_size}x{min_size}; "
                       "Grad-CAM needs one (use vanilla, smoothgrad or ig)")
    return candidates[-1]


def default_filter_layer(model, min_size=GRADCAM_MIN_SIZE):
    """The last convolution whose output is at least min_size x min_size (else the last one)."""
    convs = conv_layers(model)
    if not convs:
        raise FERError(f"model {model.name} has no convolution layer to visualize")
    fine = [n for n in convs if min(model.get_layer(n).output.shape[1:3]) >= min_size]
    return (fine or convs)[-1]


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
    if c.size and (c.min() < 0 or c.max() > 6):
        raise FERError(f"class index {int(c.max() if c.max() > 6 else c.min())} outside 0..6")
    return c


def _score_fn(net, classes):
    """fn(x) = sum over the batch of each image's class score (images are independent in inference
    mode, so its gradient holds every image's own gradient)."""
    onehot = np.eye(7, dtype=np.float32)[classes]

    def fn(x):
        logits = _call(net, x)
        return ops.sum(ops.cast(logits, "float32") * onehot)

    return fn


def _input_gradients(net, x, classes, batch_size):
    out = np.zeros_like(x)
    for i in range(0, len(x), batch_size):
        _, out[i:i + batch_size] = _grad(_score_fn(net, classes[i:i + batch_size]), x[i:i + batch_size])
    return out


# ---------------------------------------------------------------- attribution maps


def vanilla_saliency(model, images, classes, batch_size=64):
    """|d score_c / d pixel| (Simonyan et al. 2013), the class score taken before the softmax."""
    x = _as_batch(images)
    c = _as_classes(classes, len(x))
    g = _input_gradients(logits_model(model), x, c, batch_size)
    return np.abs(g).max(axis=-1)


def smoothgrad(model, images, classes, samples=25, sigma=0.15, seed=0, batch_size=64):
    """SmoothGrad (Smilkov et al. 2017): the mean |gradient| over `samples` copies of each image
    with Gaussian noise of standard deviation `sigma` times the input range (0..255)."""
    x = _as_batch(images)
    c = _as_classes(classes, len(x))
    net = logits_model(model)
    rng = np.random.default_rng(seed)
    total = np.zeros(x.shape[:3], np.float32)
    for _ in range(samples):
        noisy = x + rng.normal(0.0, sigma * VALUE_RANGE, size=x.shape).astype(np.float32)
        total += np.abs(_input_gradients(net, noisy, c, batch_size)).max(axis=-1)
    return total / max(samples, 1)


def integrated_gradients(model, images, classes, steps=50, baseline=None, batch_size=64, signed=False,
                         return_attributions=False):
    """Integrated gradients (Sundararajan et al. 2017) from a black baseline: (x - x0) times the
    path-averaged gradient, the path integral by the trapezoid rule over `steps` intervals.
    Returns |attribution| (or the signed attribution with `signed`), summed over channels."""
    x = _as_batch(images)
    c = _as_classes(classes, len(x))
    x0 = np.zeros_like(x) if baseline is None else np.broadcast_to(np.asarray(baseline, np.float32), x.shape)
    net = logits_model(model)
    steps = max(int(steps), 1)
    avg = np.zeros_like(x)
    for k in range(steps + 1):
        alpha = k / steps
        weight = 0.5 if k in (0, steps) else 1.0
        avg += weight * _input_gradients(net, x0 + alpha * (x - x0), c, batch_size)
    attributions = (x - x0) * (avg / steps)
    if return_attributions:
        return attributions
    a = attributions.sum(axis=-1)
    return a if signed else np.abs(a)


def _forward_with_delta(net, layer, x, delta):
    """net(x) in inference mode with `delta` added to `layer`'s output (graph re-run node by node,
    as keras.Model.call does; works for any layer, also inside residual blocks)."""

    def operation_fn(op):
        if op is layer:
            return lambda *a, **k: ops.add(_call(op, *a, **k), delta)
        return lambda *a, **k: _call(op, *a, **k)

    out = net._run_through_graph(x, operation_fn=operation_fn)
    return out[0] if isinstance(out, (list, tuple)) else out


def gradcam(model, images, classes, layer=None, batch_size=64, upsample=True):
    """Grad-CAM (Selvaraju et al. 2017): ReLU(sum_k w_k A_k), w_k the spatial mean of
    d score_c / d A_k, at `layer` (default: `gradcam_layer(model)`), resized to 48x48 (bilinear)."""
    x = _as_batch(images)
    c = _as_classes(classes, len(x))
    name = layer or gradcam_layer(model)
    target = get_map_layer(model, name)
    net = logits_model(model)
    features = keras.Model(model.inputs, target.output)
    cams = []
    for i in range(0, len(x), batch_size):
        xb, cb = x[i:i + batch_size], c[i:i + batch_size]
        acts = ops.convert_to_numpy(_call(features, ops.convert_to_tensor(xb))).astype(np.float32)
        onehot = np.eye(7, dtype=np.float32)[cb]
        xt = ops.convert_to_tensor(xb)

        def fn(delta, xt=xt, onehot=onehot):
            logits = _forward_with_delta(net, target, xt, delta)
            return ops.sum(ops.cast(logits, "float32") * onehot)

        _, g = _grad(fn, np.zeros_like(acts))
        weights = g.mean(axis=(1, 2), keepdims=True)
        cams.append(np.maximum((weights * acts).sum(axis=-1), 0.0))
    cam = np.concatenate(cams) if cams else np.zeros((0,) + x.shape[1:3], np.float32)
    if upsample and cam.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        cam = ops.convert_to_numpy(ops.image.resize(cam[..., None], (IMAGE_SIZE, IMAGE_SIZE),
                                                    interpolation="bilinear"))[..., 0]
        cam = np.maximum(cam, 0.0)
    return cam.astype(np.float32)


METHODS = {
    "vanilla": ("Saliency", vanilla_saliency),
    "smoothgrad": ("SmoothGrad", smoothgrad),
    "gradcam": ("Grad-CAM", gradcam),
    "ig": ("Integrated gradients", integrated_gradients),
}


def explain(model, images, classes, method, **kwargs):
    """Dispatch by name: vanilla, smoothgrad, gradcam or ig."""
    if method not in METHODS:
        raise FERError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    return METHODS[method][1](model, images, classes, **kwargs)


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
    pick = np.eye(int(features.output.shape[-1]), dtype=np.float32)[filters]  # (F, C)

    def per_image(x):
        acts = ops.cast(_call(features, x), "float32")
        h, w = acts.shape[1], acts.shape[2]
        inner = acts[:, border:h - border, border:w - border, :]
        return ops.sum(ops.mean(inner, axis=(1, 2)) * pick, axis=1)

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


def filter_patterns(model, layer_name=None, filters=16, steps=80, step_size=3.0, jitter=2, penalty="l2",
                    weight=None, border=None, noise=8.0, seed=0, batch_size=64):
    """Activation maximization (Erhan et al. 2009; Olah et al. 2017): gradient ascent on the input,
    from grey plus low-amplitude noise, on each filter's mean activation over its map (a border
    left out), with random jitter of up to `jitter` pixels, gradient normalization (each step
    moves pixels by `step_size` in RMS), and an L2 ('l2': decay towards grey) or total-variation
    ('tv') penalty of strength `weight`. `filters`: a count (the first N) or a list of indices."""
    if penalty not in ("l2", "tv"):
        raise FERError(f"unknown penalty {penalty!r}: choose l2 or tv")
    name = layer_name or default_filter_layer(model)
    layer = get_map_layer(model, name)
    channels = int(layer.output.shape[-1])
    if isinstance(filters, (int, np.integer)):
        idx = np.arange(min(int(filters), channels))
    else:
        idx = np.asarray(list(filters), np.int64)
    if idx.size == 0 or idx.min() < 0 or idx.max() >= channels:
        raise FERError(f"layer {name} has filters 0..{channels - 1}; asked for {list(map(int, idx)) or 'none'}")
    h = int(layer.output.shape[1])
    if border is None:
        border = h // 8 if h >= 8 else 0
    if weight is None:
        weight = 0.01 if penalty == "l2" else 0.3
    features = keras.Model(model.inputs, layer.output)
    rng = np.random.default_rng(seed)
    grey = VALUE_RANGE / 2
    images = np.empty((len(idx), IMAGE_SIZE, IMAGE_SIZE), np.float32)
    reached = np.empty(len(idx), np.float32)
    start = np.empty(len(idx), np.float32)
    for b in range(0, len(idx), batch_size):
        fb = idx[b:b + batch_size]
        objective = _filter_objective(features, fb, border)
        total = lambda t, obj=objective: ops.sum(obj(t))  # noqa: E731
        x = (grey + rng.normal(0.0, noise, size=(len(fb), IMAGE_SIZE, IMAGE_SIZE, 1))).astype(np.float32)
        start[b:b + len(fb)] = ops.convert_to_numpy(objective(ops.convert_to_tensor(x)))
        for _ in range(steps):
            dy, dx = (rng.integers(-jitter, jitter + 1, size=2) if jitter else (0, 0))
            shifted = np.roll(x, (dy, dx), axis=(1, 2))
            _, g = _grad(total, shifted)
            g = np.roll(g, (-dy, -dx), axis=(1, 2))
            g /= np.sqrt(np.mean(g ** 2, axis=(1, 2, 3), keepdims=True)) + 1e-8
            x += step_size * g
            if penalty == "l2":
                x = grey + (x - grey) * (1.0 - weight)
            else:
                x -= weight * step_size * _tv_grad(x[..., 0])[..., None]
            np.clip(x, 0.0, VALUE_RANGE, out=x)
        reached[b:b + len(fb)] = ops.convert_to_numpy(objective(ops.convert_to_tensor(x)))
        images[b:b + len(fb)] = x[..., 0]
    return Patterns(name, idx, images, reached, start)


def feature_maps(model, layer_name, image):
    """The layer's activations (h, w, channels) for one image (48x48, 48x48x1 or 1x48x48x1)."""
    layer = get_map_layer(model, layer_name)
    x = _as_batch(image)[:1]
    features = keras.Model(model.inputs, layer.output)
    return ops.convert_to_numpy(_call(features, ops.convert_to_tensor(x)))[0].astype(np.float32)


def normalize(maps, percentile=99.5):
    """Scale each map to 0..1 by its own percentile (for display)."""
    maps = np.asarray(maps, np.float32)
    flat = maps.reshape(len(maps), -1)
    top = np.percentile(flat, percentile, axis=1).reshape((-1,) + (1,) * (maps.ndim - 1))
    return np.clip(maps / np.maximum(top, 1e-12), 0.0, 1.0)
