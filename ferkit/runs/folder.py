"""The run folder of one training: where it goes, its lock, its commits (run.json, history.csv),
its resume state, and its removal when nothing was trained.

A new run's folder appears only once the data loaded and the model built, and is removed again
when the training ends before its first epoch finished (an error, Ctrl-C): no empty run folders.
A lock file (`.lock`, holding the owner's pid) keeps two trainings out of one folder; it is an
fcntl lock, which the kernel drops when its process dies, so a killed training never blocks the
next one.
"""
import contextlib
import csv
import datetime
import io
import os
import platform
import re
import shutil
import threading

from ferkit import files as outputs
from ferkit.errors import FERError
from ferkit.runs import layout, legacy
from ferkit.runs.layout import LOCK_FILE, STATE_DIR, state_file

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; trainings are then not kept apart
    fcntl = None


class RunFolder:
    def __init__(self, path, created):
        self.path, self.created = path, created
        self.commit_lock = threading.RLock()  # the training thread and a Ctrl-C in the main thread both commit
        self._lock_file = None
        self.wrote_run_file = False

    @classmethod
    def new(cls, path):
        created = not os.path.isdir(path)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise FERError(outputs.describe_os_error(e, path)) from None
        folder = cls(path, created)
        folder.lock()
        if os.path.exists(os.path.join(path, layout.RUN_FILE)):  # another training got here first
            folder.release()
            raise FERError(f"{path}: already holds a run; use --resume to continue it or choose another --out")
        return folder

    @classmethod
    def existing(cls, path):
        folder = cls(path, created=False)
        folder.lock()
        folder.wrote_run_file = True
        return folder

    def lock(self):
        if fcntl is None:
            return
        path = os.path.join(self.path, LOCK_FILE)
        for _ in range(3):
            f = open(path, "a+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                owner = f.read().strip() or "unknown"
                f.close()
                raise FERError(f"{self.path}: another training (pid {owner}) is writing to this run folder; "
                               "wait for it to end or choose another --out") from None
            if _same_inode(path, f):  # not a file that its last owner removed meanwhile
                f.seek(0)
                f.truncate()
                f.write(f"{os.getpid()}\n")
                f.flush()
                self._lock_file = f
                return
            f.close()
        raise FERError(f"{self.path}: could not lock {LOCK_FILE}; try again")

    def release(self):
        f, self._lock_file = self._lock_file, None  # once, even if both threads release
        if f is not None:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(self.path, LOCK_FILE))
            f.close()

    def commit(self, info):
        with self.commit_lock:
            outputs.write_json(os.path.join(self.path, layout.RUN_FILE), info)
            self.wrote_run_file = True

    def discard(self):
        """Remove what a training that finished no epoch wrote here, and the folder if it made it."""
        self.release()
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        for name in (layout.RUN_FILE, layout.HISTORY_FILE, STATE_DIR):
            path = os.path.join(self.path, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.remove(path)


def restore_state(model, run_dir, epoch):
    """Load the state saved after `epoch` epochs into a compiled model (weights and optimizer)."""
    path = state_file(run_dir, epoch)
    if not os.path.exists(path):
        path = legacy.backup_and_restore_state(run_dir, epoch) or path
    if not os.path.exists(path):
        raise FERError(f"{run_dir}: no saved training state for epoch {epoch} ({path}); cannot resume this run")
    model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(path)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:  # h5py's errors on a damaged file
        raise FERError(f"{path}: damaged training state ({str(e).splitlines()[0][:200]}); cannot resume") from None


def remove_states(run_dir, keep):
    folder = os.path.join(run_dir, STATE_DIR)
    if not os.path.isdir(folder):
        return
    keep = os.path.basename(state_file(run_dir, keep)) if keep else None
    for name in os.listdir(folder):
        if name != keep:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, name))
    if keep is None:
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def write_history(path, rows):
    fields = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    with outputs.open_output(path, "w", newline="") as f:
        f.write(buf.getvalue())


def _same_inode(path, f):
    try:
        a, b = os.stat(path), os.fstat(f.fileno())
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def new_run_dir(args):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return args.out or os.path.join(layout.RUNS_DIR, f"{args.model}-{stamp}"), stamp


def hardware(cpuinfo="/proc/cpuinfo"):
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
    total = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else total
    cores = f"{usable} of {total} CPU cores" if usable < total else f"{total} CPU cores"  # pinned (taskset, --jobs)
    return f"{cpu}, {cores}, {platform.system()}"
