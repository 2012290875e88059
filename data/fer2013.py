"""What FER2013 is: its classes, image size and usages, the CSV layouts it comes in, and the
Dataset the loaders return (uint8 images, labels, ids) with the helpers that cut and join them."""
import dataclasses

import numpy as np

CLASS_NAMES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIZE = 48
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
USAGES = ("Training", "PublicTest", "PrivateTest")

# Accepted headers: (label column or None, id column or None, pixel column, usage column or None)
_LAYOUTS = {
    ("label", "feature"): ("label", None, "feature", None),
    ("id", "feature"): (None, "id", "feature", None),
    ("emotion", "pixels", "Usage"): ("emotion", None, "pixels", "Usage"),
    ("emotion", "pixels"): ("emotion", None, "pixels", None),
    ("pixels",): (None, None, "pixels", None),
    ("feature",): (None, None, "feature", None),
}


@dataclasses.dataclass
class Dataset:
    images: np.ndarray  # uint8 (N, 48, 48, 1)
    labels: np.ndarray | None  # int64 (N,) in 0..6, or None for an unlabelled file
    ids: np.ndarray | None  # str (N,) from an id column, exactly as written, or None
    path: str = ""

    def __len__(self):
        return len(self.images)

    def output_ids(self, offset=0):
        """Ids for a submission file: the file's own, or row numbers counted from `offset`."""
        return self.ids if self.ids is not None else np.arange(offset, offset + len(self), dtype=np.int64)


def concat(chunks):
    def cat(field):
        parts = [getattr(c, field) for c in chunks]
        return None if parts[0] is None else np.concatenate(parts)

    return Dataset(cat("images"), cat("labels"), cat("ids"), chunks[0].path)


def stratified_split(labels, fraction, seed=0):
    """Indices (train, val) with `fraction` of each class in val (scikit-learn)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    return train_test_split(idx, test_size=fraction, stratify=labels, random_state=seed)


def subset(ds, idx):
    pick = lambda a: None if a is None else a[idx]  # noqa: E731
    return Dataset(ds.images[idx], pick(ds.labels), pick(ds.ids), ds.path)
