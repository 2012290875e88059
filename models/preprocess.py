"""Input preprocessing inside the model, active in training and inference alike.

Why: in this copy of FER2013 the training split is degraded against the test splits.
`python benchmarks/domain_shift.py` measures it: training faces are blurred (mean absolute
horizontal gradient 3.7 against 13.7; the amplitude spectrum of train/public_test falls to
~0.56 at 4 cycles per image along the axes and ~0.1 on the diagonal) and have less contrast
(median per-image pixel std 37.7 against 53.6). A network trained on them meets the sharp,
contrasty test faces out of distribution. Two parameter-free layers remove most of both
differences before the network: a fixed Gaussian blur (sigma 2.5 px), which brings test faces
down to the training faces' sharpness (the training faces, already blurred, change little), and
per-image standardization (zero mean, unit std), which removes the contrast difference.
"""
import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="fer")
class GaussianBlur(keras.layers.Layer):
    """Fixed separable Gaussian blur with reflected borders; sigma in pixels."""

    def __init__(self, sigma=2.5, **kwargs):
        super().__init__(**kwargs)
        self.sigma = float(sigma)
        radius = max(1, int(math.ceil(3 * self.sigma)))
        taps = [math.exp(-0.5 * (i / self.sigma) ** 2) for i in range(-radius, radius + 1)]
        total = sum(taps)
        self.radius, self.taps = radius, [t / total for t in taps]

    def call(self, images):
        r = self.radius
        x = ops.pad(images, [[0, 0], [r, r], [r, r], [0, 0]], mode="reflect")
        k = ops.convert_to_tensor(self.taps, dtype=x.dtype)
        channels = images.shape[-1]
        kx = ops.tile(ops.reshape(k, (1, -1, 1, 1)), (1, 1, channels, 1))
        ky = ops.tile(ops.reshape(k, (-1, 1, 1, 1)), (1, 1, channels, 1))
        x = ops.depthwise_conv(x, kx, padding="valid")
        return ops.depthwise_conv(x, ky, padding="valid")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma}


@keras.saving.register_keras_serializable(package="fer")
class Standardize(keras.layers.Layer):
    """Per-image standardization: (x - mean) / max(std, 1/sqrt(pixels)), as tf.image.per_image_standardization."""

    def call(self, images):
        mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
        std = ops.std(images, axis=(1, 2, 3), keepdims=True)
        pixels = images.shape[1] * images.shape[2] * images.shape[3]
        return (images - mean) / ops.maximum(std, 1.0 / math.sqrt(pixels))

    def compute_output_shape(self, input_shape):
        return input_shape
