"""Input preprocessing inside the model, after scaling to 0..1.

`standardize`: per-image standardization (zero mean, unit std), which takes each face's
brightness and contrast out before the first convolution. Off with `--no-standardize`, when
the models start with plain rescaling, as the course report's did.
"""
import math

from ferkit.backend import import_keras

keras = import_keras()  # TensorFlow's start-up notices stay off stderr
ops = keras.ops


@keras.saving.register_keras_serializable(package="ferkit")
class Standardize(keras.layers.Layer):
    """Per-image standardization: (x - mean) / max(std, 1/sqrt(pixels)), as tf.image.per_image_standardization."""

    def call(self, images):
        mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
        std = ops.std(images, axis=(1, 2, 3), keepdims=True)
        pixels = images.shape[1] * images.shape[2] * images.shape[3]
        return (images - mean) / ops.maximum(std, 1.0 / math.sqrt(pixels))

    def compute_output_shape(self, input_shape):
        return input_shape
