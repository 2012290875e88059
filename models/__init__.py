"""Model registry: every network is built by name.

    model = models.build_model("cnn3")                 # uncompiled Keras 3 functional model
    model = models.build_model("cnn3", batchnorm=False)
    models.available()                                 # ['cnn1', 'cnn2', 'cnn3', 'dnn', ...]

Every model takes uint8-valued images (N, 48, 48, 1) and scales them itself, so a saved run
carries its own preprocessing. Data augmentation layers sit between the input and the scaling;
they act only in training (`model(x, training=True)` / `fit`) and hold no weights, so they do
not change parameter counts or saved weights. The last two layers are always `logits`
(Dense 7) and `probs` (softmax, float32 even under mixed precision), so explanation methods can
take class scores before the softmax.
"""
import inspect

from fer.quiet import import_keras

keras = import_keras()  # TensorFlow's start-up notices stay off stderr, which is for errors

from fer.errors import FERError  # noqa: E402

from .augment import augmentation  # noqa: E402
from .preprocess import GaussianBlur, Standardize  # noqa: E402

INPUT_SHAPE = (48, 48, 1)
NUM_CLASSES = 7
_REGISTRY = {}


def register(name):
    """Decorator: `fn(x, **options) -> logits tensor` becomes buildable as `build_model(name)`."""

    def wrap(fn):
        _REGISTRY[name] = fn
        return fn

    return wrap


def available():
    return sorted(_REGISTRY)


def options_of(name):
    """The options a model accepts, with their defaults."""
    fn = _get(name)
    return {p.name: p.default for p in list(inspect.signature(fn).parameters.values())[1:]}


DEFAULT_PREPROCESS = {"blur": 1.0, "test_blur": 3.25, "standardize": True}


def build_model(name, augment=None, preprocess=None, **options):
    """Build `name` as an uncompiled functional model (input 48x48x1 uint8 values, 7 softmax outputs).

    augment: None for no augmentation layers, True for the model's default recipe, or a dict of
    `models.augment.augmentation` arguments. preprocess: None (scale to 0..1 only) or a dict
    {"test_blur": sigma, "blur": sigma, "standardize": bool} (models/preprocess.py; test_blur acts
    at inference only; DEFAULT_PREPROCESS is what training uses unless told otherwise).
    Options unknown to the model raise FERError."""
    fn = _get(name)
    known = options_of(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise FERError(f"model {name} has no option {', '.join(unknown)} (it takes: {', '.join(known) or 'none'})")
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = inputs
    if augment:
        x = augmentation(**(augment if isinstance(augment, dict) else {}))(x)
    x = keras.layers.Rescaling(1.0 / 255, name="scale")(x)
    if preprocess and preprocess.get("test_blur"):
        x = GaussianBlur(preprocess["test_blur"], inference_only=True, name="test_blur")(x)
    if preprocess and preprocess.get("blur"):
        x = GaussianBlur(preprocess["blur"], name="blur")(x)
    if preprocess and preprocess.get("standardize"):
        x = Standardize(name="standardize")(x)
    logits = keras.layers.Dense(NUM_CLASSES, name="logits")(fn(x, **options))
    probs = keras.layers.Activation("softmax", dtype="float32", name="probs")(logits)
    return keras.Model(inputs, probs, name=name)


def _get(name):
    if name not in _REGISTRY:
        raise FERError(f"unknown model {name!r}: choose one of {', '.join(available())}")
    return _REGISTRY[name]


# Registering modules: imported for their side effect on _REGISTRY.
from . import compact, report  # noqa: E402,F401
from .runs import load_run  # noqa: E402,F401
