"""Experiment: Keras 3 BatchNormalization through TensorFlow's fused kernel (FusedBatchNormV3).

Keras 3 computes batch norm from keras.ops: moments (mean, squared difference, mean) and then
normalize/scale/shift, each its own pass over the activations, and as many again in the
gradient. TensorFlow's FusedBatchNormV3 does the forward pass in two and the backward in two.
`patch()` routes keras.layers.BatchNormalization.call through it on the TensorFlow backend
(axis last, 2-D or 4-D inputs, no mask/renorm/synchronized; otherwise the stock call). The
layer's variables are unchanged, so weights load either way. Used by
benchmarks/train_throughput.py --fused-bn to measure what it is worth.

Outputs, gradients and moving statistics match the stock layer to float32 rounding.
"""
import keras

_STOCK_CALL = keras.layers.BatchNormalization.call


def fused_call(self, inputs, training=None, mask=None):
    import tensorflow as tf

    rank = len(inputs.shape)
    axis = self.axis if not isinstance(self.axis, (list, tuple)) else self.axis[0]
    if (keras.backend.backend() != "tensorflow" or mask is not None or self.renorm or self.synchronized
            or rank not in (2, 4) or axis not in (-1, rank - 1) or self.epsilon < 1.001e-5):
        return _STOCK_CALL(self, inputs, training=training, mask=mask)
    x = tf.cast(inputs, "float32")
    channels = x.shape[-1]
    x4 = tf.reshape(x, (-1, 1, 1, channels)) if rank == 2 else x
    gamma = tf.convert_to_tensor(self.gamma) if self.scale else tf.ones((channels,), "float32")
    beta = tf.convert_to_tensor(self.beta) if self.center else tf.zeros((channels,), "float32")
    moving_mean = tf.convert_to_tensor(self.moving_mean)
    moving_var = tf.convert_to_tensor(self.moving_variance)
    if training and self.trainable:
        y, mean, var = tf.compat.v1.nn.fused_batch_norm(
            x4, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
        # The kernel returns the unbiased (n/(n-1)) batch variance; Keras tracks the biased one.
        n = tf.cast(tf.size(x4) // channels, "float32")
        var = var * (n - 1.0) / n
        self.moving_mean.assign(moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(moving_var * self.momentum + var * (1.0 - self.momentum))
    else:
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            x4, gamma, beta, mean=moving_mean, variance=moving_var, epsilon=self.epsilon,
            data_format="NHWC", is_training=False)
    if rank == 2:
        y = tf.reshape(y, tf.shape(x))
    return tf.cast(y, self.compute_dtype)


def patch():
    keras.layers.BatchNormalization.call = fused_call


def unpatch():
    keras.layers.BatchNormalization.call = _STOCK_CALL
