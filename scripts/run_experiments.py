#!/usr/bin/env python
"""Reproduce the course report's table: train each network, keep its run files, write the table.

    python scripts/run_experiments.py                 # the CPU plan; on a GPU also cnn2, cnn3 and theirs
    python scripts/run_experiments.py --dry-run       # print the training commands, run nothing
    python scripts/run_experiments.py --only cnn1 fernet --budget 20
    python scripts/run_experiments.py --smoke         # synthetic faces, seconds per run: a check of the path

Every run is `train_cnn.py`/`train_dnn.py` with the same wall-time budget (--time-budget: the
cosine schedule runs over time), the training defaults, and public_test for validation. The CPU
plan is cnn1, cnn1 without BatchNorm, cnn1 without augmentation, the DNN of cnn1's size with and
without augmentation, and fernet; when Keras sees a GPU, cnn2, cnn3, cnn3's two ablations and
the DNN of cnn3's size join it (ferkit/report/experiments.py). Run folders go to --runs; after each run
its run.json and history.csv (not the weights) are copied to --docs/<name>/ and
--docs/results.md is rewritten. Rerunning the same command skips finished runs and resumes
unfinished ones (--resume), so an interrupted plan continues where it stopped.

`--jobs 2` trains two runs at once, each pinned to its own half of the cores (one core each on
a 2-core machine): the whole CPU plan in half the wall time, every run with the same budget and
the same share of the machine, which run.json records ("1 of 2 CPU cores").
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as `python scripts/run_experiments.py`: the packages live one level up

from ferkit.cli import Parser, positive_float, positive_int, run_main  # noqa: E402
from ferkit.errors import FERError  # noqa: E402
from ferkit.files import open_output, write_json  # noqa: E402
from ferkit.report import experiments  # noqa: E402
from ferkit.runs.layout import HISTORY_FILE, RUN_FILE  # noqa: E402

DATA = os.path.join("..", "shared", "data", "fer2013")
# Asked in a child process: under JAX, listing the devices claims most of the GPU's memory for
# the process that asks, and the training runs need it.
DETECT = """import json, keras
try:
    devices = keras.distribution.list_devices()
except AttributeError:  # Keras 3.15 has no device list for the torch backend
    import torch
    devices = [f"gpu:{i}" for i in range(torch.cuda.device_count())] or ["cpu:0"]
print(json.dumps({"backend": keras.backend.backend(), "devices": devices}))"""


def build_parser():
    p = Parser(prog="run_experiments.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--train", default=os.path.join(DATA, "train.csv.gz"), metavar="CSV", help="training CSV")
    p.add_argument("--val", default=os.path.join(DATA, "public_test.csv.gz"), metavar="CSV",
                   help="validation CSV: chooses each run's best epoch and gives the table's accuracies")
    p.add_argument("--budget", type=positive_float, default=45.0, metavar="MINUTES",
                   help="wall-time budget of every run (train_*.py --time-budget)")
    p.add_argument("--gpu", choices=["auto", "yes", "no"], default="auto",
                   help="add the GPU experiments: auto asks Keras' device list (KERAS_BACKEND as set)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these experiments (any of the plan)")
    p.add_argument("--runs", default=os.path.join("runs", "experiments"), metavar="DIR",
                   help="run folders, with weights (git-ignored)")
    p.add_argument("--docs", default=os.path.join("docs", "experiments"), metavar="DIR",
                   help="where run.json, history.csv and results.md are kept (default with --smoke: RUNS/docs)")
    p.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                   help="runs at once, each pinned to its own 1/N of the cores (Linux); 1 gives each run all of them")
    p.add_argument("--dry-run", action="store_true", help="print what would run, run nothing")
    p.add_argument("--smoke", action="store_true",
                   help="synthetic faces in RUNS/data, a budget of 0.01 minutes and batch 16: checks the "
                        "whole path in seconds per run (default --runs: runs/experiments-smoke)")
    return p


def main(argv=None):
    return run_main(lambda: run(build_parser().parse_args(argv)))


def run(args):
    groups = _core_groups(args.jobs)  # before the data: an impossible option is the first thing said
    _resolve_paths(args)
    gpu = _gpu(args)
    chosen = experiments.plan(gpu=gpu["present"], only=args.only)
    at_once = f", {args.jobs} at once on {', '.join(_cores_text(g) for g in groups)}" if args.jobs > 1 else ""
    print(f"{len(chosen)} runs of {args.budget:g} min each ({gpu['line']}{at_once}); run folders in {args.runs}, "
          f"results in {args.docs}", flush=True)
    failed, stopped = [], False
    pending, running = list(chosen), {}  # running: core group index -> (experiment, process)
    while pending or running:
        free = [i for i in range(len(groups)) if i not in running]
        while pending and free and not stopped:
            e, slot = pending.pop(0), free[0]
            if args.dry_run:  # nothing starts, so no slot fills: show the cores in turn
                slot = (len(chosen) - len(pending) - 1) % len(groups)
            proc = _start(e, args, gpu, groups[slot])
            if proc is not None:
                running[slot] = (e, proc)
                free.pop(0)
        if not running:
            break
        try:
            time.sleep(1)
        except KeyboardInterrupt:  # the runs got the Ctrl-C too: each saves its state and stops
            stopped = True
        for slot, (e, proc) in list(running.items()):
            if proc.poll() is not None:
                del running[slot]
                stopped |= proc.returncode == 130
                if _finish(e, args, proc.returncode) and proc.returncode != 130:
                    failed.append(e.name)
    if stopped:
        print("stopped: run the same command again to resume", file=sys.stderr)
        return 130
    if not args.dry_run:
        _write_table(args)
    if failed:
        print(f"failed: {', '.join(failed)} (logs: {args.runs}/<name>.log)", file=sys.stderr)
        return 1
    return 0


def _core_groups(jobs):
    """The cores this process may use, split into `jobs` disjoint groups, one per concurrent run;
    [None] for one job: it is not pinned and takes every core."""
    if jobs == 1:
        return [None]
    if not hasattr(os, "sched_setaffinity"):
        raise FERError("--jobs above 1 pins each run to its cores, which needs Linux (os.sched_setaffinity)")
    cores = sorted(os.sched_getaffinity(0))
    if jobs > len(cores):
        raise FERError(f"--jobs {jobs}: only {len(cores)} CPU core{'s' if len(cores) != 1 else ''} to share out")
    size = len(cores) // jobs
    return [cores[i * size:(i + 1) * size] for i in range(jobs)]


def _cores_text(group):
    return f"core {group[0]}" if len(group) == 1 else f"cores {group[0]}-{group[-1]}"


def _resolve_paths(args):
    """Defaults are relative to the repository root, a user's paths to the working directory;
    all become relative to the root (where the runs execute), so the recorded commands read as
    one types them there. --smoke writes its own data and never touches docs/."""
    if args.only:
        unknown = sorted(set(args.only) - {e.name for e in experiments.PLAN})
        if unknown:
            raise FERError(f"--only {' '.join(unknown)}: no such experiment "
                           f"(choose from {', '.join(e.name for e in experiments.PLAN)})")
    defaults = build_parser()

    def rooted(name):
        value, default = getattr(args, name), defaults.get_default(name)
        return os.path.join(ROOT, value) if value == default else os.path.abspath(value)

    args.train, args.val, args.runs, args.docs = map(rooted, ("train", "val", "runs", "docs"))
    if args.smoke:
        if args.runs == os.path.join(ROOT, defaults.get_default("runs")):
            args.runs = os.path.join(ROOT, "runs", "experiments-smoke")
        if args.docs == os.path.join(ROOT, defaults.get_default("docs")):
            args.docs = os.path.join(args.runs, "docs")
        args.budget = 0.01
        args.train, args.val = _smoke_data(os.path.join(args.runs, "data"))
    args.train, args.val, args.runs, args.docs = map(_from_root, (args.train, args.val, args.runs, args.docs))
    for path in (args.train, args.val):
        if not os.path.isfile(os.path.join(ROOT, path)):
            raise FERError(f"{path}: no such file (pass --train/--val, or --smoke for synthetic faces)")


def _from_root(path):
    """`path` relative to the repository root when it lies inside it or in the shared data folder
    beside it (../shared, the README's layout), else as given: a file elsewhere must not turn into
    a path that depends on where the repository was cloned."""
    rel = os.path.relpath(path, ROOT)
    inside = not rel.startswith("..") or rel.startswith(os.path.join("..", "shared") + os.sep)
    return rel if inside else path


def _smoke_data(folder):
    from data import synthetic

    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, n, seed in (("train.csv", 112, 1), ("val.csv", 28, 2)):
        images, labels = synthetic.make_faces(n, seed=seed)
        paths.append(synthetic.write_csv(os.path.join(folder, name), images, labels))
    return paths


def _gpu(args):
    """{"present": bool, "name": accelerator for the table or None, "line": what was found}."""
    if args.gpu != "auto":
        return {"present": args.gpu == "yes", "name": _gpu_name() if args.gpu == "yes" else None,
                "line": f"--gpu {args.gpu}"}
    proc = subprocess.run([sys.executable, "-c", DETECT], cwd=ROOT, capture_output=True, text=True)
    try:
        found = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise FERError(f"cannot start Keras to look for a GPU: {(proc.stderr.strip().splitlines() or ['?'])[-1]}") \
            from None
    present = any(d.startswith("gpu") for d in found["devices"])
    return {"present": present, "name": _gpu_name() if present else None,
            "line": f"Keras {found['backend']} sees {', '.join(found['devices'])}"}


def _gpu_name():
    """The GPU's model name from nvidia-smi, or plainly 'GPU' without it."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        out = []
    return f"{len(out)}x {out[0]}" if out else "GPU"


def command(e, args, resume=False):
    """The training command of experiment `e`, as run from the repository root."""
    out = os.path.join(args.runs, e.name)
    cmd = ["python", e.script, args.train, *e.args, "--val", args.val, "--time-budget", f"{args.budget:g}",
           "--epochs", "1000", "--out", out, "--quiet"]  # --epochs only bounds it: the budget ends each run
    if args.smoke:
        cmd += ["--batch-size", "16"]
    return cmd + (["--resume"] if resume else [])


def _status(run_dir):
    try:
        with open(os.path.join(ROOT, run_dir, RUN_FILE)) as f:
            return json.load(f).get("status")
    except (OSError, ValueError):
        return None


def _start(e, args, gpu, cores=None):
    """Start (or resume) experiment `e` in the background, pinned to `cores` when given; None when
    there is nothing to train (finished: its files are kept again; or --dry-run)."""
    run_dir = os.path.join(args.runs, e.name)
    status = _status(run_dir)
    if status == "done":
        print(f"= {e.name}: finished, skipped", flush=True)
        if not args.dry_run:
            _keep(e, args)
        return None
    cmd = command(e, args, resume=status is not None)
    pinned = f" [{_cores_text(cores)}]" if cores else ""
    print(f"{'> resume' if status else '>'} {e.name}{pinned}: {shlex.join(cmd)}", flush=True)
    if args.dry_run:
        return None
    if status is None:  # how it was started, for the table: the training command and the GPU
        write_json(os.path.join(ROOT, run_dir + ".json"), {"command": shlex.join(cmd), "accelerator": gpu["name"]})
    log = os.path.join(ROOT, run_dir + ".log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "a") as f:  # the run's own output, kept beside its folder; the child holds its own copy
        # TensorFlow sizes its thread pools from the cores it may run on, so a pinned run uses just those.
        pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
        return subprocess.Popen([sys.executable, *cmd[1:]], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                preexec_fn=pin)


def _finish(e, args, rc):
    """Report a run that ended and keep its files if it finished; its exit status."""
    run_dir = os.path.join(args.runs, e.name)
    print(f"  {e.name}: exit {rc}; {_one_line(run_dir, os.path.join(ROOT, run_dir + '.log'))}", flush=True)
    if _status(run_dir) == "done":
        _keep(e, args)
    return rc


def _one_line(run_dir, log):
    s = experiments.summarize(os.path.join(ROOT, run_dir))
    if s is None:
        with open(log) as f:
            last = (f.read().strip().splitlines() or ["(empty log)"])[-1]
        return f"no finished epoch; {os.path.relpath(log, ROOT)} ends: {last}"
    return (f"best val {100 * s['best']:.2f}% (epoch {s['best_epoch']}), last epoch {100 * s['last']:.2f}%, "
            f"{s['epochs']} epoch{'s' if s['epochs'] != 1 else ''}, {s['minutes']:.1f} min")


def _keep(e, args):
    """run.json (with how this runner started it) and history.csv into docs/<name>/; no weights."""
    src, dest = os.path.join(ROOT, args.runs, e.name), os.path.join(ROOT, args.docs, e.name)
    with open(os.path.join(src, RUN_FILE)) as f:
        info = json.load(f)
    try:
        with open(src + ".json") as f:
            started = json.load(f)
    except (OSError, ValueError):  # started by hand: the command this runner would use
        started = {"command": shlex.join(command(e, args)), "accelerator": None}
    info["experiment"] = {"name": e.name, **started}
    write_json(os.path.join(dest, RUN_FILE), info)
    with open(os.path.join(src, HISTORY_FILE), newline="") as fin, \
            open_output(os.path.join(dest, HISTORY_FILE), "w", newline="") as fout:
        shutil.copyfileobj(fin, fout)


def _write_table(args):
    """results.md over the whole plan, whatever ran this time: GPU rows say so beside the report."""
    summaries = {e.name: experiments.summarize(os.path.join(ROOT, args.docs, e.name)) for e in experiments.PLAN}
    path = os.path.join(ROOT, args.docs, "results.md")
    with open_output(path, "w") as f:
        f.write(experiments.results_table(experiments.PLAN, summaries))
    print(f"table: {os.path.join(args.docs, 'results.md')}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
