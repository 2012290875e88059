"""The one training routine behind train_cnn.py and train_dnn.py.

Reads a labelled CSV, holds out a stratified validation split (or reads --val), builds the model
by name with augmentation layers inside it, fits with Keras, and keeps a run folder up to date
after every epoch (best weights, run.json, history.csv, all written atomically). --resume picks
an interrupted run up at its last finished epoch (Keras BackupAndRestore).
"""
import argparse
import datetime
import math
import os
import platform
import re
import sys
import time

from ferbase.atomic import write_json
from ferbase.cli import run_main
from ferbase.errors import FERError
from ferbase.quiet import configure_tensorflow


def build_parser(prog, default_model, description, model_choices=None):
    p = argparse.ArgumentParser(prog=prog, description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("train_csv", help="labelled CSV (label,feature or Kaggle emotion,pixels,Usage), plain or .gz")
    p.add_argument("--model", default=default_model, choices=model_choices, help="network from the models registry")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="model option, e.g. --option width=24 (repeatable; see models/)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default="adam",
                   help="sgd is Nesterov with momentum 0.9")
    p.add_argument("--weight-decay", type=float, default=0.0, help="decoupled weight decay (adamw, sgd)")
    p.add_argument("--schedule", choices=["cosine", "plateau", "constant"], default="cosine",
                   help="cosine: warm-up then cosine decay to 0 over the run; plateau: halve on a stalled val loss")
    p.add_argument("--warmup", type=float, default=0.02, help="warm-up, as a fraction of the run (cosine)")
    p.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                   help="train for this much wall time: the cosine schedule runs over time, not epochs, "
                        "and training stops when it is spent (--epochs is then an upper bound)")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--ema", type=float, default=0.0, metavar="MOMENTUM",
                   help="evaluate and keep an exponential moving average of the weights (Polyak averaging, "
                        "e.g. 0.999); 0 keeps the raw weights")
    val = p.add_mutually_exclusive_group()
    val.add_argument("--val", metavar="CSV", help="labelled validation CSV (e.g. public_test.csv.gz)")
    val.add_argument("--val-split", type=float, default=0.1, metavar="FRACTION",
                     help="stratified fraction of TRAIN_CSV held out for validation, when --val is not given")
    p.add_argument("--usage", default=None, help="Kaggle fer2013.csv: train on rows of this Usage (e.g. Training)")
    p.add_argument("--no-augment", dest="augment", action="store_false",
                   help="no data augmentation (rotation, shift, zoom, flip)")
    p.add_argument("--erasing", type=float, default=0.0, metavar="P",
                   help="random erasing probability on top of the augmentation")
    p.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                   help="MixUp: blend pairs of training faces and their labels, lambda ~ Beta(ALPHA, ALPHA), "
                        "e.g. 0.2 (data/mixing.py); 0 turns it off")
    p.add_argument("--cutmix", type=float, default=0.0, metavar="ALPHA",
                   help="CutMix: paste a box of another face, labels weighted by its area, lambda ~ Beta(ALPHA, ALPHA), "
                        "e.g. 1.0; with --mixup too, each batch takes one of the two")
    p.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="no per-image standardization inside the model")
    p.add_argument("--mixed-precision", action="store_true", help="mixed_bfloat16 (for GPUs that have it)")
    p.add_argument("--distribute", action="store_true",
                   help="data-parallel over all local devices (JAX: keras.distribution.DataParallel; "
                        "TensorFlow: MirroredStrategy); --batch-size is per device")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--out", default=None, metavar="DIR", help="run folder (default runs/<model>-<time>/)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out (default: the newest unfinished run) "
                        "from its last finished epoch, with its saved settings")
    p.add_argument("--quiet", action="store_true", help="no per-batch progress bar (one line per epoch)")
    return p


def parse_options(pairs):
    """--option k=v pairs -> dict, values read as Python literals when they are ones."""
    import ast

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise FERError(f"--option {pair!r}: expected KEY=VALUE")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def main(argv, prog, default_model, description, model_choices=None, extra_args=None, options_from_args=None):
    """Entry point shared by the train_*.py scripts. `extra_args(parser)` adds script options,
    `options_from_args(args)` turns them into model options."""
    configure_tensorflow()  # before TensorFlow loads
    parser = build_parser(prog, default_model, description, model_choices)
    if extra_args:
        extra_args(parser)

    def run():
        args = parser.parse_args(argv)
        options = parse_options(args.option)
        if options_from_args:
            options.update(options_from_args(args))
        return train(args, options)

    return run_main(run)


def train(args, options):
    # Imported here, not at the top: TensorFlow must load after configure_tensorflow() and only
    # once the arguments parsed, so --help and argument errors come back at once.
    import data
    import models  # first: it imports Keras quietly
    from ferkit.callbacks import CosineSchedule, RunKeeper
    from models import runs

    keras = models.keras

    cli_args = dict(vars(args))
    run_dir, info = _prepare_run_dir(args, options)
    if args.resume:  # the saved settings win: a resumed run is the same run
        saved = info["args"]
        for key, value in saved.items():
            if key not in ("resume", "out", "train_csv", "val", "quiet"):
                setattr(args, key, value)
        options = info["options"]

    if not 0 <= args.ema < 1:
        raise FERError(f"--ema {args.ema}: must be at least 0 and below 1")
    for flag in ("mixup", "cutmix"):
        if getattr(args, flag) < 0:
            raise FERError(f"--{flag} {getattr(args, flag)}: must be at least 0 (0 turns it off)")
    keras.utils.set_random_seed(args.seed)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")

    t0 = time.time()
    train_ds = data.load_csv(args.train_csv, usage=args.usage)
    if train_ds.labels is None:
        raise FERError(f"{args.train_csv}: no label column, cannot train on it")
    if args.val:
        val_ds = data.load_csv(args.val)
        if val_ds.labels is None:
            raise FERError(f"{args.val}: no label column, cannot validate on it")
    else:
        if not 0 < args.val_split < 1:
            raise FERError(f"--val-split {args.val_split}: must be between 0 and 1")
        try:
            tr, va = data.stratified_split(train_ds.labels, args.val_split, seed=args.seed)
        except ValueError as e:
            raise FERError(f"{args.train_csv}: cannot split {len(train_ds)} rows for validation ({e})") from None
        train_ds, val_ds = data.subset(train_ds, tr), data.subset(train_ds, va)
    print(f"data: {len(train_ds)} training and {len(val_ds)} validation images "
          f"(loaded in {time.time() - t0:.1f} s)", flush=True)

    augment = None
    if args.augment:
        augment = {"erasing": args.erasing, "seed": args.seed}
    strategy_scope, batch_size = _distribution(args)
    with strategy_scope:
        preprocess = {"standardize": args.standardize}
        model = models.build_model(args.model, augment=augment, preprocess=preprocess, **options)
        model.compile(optimizer=_optimizer(args, keras),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing),
                      metrics=["accuracy"])

    info.update({
        "model": args.model, "options": options, "augment": augment, "preprocess": preprocess,
        "class_names": list(data.CLASS_NAMES),
        "input": {"shape": [48, 48, 1], "values": "uint8 pixels 0..255, scaled inside the model"},
        "weights": runs.WEIGHTS_FILE, "params": int(model.count_params()),
        "args": {k: v for k, v in vars(args).items()}, "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "cli_args": cli_args,
        "train_rows": len(train_ds), "val_rows": len(val_ds),
        "keras": keras.__version__, "backend": keras.backend.backend(), "host": _hardware(),
        "status": "training",
    })
    write_json(os.path.join(run_dir, runs.RUN_FILE), info)

    y_train = keras.utils.to_categorical(train_ds.labels, 7)
    y_val = keras.utils.to_categorical(val_ds.labels, 7)
    steps = math.ceil(len(train_ds) / batch_size)
    keeper = RunKeeper(run_dir, info)
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(run_dir, "backup"), double_checkpoint=True),
        keeper,
    ]
    if args.ema:
        # After the backup (which must hold the raw weights to resume from), before RunKeeper (so that
        # validation and the saved best weights use the averaged ones).
        callbacks.insert(callbacks.index(keeper), keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    if args.schedule == "cosine":
        callbacks.insert(0, CosineSchedule(args.lr, args.warmup, args.epochs, steps, args.time_budget,
                                           info.get("train_seconds", 0.0)))
    elif args.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3, verbose=1))
    if args.time_budget and args.schedule != "cosine":
        callbacks.append(CosineSchedule(None, 0, args.epochs, steps, args.time_budget, info.get("train_seconds", 0.0)))

    print(f"model {args.model}: {model.count_params():,} parameters; run folder {run_dir}", flush=True)
    verbose = 2 if (args.quiet or not sys.stdout.isatty()) else 1
    if args.mixup or args.cutmix:
        from data.mixing import MixedBatches

        fit_data = {"x": MixedBatches(train_ds.images, y_train, batch_size, args.mixup, args.cutmix, args.seed)}
    else:
        fit_data = {"x": train_ds.images, "y": y_train, "batch_size": batch_size, "shuffle": True}
    try:
        model.fit(**fit_data, epochs=args.epochs, validation_data=(val_ds.images, y_val),
                  callbacks=callbacks, verbose=verbose)
    except KeyboardInterrupt:
        keeper.finish("interrupted")
        print(f"\ninterrupted after epoch {info.get('epochs_done', 0)}; continue with: "
              f"python {prog_name()} {args.train_csv} --out {run_dir} --resume", file=sys.stderr)
        return 130
    keeper.finish("done")
    best = info.get("val_accuracy")
    if best is None:
        print(f"no epoch finished; run folder {run_dir}")
        return 1
    print(f"best val_accuracy {best:.4f} at epoch {info['best_epoch']}; "
          f"{info['epochs_done']} epochs in {info['train_seconds'] / 60:.1f} min; saved {run_dir}", flush=True)
    return 0


def prog_name():
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0].endswith(".py") else "train_cnn.py"


def _optimizer(args, keras):
    ema = {"use_ema": True, "ema_momentum": args.ema} if args.ema else {}
    if args.optimizer == "sgd":
        return keras.optimizers.SGD(args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay or None, **ema)
    if args.optimizer == "adamw":
        return keras.optimizers.AdamW(args.lr, weight_decay=args.weight_decay, **ema)
    return keras.optimizers.Adam(args.lr, **ema)


def _distribution(args):
    """(context manager for building the model, global batch size)."""
    import contextlib

    import keras

    if not args.distribute:
        return contextlib.nullcontext(), args.batch_size
    backend = keras.backend.backend()
    if backend == "jax":
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        n = len(devices)
    elif backend == "tensorflow":
        strategy = _tf_strategy()
        n = strategy.num_replicas_in_sync
        print(f"distribute: {type(strategy).__name__} over {n} replicas; global batch {args.batch_size * n}", flush=True)
        return strategy.scope(), args.batch_size * n
    else:
        raise FERError(f"--distribute needs the jax or tensorflow backend (KERAS_BACKEND is {backend})")
    print(f"distribute: DataParallel over {n} devices; global batch {args.batch_size * n}", flush=True)
    return contextlib.nullcontext(), args.batch_size * n


# ---------------------------------------------------------------- distribution helper


def _tf_strategy():
    """MultiWorkerMirroredStrategy when TF_CONFIG names a cluster; else MirroredStrategy over the
    local GPUs, or, on a machine without GPUs, over its logical CPU devices (MirroredStrategy's
    own default would take CPU:0 alone, even when tf.config split the CPU into several)."""
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if tf.config.list_logical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=cpus)


def _prepare_run_dir(args, options):
    from models import runs

    if args.resume:
        run_dir = args.out or _newest_unfinished()
        if run_dir is None:
            raise FERError(f"--resume: no unfinished run under {runs.RUNS_DIR}/; name one with --out DIR")
        info = runs.read_info(run_dir)
        if info.get("status") == "done":
            raise FERError(f"{run_dir}: this run already finished; nothing to resume")
        print(f"resuming {run_dir} after epoch {info.get('epochs_done', 0)}", flush=True)
        return run_dir, info
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = args.out or os.path.join(runs.RUNS_DIR, f"{args.model}-{stamp}")
    if os.path.exists(os.path.join(run_dir, runs.RUN_FILE)):
        raise FERError(f"{run_dir}: already holds a run; use --resume to continue it or choose another --out")
    os.makedirs(run_dir, exist_ok=True)
    return run_dir, {"created": stamp}


def _newest_unfinished():
    import glob

    from models import runs

    found = []
    for path in glob.glob(os.path.join(runs.RUNS_DIR, "*", runs.RUN_FILE)):
        try:
            if runs.read_info(os.path.dirname(path)).get("status") != "done":
                found.append(os.path.dirname(path))
        except FERError:
            continue
    return max(found, key=os.path.getmtime) if found else None


def _hardware(cpuinfo="/proc/cpuinfo"):
    """The machine a run was timed on: CPU model and vector width matter, since training
    speed on one 'AMD EPYC' differs twofold between AVX2 and AVX-512 parts."""
    cpu = platform.processor() or platform.machine()
    try:
        with open(cpuinfo) as f:
            info = f.read()
    except OSError:
        info = ""
    name = re.search(r"^model name\s*:\s*(.+)$", info, re.M)
    if name:
        flags = re.search(r"^flags\s*:(.*)$", info, re.M)
        flags = set(flags.group(1).split()) if flags else set()
        simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
        cpu = f"{name.group(1).strip()}{f' ({simd})' if simd else ''}, {platform.machine()}"
    return f"{cpu}, {os.cpu_count()} CPU cores, {platform.system()}"
