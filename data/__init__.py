"""FER2013 files (README, "Layout"): fer2013.py (classes, sizes, layouts, the Dataset), csv.py
(read, check and iterate CSVs: a vectorized fast path and a careful one that names the bad row),
cache.py (parsed files kept as .npz), mixing.py (MixUp / CutMix batches), synthetic.py (test
faces). This file only re-exports.

    ds = data.load_csv("train.csv.gz")          # course layout: label,feature  (or id,feature)
    ds = data.load_csv("fer2013.csv", usage="PublicTest")   # Kaggle layout: emotion,pixels,Usage
    ds.images  # uint8 (N, 48, 48, 1);  ds.labels  # int64 (N,) or None;  ds.ids  # str (N,) or None
    data.check_csv("test.csv")                  # header and first row only: fails fast, before any model loads
"""
from data.cache import cache_dir  # noqa: F401
from data.csv import check_csv, check_file, iter_csv, load_csv  # noqa: F401
from data.fer2013 import (CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES, NUM_PIXELS, USAGES, Dataset,  # noqa: F401
                          concat, stratified_split, subset)
