"""A VGG-style network for a GPU: the course report's cnn3 design, rebalanced.

cnn3 spends 12 of its 16.3M parameters on 512-channel convolutions at 6x6 and 3x3 pixels. `fervgg`
keeps VGG's plain Conv-BN-ReLU pairs (Khaireddin & Chen 2021 reach 73% on FER2013 with such a
network) in four stages at 48, 24, 12 and 6 pixels, and one modest dense layer on the 3x3 map:
5.9M parameters (11.8 MB as float16) at about two thirds of cnn3's compute.
"""
from ferkit.backend import import_keras

from .registry import register

keras = import_keras()  # TensorFlow's start-up notices stay off stderr
layers = keras.layers


def _conv_bn(x, filters):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal")(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


@register("fervgg")
def fervgg(x, width=64, dense=256, dropout=0.5):
    """Four stages of two 3x3 Conv-BN-ReLU with width, 2, 4 and 8 times width channels, each
    closed by MaxPool 2x2 (48 -> 3 pixels); then Flatten, Dense-BN-ReLU and dropout."""
    for stage in range(4):
        for _ in range(2):
            x = _conv_bn(x, width * 2**stage)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense, use_bias=False, kernel_initializer="he_normal")(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    return layers.Dropout(dropout)(x)
