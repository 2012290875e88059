"""How fast a registered model trains and predicts, as ferkit/train/loop.py runs it: the measurements
behind benchmarks/train_throughput.py and benchmarks/augment.py (docs/PERFORMANCE.md).

    r = measure_keras("cnn1", batch_size=64, steps=30)    # images/s and per CPU-second, FLOPs
    matmul_peak("float32")                                 # FLOP/s of a 2048x2048 matmul, for MFU
"""
import math
import os
import time

import numpy as np

from ferkit.backend import import_keras
from ferkit.train.config import parse_options
from ferkit.infer import predict_batches
from ferkit.runs.folder import hardware

keras = import_keras()  # TensorFlow's start-up notices stay off stderr


def machine():
    """The host, as run.json names it: CPU model, vector width, cores."""
    return hardware()


def forward_macs(model):
    """Multiply-accumulates of one image's forward pass, from the layers' shapes: Conv2D,
    DepthwiseConv2D, SeparableConv2D and Dense (any nested models are walked into)."""
    total = 0
    for layer in _leaf_layers(model):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)):
            out_hw = math.prod(layer.output.shape[1:3])
            in_ch = layer.input.shape[-1]
            kh, kw = layer.kernel_size
            if isinstance(layer, keras.layers.DepthwiseConv2D):
                total += out_hw * in_ch * layer.depth_multiplier * kh * kw
            elif isinstance(layer, keras.layers.SeparableConv2D):
                mid = in_ch * layer.depth_multiplier
                total += out_hw * mid * kh * kw + out_hw * mid * layer.filters
            else:
                total += out_hw * layer.filters * kh * kw * in_ch // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            rows = math.prod(layer.input.shape[1:-1]) if len(layer.input.shape) > 2 else 1
            total += rows * layer.input.shape[-1] * layer.units
    return int(total)


def _leaf_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _leaf_layers(layer)
        else:
            yield layer


def matmul_peak(dtype="float32", n=2048, seconds=2.0):
    """FLOP/s of an n x n matrix multiply through keras.ops (best of repeated timings)."""
    rng = np.random.default_rng(0)
    a = keras.ops.convert_to_tensor(rng.standard_normal((n, n)).astype("float32"), dtype=dtype)
    b = keras.ops.convert_to_tensor(rng.standard_normal((n, n)).astype("float32"), dtype=dtype)
    sync(keras.ops.matmul(a, b))
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        sync(keras.ops.matmul(a, b))
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def sync(x):
    """Wait for x to be computed (JAX and torch may return before it is); cast first, since
    TensorFlow cannot hand a bfloat16 tensor to numpy."""
    keras.ops.convert_to_numpy(keras.ops.cast(x[0, 0], "float32"))


def measure_keras(name, batch_size=64, steps=30, warmup=3, infer_batch_size=256, augment=True, standardize=True,
                  options=(), jit_compile="auto", steps_per_execution=1, seed=0):
    """Training and inference images/s (wall and per CPU-second) of registered model `name` in
    the current backend, through model.fit/predict on uint8 arrays as ferkit/train/loop.py feeds them
    (Adam, categorical cross-entropy; `options` as train_cnn.py's --option KEY=VALUE strings)."""
    import models

    # under jit_compile=True the augmentation must resample with XLA-compilable gathers (models/augment.py)
    augment = {"erasing": 0.0, "seed": 1, "resampler": "gather" if jit_compile is True else "auto"} if augment else None
    model = models.build_model(name, augment=augment,
                               preprocess={"standardize": standardize}, **parse_options(list(options)))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.CategoricalCrossentropy(),
                  metrics=["accuracy"], jit_compile=jit_compile, steps_per_execution=steps_per_execution)
    macs = forward_macs(model)
    rng = np.random.default_rng(seed)
    n = steps * batch_size
    x = rng.integers(0, 256, size=(n, 48, 48, 1), dtype=np.uint8)
    y = keras.utils.to_categorical(rng.integers(0, 7, size=n), 7)
    # Warm-up fit: traces and compiles the train function (kept for the next fit).
    warm = max(warmup, steps_per_execution) * batch_size
    model.fit(x[:warm], y[:warm], batch_size=batch_size, epochs=1, verbose=0)
    # The timed fit, whole: per-batch callbacks mistime steps_per_execution > 1.
    t, c = time.perf_counter(), time.process_time()
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=True)
    train_ips, train_ipc = n / (time.perf_counter() - t), n / (time.process_time() - c)

    xi = np.resize(x, (max(1, min(16, n // infer_batch_size)) * infer_batch_size,) + x.shape[1:])  # whole batches
    predict_batches(model, xi[:infer_batch_size], infer_batch_size)
    t, c = time.perf_counter(), time.process_time()
    predict_batches(model, xi, infer_batch_size)
    infer_ips, infer_ipc = len(xi) / (time.perf_counter() - t), len(xi) / (time.process_time() - c)
    return {"model": name, "params": int(model.count_params()), "forward_mflops": 2 * macs / 1e6,
            "train_images_per_s": train_ips, "infer_images_per_s": infer_ips,
            "train_images_per_cpu_s": train_ipc, "infer_images_per_cpu_s": infer_ipc,
            "train_gflops_per_s": 3 * 2 * macs * train_ips / 1e9}


def tensorflow_line():
    """'TensorFlow <version>, TF_ENABLE_ONEDNN_OPTS=<value>' for a benchmark header (the variable
    decides whether TensorFlow uses its oneDNN kernels; ferkit.backend.configure_tensorflow sets it)."""
    import tensorflow as tf

    return f"TensorFlow {tf.__version__}, TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}"
