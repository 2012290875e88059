"""The registry: networks registered by name, built with scaling, preprocessing, augmentation
and the logits/probs head around them. See models/__init__.py."""
import inspect

from ferkit.backend import import_keras

keras = import_keras()  # TensorFlow's start-up notices stay off stderr, which is for errors

from data import IMAGE_SIZE, NUM_CLASSES  # noqa: E402
from ferkit.errors import FERError  # noqa: E402

from .augment import augmentation  # noqa: E402
from .preprocess import Standardize  # noqa: E402

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
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


def check_options(name, options):
    """Each --option must be one the model takes, of the kind of its default (width=abc is not an int)."""
    known = options_of(name)
    for key, value in options.items():
        if key not in known:
            raise FERError(f"--option {key}={value}: model {name} has no option {key} "
                           f"(it takes: {', '.join(known) or 'none'})")
        default = known[key]
        kinds = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}.get(type(default))
        if kinds and not (isinstance(value, kinds) and (type(default) is bool or not isinstance(value, bool))):
            raise FERError(f"--option {key}={value}: model {name} expects {_kind(default)} "
                           f"for {key} (its default is {default!r})")


def _kind(value):
    return {bool: "True or False", int: "an integer", float: "a number", str: "a string"}[type(value)]


PREPROCESS_KEYS = ("standardize",)
DEFAULT_PREPROCESS = {"standardize": True}  # train.py's default (--no-standardize turns it off)


def build_model(name, augment=None, preprocess=None, **options):
    """Build `name` as an uncompiled functional model (input 48x48x1 uint8 values, 7 softmax outputs).

    augment: None for no augmentation layers, True for the model's default recipe, or a dict of
    `models.augment.augmentation` arguments. preprocess: None (scale to 0..1 only) or a dict
    {"standardize": bool} (models/preprocess.py). Options unknown to the model raise FERError."""
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
    unknown = sorted(k for k, v in (preprocess or {}).items() if k not in PREPROCESS_KEYS and v)
    if unknown:
        raise FERError(f"preprocessing {', '.join(unknown)} is not part of this version")
    if preprocess and preprocess.get("standardize"):
        x = Standardize(name="standardize")(x)
    logits = keras.layers.Dense(NUM_CLASSES, name="logits")(fn(x, **options))
    probs = keras.layers.Activation("softmax", dtype="float32", name="probs")(logits)
    return keras.Model(inputs, probs, name=name)


def _get(name):
    if name not in _REGISTRY:
        raise FERError(f"unknown model {name!r}: choose one of {', '.join(available())}")
    return _REGISTRY[name]
