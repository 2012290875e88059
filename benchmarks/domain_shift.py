#!/usr/bin/env python
"""How the training split of this FER2013 copy differs from its test splits (models/preprocess.py).

    python benchmarks/domain_shift.py [DATA_DIR]     (default ../shared/data/fer2013)

Prints, for train, public_test and test: per-image pixel std (contrast) and mean absolute
horizontal gradient (sharpness); then the amplitude ratio of the mean spectra train/public_test
along the axes and the diagonal (1.0 = same; a blur shows as values below 1), before and after
the model's preprocessing (Gaussian blur of sigma 2.5 on both, per-image standardization).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import data  # noqa: E402

DEFAULT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fer2013")


def stats(images):
    x = images[..., 0].astype(np.float32)
    contrast = x.reshape(len(x), -1).std(axis=1)
    sharpness = np.abs(np.diff(x, axis=2)).mean(axis=(1, 2))
    return np.median(contrast), np.median(sharpness)


def spectrum(images):
    x = images[..., 0].astype(np.float32)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    return (np.abs(np.fft.fft2(x)) ** 2).mean(axis=0)


def preprocess(images, sigma):
    from models.preprocess import GaussianBlur, Standardize

    out = []
    for i in range(0, len(images), 512):
        batch = images[i:i + 512].astype(np.float32)
        out.append(np.asarray(Standardize()(GaussianBlur(sigma)(batch))))
    return np.concatenate(out)


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    sets = {name: data.load_csv(os.path.join(folder, f"{name}.csv.gz")).images
            for name in ("train", "public_test", "test")}
    print(f"{'split':<12} {'rows':>6} {'contrast (std)':>15} {'sharpness':>10}")
    for name, images in sets.items():
        c, s = stats(images)
        print(f"{name:<12} {len(images):>6} {c:>15.1f} {s:>10.2f}")
    train, public = sets["train"][:6000], sets["public_test"]
    freqs = (2, 4, 8, 12, 16)
    for label, (a, b) in {"raw": (train, public), "blur 2.5 + standardize": (preprocess(train, 2.5),
                                                                             preprocess(public, 2.5))}.items():
        ratio = np.sqrt(spectrum(a) / spectrum(b))
        print(f"\namplitude ratio train/public_test, {label}  (cycles per image: {freqs})")
        print("  along x:  " + " ".join(f"{ratio[0, k]:.2f}" for k in freqs))
        print("  along y:  " + " ".join(f"{ratio[k, 0]:.2f}" for k in freqs))
        print("  diagonal: " + " ".join(f"{ratio[k, k]:.2f}" for k in freqs))


if __name__ == "__main__":
    main()
