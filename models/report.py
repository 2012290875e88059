"""The course report's networks, layer for layer as in its model.summary() tables.

The tables give layers, output shapes and parameter counts, not activations: we read every
convolution and hidden Dense layer as ReLU (the usual choice, and what the shapes allow), with
BatchNormalization after the activation, as the tables order them. Convolutions are 'same'
padded: that is what makes the published parameter counts come out exactly (2,659,851 /
39,782,273 / 16,326,603; tests/test_models.py checks them). The final Dense 7 + softmax is
added by models.build_model as the `logits` and `probs` layers.
"""
from ferkit.backend import import_keras

from data import IMAGE_SIZE, NUM_CLASSES

from .registry import build_model, register

keras = import_keras()  # TensorFlow's start-up notices stay off stderr
layers = keras.layers


def _bn(x, on):
    return layers.BatchNormalization()(x) if on else x


def _conv_block(x, filters, kernel, batchnorm, pool_padding="valid"):
    """[Conv, BN] for each entry of `filters`, then MaxPool 2x2 and BN (as the report's tables)."""
    for f in filters:
        x = layers.Conv2D(f, kernel, padding="same", activation="relu")(x)
        x = _bn(x, batchnorm)
    x = layers.MaxPooling2D(2, padding=pool_padding)(x)
    return _bn(x, batchnorm)


@register("cnn1")
def cnn1(x, batchnorm=True, dropout=0.5):
    """Report model (1): 2x2 convolutions, 32 filters. 2,659,851 parameters; report: 60.94%."""
    x = _bn(x, batchnorm)
    x = _conv_block(x, [32, 32], 2, batchnorm)
    x = _conv_block(x, [32, 32], 2, batchnorm)
    x = _bn(layers.Flatten()(x), batchnorm)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(512, activation="relu")(x)
    x = layers.Dense(512, activation="relu")(x)
    return _bn(x, batchnorm)


@register("cnn2")
def cnn2(x, batchnorm=True, dropout=0.5):
    """Report model (2): 3x3 convolutions of 63, 127, 255, 511 filters. 39,782,273 parameters; 64.14%."""
    x = _bn(x, batchnorm)
    x = _conv_block(x, [63, 127], 3, batchnorm)
    x = _conv_block(x, [255, 511], 3, batchnorm)
    x = _bn(layers.Flatten()(x), batchnorm)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(512, activation="relu")(x)
    x = layers.Dense(512, activation="relu")(x)
    x = _bn(x, batchnorm)
    return layers.Dropout(dropout)(x)


@register("cnn3")
def cnn3(x, batchnorm=True, dropout=0.5):
    """Report model (3), VGG16-like: 13 3x3 convolutions. 16,326,603 parameters; 65.25% (the best).

    Five blocks, each closed by MaxPool and BN; the last pool is 'same' padded (3x3 -> 2x2)."""
    x = _bn(x, batchnorm)
    for i, (filters, n) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]):
        x = _conv_block(x, [filters] * n, 3, batchnorm, pool_padding="same" if i == 4 else "valid")
    x = _bn(layers.Flatten()(x), batchnorm)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(512, activation="relu")(x)
    x = layers.Dense(512, activation="relu")(x)
    x = _bn(x, batchnorm)
    x = layers.Dense(512, activation="relu")(x)
    return _bn(x, batchnorm)


@register("dnn")
def dnn(x, match="cnn3", depth=3, dropout=0.3):
    """A plain fully connected network (report question 2) sized to the CNN `match`.

    `depth` hidden ReLU layers of one width, chosen so the parameter count is the closest to
    `match`'s (tests check it is within 5%)."""
    width = dnn_width(match, depth)
    x = layers.Flatten()(x)
    for _ in range(depth):
        x = layers.Dense(width, activation="relu")(x)
        x = layers.Dropout(dropout)(x)
    return x


def dnn_params(width, depth, inputs=IMAGE_SIZE * IMAGE_SIZE, classes=NUM_CLASSES):
    return inputs * width + width + (depth - 1) * (width * width + width) + width * classes + classes


def dnn_width(match, depth):
    target = build_model(match).count_params()
    # params(width) grows monotonically: bisect for the closest width.
    lo, hi = 1, 1 << 16
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if dnn_params(mid, depth) <= target else (lo, mid)
    return min((lo, hi), key=lambda w: abs(dnn_params(w, depth) - target))

