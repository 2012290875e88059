"""Import Keras without TensorFlow's C++ start-up chatter on stderr, and the one TensorFlow
setting scripts choose (oneDNN kernels), made by an explicit call, never on import.

TensorFlow writes absl/CUDA notices ("Could not find cuda drivers", "failed call to cuInit")
straight to file descriptor 2 while it loads and first looks for devices; TF_CPP_MIN_LOG_LEVEL
does not silence them all. A script's stderr is for the one-line error messages users act on, so
we point fd 2 at /dev/null for the import and the device probe. Python exceptions still surface:
they are raised after stderr is restored.
"""
import os
import sys


def configure_tensorflow(input_gradients=False):
    """Call first in a script's main(), before TensorFlow loads (later it has no effect).

    TensorFlow enables its oneDNN kernels by itself only on CPUs with AVX-512 and the like; on
    AVX2 machines turning them on cuts the CPU time of a training step by about a third
    (docs/PERFORMANCE.md), so training and prediction ask for them. Scripts that take gradients
    with respect to the input (saliency, filter patterns) pass input_gradients=True: oneDNN's
    kernels for those corrupt the heap on AVX-512 CPUs (TensorFlow 2.21). A TF_ENABLE_ONEDNN_OPTS
    already in the environment (the user's) wins either way."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0" if input_gradients else "1")


def import_keras():
    if "keras" in sys.modules:
        _quiet_tensorflow_logger()
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):
        import keras

        return keras
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe happens here, not at the first layer
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    _quiet_tensorflow_logger()
    return keras


def _quiet_tensorflow_logger():
    """TensorFlow's Python logger warns "N out of the last M calls ... triggered tf.function
    retracing" whenever an ensemble's members each trace their predict step (predict.py --weights
    models/pretrained/ensemble printed two such paragraphs): advice for TensorFlow developers, not
    for a user. Its errors still show."""
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
