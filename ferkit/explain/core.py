"""What every explanation method shares: the one backend-specific gradient helper, finding layers
by role (logits, feature maps, convolutions), and checking images and class indices. Why the
maps are taken before the softmax and in inference mode: docs/EXPLAIN.md."""
import functools
import inspect

import numpy as np

from data import IMAGE_SIZE, NUM_CLASSES
from ferkit.backend import import_keras
from ferkit.errors import FERError

keras = import_keras()  # TensorFlow's start-up notices stay off stderr
ops = keras.ops

VALUE_RANGE = 255.0
GRADCAM_MIN_SIZE = 6  # Grad-CAM layer: the last map not coarser than this (fernet: re_lu_10, by the sweep in docs/EXPLAIN.md)
MAPS_MIN_SIZE = 24  # feature maps shown by default: the last layer whose maps are still this fine


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
    """The same network (shared weights) ending at the class scores before the softmax.

    Args:
        model: a network as built by models.build_model or loaded by load_run."""
    return keras.Model(model.input, _logits_layer(model).output, name=f"{model.name}_logits")


def _is_map(layer):
    shape = getattr(layer, "output", None)
    shape = getattr(shape, "shape", None)
    return shape is not None and len(shape) == 4


def _size(model, name):
    return min(model.get_layer(name).output.shape[1:3])


def map_layers(model):
    """Names of the layers with a feature map (4-D output), from the first convolution on.

    Args:
        model: a network as built by models.build_model or loaded by load_run."""
    names, seen_conv = [], False
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):  # Conv2D covers its subclasses (Conv2DTranspose...)
            seen_conv = True
        if seen_conv and _is_map(layer):
            names.append(layer.name)
    return names


def conv_layers(model):
    """Names of the convolution layers, input to output.

    Args:
        model: a network as built by models.build_model or loaded by load_run."""
    return [layer.name for layer in model.layers
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and _is_map(layer)]


def _names_hint(names, limit=8):
    if not names:
        return "this model has none"
    shown = names[-limit:]
    more = f" (last {limit} of {len(names)})" if len(names) > limit else ""
    return ", ".join(shown) + more


def get_map_layer(model, name):
    """The layer called `name`, which must have a feature map; FERError naming valid ones if not.

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        name: the layer's name."""
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
    """Name of the last feature-map layer whose map is at least min_size x min_size.

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        min_size: the smallest side, in cells, of the map accepted."""
    candidates = [n for n in map_layers(model) if _size(model, n) >= min_size]
    if not candidates:
        raise FERError(f"model {model.name} has no convolutional feature map of at least {min_size}x{min_size}; "
                       "Grad-CAM needs one (use vanilla, smoothgrad or ig)")
    return candidates[-1]


def default_filter_layer(model, min_size=GRADCAM_MIN_SIZE):
    """The last convolution whose output is at least min_size x min_size (else the last one):
    deep enough for its filters' patterns to be more than edges.

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        min_size: the smallest side, in cells, of the output preferred."""
    convs = conv_layers(model)
    if not convs:
        raise FERError(f"model {model.name} has no convolution layer to visualize")
    fine = [n for n in convs if _size(model, n) >= min_size]
    return (fine or convs)[-1]


def default_maps_layer(model, min_size=MAPS_MIN_SIZE):
    """The last feature-map layer still at least min_size x min_size (fernet: the output of its
    first stage, 24x24), whose maps still show the face; else the first feature map.

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        min_size: the smallest side, in cells, of the maps preferred."""
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


