"""The one training routine behind train_cnn.py and train_dnn.py (their command line and the
checks that need no TensorFlow: ferkit/train/config.py).

Reads a labelled CSV, holds out a stratified validation split (or reads --val), builds the model
by name with augmentation layers inside it, fits it with Keras, and keeps a run folder up to date
after every epoch (best weights, history.csv, the state to resume from, and run.json, each written
atomically; ferkit/train/callbacks.py). --resume continues an interrupted run at its last finished epoch
with the same random streams, so it ends as an uninterrupted run with the same seed would.

Training runs in a worker thread while the main thread waits, so that Ctrl-C answers at once
(ferkit/train/interrupt.py).
"""
import contextlib
import os
import shlex
import sys
import threading
import time

import numpy as np

import data
import models
from data.mixing import MixedBatches
from ferkit.backend import import_keras
from ferkit.cli import plural
from ferkit.errors import FERError
from ferkit.train import callbacks as cb
from ferkit.train import distill
from ferkit.train.interrupt import run_interruptible
from ferkit.runs import folder, legacy
from ferkit.runs.layout import split_seed
from ferkit.runs.folder import RunFolder, hardware, new_run_dir
from ferkit.runs import load as runs

keras = import_keras()  # TensorFlow's start-up notices stay off stderr



def train(args, options, prog="train_cnn.py", command=None, resumed=None):
    """Train as `args` (checked by ferkit/train/config.py) say; `resumed`: (run folder, its run.json)
    for --resume. Returns the exit status (0; 130 when interrupted): see interrupt.py for Ctrl-C."""
    return run_interruptible(Training(args, options, prog, command, resumed))


class RunJob:
    """The life of a training as a job: main() runs its steps, leaves no run folder when it failed
    before its first epoch, and turns Ctrl-C into a recorded interruption and a resume hint.
    Subclasses set args, prog, run, keeper, info and stop, and define _steps()."""

    def main(self):
        try:
            return self._steps()
        except KeyboardInterrupt:
            return self.interrupted()
        except BaseException:
            if self.run is not None and not self.args.resume and not self.info.get("epochs_done"):
                self.run.discard()  # failed before its first epoch: leave no empty run folder
            raise
        finally:
            if self.run is not None:
                self.run.release()

    def resume_hint(self):
        return f"python {self.prog} {shlex.quote(self.args.train_csv)} --out {shlex.quote(self.run.path)} --resume"

    def interrupted(self):
        """Ctrl-C: record it and say how to go on (or, before any epoch finished, leave nothing)."""
        done = self.info.get("epochs_done", 0)
        if self.run is None or (not done and not self.args.resume):
            if self.run is not None:
                self.run.discard()
            print("\ninterrupted before the first epoch finished; nothing was saved", file=sys.stderr, flush=True)
            return 130
        if self.keeper is not None:
            with contextlib.suppress(FERError):
                self.keeper.finish("interrupted")
        print(f"\ninterrupted after {plural(done, 'epoch')}; continue with: {self.resume_hint()}",
              file=sys.stderr, flush=True)
        return 130

    def stop_now(self):
        """Ctrl-C while a step runs on: record the interruption from the main thread. The files on
        disk hold the last finished epoch already; holding the run's commit lock (never released:
        the process ends next) keeps the training thread from committing after us."""
        if self.run is not None:
            self.run.commit_lock.acquire(timeout=5)
        self.interrupted()
        if self.run is not None:
            self.run.release()

    def _check_stop(self):
        if self.stop.is_set():
            raise KeyboardInterrupt


class Training(RunJob):
    """One training, step by step: settings, data, model, run folder, callbacks, fit."""

    def __init__(self, args, options, prog, command, resumed=None):
        self.args, self.options, self.prog = args, options, prog
        self.command = command or shlex.join([prog] + sys.argv[1:])
        self.resumed = resumed
        self.stop = threading.Event()
        self.run, self.keeper, self.info = None, None, {}
        self.cached_teachers = bool(args.teacher) and args.teacher_mode == "cached"
        self.student = None  # the network the run keeps; fit() trains it inside a larger model with online teachers

    def _steps(self):
        self.settings()
        args = self.args
        keras.utils.set_random_seed(args.seed)
        if args.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        train_ds, val_ds = load_data(args)
        self._check_stop()
        scope, batch_size = _distribution(args)
        targets = keras.utils.to_categorical(train_ds.labels, models.NUM_CLASSES)
        if self.cached_teachers:  # read from the run folder when resuming, else computed once by the teachers
            self.teacher_cache = distill.training_probs(args, train_ds.images, self.run.path if self.resumed else None)
            targets = np.concatenate([targets, distill.soften(self.teacher_cache, args.distill_temperature)], axis=1)
        elif args.teacher:  # online: the teachers answer inside the model, on each batch
            targets = distill.online_targets(targets)
        batches = MixedBatches(train_ds.images, targets, batch_size, args.mixup, args.cutmix, args.seed)
        with scope:
            model = self.build(len(batches))
        self._check_stop()
        initial_epoch = self.open_run_folder(model, train_ds, val_ds)
        if self.cached_teachers:
            distill.save_probs(self.run.path, self.teacher_cache)
        callbacks = self.callbacks(model, batches, initial_epoch)
        return self.fit(model, batches, val_ds, initial_epoch, callbacks)

    def settings(self):
        """The model options checked against the model's own defaults; resuming, the run folder
        locked at once."""
        models.check_options(self.args.model, self.options)
        if self.resumed:
            run_dir, self.info = self.resumed
            self.run = RunFolder.existing(run_dir)
            print(f"resuming {run_dir} after {plural(self.info.get('epochs_done', 0), 'epoch')}", flush=True)

    def build(self, steps):
        args = self.args
        self.augment = {"erasing": args.erasing, "seed": args.seed} if args.augment else None
        self.preprocess = {"standardize": args.standardize}
        # Seeded again here: cached teachers are built before this (a resumed run reads their
        # probabilities instead), and each model built draws from the seed; the student's weights
        # and random streams must not depend on that.
        keras.utils.set_random_seed(args.seed)
        model = self.student = models.build_model(args.model, augment=self.augment, preprocess=self.preprocess,
                                                  **self.options)
        if args.teacher:  # online teachers: the model to fit holds the student and them
            model, loss, metrics = distill.training_setup(args, model)
        else:
            loss, metrics = keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing), ["accuracy"]
        model.compile(optimizer=_optimizer(args, _learning_rate(args, steps)), loss=loss, metrics=metrics)
        return model

    def open_run_folder(self, model, train_ds, val_ds):
        """Create (or, resuming, restore from) the run folder; write run.json. Returns the first epoch."""
        args = self.args
        if args.resume:
            initial_epoch = self.info.get("epochs_done", 0)
            if initial_epoch:
                folder.restore_state(model, self.run.path, initial_epoch)
        else:
            run_dir, stamp = new_run_dir(args)
            self.run, initial_epoch = RunFolder.new(run_dir), 0
            self.info = {"created": stamp, "command": self.command}
        student = self.student or model
        self.info.update(run_info(args, self.options, self.augment, self.preprocess, student, train_ds, val_ds))
        legacy.drop_old_entries(self.info)
        self.run.commit(self.info)
        print(f"model {args.model}: {student.count_params():,} parameters; run folder {self.run.path}", flush=True)
        return initial_epoch

    def callbacks(self, model, batches, initial_epoch):
        self.keeper = cb.RunKeeper(self.run, self.info, initial_epoch, self.resume_hint(),
                                   weights_model=None if self.student is model else self.student)
        return callback_list(self.args, self.keeper, self.stop, model, batches, initial_epoch,
                             self.info.get("train_seconds", 0.0))

    def fit(self, model, batches, val_ds, initial_epoch, callbacks):
        args = self.args
        verbose = 2 if (args.quiet or not sys.stdout.isatty()) else 1
        validation = None if val_ds is None else (val_ds.images, keras.utils.to_categorical(val_ds.labels,
                                                                                          models.NUM_CLASSES))
        try:
            # shuffle=False: the batches come shuffled by (seed, epoch) from MixedBatches (EpochRandomness).
            model.fit(batches, epochs=args.epochs, initial_epoch=initial_epoch, shuffle=False,
                      validation_data=validation, callbacks=callbacks, verbose=verbose)
        except cb.NonFiniteLoss:
            if self.info.get("epochs_done"):
                with contextlib.suppress(FERError):
                    self.keeper.finish("failed")
            raise
        # A Ctrl-C that came after fit's last check (during the last epoch's validation or while its
        # files were written) is still a Ctrl-C: without this it was dropped, and the run exited 0
        # without the "interrupted ... --resume" line (interrupt.py).
        self._check_stop()
        self.keeper.finish("done")
        return summary(self.args, self.info, self.run.path)


def load_data(args):
    """(training, validation) Datasets as the options say: --val or a stratified --val-split, then
    --train-limit; one line saying how many and how long it took."""
    t0 = time.time()
    train_ds = data.load_csv(args.train_csv, usage=args.usage)
    if train_ds.labels is None:
        raise FERError(f"{args.train_csv}: no label column, cannot train on it")
    if args.val:
        val_ds = data.load_csv(args.val)
        if val_ds.labels is None:
            raise FERError(f"{args.val}: no label column, cannot validate on it")
    elif not args.val_split:  # the final fit: every face trains, and the last epoch's weights are kept
        val_ds = None
    else:
        try:
            tr, va = data.stratified_split(train_ds.labels, args.val_split, seed=split_seed(args))
        except ValueError as e:
            raise FERError(f"{args.train_csv}: cannot split {len(train_ds)} rows for validation ({e})") from None
        train_ds, val_ds = data.subset(train_ds, tr), data.subset(train_ds, va)
    if args.train_limit:
        train_ds = _limit(train_ds, args.train_limit, split_seed(args), args.train_csv)
    held = (f"{len(val_ds)} validation images" if val_ds is not None
            else "none held out (--val-split 0: the last epoch's weights are kept)")
    print(f"data: {len(train_ds)} training images, {held} (loaded in {time.time() - t0:.1f} s)", flush=True)
    return train_ds, val_ds


def _limit(train_ds, n, seed, path):
    """A stratified `n` of the training faces (--train-limit), drawn by the split's seed."""
    if n >= len(train_ds):
        raise FERError(f"--train-limit {n}: {path} leaves {len(train_ds)} training faces; give a smaller number")
    try:
        _, keep = data.stratified_split(train_ds.labels, n, seed=seed)
    except ValueError as e:
        raise FERError(f"--train-limit {n}: cannot draw it from {path}'s {len(train_ds)} training faces ({e})") from None
    return data.subset(train_ds, np.sort(keep))


def run_info(args, options, augment, preprocess, model, train_ds, val_ds):
    """What run.json records about a training, besides its progress."""
    return {
        "model": args.model, "options": options, "augment": augment, "preprocess": preprocess,
        "class_names": list(data.CLASS_NAMES),
        "input": {"shape": list(models.INPUT_SHAPE), "values": "uint8 pixels 0..255, scaled inside the model"},
        "weights": runs.WEIGHTS_FILE, "params": int(model.count_params()),
        "args": dict(vars(args)), "train_rows": len(train_ds), "val_rows": 0 if val_ds is None else len(val_ds),
        "keras": keras.__version__, "backend": keras.backend.backend(), "host": hardware(),
        "status": "training",
    }


def callback_list(args, keeper, stop, model, batches, initial_epoch, elapsed):
    """In order: each callback's on_epoch_end sees what the ones before it did."""
    found = [cb.StopOnRequest(stop), cb.EpochRandomness(batches, model, args.seed), keras.callbacks.TerminateOnNaN()]
    if args.time_budget:
        found.append(cb.TimeBudget(args.time_budget, args.lr if args.schedule == "cosine" else None,
                                   args.warmup, elapsed))
    if args.schedule == "plateau":
        found.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3, verbose=1))
    found.append(keeper.state_saver)  # the raw weights, before EMA swaps the averaged ones in
    if args.ema:
        found.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    periodic = args.quiet or not sys.stdout.isatty()
    found += [keeper, cb.Progress(args.epochs, initial_epoch, args.time_budget, elapsed, _has_gpu(), args.model, periodic)]
    return found


def summary(args, info, run_path):
    """The last line of a training; 0, its exit status."""
    if not info.get("best_epoch"):
        raise FERError(f"{run_path}: no epoch finished")
    budget = " (the time budget was spent)" if args.time_budget and info["epochs_done"] < args.epochs else ""
    kept = (f"best val_accuracy {info['val_accuracy']:.4f} at epoch {info['best_epoch']}"
            if info.get("val_accuracy") is not None else f"no validation; kept the last epoch, {info['best_epoch']}")
    print(f"{kept}; "
          f"{plural(info['epochs_done'], 'epoch')}{budget} in {info['train_seconds'] / 60:.1f} min; "
          f"saved {run_path}", flush=True)
    return 0


def _learning_rate(args, steps):
    """The epoch-based cosine schedule with linear warm-up, as Keras' CosineDecay; a constant for
    --schedule constant/plateau and under --time-budget (the TimeBudget callback sets it then)."""
    if args.schedule != "cosine" or args.time_budget:
        return args.lr
    total = args.epochs * steps
    warmup = min(round(args.warmup * total), total - 1)
    if warmup <= 0:
        return keras.optimizers.schedules.CosineDecay(args.lr, decay_steps=total)
    return keras.optimizers.schedules.CosineDecay(0.0, decay_steps=total - warmup, warmup_target=args.lr,
                                                  warmup_steps=warmup)


def _optimizer(args, lr):
    ema = {"use_ema": True, "ema_momentum": args.ema} if args.ema else {}
    if args.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay or None, **ema)
    if args.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=args.weight_decay, **ema)
    return keras.optimizers.Adam(lr, **ema)


def _distribution(args):
    """(context manager for building the model, global batch size)."""
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


def _tf_strategy():
    """MultiWorkerMirroredStrategy when TF_CONFIG names a cluster; else MirroredStrategy over the
    local GPUs, or, on a machine without GPUs, over its logical CPU devices (MirroredStrategy's
    own default would take CPU:0 alone, even when tf.config split the CPU into several)."""
    import tensorflow as tf  # only on the TensorFlow backend, which has loaded it already

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if tf.config.list_logical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=cpus)


def _has_gpu():
    """Whether the backend trains on a GPU (for the hint on long CPU runs). The backend's own
    module is imported here, already loaded by Keras; importing another backend would load it."""
    backend = keras.backend.backend()
    with contextlib.suppress(Exception):
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_logical_devices("GPU"))
        if backend == "jax":
            import jax

            return any(d.platform == "gpu" for d in jax.devices())
        if backend == "torch":
            import torch

            return torch.cuda.is_available()
    return False
