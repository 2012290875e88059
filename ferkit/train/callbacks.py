"""Training callbacks: the run keeper (history, best weights, resumable state, run.json), each
epoch's random streams, the wall-time cosine schedule, progress lines and the stop request."""
import contextlib
import math
import os
import time

import numpy as np

from ferkit import files as outputs
from ferkit.cli import plural
from ferkit.errors import FERError
from ferkit.backend import import_keras
from ferkit.runs import load as runs
from ferkit.runs.folder import remove_states, write_history
from ferkit.runs.layout import read_history, state_file

keras = import_keras()  # TensorFlow's start-up notices stay off stderr

class RunKeeper(keras.callbacks.Callback):
    """After each epoch: history.csv, the best weights (and their sha256), the state to resume
    from, and run.json, which is written last and says which epoch finished.

    Not Keras' CSVLogger, ModelCheckpoint and BackupAndRestore: they write in place (a kill
    mid-write loses the previous file) and save weights and epoch in two steps; here every file
    is atomic and run.json, written last, is the one commit point a resume starts from.

    Place `keeper.state_saver` before keras.callbacks.SwapEMAWeights (the state holds the raw
    weights) and the keeper after it (validation and best weights use the averaged ones)."""

    def __init__(self, run, info, initial_epoch=0, resume_hint="", weights_model=None):
        super().__init__()
        self.run, self.info, self.resume_hint = run, info, resume_hint
        self.weights_model = weights_model  # what the run keeps when it is not the fitted model (online teachers)
        history = read_history(run.path)
        self.history = [row for row in history if int(row["epoch"]) <= initial_epoch]
        self.state_saver = _StateSaver(self)
        self.t_start = None

    def on_train_begin(self, logs=None):
        self.t_start = time.monotonic()
        self.t_base = self.info.get("train_seconds", 0.0)

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        _refuse_non_finite(logs, epoch, self.info, self.run.path)
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.history.append({"epoch": epoch + 1, **logs, "lr": lr, "seconds": round(self._elapsed(), 1)})
        with self.writing():
            write_history(os.path.join(self.run.path, runs.HISTORY_FILE), self.history)
            acc = logs.get("val_accuracy")
            no_validation = self.info.get("val_rows") == 0  # --val-split 0: every epoch's weights replace the last
            best = self.info.get("val_accuracy")
            if no_validation or (acc is not None and (best is None or acc > best)):
                kept = self.model if self.weights_model is None else self.weights_model
                digest = runs.save_weights(kept, os.path.join(self.run.path, runs.WEIGHTS_FILE))
                self.info.update(val_accuracy=acc, val_loss=logs.get("val_loss"), best_epoch=epoch + 1,
                                 weights_sha256=digest)
            self.info.update(epochs_done=epoch + 1, train_seconds=round(self._elapsed(), 1))
            self.run.commit(self.info)
        remove_states(self.run.path, keep=epoch + 1)

    def finish(self, status):
        """Record how the run ended (done, interrupted, failed); best effort after a failed write."""
        self.info["status"] = status
        if self.t_start is not None:
            self.info["train_seconds"] = round(self._elapsed(), 1)
        self.run.commit(self.info)
        if status == "done":
            remove_states(self.run.path, keep=None)

    @contextlib.contextmanager
    def writing(self):
        """A failed write (full disk, permissions) stops training with one line that says how to go on."""
        try:
            yield
        except (OSError, FERError) as e:
            message = str(e) if isinstance(e, FERError) else outputs.describe_os_error(e, self.run.path)
            done = self.info.get("epochs_done", 0)
            if not done:  # the run folder is removed (loop.RunJob): nothing to resume
                raise FERError(f"{message}; training stopped before its first epoch was saved, so nothing "
                               "was kept: free space, then start it again") from None
            raise FERError(f"{message}; training stopped after epoch {done}: "
                           f"free space, then continue with: {self.resume_hint}") from None

    def _elapsed(self):
        return self.t_base + (time.monotonic() - self.t_start)


class _StateSaver(keras.callbacks.Callback):
    """Saves the model and optimizer state after each finite epoch (model.save_weights of a
    compiled model holds both), atomically, for --resume; the keeper then commits it."""

    def __init__(self, keeper):
        super().__init__()
        self.keeper = keeper

    def on_epoch_end(self, epoch, logs=None):
        if any(not math.isfinite(float(v)) for v in (logs or {}).values()):
            return  # the keeper refuses this epoch
        path = state_file(self.keeper.run.path, epoch + 1)
        with self.keeper.writing():
            runs.write_bytes(path, runs.weights_bytes(self.model))  # built in memory: see weights_bytes


def _refuse_non_finite(logs, epoch, info, run_dir):
    bad = {k: v for k, v in logs.items() if not math.isfinite(v)}
    if not bad:
        return
    name = "loss" if "loss" in bad else sorted(bad)[0]
    if info.get("best_epoch") and info.get("val_accuracy") is None:  # --val-split 0
        kept = f"the weights of epoch {info['best_epoch']}, the last finite one, are kept in {run_dir}"
    elif info.get("best_epoch"):
        kept = (f"the best weights (epoch {info['best_epoch']}, val_accuracy {info['val_accuracy']:.4f}) "
                f"are kept in {run_dir}")
    else:
        kept = "no epoch had finished, so nothing was kept"
    raise NonFiniteLoss(f"{name} became {bad[name]} in epoch {epoch + 1}: training stopped and {kept}; "
                        f"try a lower --lr (this run: {info.get('args', {}).get('lr')})")


class NonFiniteLoss(FERError):
    """Training diverged (a NaN or infinite loss): nothing from that epoch is saved."""


class EpochRandomness(keras.callbacks.Callback):
    """Makes each epoch's random streams a function of (seed, epoch) alone: the batch order and
    MixUp/CutMix draws (`dataset.set_epoch`) and every random layer's SeedGenerator (augmentation,
    dropout) are set afresh at each epoch start. A run resumed after epoch 4 therefore draws in
    epoch 5 exactly what an uninterrupted run draws there, whatever ran before; the generators'
    states are not part of the saved weights, so they could not be carried over."""

    def __init__(self, dataset, model, seed):
        super().__init__()
        self.dataset, self.seed = dataset, seed
        # Each generator keeps its own first seed (set from the global seed when the model was built).
        self.generators = [(v, int(keras.ops.convert_to_numpy(v)[0]))
                           for v in model.non_trainable_variables if v.name == "seed_generator_state"]

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.set_epoch(epoch)
        for variable, first in self.generators:
            variable.assign(np.array([_mix(first, epoch), 0], dtype=variable.dtype))
        if keras.backend.backend() == "torch":
            # Under PyTorch, Keras' Dropout without a seed of its own draws from torch's global
            # generator (a faster path than its SeedGenerator): restart that one too.
            import torch  # the backend's own module, loaded already

            torch.manual_seed(_mix(self.seed, epoch))


def _mix(seed, epoch):
    """A 31-bit seed for (seed, epoch): any backend's seed type holds it."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]) & 0x7FFFFFFF


class TimeBudget(keras.callbacks.Callback):
    """Training against a wall-time budget (--time-budget): stops once `minutes` are spent (after
    the epoch in progress is validated) and, given `peak_lr`, sets a linear warm-up then cosine
    decay over the elapsed share of the budget before every batch. The epoch-based schedule is
    keras.optimizers.schedules.CosineDecay (ferkit/train/loop.py); it cannot be used here because its
    progress is the step count, and how many steps fit in the budget is known only at the end."""

    def __init__(self, minutes, peak_lr=None, warmup=0.0, elapsed_before=0.0, clock=time.monotonic):
        super().__init__()
        self.budget, self.peak, self.warmup = minutes * 60, peak_lr, warmup
        self.elapsed_before, self.clock = elapsed_before, clock

    def on_train_begin(self, logs=None):
        self.t0 = self.clock()

    def on_train_batch_begin(self, batch, logs=None):
        p = (self.elapsed_before + self.clock() - self.t0) / self.budget
        if p >= 1.0:
            self.model.stop_training = True
        if self.peak is None:
            return
        p = min(p, 1.0)
        if p < self.warmup:
            lr = self.peak * p / self.warmup
        else:
            lr = self.peak * 0.5 * (1 + math.cos(math.pi * (p - self.warmup) / (1 - self.warmup)))
        self.model.optimizer.learning_rate = lr


class StopOnRequest(keras.callbacks.Callback):
    """Ends fit() at the next batch once `event` is set (by the main thread on Ctrl-C), by raising
    KeyboardInterrupt in the training thread, so the run stops as a Ctrl-C would stop it."""

    def __init__(self, event):
        super().__init__()
        self.event = event

    def _check(self, *_args, **_kwargs):
        if self.event.is_set():
            raise KeyboardInterrupt

    on_epoch_begin = on_train_batch_begin = on_test_batch_begin = _check


class Progress(keras.callbacks.Callback):
    """What a newcomer needs to know about a long run: after the first steps, the estimated time of
    the whole run (with a hint when that is long and no GPU is present); and, when `periodic`
    (output is not a terminal, so there is no progress bar), a line every `interval` seconds."""

    MEASURE_STEPS, MEASURE_SECONDS, LONG_RUN = 5, 30.0, 2 * 3600

    def __init__(self, epochs, initial_epoch=0, time_budget=None, elapsed_before=0.0, gpu=False,
                 model_name=None, periodic=False, interval=180.0, clock=time.monotonic, print_fn=print):
        super().__init__()
        self.epochs, self.initial_epoch = epochs, initial_epoch
        self.budget_left = time_budget * 60 - elapsed_before if time_budget else None
        self.gpu, self.model_name, self.periodic, self.interval = gpu, model_name, periodic, interval
        self.clock, self.print = clock, print_fn
        self.epoch, self.seen, self.t_first, self.estimated = initial_epoch, 0, None, False

    def on_train_begin(self, logs=None):
        self.t_last_line = self.clock()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        now = self.clock()
        self.seen += 1
        if self.seen == 1:  # the first step also builds and compiles the step function: not timed
            self.t_first = now
            return
        step = (now - self.t_first) / (self.seen - 1)
        steps = self.params.get("steps") or 1
        left = step * ((self.epochs - self.epoch - 1) * steps + steps - batch - 1)
        if self.budget_left is not None:
            left = min(left, self.budget_left - (now - self.t_first))
        if not self.estimated and (self.seen > self.MEASURE_STEPS or now - self.t_first >= self.MEASURE_SECONDS):
            self.estimated = True
            self._estimate(step, steps, now - self.t_first)
        elif self.periodic and now - self.t_last_line >= self.interval:
            self.t_last_line = now
            self.print(f"epoch {self.epoch + 1}/{self.epochs}, step {batch + 1}/{steps}: {step:.2f} s per step, "
                       f"about {duration(left)} left", flush=True)

    def _estimate(self, step, steps, elapsed):
        epochs = self.epochs - self.initial_epoch
        full = step * epochs * steps  # validation adds to it; it is not timed yet
        what = f"{plural(epochs, 'epoch')} of {steps} steps at {step:.2f} s per step"
        if self.budget_left is not None and self.budget_left < full:
            self.print(f"estimated training time: {duration(self.budget_left)}, the time budget "
                       f"({what} would take {duration(full)})", flush=True)
            return
        self.print(f"estimated training time: {duration(full)} ({what}, validation not counted)", flush=True)
        if full > self.LONG_RUN and not self.gpu and self.budget_left is None:
            faster = "" if self.model_name == "fernet" else "--model fernet (a compact network made for CPUs) or "
            self.print(f"hint: that is long for a machine without a GPU; try {faster}--time-budget MINUTES, "
                       "which fits the whole schedule into the time you give", flush=True)


def duration(seconds):
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"
