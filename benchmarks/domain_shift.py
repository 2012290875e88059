#!/usr/bin/env python
"""How the training split of this FER2013 copy differs from its test splits (models/preprocess.py).

    python benchmarks/domain_shift.py [DATA_DIR]     (default ../shared/data/fer2013)

Prints, for train, public_test and test: per-image pixel std (contrast) and mean absolute
horizontal gradient (sharpness); then the amplitude ratio of the mean spectra train/public_test
along the axes and the diagonal (1.0 = same; a blur shows as values below 1); then, without any
label, which Gaussian blur turns public_test faces into faces like the training ones: for each
sigma, the median over faces of log(power at 2.5-5 cycles per image / power at 1-2.5 cycles),
along x, along y and on the diagonal, against the same on train. The best sigma is what
`--test-blur` defaults to (models/preprocess.py).
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


def blur(images, sigma):
    """The model's own inference-time blur (models.preprocess.GaussianBlur), in batches."""
    from models.preprocess import GaussianBlur

    layer = GaussianBlur(sigma)
    return np.concatenate([np.asarray(layer(images[i:i + 512].astype(np.float32)))
                           for i in range(0, len(images), 512)])


def band_slopes(images):
    """Median over faces of log(high band / low band power), along x, along y, diagonal."""
    f = np.abs(np.fft.fftfreq(48) * 48)
    fy, fx = np.meshgrid(f, f, indexing="ij")
    low = (np.hypot(fx, fy) >= 1) & (np.hypot(fx, fy) < 2.5)
    bands = [(fx >= 2.5) & (fx < 5) & (fy <= 1.5), (fy >= 2.5) & (fy < 5) & (fx <= 1.5),
             (fx >= 2) & (fx < 4) & (fy >= 2) & (fy < 4)]
    x = images[..., 0].astype(np.float64)
    power = np.abs(np.fft.fft2(x - x.mean(axis=(1, 2), keepdims=True))) ** 2
    base = power[:, low].mean(axis=1)
    keep = base > 1e3  # skip blank faces
    return np.array([np.median(np.log(power[keep][:, b].mean(axis=1) / base[keep])) for b in bands])


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
    ratio = np.sqrt(spectrum(train) / spectrum(public))
    print(f"\namplitude ratio of mean spectra train/public_test  (cycles per image: {freqs})")
    print("  along x:  " + " ".join(f"{ratio[0, k]:.2f}" for k in freqs))
    print("  along y:  " + " ".join(f"{ratio[k, 0]:.2f}" for k in freqs))
    print("  diagonal: " + " ".join(f"{ratio[k, k]:.2f}" for k in freqs))

    target = band_slopes(train)
    print("\nper-face spectral slope, log(2.5-5 / 1-2.5 cycles per image)   along x  along y  diagonal")
    print(f"  {'train':<40} " + "  ".join(f"{v:7.2f}" for v in target))
    best = None
    for sigma in (0, 2.0, 2.5, 3.0, 3.25, 3.5, 3.75, 4.0, 4.5):
        slopes = band_slopes(blur(public, sigma) if sigma else public)
        err = np.abs(slopes - target).mean()
        best = min(best or (err, sigma), (err, sigma))
        print(f"  {f'public_test blurred, sigma {sigma}':<40} " + "  ".join(f"{v:7.2f}" for v in slopes)
              + f"   (mean distance {err:.2f})")
    print(f"\nthe blur that best turns public_test faces into training-like faces: sigma {best[1]} px")


if __name__ == "__main__":
    main()
