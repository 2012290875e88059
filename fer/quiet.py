"""Import Keras without TensorFlow's C++ start-up chatter on stderr.

TensorFlow writes absl/CUDA notices ("Could not find cuda drivers", "failed call to cuInit")
straight to file descriptor 2 while it loads and first looks for devices; TF_CPP_MIN_LOG_LEVEL
does not silence them all. A script's stderr is for the one-line error messages users act on, so
we point fd 2 at /dev/null for the import and the device probe. Python exceptions still surface:
they are raised after stderr is restored.
"""
import os
import sys


def import_keras():
    if "keras" in sys.modules:
        return sys.modules["keras"]
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
    return keras
