#!/usr/bin/env python
"""How the training split of this FER2013 copy differs from its test splits (models/preprocess.py).

    python benchmarks/domain_shift.py [DATA_DIR]     (default ../shared/data/fer2013)

Prints, for train, public_test and test: per-image pixel std (contrast) and mean absolute
horizontal gradient (sharpness); then the amplitude ratio of the mean spectra train/public_test
along the axes and the diagonal (1.0 = same; a blur shows as values below 1); then, without any
label, which Gaussian blur turns public_test faces into faces like the training ones: for each
sigma, the median over faces of log(power at 2.5-5 cycles per image / power at 1-2.5 cycles),
along x, along y and on the diagonal, against the same on train. The best sigma is what
`--test-blur` defaults to (models/preprocess.py). Last, the check that the training faces carry
this very blur: the whole mean spectrum, the gradient next to the borders and the contrast of
public_test under it against train, and how much worse down-and-up resizing fits.
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


def down_up(images, size, down, up):
    """The other common degradation: downscale to size x size and back to 48 x 48."""
    from keras import ops

    small = ops.image.resize(images.astype(np.float32), (size, size), interpolation=down,
                             antialias=down != "area")
    return np.asarray(ops.image.resize(small, images.shape[1:3], interpolation=up))


def spectrum_distance(a, b):
    """Mean |log amplitude ratio| of two sets' mean spectra over rings of 1-20 cycles per image."""
    f = np.abs(np.fft.fftfreq(48) * 48)
    radius = np.hypot(*np.meshgrid(f, f, indexing="ij"))
    sa, sb = spectrum(a), spectrum(b)
    return np.mean([abs(np.log(np.sqrt(sa[ring].mean() / sb[ring].mean())))
                    for ring in (np.abs(radius - k) < 0.5 for k in range(1, 21))])


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

    # The check that it is this blur and not merely the same slope: the whole mean spectrum, the
    # gradient near the borders (where the blur's reflected padding shows) and the contrast of
    # public_test under it against train (1.00 = the same).
    blurred = blur(public, best[1])
    ratio = np.sqrt(spectrum(train) / spectrum(blurred))
    print(f"amplitude ratio train/(public_test blurred by {best[1]})   (cycles per image: {freqs})")
    print("  along x:  " + " ".join(f"{ratio[0, k]:.2f}" for k in freqs))
    print("  along y:  " + " ".join(f"{ratio[k, 0]:.2f}" for k in freqs))
    print("  diagonal: " + " ".join(f"{ratio[k, k]:.2f}" for k in freqs))
    print("  mean |log amplitude ratio| over 1-20 cycles per image (0 = the same spectrum):")
    print(f"    {'Gaussian blur, sigma ' + str(best[1]):<46} {spectrum_distance(train, blurred):.3f}")
    for size in (10, 12, 16, 20):
        for down, up in (("area", "bilinear"), ("bilinear", "bicubic")):
            print(f"    {f'resize to {size}x{size} ({down}) and back ({up})':<46} "
                  f"{spectrum_distance(train, down_up(public, size, down, up)):.3f}")
    for name, images in (("train", train), (f"public_test blurred by {best[1]}", blurred)):
        edge = np.abs(np.diff(images[..., 0].astype(np.float32), axis=2)).mean(axis=(0, 1))[:4]
        print(f"  {name:<32} gradient in columns 0-3: " + " ".join(f"{g:.2f}" for g in edge)
              + f"   contrast {stats(images)[0]:.1f}")


if __name__ == "__main__":
    main()
