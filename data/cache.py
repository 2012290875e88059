"""The parse cache: a parsed file's arrays as one .npz under $FER_CACHE_DIR (default
~/.cache/fer2013-toolkit), keyed on the file's absolute path, size and mtime."""
import hashlib
import os
import zipfile

import numpy as np

from data.fer2013 import Dataset
from ferkit.files import atomic_path


def cache_dir():
    return os.environ.get("FER_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "fer2013-toolkit")


def key(path, usage):
    st = os.stat(path)
    text = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{usage}|v2"
    return os.path.join(cache_dir(), hashlib.sha1(text.encode()).hexdigest()[:20] + ".npz")


def get(key, path):
    try:
        with np.load(key, allow_pickle=False) as z:
            field = lambda k: z[k] if k in z.files else None  # noqa: E731
            return Dataset(z["images"], field("labels"), field("ids"), path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None  # no entry, or a damaged one: parse the file again


def put(key, ds):
    arrays = {k: v for k, v in (("images", ds.images), ("labels", ds.labels), ("ids", ds.ids)) if v is not None}
    try:
        with atomic_path(key) as tmp:
            np.savez(tmp, **arrays)
    except OSError:
        pass  # a read-only or full disk only costs speed
