"""The registry: networks registered by name, built with scaling, preprocessing, augmentation
and the logits/probs head around them. See models/__init__.py."""
import inspect
import math

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


def check_options(name, options, where="--option"):
    """Each option must be one the model takes, of the kind of its default (width=abc is not an
    int, blocks=x is not a list) and within bounds, so that no value makes building the model
    fail or exhaust memory: integers 1..max(16, 8 x default), list items 0..16 (1-8 items),
    fractions (a default in 0..1, as dropout) in [0, 1), a model name that is registered.
    `where` starts each message ("--option", or the run.json that holds the options)."""
    if not isinstance(options, dict):
        raise FERError(f"{where}: expected KEY=VALUE options, got {options!r:.80}")
    known = options_of(name)
    for key, value in options.items():
        if key not in known:
            raise FERError(f"{where} {key}={str(value)[:80]}: model {name} has no option {key} "
                           f"(it takes: {', '.join(known) or 'none'})")
        problem = _option_problem(name, known[key], value)
        if problem:
            raise FERError(f"{where} {key}={str(value)[:80]}: model {name} expects {problem} "
                           f"for {key} (its default is {known[key]!r})")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _option_problem(name, default, value):
    """What a valid value is, when `value` is not one; None when it is."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "True or False"
    if _is_int(default):
        top = max(16, 8 * default)
        return None if _is_int(value) and 1 <= value <= top else f"an integer 1..{top}"
    if isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if 0 <= default < 1:
            return None if ok and 0 <= value < 1 else "a number from 0 up to (not including) 1"
        return None if ok else "a finite number"
    if isinstance(default, tuple):
        ok = isinstance(value, (list, tuple)) and 1 <= len(value) <= 8 and all(_is_int(v) and 0 <= v <= 16 for v in value)
        return None if ok else "a list of 1-8 integers 0..16"
    if isinstance(default, str):
        if default in _REGISTRY:  # names another model (dnn's `match`)
            return None if value in _REGISTRY and value != name else f"one of {', '.join(m for m in available() if m != name)}"
        return None if isinstance(value, str) else "a string"
    return None


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
