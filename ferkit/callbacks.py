"""Training callbacks: the run-folder keeper and the (time-budgeted) cosine schedule."""
import csv
import io
import math
import os
import time

from ferbase.atomic import atomic_open, write_json
from ferbase.quiet import import_keras
from models import runs

keras = import_keras()  # TensorFlow's start-up notices stay off stderr


class RunKeeper(keras.callbacks.Callback):
    """After each epoch: history.csv, the best weights and run.json, each written atomically."""

    def __init__(self, run_dir, info):
        super().__init__()
        self.run_dir, self.info = run_dir, info
        self.history = _read_history(os.path.join(run_dir, "history.csv"))
        self.t_start = None

    def on_train_begin(self, logs=None):
        self.t_start = time.time()
        self.t_base = self.info.get("train_seconds", 0.0)
        # BackupAndRestore set the epoch to resume from: forget epochs after it.
        start = getattr(self.model, "_initial_epoch", 0) or 0
        self.history = [row for row in self.history if int(row["epoch"]) <= start]

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        lr = self.model.optimizer.learning_rate
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()},
               "lr": float(keras.ops.convert_to_numpy(lr)), "seconds": round(self._elapsed(), 1)}
        self.history.append(row)
        _write_history(os.path.join(self.run_dir, runs.HISTORY_FILE), self.history)
        acc = logs.get("val_accuracy")
        if acc is not None and acc > self.info.get("val_accuracy", -1.0):
            runs.save_weights(self.model, os.path.join(self.run_dir, runs.WEIGHTS_FILE))
            self.info.update(val_accuracy=float(acc), val_loss=float(logs.get("val_loss", float("nan"))),
                             best_epoch=epoch + 1)
        self.info.update(epochs_done=epoch + 1, train_seconds=round(self._elapsed(), 1))
        write_json(os.path.join(self.run_dir, runs.RUN_FILE), self.info)

    def finish(self, status):
        self.info["status"] = status
        if self.t_start is not None:
            self.info["train_seconds"] = round(self._elapsed(), 1)
        write_json(os.path.join(self.run_dir, runs.RUN_FILE), self.info)

    def _elapsed(self):
        return self.t_base + (time.time() - self.t_start)


class CosineSchedule(keras.callbacks.Callback):
    """Linear warm-up then cosine decay to zero, set before every batch. Progress is measured in
    epochs, or in wall time when `time_budget` (minutes) is given; then training also stops
    once the budget is spent (after evaluating the epoch in progress)."""

    def __init__(self, peak_lr, warmup, epochs, steps, time_budget=None, elapsed_before=0.0):
        super().__init__()
        self.peak, self.warmup, self.epochs, self.steps = peak_lr, warmup, epochs, steps
        self.budget = time_budget * 60 if time_budget else None
        self.elapsed_before = elapsed_before
        self.epoch = 0

    def on_train_begin(self, logs=None):
        self.t0 = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def progress(self, batch):
        if self.budget:
            return (self.elapsed_before + time.time() - self.t0) / self.budget
        return (self.epoch + batch / self.steps) / self.epochs

    def on_train_batch_begin(self, batch, logs=None):
        p = self.progress(batch)
        if self.budget and p >= 1.0:
            self.model.stop_training = True
        if self.peak is None:
            return
        p = min(p, 1.0)
        if p < self.warmup:
            lr = self.peak * (p / self.warmup)
        else:
            lr = self.peak * 0.5 * (1 + math.cos(math.pi * (p - self.warmup) / (1 - self.warmup)))
        self.model.optimizer.learning_rate = lr


def _read_history(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _write_history(path, rows):
    fields = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_open(path, "w", newline="") as f:
        f.write(buf.getvalue())
