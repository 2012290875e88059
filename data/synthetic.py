"""A learnable synthetic stand-in for FER2013, for tests and smoke runs (no real faces).

Each class brightens its own patch of a noisy 48x48 "face", so a small CNN learns it in a few
steps, and the class is decided by a known region (which the explanation tests rely on).
"""
import numpy as np

# (row, col) of each class's 12x12 patch: seven distinct places on the image.
PATCHES = [(4, 4), (4, 32), (18, 18), (32, 4), (32, 32), (4, 18), (32, 18)]
PATCH = 12


def make_faces(n, seed=0, noise=40):
    """(images uint8 (n,48,48,1), labels (n,)) with balanced classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 7
    rng.shuffle(labels)
    images = rng.normal(100, noise, size=(n, 48, 48)).clip(0, 255)
    for i, c in enumerate(labels):
        r, q = PATCHES[c]
        images[i, r:r + PATCH, q:q + PATCH] += 120
    return images.clip(0, 255).astype(np.uint8)[..., None], labels


def patch_mask(label):
    """Boolean (48,48) mask of the region that decides `label`."""
    m = np.zeros((48, 48), bool)
    r, q = PATCHES[label]
    m[r:r + PATCH, q:q + PATCH] = True
    return m


def write_csv(path, images, labels=None, ids=None, layout="course"):
    """Write images as a FER2013 CSV: course layout (label,feature / id,feature) or Kaggle."""
    import pandas as pd

    pixels = [" ".join(map(str, im.ravel())) for im in images]
    if layout == "kaggle":
        usage = ["Training" if i % 5 else "PublicTest" for i in range(len(images))]
        frame = pd.DataFrame({"emotion": labels, "pixels": pixels, "Usage": usage})
    elif labels is not None:
        frame = pd.DataFrame({"label": labels, "feature": pixels})
    else:
        frame = pd.DataFrame({"id": np.arange(len(images)) if ids is None else ids, "feature": pixels})
    frame.to_csv(path, index=False)
    return path
