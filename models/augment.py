"""Data augmentation as Keras 3 layers that run inside the compiled training step.

The report used Keras 2's ImageDataGenerator (rotation, shifts, zoom, horizontal flip). Keras 3
dropped it; its separate preprocessing layers resample the image once per transform. Here
rotation, shift, zoom and flip are composed into one affine matrix per image and applied with a
single bilinear resampling instead of four (benchmarks/augment.py). Written with keras.ops and
keras.random, so it runs under TensorFlow, JAX and PyTorch; both layers are the identity outside
training (also when called without `training`).
"""
import math

from ferkit.backend import import_keras

keras = import_keras()  # TensorFlow's start-up notices stay off stderr
ops = keras.ops


@keras.saving.register_keras_serializable(package="ferkit")
class RandomAffine(keras.layers.Layer):
    """Random rotation (degrees), shift (fraction of size), zoom (fraction) and horizontal flip,
    fused into one resampling. `fill_mode` as ImageDataGenerator's default: 'nearest'.

    `resampler`: 'gather' is `affine_resample` (plain keras.ops, XLA compiles it); 'kernel' is
    keras.ops.image.affine_transform, on TensorFlow its ImageProjectiveTransformV3 kernel, twice as
    fast outside XLA but with no XLA lowering; 'auto' takes the kernel where Keras would not
    compile with XLA anyway (TensorFlow on a machine without GPUs, as `jit_compile="auto"`
    decides) and the gathers elsewhere. With the kernel the layer says `supports_jit = False`, so
    an explicit `compile(jit_compile=True)` falls back to no XLA instead of failing."""

    def __init__(self, rotation=15.0, shift=0.1, zoom=0.1, flip=True, fill_mode="nearest", seed=None,
                 resampler="auto", **kwargs):
        super().__init__(**kwargs)
        if resampler not in ("auto", "gather", "kernel"):
            raise ValueError(f"resampler {resampler!r}: expected 'auto', 'gather' or 'kernel'")
        self.rotation, self.shift, self.zoom, self.flip = float(rotation), float(shift), float(zoom), bool(flip)
        self.fill_mode, self.resampler = fill_mode, resampler
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        if resampler == "auto":
            resampler = "kernel" if _tensorflow_without_accelerator() else "gather"
        self.use_kernel = resampler == "kernel" or fill_mode != "nearest"  # the gathers do 'nearest' only
        self.supports_jit = not (self.use_kernel and keras.backend.backend() == "tensorflow")

    def call(self, images, training=None):
        if not training:
            return images
        images = ops.cast(images, "float32")
        shape = ops.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        transform = self.random_transform(batch, height, width)
        if self.use_kernel:
            return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode=self.fill_mode)
        return affine_resample(images, transform)

    def random_transform(self, batch, height, width):
        """Per-image [a0, a1, a2, b0, b1, b2, 0, 0]: output pixel (x, y) samples input pixel
        (a0 x + a1 y + a2, b0 x + b1 y + b2)."""
        uniform = lambda lo, hi: keras.random.uniform((batch,), lo, hi, seed=self.seed_generator)  # noqa: E731
        angle = uniform(-1.0, 1.0) * (self.rotation * math.pi / 180.0)
        scale = 1.0 / uniform(1.0 - self.zoom, 1.0 + self.zoom)  # output->input: inverse zoom
        w = ops.cast(width, "float32")
        h = ops.cast(height, "float32")
        tx = uniform(-self.shift, self.shift) * w
        ty = uniform(-self.shift, self.shift) * h
        if self.flip:
            sign = ops.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0)
        else:
            sign = ops.ones((batch,))
        cos, sin = ops.cos(angle) * scale, ops.sin(angle) * scale
        # M = scale * R(angle) * diag(sign, 1), about the image centre, then shifted.
        a0, a1 = cos * sign, -sin
        b0, b1 = sin * sign, cos
        cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
        a2 = cx - a0 * cx - a1 * cy - tx
        b2 = cy - b0 * cx - b1 * cy - ty
        zeros = ops.zeros_like(a0)
        return ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rotation": self.rotation, "shift": self.shift, "zoom": self.zoom,
                "flip": self.flip, "fill_mode": self.fill_mode, "seed": self.seed, "resampler": self.resampler}


def _tensorflow_without_accelerator():
    """True on the TensorFlow backend when TensorFlow sees no GPU or TPU: there Keras'
    jit_compile="auto" trains without XLA (Trainer._resolve_auto_jit_compile, Keras 3.15)."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return all(d.device_type == "CPU" for d in tf.config.list_physical_devices())


def affine_resample(images, transform):
    """Bilinear resampling of float images (B, H, W, C) by per-image `transform` rows
    [a0, a1, a2, b0, b1, b2, 0, 0], with fill mode 'nearest' (coordinates clamped to the image),
    as `keras.ops.image.affine_transform(..., "bilinear", "nearest")` computes it on TensorFlow.

    Plain keras.ops gathers, so XLA compiles it: TensorFlow's ImageProjectiveTransformV3 kernel,
    behind ops.image.affine_transform, has no XLA lowering (jit_compile=True, and
    jit_compile="auto" on a GPU, fail on it). RandomAffine(resampler=...) chooses between them."""
    shape = ops.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    ys = ops.cast(ops.arange(height), "float32")[None, :, None]
    xs = ops.cast(ops.arange(width), "float32")[None, None, :]
    a0, a1, a2, b0, b1, b2 = (transform[:, i][:, None, None] for i in range(6))
    sx = ops.clip(a0 * xs + (a1 * ys + a2), 0.0, ops.cast(width - 1, "float32"))
    sy = ops.clip(b0 * xs + (b1 * ys + b2), 0.0, ops.cast(height - 1, "float32"))
    x0, y0 = ops.floor(sx), ops.floor(sy)
    wx, wy = ops.expand_dims(sx - x0, -1), ops.expand_dims(sy - y0, -1)
    x0, y0 = ops.cast(x0, "int32"), ops.cast(y0, "int32")
    x1, y1 = ops.minimum(x0 + 1, width - 1), ops.minimum(y0 + 1, height - 1)
    base = ops.reshape(ops.arange(batch, dtype="int32") * (height * width), (-1, 1, 1))
    flat = ops.reshape(images, (-1, channels))

    def pick(y, x):
        return ops.take(flat, base + y * width + x, axis=0)

    top = pick(y0, x0) * (1.0 - wx) + pick(y0, x1) * wx
    bottom = pick(y1, x0) * (1.0 - wx) + pick(y1, x1) * wx
    return top * (1.0 - wy) + bottom * wy


@keras.saving.register_keras_serializable(package="ferkit")
class RandomErasing(keras.layers.Layer):
    """Random erasing (Zhong et al. 2017): with probability `rate`, one rectangle of `area`
    (fraction of the image) and aspect ratio in [1/3, 3] is filled with uniform noise.

    Not keras.layers.RandomErasing (Keras 3.15.1), which does not behave as training-only
    augmentation must: its call defaults to training=True, so `model(x)` without `training` erases
    faces (tests/test_models.py shows it); its noise is N(0, 255^2) clipped to 0..255, which makes
    half the erased pixels black and a sixth white; and a float `factor` p erases with a
    probability drawn from U(0, p), p/2 on average. Measured on 2,000 faces under TensorFlow and
    PyTorch: 50% of the erased pixels 0 and 16% 255; our layer: uniform noise, rate as given."""

    def __init__(self, rate=0.5, area=(0.02, 0.25), value_range=255.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.area, self.value_range, self.seed = float(rate), tuple(area), float(value_range), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training or self.rate <= 0:
            return images
        shape = ops.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        uniform = lambda lo, hi: keras.random.uniform((batch, 1, 1, 1), lo, hi, seed=self.seed_generator)  # noqa: E731
        area = uniform(*self.area)
        log_aspect = uniform(math.log(1 / 3), math.log(3))
        aspect = ops.exp(log_aspect)
        h = ops.minimum(ops.sqrt(area * aspect), 1.0)
        w = ops.minimum(ops.sqrt(area / aspect), 1.0)
        y0 = uniform(0.0, 1.0) * (1.0 - h)
        x0 = uniform(0.0, 1.0) * (1.0 - w)
        ys = (ops.cast(ops.arange(height), "float32") + 0.5) / ops.cast(height, "float32")
        xs = (ops.cast(ops.arange(width), "float32") + 0.5) / ops.cast(width, "float32")
        ys = ops.reshape(ys, (1, -1, 1, 1))
        xs = ops.reshape(xs, (1, 1, -1, 1))
        inside = (ys >= y0) & (ys < y0 + h) & (xs >= x0) & (xs < x0 + w) & (uniform(0.0, 1.0) < self.rate)
        noise = keras.random.uniform(ops.shape(images), 0.0, self.value_range, seed=self.seed_generator)
        return ops.where(inside, ops.cast(noise, images.dtype), images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "area": self.area, "value_range": self.value_range,
                "seed": self.seed}


def augmentation(rotation=15.0, shift=0.1, zoom=0.1, flip=True, erasing=0.0, seed=None, resampler="auto"):
    """The training-time augmentation block: one fused affine resampling, then optional erasing.

    Defaults follow the report's ImageDataGenerator setup (rotation, shifts, zoom, flip)."""
    steps = [RandomAffine(rotation, shift, zoom, flip, seed=seed, resampler=resampler, name="augment_affine")]
    if erasing > 0:
        steps.append(RandomErasing(erasing, seed=None if seed is None else seed + 1, name="augment_erase"))
    return keras.Sequential(steps, name="augment")
