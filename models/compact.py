"""Compact networks that a 2-core CPU trains past the report's best in about two hours.

On a CPU the budget is compute per image, not parameters: the report's cnn3 costs ~700 MMAC
per image (docs/PERFORMANCE.md) and trains at a few images/s here. `fernet` downsamples early (a stride-2 stem after
one full-resolution convolution), then runs pre-activation-free residual blocks (Conv-BN-ReLU,
He et al. 2016) at 24x24, 12x12, 6x6 and 3x3, and ends in global average pooling instead of
large dense layers. Plain 3x3 convolutions, which oneDNN runs efficiently on a CPU
(fernet reaches the highest MFU of the small models in benchmarks/train_throughput.py).
"""
from ferkit.backend import import_keras

from .registry import register

keras = import_keras()  # TensorFlow's start-up notices stay off stderr
layers = keras.layers


def _conv_bn(x, filters, kernel=3, strides=1, relu=True, name=None):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=name)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x) if relu else x


def _residual(x, filters, strides=1):
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, kernel=1, strides=strides, relu=False)
    y = _conv_bn(x, filters, strides=strides)
    y = _conv_bn(y, filters, relu=False)
    return layers.ReLU()(layers.Add()([shortcut, y]))


@register("fernet")
def fernet(x, width=32, blocks=(1, 2, 2, 1), dropout=0.3):
    """ResNet-style compact CNN: stem at 48x48, then stages of `blocks` residual blocks with
    width, 2*width, 4*width, 8*width channels at 24, 12, 6 and 3 pixels."""
    x = _conv_bn(x, width)  # 48x48: one full-resolution convolution for fine edges
    x = layers.MaxPooling2D(2)(x)  # 24x24
    for stage, n in enumerate(blocks):
        for i in range(n):
            x = _residual(x, width * 2**stage, strides=2 if (i == 0 and stage > 0) else 1)
    x = layers.GlobalAveragePooling2D()(x)
    return layers.Dropout(dropout)(x)
