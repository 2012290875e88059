#!/usr/bin/env python
"""Training and inference throughput of the registered models, with FLOPs and MFU.

    python benchmarks/train_throughput.py                              # every model, this backend
    python benchmarks/train_throughput.py --models cnn1,fernet --steps 30
    KERAS_BACKEND=torch python benchmarks/train_throughput.py --models cnn1
    python benchmarks/train_throughput.py --models cnn1 --precision mixed_bfloat16
    python benchmarks/train_throughput.py --models cnn1 --jit-compile true --no-augment

For each model: training images/s through `model.fit` exactly as ferkit/train.py calls it (uint8
numpy arrays, Adam, categorical cross-entropy, the default augmentation layer and preprocessing
(per-image standardization) inside the model unless told otherwise), one whole fit of --steps batches after a warm-up fit; inference
images/s through `model.predict`; forward FLOPs per image counted analytically from the layer
shapes (convolution and dense multiply-adds x 2; batch norm, pooling and activations are not
counted); the measured peak of a 2048x2048 matrix multiply through keras.ops in the same backend
and dtype; and MFU = training FLOP/s (3 x forward FLOPs x images/s) / that peak.

With torch importable, a plain-PyTorch cnn1 (the same layers as models/report.py, channels-last
memory format) is measured too, in a subprocess so that the two frameworks' thread pools never
compete. --json writes all figures to a file.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (ROOT, os.path.dirname(os.path.abspath(__file__))):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", default=None, help="comma-separated model names (default: all registered)")
    p.add_argument("--batch-size", type=int, default=64, help="training batch (ferkit/train.py's default)")
    p.add_argument("--infer-batch-size", type=int, default=256, help="inference batch (predict.py's default)")
    p.add_argument("--precision", choices=["float32", "mixed_bfloat16"], default="float32")
    p.add_argument("--steps", type=int, default=30, help="timed training steps per model")
    p.add_argument("--warmup", type=int, default=3, help="untimed training steps first (tracing, allocation)")
    p.add_argument("--no-augment", dest="augment", action="store_false",
                   help="train without the augmentation layer (default: with it, as ferkit/train.py)")
    p.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="no per-image standardization (ferkit/train.py's default has it)")
    p.add_argument("--jit-compile", choices=["auto", "true", "false"], default="auto",
                   help="model.compile(jit_compile=...); 'auto' is what ferkit/train.py uses")
    p.add_argument("--threads", type=int, default=0,
                   help="threads for every framework: TF intra- and inter-op, torch, JAX's XLA (0: their defaults); "
                        "--threads 1 with the img/CPU-s columns gives figures a busy machine does not distort")
    p.add_argument("--intra-op", type=int, default=0, help="TensorFlow intra-op threads (0: TF's default)")
    p.add_argument("--inter-op", type=int, default=0, help="TensorFlow inter-op threads (0: TF's default)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="model option for every model, e.g. --option batchnorm=False (profiling)")
    p.add_argument("--fused-bn", action="store_true",
                   help="experiment: BatchNormalization through TF's fused kernel (benchmarks/tf_fused_bn.py)")
    p.add_argument("--steps-per-execution", type=int, default=1, help="model.compile(steps_per_execution=...)")
    p.add_argument("--no-torch", dest="torch", action="store_false", help="skip the plain-PyTorch cnn1 reference")
    p.add_argument("--torch-only", action="store_true", help="measure only the PyTorch reference")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    return p


# ---------------------------------------------------------------- FLOPs


def forward_macs(model):
    """Multiply-accumulates of one image's forward pass, from the layers' shapes: Conv2D,
    DepthwiseConv2D, SeparableConv2D and Dense (any nested models are walked into)."""
    import math

    import keras

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


# ---------------------------------------------------------------- Keras measurements


def matmul_peak(dtype="float32", n=2048, seconds=2.0):
    """FLOP/s of an n x n matrix multiply through keras.ops (best of repeated timings)."""
    import numpy as np
    from keras import ops

    rng = np.random.default_rng(0)
    a = ops.convert_to_tensor(rng.standard_normal((n, n)).astype("float32"), dtype=dtype)
    b = ops.convert_to_tensor(rng.standard_normal((n, n)).astype("float32"), dtype=dtype)
    _sync(ops.matmul(a, b))
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        _sync(ops.matmul(a, b))
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def _sync(x):
    """Wait for x to be computed (JAX and torch may return before it is)."""
    from keras import ops

    ops.convert_to_numpy(x[0, 0])


def measure_keras(name, args, rng):
    """Training and inference images/s of registered model `name` in the current backend."""
    import keras
    import numpy as np

    import models

    augment = {"erasing": 0.0, "seed": 1} if args.augment else None
    from ferkit.train import parse_options

    preprocess = {"standardize": getattr(args, "standardize", False)}
    model = models.build_model(name, augment=augment, preprocess=preprocess,
                               **parse_options(getattr(args, "option", [])))
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.CategoricalCrossentropy(),
                  metrics=["accuracy"], jit_compile=jit, steps_per_execution=getattr(args, "steps_per_execution", 1))
    macs = forward_macs(model)

    bs = args.batch_size
    n = args.steps * bs
    x = rng.integers(0, 256, size=(n, 48, 48, 1), dtype=np.uint8)
    y = keras.utils.to_categorical(rng.integers(0, 7, size=n), 7)
    # Warm-up fit: traces and compiles the train function (kept for the next fit).
    spe = getattr(args, "steps_per_execution", 1)
    warm = max(args.warmup, spe) * bs
    model.fit(x[:warm], y[:warm], batch_size=bs, epochs=1, verbose=0)
    # The timed fit, whole: per-batch callbacks mistime steps_per_execution > 1.
    t, c = time.perf_counter(), time.process_time()
    model.fit(x, y, batch_size=bs, epochs=1, verbose=0, shuffle=True)
    train_ips, train_ipc = n / (time.perf_counter() - t), n / (time.process_time() - c)

    ib = args.infer_batch_size
    xi = np.resize(x, (max(1, min(16, n // ib)) * ib,) + x.shape[1:])  # whole batches: one trace
    model.predict(xi[:ib], batch_size=ib, verbose=0)
    t, c = time.perf_counter(), time.process_time()
    model.predict(xi, batch_size=ib, verbose=0)
    infer_ips = len(xi) / (time.perf_counter() - t)
    infer_ipc = len(xi) / (time.process_time() - c)
    return {"model": name, "params": int(model.count_params()), "forward_mflops": 2 * macs / 1e6,
            "train_images_per_s": train_ips, "infer_images_per_s": infer_ips,
            "train_images_per_cpu_s": train_ipc, "infer_images_per_cpu_s": infer_ipc,
            "train_gflops_per_s": 3 * 2 * macs * train_ips / 1e9}


# ---------------------------------------------------------------- plain PyTorch reference


def torch_cnn1_reference(batch_size, steps, warmup, infer_batch_size):
    """Images/s of cnn1 written directly in PyTorch (channels-last), training and inference.

    Same layers as models/report.py cnn1 with batch norm: BN on the input, [Conv 2x2 32 'same' +
    ReLU, BN] x 2, MaxPool, BN, the same again, Flatten, BN, Dropout 0.5, Dense 512 ReLU x 2,
    BN, Dense 7; Adam, cross-entropy, uint8 input scaled by 1/255 inside the step."""
    import numpy as np
    import torch
    from torch import nn

    torch.manual_seed(0)

    def block():
        return [nn.Conv2d(32, 32, 2, padding="same"), nn.ReLU(), nn.BatchNorm2d(32)]

    net = nn.Sequential(
        nn.BatchNorm2d(1),
        nn.Conv2d(1, 32, 2, padding="same"), nn.ReLU(), nn.BatchNorm2d(32), *block(),
        nn.MaxPool2d(2), nn.BatchNorm2d(32),
        *block(), *block(), nn.MaxPool2d(2), nn.BatchNorm2d(32),
        nn.Flatten(), nn.BatchNorm1d(12 * 12 * 32), nn.Dropout(0.5),
        nn.Linear(12 * 12 * 32, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.BatchNorm1d(512),
        nn.Linear(512, 7),
    ).to(memory_format=torch.channels_last)
    # As Keras counts them: batch norm's running mean and variance are weights there, buffers here.
    params = sum(p.numel() for p in net.parameters()) + sum(
        b.numel() for name, b in net.named_buffers() if not name.endswith("num_batches_tracked"))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    n = (steps + warmup) * batch_size
    x_np = rng.integers(0, 256, size=(n, 1, 48, 48), dtype=np.uint8)
    x = torch.from_numpy(x_np)
    y = torch.from_numpy(rng.integers(0, 7, size=n))

    def step(i):
        xb = x[i * batch_size:(i + 1) * batch_size].float().div_(255).contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xb), y[i * batch_size:(i + 1) * batch_size])
        loss.backward()
        opt.step()

    net.train()
    for i in range(warmup):
        step(i)
    t, c = time.perf_counter(), time.process_time()
    for i in range(warmup, warmup + steps):
        step(i)
    train_ips = steps * batch_size / (time.perf_counter() - t)
    train_ipc = steps * batch_size / (time.process_time() - c)

    net.eval()
    xi = torch.from_numpy(np.resize(x_np, (max(1, min(16, n // infer_batch_size)) * infer_batch_size, 1, 48, 48)))
    with torch.inference_mode():
        net(xi[:infer_batch_size].float().div_(255).contiguous(memory_format=torch.channels_last))
        t, c = time.perf_counter(), time.process_time()
        for i in range(0, len(xi), infer_batch_size):
            xb = xi[i:i + infer_batch_size].float().div_(255).contiguous(memory_format=torch.channels_last)
            net(xb).argmax(1)
        infer_ips = len(xi) / (time.perf_counter() - t)
        infer_ipc = len(xi) / (time.process_time() - c)

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(8))
    return {"model": "cnn1 (plain PyTorch)", "params": int(params), "train_images_per_s": train_ips,
            "infer_images_per_s": infer_ips, "train_images_per_cpu_s": train_ipc, "infer_images_per_cpu_s": infer_ipc, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "peak_gflops": 2 * 2048 ** 3 / best / 1e9}


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _torch_in_subprocess(args):
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-only", "--threads", str(args.threads),
           "--batch-size", str(args.batch_size),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--infer-batch-size", str(args.infer_batch_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"PyTorch reference failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- main


def machine():
    model_name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model_name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model_name}, {os.cpu_count()} cores"


def _row(r):
    return (f"{r['model']:<22} {r['params']:>11,} {r['forward_mflops']:>14.1f} {r['train_images_per_s']:>12.1f} "
            f"{r['infer_images_per_s']:>12.1f} {r['train_gflops_per_s']:>14.2f} {r['mfu']:>6.1%} "
            f"{r['train_images_per_cpu_s']:>16.1f} {r['infer_images_per_cpu_s']:>16.1f} {r['mfu_per_cpu_s']:>9.1%}")


def tf_version():
    import tensorflow as tf

    return tf.__version__


def onednn_state():
    """'on' or 'off' (TensorFlow's oneDNN kernels), with the TF_ENABLE_ONEDNN_OPTS setting."""
    env = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset")
    try:
        from tensorflow.python.util import _pywrap_util_port

        state = "on" if _pywrap_util_port.IsMklEnabled() else "off"
    except (ImportError, AttributeError):
        state = "?"
    return f"{state} (TF_ENABLE_ONEDNN_OPTS={env})"


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.threads:
        args.intra_op, args.inter_op = args.intra_op or args.threads, args.inter_op or args.threads
        if args.threads == 1:  # JAX reads this when it loads
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                                       " intra_op_parallelism_threads=1").strip()
    if args.torch_only:
        try:
            import torch
        except ImportError:
            sys.exit("torch is not installed")
        if args.threads:
            torch.set_num_threads(args.threads)
        print(json.dumps(torch_cnn1_reference(args.batch_size, args.steps, args.warmup, args.infer_batch_size)))
        return 0

    from ferbase.quiet import import_keras

    keras = import_keras()  # as the project's scripts import it (same TensorFlow settings)
    import numpy as np

    backend = keras.backend.backend()
    if backend == "torch" and args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if backend == "tensorflow" and (args.intra_op or args.inter_op):
        import tensorflow as tf

        if args.intra_op:
            tf.config.threading.set_intra_op_parallelism_threads(args.intra_op)
        if args.inter_op:
            tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    if args.precision != "float32":
        keras.mixed_precision.set_global_policy(args.precision)
    if args.fused_bn:
        import tf_fused_bn

        tf_fused_bn.patch()

    import models

    names = args.models.split(",") if args.models else models.available()
    compute_dtype = "bfloat16" if args.precision == "mixed_bfloat16" else "float32"
    peak = matmul_peak(compute_dtype)
    print(f"machine: {machine()}; Keras {keras.__version__}, backend {backend}, precision {args.precision}, "
          f"jit_compile {args.jit_compile}, augmentation {'on' if args.augment else 'off'}, "
          f"preprocessing: standardize {'on' if args.standardize else 'off'}, "
          f"batch {args.batch_size}, {args.steps} timed steps"
          + "".join(f", {o}" for o in args.option) + (", fused BN" if args.fused_bn else "")
          + (f", intra/inter-op threads {args.intra_op}/{args.inter_op}" if args.intra_op or args.inter_op else "")
          + (f", {args.threads} thread(s) per framework" if args.threads else "")
          + (f", steps_per_execution {args.steps_per_execution}" if args.steps_per_execution > 1 else ""),
          flush=True)
    if backend == "tensorflow":
        print(f"TensorFlow {tf_version()}; oneDNN ops {onednn_state()}", flush=True)
    print(f"matmul peak (2048x2048 {compute_dtype}, keras.ops): {peak / 1e9:.1f} GFLOP/s", flush=True)
    print("img/s: wall clock; img/CPU-s: per second of process CPU time (all threads), which other load "
          "on the machine barely changes; MFU = 3 x forward FLOPs x train rate / matmul peak (MFU/CPU-s: "
          "with the CPU-time rate, meaningful with --threads 1)")
    header = f"{'model':<22} {'params':>11} {'fwd MFLOP/img':>14} {'train img/s':>12} {'infer img/s':>12} " \
             f"{'train GFLOP/s':>14} {'MFU':>7} {'train img/CPU-s':>16} {'infer img/CPU-s':>16} {'MFU/CPU-s':>10}"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    rows = []
    for name in names:
        r = measure_keras(name, args, rng)
        r["mfu"] = r["train_gflops_per_s"] * 1e9 / peak
        r["mfu_per_cpu_s"] = 3 * r["forward_mflops"] * 1e6 * r["train_images_per_cpu_s"] / peak
        rows.append(r)
        print(_row(r), flush=True)
        keras.backend.clear_session()

    ref = None
    if args.torch and "cnn1" in names:
        try:
            import importlib.util

            have_torch = importlib.util.find_spec("torch") is not None
        except ValueError:
            have_torch = False
        if have_torch:
            ref = _torch_in_subprocess(args)
        if ref:
            cnn1 = next(r for r in rows if r["model"] == "cnn1")
            ref["forward_mflops"] = cnn1["forward_mflops"]
            ref["train_gflops_per_s"] = 3 * cnn1["forward_mflops"] * ref["train_images_per_s"] / 1e3
            ref["mfu"] = ref["train_gflops_per_s"] * 1e9 / peak
            ref["mfu_per_cpu_s"] = 3 * ref["forward_mflops"] * 1e6 * ref["train_images_per_cpu_s"] / peak
            print(_row(ref))
            print(f"(torch {ref['torch']}, {ref['torch_threads']} threads, its own 2048x2048 matmul "
                  f"{ref['peak_gflops']:.1f} GFLOP/s; Keras cnn1 trains at "
                  f"{cnn1['train_images_per_s'] / ref['train_images_per_s']:.0%} of the PyTorch rate in wall time, "
                  f"{cnn1['train_images_per_cpu_s'] / ref['train_images_per_cpu_s']:.0%} per CPU-second)")
        else:
            print("(plain-PyTorch reference skipped: torch is not installed)" if not have_torch else "")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "backend": backend, "keras": keras.__version__, "args": vars(args),
                       "onednn": onednn_state() if backend == "tensorflow" else None,
                       "peak_gflops": peak / 1e9, "models": rows, "torch_reference": ref}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
