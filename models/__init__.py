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
from .registry import (DEFAULT_PREPROCESS, INPUT_SHAPE, NUM_CLASSES, available, build_model,  # noqa: F401
                       check_options, options_of, register)

# The networks register themselves on import.
from . import compact, report, vgg  # noqa: E402,F401
