"""A learnable synthetic stand-in for FER2013, for tests and smoke runs (no real faces).

Each class brightens its own region of a noisy 48x48 "face", so a small CNN learns it in a few
steps, and the class is decided by a known region (which the explanation tests rely on).
"""
import numpy as np

# Each class lights 12x12 patches in one band of rows: either the centre (cols 18-29) or both
# sides (cols 2-13 and 34-45). Every pattern is its own mirror image, so horizontal flips
# (augmentation, test-time augmentation) keep the class.
PATCH = 12
_BANDS = [0, 12, 24, 36]
_CENTRE, _SIDES = [18], [2, 34]
PATTERNS = [(band, cols) for band in _BANDS for cols in (_CENTRE, _SIDES)][:7]


def make_faces(n, seed=0, noise=40):
    """(images uint8 (n,48,48,1), labels (n,)) with balanced classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 7
    rng.shuffle(labels)
    images = rng.normal(100, noise, size=(n, 48, 48))
    for i, c in enumerate(labels):
        images[i][patch_mask(c)] += 120
    return images.clip(0, 255).astype(np.uint8)[..., None], labels


def patch_mask(label):
    """Boolean (48,48) mask of the region that decides `label`."""
    m = np.zeros((48, 48), bool)
    band, cols = PATTERNS[label]
    for q in cols:
        m[band:band + PATCH, q:q + PATCH] = True
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


def random_squares(rng, shape, count, sizes, gap=8, tries=500):
    """Up to `count` non-overlapping squares (x, y, side) inside an (H, W) picture, sides drawn
    from `sizes` (low, high): where test and benchmark pictures paste faces."""
    h, w = shape[:2]
    boxes = []
    for _ in range(tries):
        if len(boxes) == count:
            break
        s = int(rng.integers(sizes[0], sizes[1] + 1))
        if s > min(h, w):
            continue
        x, y = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
        if all(x + s + gap <= bx or bx + bs + gap <= x or y + s + gap <= by or by + bs + gap <= y
               for bx, by, bs in boxes):
            boxes.append((x, y, s))
    return boxes


def paste_faces(background, faces, squares):
    """A copy of the uint8 RGB (H, W, 3) or grey (H, W) `background` with each grey face (2-D
    uint8) enlarged (bicubic) into its square (x, y, side): the test pictures of
    tests/test_faces.py and benchmarks/."""
    import cv2

    out = np.asarray(background, np.uint8)
    out = np.repeat(out[:, :, None], 3, axis=2) if out.ndim == 2 else out[:, :, :3].copy()
    for face, (x, y, s) in zip(faces, squares):
        face = np.asarray(face).reshape(np.asarray(face).shape[:2])
        big = cv2.resize(face, (s, s), interpolation=cv2.INTER_CUBIC)
        out[y:y + s, x:x + s] = big[:, :, None]
    return out
