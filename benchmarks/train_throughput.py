#!/usr/bin/env python
"""Training and inference throughput of the registered models, with FLOPs and MFU.

    python benchmarks/train_throughput.py                              # every model, this backend
    python benchmarks/train_throughput.py --models cnn1,fernet --steps 30
    KERAS_BACKEND=torch python benchmarks/train_throughput.py --models cnn1
    python benchmarks/train_throughput.py --models cnn1 --precision mixed_bfloat16
    python benchmarks/train_throughput.py --models cnn1 --jit-compile true --no-augment

For each model (measured by ferkit/train/throughput.py): training images/s through `model.fit` as
ferkit/train/loop.py calls it (uint8 numpy arrays, Adam, categorical cross-entropy, the default
augmentation layer and preprocessing (per-image standardization) inside the model unless told
otherwise), one whole fit of --steps batches after a warm-up fit; inference images/s through
`model.predict`; forward FLOPs per image counted analytically from the layer
shapes (convolution and dense multiply-adds x 2; batch norm, pooling and activations are not
counted); the measured peak of a 2048x2048 matrix multiply through keras.ops in the same backend
and dtype; and MFU = training FLOP/s (3 x forward FLOPs x images/s) / that peak.

With torch importable, a plain-PyTorch cnn1 (the same layers as models/report.py, channels-last
memory format) is measured too, in a subprocess so that the two frameworks' thread pools never
compete. --json writes all figures to a file.
"""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as `python benchmarks/train_throughput.py`: the packages live one level up

from ferkit.files import write_json  # noqa: E402
from ferkit.backend import configure_tensorflow  # noqa: E402
from ferkit.cli import Parser, non_negative_int, positive_int, run_main  # noqa: E402


def build_parser():
    p = Parser(prog="train_throughput.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=None, help="comma-separated model names (default: all registered)")
    p.add_argument("--batch-size", type=positive_int, default=64,
                   help="training batch (default: %(default)s, as ferkit/train/loop.py)")
    p.add_argument("--infer-batch-size", type=positive_int, default=256, help="inference batch (default: %(default)s, as predict.py)")
    p.add_argument("--precision", choices=["float32", "mixed_bfloat16"], default="float32")
    p.add_argument("--steps", type=positive_int, default=30, help="timed training steps per model")
    p.add_argument("--warmup", type=non_negative_int, default=3, help="untimed training steps first (tracing, allocation)")
    p.add_argument("--no-augment", dest="augment", action="store_false",
                   help="train without the augmentation layer (default: with it, as ferkit/train/loop.py)")
    p.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="no per-image standardization (ferkit/train/loop.py's default has it)")
    p.add_argument("--jit-compile", choices=["auto", "true", "false"], default="auto",
                   help="model.compile(jit_compile=...); 'auto' is what ferkit/train/loop.py uses")
    p.add_argument("--threads", type=non_negative_int, default=0,
                   help="threads for every framework: TF intra- and inter-op, torch, JAX's XLA (0: their defaults); "
                        "--threads 1 with the img/CPU-s columns gives figures a busy machine does not distort")
    p.add_argument("--intra-op", type=non_negative_int, default=0, help="TensorFlow intra-op threads (0: TF's default)")
    p.add_argument("--inter-op", type=non_negative_int, default=0, help="TensorFlow inter-op threads (0: TF's default)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="model option for every model, e.g. --option batchnorm=False (profiling)")
    p.add_argument("--steps-per-execution", type=positive_int, default=1, help="model.compile(steps_per_execution=...)")
    p.add_argument("--no-torch", dest="torch", action="store_false", help="skip the plain-PyTorch cnn1 reference")
    p.add_argument("--torch-only", action="store_true", help="measure only the PyTorch reference")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    return p


# ---------------------------------------------------------------- plain PyTorch reference


def torch_cnn1_reference(batch_size, steps, warmup, infer_batch_size):
    """Images/s of cnn1 written directly in PyTorch (channels-last), training and inference;
    Adam, cross-entropy, uint8 input scaled by 1/255 inside the step."""
    import numpy as np
    import torch

    torch.manual_seed(0)
    net, params = _torch_cnn1()
    rng = np.random.default_rng(0)
    n = (steps + warmup) * batch_size
    x_np = rng.integers(0, 256, size=(n, 1, 48, 48), dtype=np.uint8)
    train_ips, train_ipc = _torch_train_rate(net, torch.from_numpy(x_np), torch.from_numpy(rng.integers(0, 7, size=n)),
                                             batch_size, steps, warmup)
    xi = torch.from_numpy(np.resize(x_np, (max(1, min(16, n // infer_batch_size)) * infer_batch_size, 1, 48, 48)))
    infer_ips, infer_ipc = _torch_infer_rate(net, xi, infer_batch_size)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(8))
    return {"model": "cnn1 (plain PyTorch)", "params": int(params), "train_images_per_s": train_ips,
            "infer_images_per_s": infer_ips, "train_images_per_cpu_s": train_ipc, "infer_images_per_cpu_s": infer_ipc,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "peak_gflops": 2 * 2048 ** 3 / best / 1e9}


def _torch_cnn1():
    """(net, parameters as Keras counts them). Same layers as models/report.py cnn1 with batch
    norm: BN on the input, [Conv 2x2 32 'same' + ReLU, BN] x 2, MaxPool, BN, the same again,
    Flatten, BN, Dropout 0.5, Dense 512 ReLU x 2, BN, Dense 7."""
    import torch
    from torch import nn

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
    return net, params


def _torch_train_rate(net, x, y, batch_size, steps, warmup):
    """(images/s, images per CPU-second) of `steps` training steps after `warmup` untimed ones."""
    import torch

    opt = torch.optim.Adam(net.parameters(), 1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(i):
        xb = x[i * batch_size:(i + 1) * batch_size].float().div_(255).contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        loss_fn(net(xb), y[i * batch_size:(i + 1) * batch_size]).backward()
        opt.step()

    net.train()
    for i in range(warmup):
        step(i)
    t, c = time.perf_counter(), time.process_time()
    for i in range(warmup, warmup + steps):
        step(i)
    return steps * batch_size / (time.perf_counter() - t), steps * batch_size / (time.process_time() - c)


def _torch_infer_rate(net, xi, batch_size):
    import torch

    net.eval()
    with torch.inference_mode():
        net(xi[:batch_size].float().div_(255).contiguous(memory_format=torch.channels_last))
        t, c = time.perf_counter(), time.process_time()
        for i in range(0, len(xi), batch_size):
            net(xi[i:i + batch_size].float().div_(255).contiguous(memory_format=torch.channels_last)).argmax(1)
        return len(xi) / (time.perf_counter() - t), len(xi) / (time.process_time() - c)


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


def _row(r):
    return (f"{r['model']:<22} {r['params']:>11,} {r['forward_mflops']:>14.1f} {r['train_images_per_s']:>12.1f} "
            f"{r['infer_images_per_s']:>12.1f} {r['train_gflops_per_s']:>14.2f} {r['mfu']:>6.1%} "
            f"{r['train_images_per_cpu_s']:>16.1f} {r['infer_images_per_cpu_s']:>16.1f} {r['mfu_per_cpu_s']:>9.1%}")


def main(argv=None):
    # Sizes and step counts are checked at parse time: --steps 0 used to time nothing and end with
    # exit 0 after a page of Keras warnings.
    return run_main(lambda: benchmark(build_parser().parse_args(argv)))


def benchmark(args):
    if args.torch_only:
        print(json.dumps(_torch_only(args)))
        return 0
    configure_tensorflow()  # as the training scripts: before TensorFlow loads
    keras = _configure(args)
    from ferkit.train import throughput

    import models

    names = args.models.split(",") if args.models else models.available()
    dtype = "bfloat16" if args.precision == "mixed_bfloat16" else "float32"
    peak = throughput.matmul_peak(dtype)
    _print_header(args, keras, throughput, f"{peak / 1e9:.1f} GFLOP/s ({dtype})")
    rows = _measure_models(names, args, keras, throughput, peak)
    ref = _torch_row(args, rows, peak) if args.torch and "cnn1" in names else None
    if args.json:
        write_json(args.json, {"machine": throughput.machine(), "backend": keras.backend.backend(),
                               "keras": keras.__version__, "args": vars(args), "peak_gflops": peak / 1e9,
                               "models": rows, "torch_reference": ref})
    return 0


def _torch_only(args):
    """The plain-PyTorch cnn1 figures, in this process (which then loads no Keras)."""
    try:
        import torch
    except ImportError:
        sys.exit("torch is not installed")
    if args.threads:
        torch.set_num_threads(args.threads)
    return torch_cnn1_reference(args.batch_size, args.steps, args.warmup, args.infer_batch_size)


def _configure(args):
    """Threads and precision, set before the first model is built; returns keras."""
    if args.threads:
        args.intra_op, args.inter_op = args.intra_op or args.threads, args.inter_op or args.threads
        if args.threads == 1:  # JAX reads this when it loads
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                                       " intra_op_parallelism_threads=1").strip()
    from ferkit.backend import import_keras

    keras = import_keras()
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
    return keras


def _print_header(args, keras, throughput, peak_line):
    backend = keras.backend.backend()
    print(f"machine: {throughput.machine()}; Keras {keras.__version__}, backend {backend}, precision {args.precision}, "
          f"jit_compile {args.jit_compile}, augmentation {'on' if args.augment else 'off'}, "
          f"preprocessing: standardize {'on' if args.standardize else 'off'}, "
          f"batch {args.batch_size}, {args.steps} timed steps"
          + "".join(f", {o}" for o in args.option)
          + (f", intra/inter-op threads {args.intra_op}/{args.inter_op}" if args.intra_op or args.inter_op else "")
          + (f", {args.threads} thread(s) per framework" if args.threads else "")
          + (f", steps_per_execution {args.steps_per_execution}" if args.steps_per_execution > 1 else ""),
          flush=True)
    if backend == "tensorflow":
        print(throughput.tensorflow_line(), flush=True)
    print(f"matmul peak (2048x2048, keras.ops): {peak_line}", flush=True)
    print("img/s: wall clock; img/CPU-s: per second of process CPU time (all threads), which other load "
          "on the machine barely changes; MFU = 3 x forward FLOPs x train rate / matmul peak (MFU/CPU-s: "
          "with the CPU-time rate, meaningful with --threads 1)")
    header = f"{'model':<22} {'params':>11} {'fwd MFLOP/img':>14} {'train img/s':>12} {'infer img/s':>12} " \
             f"{'train GFLOP/s':>14} {'MFU':>7} {'train img/CPU-s':>16} {'infer img/CPU-s':>16} {'MFU/CPU-s':>10}"
    print(header)
    print("-" * len(header))


def _measure_models(names, args, keras, throughput, peak):
    rows = []
    for name in names:
        r = throughput.measure_keras(name, batch_size=args.batch_size, steps=args.steps, warmup=args.warmup,
                                     infer_batch_size=args.infer_batch_size, augment=args.augment,
                                     standardize=args.standardize, options=args.option,
                                     jit_compile={"auto": "auto", "true": True, "false": False}[args.jit_compile],
                                     steps_per_execution=args.steps_per_execution)
        r["mfu"] = r["train_gflops_per_s"] * 1e9 / peak
        r["mfu_per_cpu_s"] = 3 * r["forward_mflops"] * 1e6 * r["train_images_per_cpu_s"] / peak
        rows.append(r)
        print(_row(r), flush=True)
        keras.backend.clear_session()
    return rows


def _torch_row(args, rows, peak):
    """The plain-PyTorch cnn1 beside Keras' (in a subprocess), printed; None without torch."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        print("(plain-PyTorch reference skipped: torch is not installed)")
        return None
    ref = _torch_in_subprocess(args)
    if not ref:
        return None
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
    return ref


if __name__ == "__main__":
    sys.exit(main())
