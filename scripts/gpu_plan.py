#!/usr/bin/env python
"""The GPU plan behind scripts/gpu_experiments.sh: pack the data so it travels, run every
training run of the plan at once on one GPU, evaluate them with predict.py, write results.

    python scripts/gpu_plan.py pack ../shared/data/fer2013 .cache/gpu-data   # here, once (~1 min)
    python scripts/gpu_plan.py run --data .cache/gpu-data --out $OUT --minutes 8.5   # on the GPU machine

Why packed data: the device machine gets the repo's working tree and carried folders only
(64 MiB in all) and ../shared does not travel; train.csv.gz + public_test.csv.gz are 63 MiB.
`pack` stores the same pixels and labels as xz-compressed uint8 arrays (35 MiB); `run` writes
them back as plain `label,feature` CSVs under /tmp (byte for byte the format train_cnn.py reads),
so training and evaluation go through the project's own loaders and scripts.

Why one process per run, all at once: these networks are far too small to fill an H100, and
a Keras fit loop spends much of each step on the host; several processes on one GPU (each
with its own slice of memory, XLA_PYTHON_CLIENT_MEM_FRACTION) keep it busy. Every run trains
with --time-budget, so the cosine schedule runs over wall time and the plan ends on time.

What comes back ($OUT, at most 8 files): results.json, results.md, gpu_experiments.log,
runs.tar.gz (every run's run.json, history.csv, training and predict logs), and the best single
run's folder (run.json + best.weights.h5) as best_run.tar.part0, .part1, ... (15 MiB parts;
`cat best_run.tar.part* | tar -x` joins them).
"""
import argparse
import io
import json
import lzma
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

SPLITS = ("train", "public_test")
PART_BYTES = 15 * 2**20
MAX_PARTS = 4  # $OUT returns 8 files: 4 for results and logs, 4 for the best run

# ------------------------------------------------------------------ the plan
# Every run: (name, group, script, arguments). `sota` runs train the whole training phase;
# `table` runs (the report's experiments) train an equal, shorter budget, all at the same time.
# The budget split itself follows from --minutes (see budgets()).
# No --mixed-precision by default: under KERAS_BACKEND=jax (0.11.2, checked on CPU) a mixed_bfloat16
# model's predict/evaluate returned NaN while model(x) did not, which would blind the per-epoch
# validation; float32 convolutions run as TF32 on an H100 anyway. `run --mixed-precision` adds it.
COMMON = ["--epochs", "1000", "--quiet"]
TABLE_COMMON = COMMON + ["--batch-size", "128"]  # the project's defaults otherwise: Adam 1e-3, cosine
SOTA_NET = ["--model", "fernet", "--option", "width=64", "--option", "blocks=(2,2,2,2)"]
SOTA_COMMON = COMMON + SOTA_NET + ["--batch-size", "128", "--label-smoothing", "0.1", "--erasing", "0.5",
                                   "--warmup", "0.1"]
PLAN = [
    ("sota_sgd", "sota", "train_cnn.py", SOTA_COMMON + ["--optimizer", "sgd", "--lr", "0.1", "--weight-decay", "5e-4"]),
    ("sota_adamw", "sota", "train_cnn.py", SOTA_COMMON + ["--optimizer", "adamw", "--lr", "2e-3",
                                                          "--weight-decay", "0.05"]),
    ("cnn1", "table", "train_cnn.py", TABLE_COMMON + ["--model", "cnn1"]),
    ("cnn2", "table", "train_cnn.py", TABLE_COMMON + ["--model", "cnn2"]),
    ("cnn3", "table", "train_cnn.py", TABLE_COMMON + ["--model", "cnn3"]),
    ("dnn", "table", "train_dnn.py", TABLE_COMMON + ["--match", "cnn3"]),
    ("cnn3_no_batchnorm", "table", "train_cnn.py", TABLE_COMMON + ["--model", "cnn3", "--no-batchnorm"]),
    ("cnn3_no_augment", "table", "train_cnn.py", TABLE_COMMON + ["--model", "cnn3", "--no-augment"]),
]
ENSEMBLE_SIZES = (2, 3)  # ensembles of the best runs by single-model TTA accuracy
OVERHEAD_MIN = 2.0  # minutes of the job outside the training phase: start-up, JAX compiles, evaluation
TABLE_SHARE = 0.55  # a table run trains this share of the training phase


def budgets(minutes):
    """(sota minutes, table minutes) for a job of `minutes` wall time."""
    sota = max(minutes - OVERHEAD_MIN, 0.05)
    return round(sota, 2), round(sota * TABLE_SHARE, 2)


# ------------------------------------------------------------------ data packing


def pack(src_dir, dest_dir, rows=None, splits=SPLITS):
    """src_dir/<split>.csv.gz -> dest_dir/<split>.npz.xz (uint8 images + int labels/ids)."""
    import data

    os.makedirs(dest_dir, exist_ok=True)
    out = []
    for split in splits:
        src = os.path.join(src_dir, f"{split}.csv.gz")
        ds = next(data.iter_csv(src, chunk_rows=rows)) if rows else data.load_csv(src)
        arrays = {"images": ds.images}
        if ds.labels is not None:
            arrays["labels"] = ds.labels.astype(np.uint8)
        else:
            arrays["ids"] = ds.ids.astype(np.int64)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        dest = os.path.join(dest_dir, f"{split}.npz.xz")
        with open(dest + ".tmp", "wb") as f:
            f.write(lzma.compress(buf.getvalue(), preset=6))
        os.replace(dest + ".tmp", dest)
        print(f"packed {src} ({len(ds)} rows) -> {dest} ({os.path.getsize(dest) / 2**20:.1f} MiB)", flush=True)
        out.append(dest)
    return out


def unpack(src_dir, dest_dir, splits=SPLITS):
    """src_dir/<split>.npz.xz -> dest_dir/<split>.csv (plain course-layout CSV); paths by split."""
    os.makedirs(dest_dir, exist_ok=True)
    paths = {}
    for split in splits:
        src = os.path.join(src_dir, f"{split}.npz.xz")
        with lzma.open(src) as f, np.load(io.BytesIO(f.read())) as z:
            images = z["images"]
            first, header = (z["labels"], "label") if "labels" in z.files else (z["ids"], "id")
        dest = os.path.join(dest_dir, f"{split}.csv")
        write_csv_fast(dest, images, first, header)
        paths[split] = dest
    return paths


def write_csv_fast(path, images, first, header="label"):
    """`header,feature` CSV of uint8 images, vectorized (a few seconds for all of FER2013)."""
    n = len(images)
    v = images.reshape(n, -1).astype(np.int32)
    ndig = 1 + (v >= 10) + (v >= 100)
    width = ndig + 1  # digits and the separator after them
    prefixes = [f"{int(x)},".encode() for x in first]
    plen = np.array([len(p) for p in prefixes], np.int64)
    row_len = plen + width.sum(axis=1)
    row_start = np.concatenate([[0], np.cumsum(row_len)[:-1]])
    out = np.empty(int(row_len.sum()), np.uint8)
    # start of every pixel token: row start + prefix + what the row's earlier tokens take
    start = np.cumsum(width, axis=1) - width + (row_start + plen)[:, None]
    start, ndig, v = start.ravel(), ndig.ravel(), v.ravel()
    out[start + ndig - 1] = 48 + v % 10
    two = ndig >= 2
    out[start[two] + ndig[two] - 2] = 48 + (v[two] // 10) % 10
    three = ndig == 3
    out[start[three]] = 48 + v[three] // 100
    sep = np.full(len(v), ord(" "), np.uint8)
    sep.reshape(n, -1)[:, -1] = ord("\n")
    out[start + ndig] = sep
    for s, p in zip(row_start, prefixes):
        out[s:s + len(p)] = np.frombuffer(p, np.uint8)
    with open(path + ".tmp", "wb") as f:
        f.write(f"{header},feature\n".encode())
        f.write(out.tobytes())
    os.replace(path + ".tmp", path)
    return path


# ------------------------------------------------------------------ running


class Job:
    def __init__(self, name, cmd, log, env, deadline_s, kind):
        self.name, self.cmd, self.log, self.env, self.deadline_s, self.kind = name, cmd, log, env, deadline_s, kind
        self.proc = self.t0 = self.rc = None
        self.seconds = None

    def start(self):
        self.t0 = time.time()
        self._log = open(self.log, "w")
        self._log.write("$ " + " ".join(self.cmd) + "\n")
        self._log.flush()
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def poll(self):
        if self.proc is None or self.rc is not None:
            return self.rc
        rc = self.proc.poll()
        if rc is None and time.time() - self.t0 > self.deadline_s:
            say(f"{self.name}: over its {self.deadline_s:.0f} s limit, stopping it")
            _kill(self.proc, signal.SIGINT)  # the training scripts save and mark the run on SIGINT
            try:
                rc = self.proc.wait(20)
            except subprocess.TimeoutExpired:
                _kill(self.proc, signal.SIGKILL)
                rc = self.proc.wait()
        if rc is not None:
            self.rc, self.seconds = rc, time.time() - self.t0
            self._log.close()
        return self.rc


def _kill(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


T_START = time.time()


def say(msg):
    print(f"[{time.time() - T_START:6.1f}s] {msg}", flush=True)


def run_plan(args):
    out = os.path.abspath(args.out)
    work = os.path.abspath(args.work)
    runs_dir = os.path.join(work, "runs")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(runs_dir)
    os.makedirs(out, exist_ok=True)
    os.environ.setdefault("FER_CACHE_DIR", os.path.join(work, "cache"))

    sota_min, table_min = budgets(args.minutes) if not args.smoke else (0.15, 0.05)
    if args.smoke:  # a busy 2-core CPU takes minutes where the GPU takes seconds (cnn2 with TTA)
        args.eval_limit = max(args.eval_limit, 600)
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    say(f"plan: {args.minutes} min job; sota runs {sota_min} min, table runs {table_min} min; "
        f"KERAS_BACKEND={backend}; smoke={args.smoke}")

    # data: plain CSVs under work/, and the parse cache warmed once for every process
    t = time.time()
    if args.smoke:
        paths = _smoke_data(args.data, os.path.join(work, "data"), args.smoke_rows)
    elif all(os.path.exists(os.path.join(args.data, f"{s}.npz.xz")) for s in SPLITS):
        paths = unpack(args.data, os.path.join(work, "data"))
    else:
        paths = {s: os.path.join(args.data, f"{s}.csv.gz") for s in SPLITS}
    import data

    rows = {s: len(data.load_csv(p)) for s, p in paths.items()}
    say(f"data ready in {time.time() - t:.1f} s: {rows}")
    train_csv, val_csv = paths["train"], paths["public_test"]

    results = {"plan": {"minutes": args.minutes, "sota_minutes": sota_min, "table_minutes": table_min,
                        "backend": backend, "smoke": args.smoke, "rows": rows,
                        "concurrent_jobs": args.jobs, "mem_fraction": args.mem_fraction,
                        "mixed_precision": args.mixed_precision},
               "host": _host(), "runs": {}, "ensembles": {}}
    plan = [p for p in PLAN if not args.only or p[0] in args.only]
    env = dict(os.environ, PYTHONUNBUFFERED="1", XLA_PYTHON_CLIENT_MEM_FRACTION=str(args.mem_fraction))

    pending, running = [], []
    for name, group, script, extra in plan:
        minutes = sota_min if group == "sota" else table_min
        a = list(extra) + (["--mixed-precision"] if args.mixed_precision else [])
        if args.smoke:  # the same command lines, on a small batch the 2-core CPU can afford
            a[a.index("--batch-size") + 1] = "16"
        cmd = [sys.executable, script, train_csv, "--val", val_csv, "--time-budget", str(minutes),
               "--out", os.path.join(runs_dir, name)] + a
        results["runs"][name] = {"group": group, "command": " ".join([os.path.basename(cmd[0])] + cmd[1:]),
                                 "time_budget_min": minutes}
        grace = max(args.grace, 600) if args.smoke else args.grace  # a 2-core CPU compiles cnn3 slowly
        pending.append(Job(name, cmd, os.path.join(runs_dir, f"{name}.train.log"), env,
                           minutes * 60 + grace, "train"))

    def launch():
        while pending and len(running) < args.jobs:
            job = pending.pop(0)
            job.start()
            running.append(job)
            say(f"start {job.kind} {job.name}")

    def evaluate(name, tta):
        run = os.path.join(runs_dir, name)
        tag = "tta" if tta else "plain"
        cmd = [sys.executable, "predict.py", val_csv, os.path.join(run, f"public_test.{tag}.csv"),
               "--weights", run] + (["--tta"] if tta else [])
        return Job(name, cmd, os.path.join(runs_dir, f"{name}.predict_{tag}.log"), env, args.eval_limit, f"eval_{tag}")

    def record(job):
        r = results["runs"][job.name]
        if job.kind == "train":
            r.update(train_rc=job.rc, wall_seconds=round(job.seconds, 1))
            info = _run_info(os.path.join(runs_dir, job.name))
            r.update(info)
            say(f"done train {job.name}: rc {job.rc}, {info.get('epochs', 0)} epochs, "
                f"best val {info.get('val_accuracy')}")
            if os.path.exists(os.path.join(runs_dir, job.name, "best.weights.h5")):
                pending.extend([evaluate(job.name, False), evaluate(job.name, True)])
        else:
            acc = _accuracy(job.log)
            r["public_test_accuracy" if job.kind == "eval_plain" else "public_test_accuracy_tta"] = acc
            r[job.kind + "_seconds"] = round(job.seconds, 1)
            say(f"done {job.kind} {job.name}: accuracy {acc}")
        _write_results(out, results)

    launch()
    while running or pending:
        time.sleep(0.5 if args.smoke else 2)
        for job in list(running):
            if job.poll() is not None:
                running.remove(job)
                record(job)
        launch()

    # ensembles of the best runs, by single-model TTA accuracy
    scored = sorted(((r.get("public_test_accuracy_tta") or -1, n) for n, r in results["runs"].items()
                     if r.get("public_test_accuracy_tta") is not None), reverse=True)
    ens_jobs = []
    for k in ENSEMBLE_SIZES:
        if len(scored) >= k:
            names = [n for _, n in scored[:k]]
            cmd = [sys.executable, "predict.py", val_csv, os.path.join(work, f"ensemble{k}.csv"), "--tta"]
            for n in names:
                cmd += ["--weights", os.path.join(runs_dir, n)]
            job = Job(f"ensemble{k}", cmd, os.path.join(runs_dir, f"ensemble{k}.predict_tta.log"), env,
                      args.eval_limit * k, "ensemble")
            results["ensembles"][job.name] = {"runs": names}
            job.start()
            ens_jobs.append(job)
            say(f"start ensemble of {', '.join(names)}")
    for job in ens_jobs:
        while job.poll() is None:
            time.sleep(0.5)
        acc = _accuracy(job.log)
        results["ensembles"][job.name].update(public_test_accuracy_tta=acc, seconds=round(job.seconds, 1))
        say(f"done {job.name}: accuracy {acc}")
    results["total_seconds"] = round(time.time() - T_START, 1)
    _write_results(out, results)
    _write_markdown(out, results)
    _bundle(out, runs_dir, results)
    say(f"results in {out}: " + ", ".join(sorted(os.listdir(out))))
    ok = any(r.get("public_test_accuracy") is not None for r in results["runs"].values())
    return 0 if ok else 1


def _smoke_data(src_dir, dest_dir, n):
    """A small train/val pair in /tmp: real rows when the data is there, else synthetic faces;
    it goes through pack -> unpack so the carried-data path is tested too."""
    packed = os.path.join(dest_dir, "packed")
    if all(os.path.exists(os.path.join(src_dir, f"{s}.csv.gz")) for s in SPLITS):
        pack(src_dir, packed, rows=n, splits=["train"])
        pack(src_dir, packed, rows=max(n // 3, 14), splits=["public_test"])
    else:
        from data import synthetic

        os.makedirs(packed, exist_ok=True)
        for i, s in enumerate(SPLITS):
            x, y = synthetic.make_faces(n if s == "train" else max(n // 3, 14), seed=i)
            raw = os.path.join(dest_dir, f"{s}.raw.csv")
            os.makedirs(dest_dir, exist_ok=True)
            synthetic.write_csv(raw, x, y)
            subprocess.run(["gzip", "-f", raw], check=True)
            os.replace(raw + ".gz", os.path.join(dest_dir, f"{s}.csv.gz"))
        pack(dest_dir, packed)
    paths = unpack(packed, dest_dir)
    import data  # round trip check: the unpacked CSV holds exactly what was packed

    for s, p in paths.items():
        with lzma.open(os.path.join(packed, f"{s}.npz.xz")) as f, np.load(io.BytesIO(f.read())) as z:
            ds = data.load_csv(p, cache=False)
            assert np.array_equal(ds.images, z["images"]) and np.array_equal(ds.labels, z["labels"]), s
    return paths


def _run_info(run_dir):
    try:
        with open(os.path.join(run_dir, "run.json")) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return {"error": "no run.json"}
    keep = ("model", "options", "params", "epochs_done", "best_epoch", "train_seconds", "val_accuracy",
            "status", "backend", "augment")
    out = {k: info.get(k) for k in keep}
    out["epochs"] = out.pop("epochs_done")
    a = info.get("args", {})
    out["args"] = {k: a.get(k) for k in ("optimizer", "lr", "weight_decay", "batch_size", "label_smoothing",
                                         "erasing", "mixed_precision", "warmup", "augment")}
    return out


def _accuracy(log):
    try:
        text = open(log).read()
    except OSError:
        return None
    m = re.findall(r"accuracy (\d\.\d+) \((\d+)/(\d+)\)", text)
    return float(m[-1][0]) if m else None


def _write_results(out, results):
    tmp = os.path.join(out, ".results.json.tmp")
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1, default=str)
    os.replace(tmp, os.path.join(out, "results.json"))


def _pct(x):
    return "–" if x is None else f"{100 * x:.2f}%"


def _write_markdown(out, results):
    p = results["plan"]
    lines = [f"Backend {p['backend']}, {results['host']}; {len(results['runs'])} runs at once, "
             f"sota {p['sota_minutes']} min, table {p['table_minutes']} min each; public test "
             f"({p['rows'].get('public_test')} images) also chose each run's best epoch.", "",
             "| run | model | params | epochs | train s | public test | with TTA |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in results["runs"].items():
        params = f"{r['params']:,}" if r.get("params") else "–"
        lines.append(f"| {name} | {r.get('model', '–')} | {params} | {r.get('epochs') or 0} | "
                     f"{r.get('train_seconds') or 0:.0f} | {_pct(r.get('public_test_accuracy'))} | "
                     f"{_pct(r.get('public_test_accuracy_tta'))} |")
    for name, e in results["ensembles"].items():
        lines.append(f"| {name} | {' + '.join(e['runs'])} | | | | | {_pct(e.get('public_test_accuracy_tta'))} |")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def _bundle(out, runs_dir, results):
    """runs.tar.gz (small files of every run) and the best run, split in parts that come back."""
    with tarfile.open(os.path.join(out, "runs.tar.gz"), "w:gz") as tar:
        for dirpath, dirnames, filenames in os.walk(runs_dir):
            dirnames[:] = [d for d in dirnames if d != "backup"]
            for fn in filenames:
                if not fn.endswith(".h5"):
                    full = os.path.join(dirpath, fn)
                    tar.add(full, arcname=os.path.relpath(full, os.path.dirname(runs_dir)))
    scored = sorted(((r.get("public_test_accuracy_tta") or -1, n) for n, r in results["runs"].items()), reverse=True)
    for _, name in scored:
        run = os.path.join(runs_dir, name)
        weights = os.path.join(run, "best.weights.h5")
        if not os.path.exists(weights):
            continue
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for fn in ("run.json", "history.csv"):
                tar.add(os.path.join(run, fn), arcname=f"{name}/{fn}")
            tar.add(weights, arcname=f"{name}/best.weights.h5")  # already without optimizer state
        blob = buf.getvalue()
        if len(blob) > PART_BYTES * MAX_PARTS:
            say(f"best run {name}: {len(blob) / 2**20:.0f} MiB is too large to come back; trying the next")
            continue
        for i in range(0, len(blob), PART_BYTES):
            with open(os.path.join(out, f"best_run.tar.part{i // PART_BYTES}"), "wb") as f:
                f.write(blob[i:i + PART_BYTES])
        results["best_run_returned"] = name
        _write_results(out, results)
        say(f"best run {name} returned as best_run.tar.part* ({len(blob) / 2**20:.1f} MiB)")
        return


def _host():
    import platform

    gpu = ""
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return f"{gpu or 'no GPU'}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pk = sub.add_parser("pack", help="compress FER2013 for carrying to the GPU machine")
    pk.add_argument("src", help="folder with train.csv.gz and public_test.csv.gz")
    pk.add_argument("dest", help="folder to write <split>.npz.xz into")
    pk.add_argument("--rows", type=int, help="only the first ROWS rows of each split")
    r = sub.add_parser("run", help="run the plan")
    r.add_argument("--data", required=True, help="folder with <split>.npz.xz (packed) or <split>.csv.gz")
    r.add_argument("--out", required=True, help="where results.json and the rest go")
    r.add_argument("--work", default="/tmp/fer_gpu", help="run folders and unpacked data (emptied first)")
    r.add_argument("--minutes", type=float, default=8.5, help="wall time of the whole job")
    r.add_argument("--jobs", type=int, default=len(PLAN), help="processes at a time (training and evaluation)")
    r.add_argument("--mem-fraction", type=float, default=0.1, help="GPU memory share of each process (JAX)")
    r.add_argument("--grace", type=float, default=120, help="seconds a run may take beyond its time budget")
    r.add_argument("--eval-limit", type=float, default=180, help="seconds one predict.py may take")
    r.add_argument("--only", nargs="*", help="run only these plan entries")
    r.add_argument("--mixed-precision", action="store_true", help="train every run in mixed_bfloat16")
    r.add_argument("--smoke", action="store_true", help="tiny data and budgets: a CPU check of the whole job")
    r.add_argument("--smoke-rows", type=int, default=600)
    args = p.parse_args(argv)
    if args.cmd == "pack":
        pack(args.src, args.dest, rows=args.rows)
        return 0
    return run_plan(args)


if __name__ == "__main__":
    sys.exit(main())
