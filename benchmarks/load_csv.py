#!/usr/bin/env python
"""How fast data.load_csv reads FER2013 against the straightforward parse.

    python benchmarks/load_csv.py [CSV]     (default ../shared/data/fer2013/train.csv.gz)

Prints three timings and checks that all three readings are identical:
  naive   pd.read_csv + one np.array(s.split(), dtype=np.uint8) per row
  fast    data.load_csv(path, cache=False): vectorized numpy parse of the whole file
  cached  data.load_csv(path) a second time: the .npz cache keyed on path, size and mtime
"""
import os
import sys
import tempfile
import time
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import data  # noqa: E402
from ferkit.cli import Parser, run_main  # noqa: E402

DEFAULT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fer2013", "train.csv.gz")


def naive(path):
    frame = pd.read_csv(path)
    pixels, label = ("feature", "label") if "feature" in frame else ("pixels", "emotion")  # Kaggle's layout
    images = np.stack([np.array(s.split(), dtype=np.uint8) for s in frame[pixels]]).reshape(-1, 48, 48, 1)
    return images, frame[label].to_numpy() if label in frame else None


def timed(fn, repeat=1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv=None):
    return run_main(lambda: _run(argv))


def _run(argv):
    p = Parser(prog="load_csv.py", description=__doc__.split("\n\n")[0])
    p.add_argument("csv", nargs="?", default=DEFAULT, help="labelled CSV to read (default: train.csv.gz)")
    path = p.parse_args(argv).csv
    # The fast reader goes first: it checks the file and names a bad row in one line, before the
    # naive parse could stop on it with a traceback. The cache starts cold, in a folder of its own
    # that is removed at the end (and $FER_CACHE_DIR restored: main() may run in-process).
    with tempfile.TemporaryDirectory(prefix="fer-cache-") as cache, mock.patch.dict(os.environ, FER_CACHE_DIR=cache):
        t_fast, fast = timed(lambda: data.load_csv(path, cache=False), repeat=3)
        t_naive, (images, labels) = timed(lambda: naive(path))
        data.load_csv(path)  # fills the cache
        t_cached, cached = timed(lambda: data.load_csv(path), repeat=3)
    for ds in (fast, cached):
        assert np.array_equal(ds.images, images), "parse differs from the naive reading"
        assert labels is None or np.array_equal(ds.labels, labels)
    print(f"file: {os.path.relpath(path)} ({len(images)} rows); {os.cpu_count()} CPU cores")
    print(f"{'method':<8} {'seconds':>8} {'speed-up':>9}")
    for name, t in (("naive", t_naive), ("fast", t_fast), ("cached", t_cached)):
        print(f"{name:<8} {t:8.2f} {t_naive / t:8.1f}x")
    print("all three readings identical")


if __name__ == "__main__":
    sys.exit(main())
