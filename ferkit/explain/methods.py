"""The one table of saliency methods (name -> column title, function) and the dispatch by name
that lets one set of options (samples, steps, jitter, layer, seed) serve them all."""
import inspect

from ferkit.errors import FERError
from ferkit.explain.core import gradcam_layer
from ferkit.explain.gradcam import gradcam
from ferkit.explain.gradients import integrated_gradients, smoothgrad, vanilla_saliency


# name -> (column title, function); also the order in which the figures show them
METHODS = {
    "vanilla": ("Gradient", vanilla_saliency),
    "smoothgrad": ("SmoothGrad", smoothgrad),
    "gradcam": ("Grad-CAM", gradcam),
    "ig": ("Integrated gradients", integrated_gradients),
}


# What saliency.py uses when no option is given, chosen by the faithfulness sweep
# (scripts/saliency_sweep.sh; docs/EXPLAIN.md): the functions' own defaults stay the textbook maps.
DEFAULT_METHOD = "smoothgrad"
DEFAULT_SETTINGS = {
    "vanilla": {"jitter": 0},
    "smoothgrad": {"sigma": 0.05, "jitter": 8},
    "gradcam": {},
    "ig": {"jitter": 8},
}


def _method(name):
    if name not in METHODS:
        raise FERError(f"unknown method {name!r}: choose one of {', '.join(METHODS)}")
    return METHODS[name]


def explain(model, images, classes, method, settings=None, **options):
    """Dispatch by name (vanilla, smoothgrad, gradcam or ig). Each method gets the options its
    signature names, so one set (samples, steps, jitter, layer, seed...) serves them all; an
    option no method takes is a TypeError, an option set to None is left to the method.

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        images: uint8-valued faces, (N, 48, 48, 1), (N, 48, 48) or one (48, 48).
        classes: the class index (0..6) each map explains, one per image or one for all.
        method: a name of METHODS (FERError for another).
        settings: {method: {option: value}} defaults per method (e.g. DEFAULT_SETTINGS), under
            the options given.
        **options: passed to the method that takes them.

    Returns the method's maps (N, 48, 48)."""
    fn = _method(method)[1]
    known = set().union(*(inspect.signature(f).parameters for _, f in METHODS.values()))
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"no explanation method takes {', '.join(unknown)}")
    accepted = inspect.signature(fn).parameters
    merged = {**(settings or {}).get(method, {}), **{k: v for k, v in options.items() if v is not None}}
    return fn(model, images, classes, **{k: v for k, v in merged.items() if k in accepted})


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


