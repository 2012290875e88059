#!/usr/bin/env python
"""Images/s of the training augmentation, against the report's ImageDataGenerator pipeline.

    python benchmarks/augment.py                      # all 28,709 training images
    python benchmarks/augment.py --limit 4096         # a representative subset, quicker
    python benchmarks/augment.py --no-step            # skip the cnn1 training-step overhead

Every pipeline applies the same ranges to batches of --batch-size uint8 images: rotation up to
15 degrees, shifts up to 10% of the size, zoom up to 10%, horizontal flip, 'nearest' fill and
bilinear interpolation.

  ours (fused affine)    models.augment.RandomAffine in training mode, in a tf.function as it
                         runs inside the training step: one resampling per image, by TensorFlow's
                         kernel on a machine without GPUs (resampler 'auto')
  ours, gathers          the same with resampler='gather' (models.augment.affine_resample, plain
                         keras.ops: what JAX, PyTorch and XLA run)
  ours under XLA         the gathers in a jit_compile=True function
  ImageDataGenerator     the report's Keras 2 pipeline (tf.keras.preprocessing.image, kept by
                         TensorFlow 2.21 as a legacy API): .flow() over the array, one scipy
                         affine_transform per image in Python
  4 Keras layers         RandomRotation, RandomTranslation, RandomZoom, RandomFlip in a
                         tf.function: four resamplings

Then the cost inside training: cnn1's training step (model.fit, batch 64 as ferkit/train/loop.py) with
and without the augmentation layer (timed by ferkit/train/throughput.py, as benchmarks/train_throughput.py).
"""
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as `python benchmarks/augment.py`: the packages live one level up

from ferkit.backend import configure_tensorflow  # noqa: E402
from ferkit.cli import Parser, non_negative_int, positive_int, run_main  # noqa: E402
from ferkit.errors import FERError  # noqa: E402

DEFAULT_CSV = os.path.join(os.path.dirname(ROOT), "shared", "data", "fer2013", "train.csv.gz")
ROTATION, SHIFT, ZOOM = 15.0, 0.1, 0.1


def build_parser():
    p = Parser(prog="augment.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--train-csv", default=DEFAULT_CSV, help="images to augment (synthetic faces if missing)")
    p.add_argument("--limit", type=positive_int, default=None, help="use only the first N images")
    p.add_argument("--batch-size", type=positive_int, default=128, help="images per augmented batch")
    p.add_argument("--repeats", type=positive_int, default=2, help="passes over the images per pipeline; the best counts")
    p.add_argument("--no-step", dest="step", action="store_false", help="skip the cnn1 training-step overhead")
    p.add_argument("--step-batch-size", type=positive_int, default=64,
                   help="cnn1 training batch (default: %(default)s, as ferkit/train/loop.py)")
    p.add_argument("--steps", type=positive_int, default=40, help="timed cnn1 training steps per variant")
    p.add_argument("--threads", type=non_negative_int, default=0,
                   help="TensorFlow intra- and inter-op threads (0: TF's default); with 1, the img/CPU-s "
                        "column is what a busy machine does not distort")
    return p


def load_images(path, limit):
    import data

    if os.path.exists(path):
        images = data.load_csv(path).images
        source = os.path.basename(path)
    else:
        from data.synthetic import make_faces

        images, _ = make_faces(limit or 28709, seed=0)
        source = "synthetic faces (no training CSV found)"
    return (images[:limit] if limit else images), source


def time_pipeline(run_epoch, n_images, repeats):
    """Best (images/s, images per CPU-second) over `repeats` passes; run_epoch() makes one pass."""
    best, best_cpu = 0.0, 0.0
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        run_epoch()
        best = max(best, n_images / (time.perf_counter() - t))
        best_cpu = max(best_cpu, n_images / (time.process_time() - c))
    return best, best_cpu


def batches(images, batch_size):
    for i in range(0, len(images) - batch_size + 1, batch_size):  # whole batches: one trace
        yield images[i:i + batch_size]


def pipelines(images, batch_size):
    """{name: (warm-up fn, one-pass fn)}: each pass augments every whole batch of `images`."""
    import numpy as np

    from ferkit.backend import import_keras
    from models.augment import RandomAffine

    keras = import_keras()

    out = {}
    backend = keras.backend.backend()
    ours = RandomAffine(ROTATION, SHIFT, ZOOM, True, seed=1)
    gathers = RandomAffine(ROTATION, SHIFT, ZOOM, True, seed=1, resampler="gather")
    keras_layers = keras.Sequential([
        keras.layers.RandomRotation(ROTATION / 360.0, fill_mode="nearest", seed=1),
        keras.layers.RandomTranslation(SHIFT, SHIFT, fill_mode="nearest", seed=2),
        keras.layers.RandomZoom(ZOOM, ZOOM, fill_mode="nearest", seed=3),
        keras.layers.RandomFlip("horizontal", seed=4),
    ])

    def sink(y):
        return keras.ops.convert_to_numpy(y[0, 0, 0])  # wait for the result

    if backend == "tensorflow":
        import tensorflow as tf

        steps = {
            "ours: RandomAffine (fused, 1 resampling)": tf.function(lambda x: ours(x, training=True)),
            "ours, gathers (resampler='gather')": tf.function(lambda x: gathers(x, training=True)),
            "ours, gathers under XLA (jit_compile=True)": tf.function(lambda x: gathers(x, training=True),
                                                                      jit_compile=True),
            "4 Keras preprocessing layers": tf.function(lambda x: keras_layers(tf.cast(x, "float32"), training=True)),
        }
    else:  # eager calls: JAX/torch would need a stateless rewrite to jit
        steps = {
            "ours: RandomAffine (fused, eager)": lambda x: ours(x, training=True),
            "4 Keras preprocessing layers (eager)": lambda x: keras_layers(keras.ops.cast(x, "float32"), training=True),
        }
    for name, fn in steps.items():
        def one_pass(fn=fn):
            for b in batches(images, batch_size):
                y = fn(b)
            sink(y)

        out[name] = (lambda fn=fn: sink(fn(images[:batch_size])), one_pass)

    gen = _image_data_generator()
    if gen is not None:
        def idg_pass():
            flow = gen.flow(images, batch_size=batch_size, shuffle=True, seed=0)
            for _ in range(len(images) // batch_size):
                y = next(flow)
            assert y.shape[1:] == images.shape[1:] and y.dtype == np.float32

        out["ImageDataGenerator (report, Keras 2 API)"] = (lambda: next(gen.flow(images[:batch_size])), idg_pass)
    return out


def _image_data_generator():
    """The report's generator with its ranges, from tf.keras (TF 2.21 keeps the legacy class)."""
    try:
        import tensorflow as tf

        cls = tf.keras.preprocessing.image.ImageDataGenerator
    except (ImportError, AttributeError):
        print("(ImageDataGenerator not available: tensorflow is not installed, or has no tf.keras)")
        return None
    return cls(rotation_range=ROTATION, width_shift_range=SHIFT, height_shift_range=SHIFT, zoom_range=ZOOM,
               horizontal_flip=True, fill_mode="nearest")


def step_overhead(args):
    """cnn1 training (images/s, images per CPU-second), without and with the augmentation layer."""
    from ferkit.train.throughput import measure_keras

    out = {}
    for augment in (False, True):
        r = measure_keras("cnn1", batch_size=args.step_batch_size, steps=args.steps, augment=augment,
                          standardize=False)
        out[augment] = (r["train_images_per_s"], r["train_images_per_cpu_s"])
    return out


def main(argv=None):
    return run_main(lambda: benchmark(build_parser().parse_args(argv)))


def benchmark(args):
    # The images first: a batch larger than them would time no batch at all. Refused in one line,
    # before Keras loads (a smaller --batch-size or a larger --limit is the user's choice to make).
    images, source = load_images(args.train_csv, args.limit)
    if args.batch_size > len(images):
        raise FERError(f"--batch-size {args.batch_size}: larger than the {len(images)} images of {source}; "
                       f"give --batch-size {len(images)} or less")
    configure_tensorflow()  # as the training scripts: before TensorFlow loads
    from ferkit.backend import import_keras

    keras = import_keras()
    from ferkit.train import throughput

    if args.threads and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    n = (len(images) // args.batch_size) * args.batch_size
    print(f"machine: {throughput.machine()}; Keras {keras.__version__}, backend {keras.backend.backend()}"
          + (f", {throughput.tensorflow_line()}" if keras.backend.backend() == "tensorflow" else ""))
    print(f"{n:,} images from {source}, batches of {args.batch_size}; best of {args.repeats} passes"
          + (f"; TensorFlow threads {args.threads}" if args.threads else ""))
    header = f"{'pipeline':<44} {'images/s':>10} {'vs generator':>13} {'img/CPU-s':>10} {'vs generator':>13}"
    print(header)
    print("-" * len(header))
    results = {}
    for name, (warm, one_pass) in pipelines(images, args.batch_size).items():
        warm()
        results[name] = time_pipeline(one_pass, n, args.repeats)
    base = next((v for k, v in results.items() if k.startswith("ImageDataGenerator")), None)
    for name, (ips, ipc) in results.items():
        ratio = f"{ips / base[0]:.1f}x" if base else "-"
        ratio_cpu = f"{ipc / base[1]:.1f}x" if base else "-"
        print(f"{name:<44} {ips:>10,.0f} {ratio:>13} {ipc:>10,.0f} {ratio_cpu:>13}", flush=True)

    if args.step:
        r = step_overhead(args)
        bs = args.step_batch_size
        print(f"\ncnn1 training step, batch {bs} (model.fit, {args.steps} steps): wall ms, CPU ms")
        (w0, c0), (w1, c1) = [(1000 * bs / r[a][0], 1000 * bs / r[a][1]) for a in (False, True)]
        print(f"  without augmentation  {w0:7.1f} ms/step  {c0:7.1f} CPU-ms/step")
        print(f"  with RandomAffine     {w1:7.1f} ms/step  {c1:7.1f} CPU-ms/step")
        print(f"  augmentation adds     {w1 - w0:7.1f} ms ({(w1 - w0) / w0:+.1%})  {c1 - c0:7.1f} CPU-ms "
              f"({(c1 - c0) / c0:+.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
