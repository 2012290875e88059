"""Is a saliency map faithful to the model? Two measurements, so that methods and their settings
are chosen by numbers rather than by how the maps look (docs/EXPLAIN.md, docs/RESULTS.md).

    curves = perturbation_curves(model, images, classes, maps, mode="deletion")   # (N, steps+1)
    rho = randomization_check(model, images, classes, "gradcam")                    # (N,) Spearman
    table = evaluate_methods(model, images, classes, ["vanilla", "gradcam"])       # rows of dicts

Deletion and insertion follow Petsiuk et al. 2018 (RISE); the model-randomization check follows
Adebayo et al. 2018 ("Sanity checks for saliency maps"), with full randomization: every layer of
the network re-initialized at once, not layer by layer (cascading).
"""
import time

import numpy as np
from scipy import ndimage, stats

from data import IMAGE_SIZE
from ferkit.errors import FERError
from ferkit.explain.core import _as_batch, _as_classes, keras
from ferkit.explain.methods import explain
from ferkit.infer import predict_batches

CURVE_STEPS = 16  # points of each curve after the start: 1/16 of the pixels (144) per step
PATCH = 4  # pixels are removed in 4x4 blocks, ranked by their mean saliency (docs/EXPLAIN.md)
BLUR_SIGMA = 5.0  # insertion starts from the face blurred this much (RISE's substrate)
CENTRE_SIGMA = IMAGE_SIZE / 4  # the centre-prior baseline: a Gaussian of this width on the face's middle
BASELINES = ("random", "centre")


def _order(maps, rng, patch=PATCH):
    """Pixel indices of each map, most salient first, in blocks of patch x patch pixels ranked by
    their mean: single scattered pixels set to grey are a pattern the network never saw, which
    would make even a random order look like a good explanation. Ties (an empty Grad-CAM is all
    ties) go in a random order, so they do not favour the top rows."""
    maps = np.asarray(maps, np.float64)
    if IMAGE_SIZE % patch:
        raise FERError(f"patch {patch}: must divide {IMAGE_SIZE}")
    k = IMAGE_SIZE // patch
    blocks = maps.reshape(len(maps), k, patch, k, patch).mean(axis=(2, 4)).reshape(len(maps), -1)
    tie = rng.random(blocks.shape)
    block_order = np.stack([np.lexsort((t, -m)) for m, t in zip(blocks, tie)])  # (N, k*k)
    by, bx = np.divmod(block_order, k)
    dy, dx = np.divmod(np.arange(patch * patch), patch)
    rows = by[:, :, None] * patch + dy[None, None]
    cols = bx[:, :, None] * patch + dx[None, None]
    return (rows * IMAGE_SIZE + cols).reshape(len(maps), -1)


def substrate(images, mode):
    """What perturbed pixels become: for deletion the face's own mean grey (a constant carries no
    evidence, and per-image standardization leaves the rest of the face unchanged); for
    insertion the face blurred with a Gaussian of BLUR_SIGMA pixels, as RISE does.

    Args:
        images: uint8-valued faces, (N, 48, 48, 1), (N, 48, 48) or one (48, 48).
        mode: "deletion" or "insertion"."""
    x = _as_batch(images)
    if mode == "deletion":
        return np.broadcast_to(x.mean(axis=(1, 2, 3), keepdims=True), x.shape).astype(np.float32)
    if mode == "insertion":
        return ndimage.gaussian_filter(x, sigma=(0, BLUR_SIGMA, BLUR_SIGMA, 0), mode="nearest").astype(np.float32)
    raise FERError(f"unknown mode {mode!r}: choose deletion or insertion")


def perturbation_curves(model, images, classes, maps, mode="deletion", steps=CURVE_STEPS, seed=0,
                        patch=PATCH, batch_size=1024):
    """The class probability as pixels are removed (deletion: replaced by the substrate) or
    revealed (insertion: put back onto the substrate) in the map's order, at fractions
    0, 1/steps, ..., 1 of the pixels; every perturbed copy goes through model.predict in batches.

    Args:
        model: a network ending in the softmax (models.build_model, load_run), or any callable
            keras model mapping (n, 48, 48, 1) to (n, 7) probabilities.
        images: uint8-valued faces, (N, 48, 48, 1), (N, 48, 48) or one (48, 48).
        classes: the class whose probability is tracked, one per image or one for all.
        maps: (N, 48, 48) saliency, higher = more important.
        mode: "deletion" or "insertion".
        steps: curve points after the start.
        seed: breaks ties between equal map values.
        patch: side of the blocks removed together (1: single pixels; must divide 48).
        batch_size: perturbed copies per model.predict call.

    Returns float32 (N, steps + 1)."""
    x = _as_batch(images)
    c = _as_classes(classes, len(x))
    maps = np.asarray(maps, np.float32)
    if maps.shape != (len(x), IMAGE_SIZE, IMAGE_SIZE):
        raise FERError(f"expected maps of shape ({len(x)}, 48, 48), got {maps.shape}")
    steps = max(int(steps), 1)
    sub = substrate(x, mode)
    order = _order(maps, np.random.default_rng(seed), int(patch))
    npix = IMAGE_SIZE * IMAGE_SIZE
    counts = np.round(np.linspace(0, npix, steps + 1)).astype(int)
    rank = np.empty_like(order)  # rank[i, p]: the position of pixel p in image i's order
    np.put_along_axis(rank, order, np.arange(npix)[None].repeat(len(x), 0), axis=1)
    out = np.empty((len(x), steps + 1), np.float32)
    per_call = max(batch_size // (steps + 1), 1)
    for i in range(0, len(x), per_call):
        xs, ss, rs = x[i:i + per_call], sub[i:i + per_call], rank[i:i + per_call]
        changed = (rs[:, None, :] < counts[None, :, None]).reshape(len(xs), steps + 1, IMAGE_SIZE, IMAGE_SIZE, 1)
        if mode == "deletion":
            batch = np.where(changed, ss[:, None], xs[:, None])
        else:
            batch = np.where(changed, xs[:, None], ss[:, None])
        probs = predict_batches(model, batch.reshape((-1,) + x.shape[1:]), batch_size)
        probs = np.asarray(probs, np.float32).reshape(len(xs), steps + 1, -1)
        out[i:i + per_call] = probs[np.arange(len(xs)), :, c[i:i + per_call]]
    return out


def auc(curves):
    """Area under each curve over the fraction of pixels 0..1 (trapezoid rule).

    Args:
        curves: (..., steps + 1) values at evenly spaced fractions 0..1."""
    curves = np.asarray(curves, np.float64)
    return np.trapezoid(curves, dx=1.0 / (curves.shape[-1] - 1), axis=-1)


def baseline_maps(kind, n, seed=0):
    """(n, 48, 48) maps of a baseline order: "random" (uniform noise) or "centre" (a Gaussian
    centred on the face: what any map that just favours the middle of the picture would score).

    Args:
        kind: "random" or "centre".
        n: maps wanted.
        seed: seeds the random maps."""
    if kind == "random":
        return np.random.default_rng(seed).random((n, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
    if kind == "centre":
        r = np.arange(IMAGE_SIZE) - (IMAGE_SIZE - 1) / 2
        g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * CENTRE_SIGMA ** 2)).astype(np.float32)
        return np.repeat(g[None], n, axis=0)
    raise FERError(f"unknown baseline {kind!r}: choose one of {', '.join(BASELINES)}")


def randomized_model(model, seed=0):
    """The same network with every layer re-initialized (full model randomization): a clone built
    from the layers' configs, so weights come from their initializers and BatchNorm statistics
    are reset. Sets Keras's global seed to `seed`, which makes the copy reproducible.

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        seed: Keras's global seed, set before the clone is built."""
    keras.utils.set_random_seed(int(seed))
    clone = keras.models.clone_model(model)
    clone.build(model.input.shape)
    return clone


def spearman(a, b):
    """Spearman rank correlation between each pair of maps (N,); NaN where a map is constant.

    Args:
        a, b: maps of the same shape (N, ...), compared pair by pair."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    out = np.full(len(a), np.nan)
    for i in range(len(a)):
        if np.ptp(a[i]) > 0 and np.ptp(b[i]) > 0:
            out[i] = stats.spearmanr(a[i], b[i]).statistic
    return out


def randomization_check(model, images, classes, method, randomized=None, maps=None, seed=0, **options):
    """Adebayo et al.'s model-randomization test: the rank correlation between a method's maps
    for the trained model and for the same network re-initialized (randomized_model), both for
    the same classes. Near 1: the maps follow the image, not what the model learned.

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        images: uint8-valued faces, (N, 48, 48, 1), (N, 48, 48) or one (48, 48).
        classes: the class each map explains, one per image or one for all.
        method: a name of METHODS.
        randomized: the re-initialized network (None: randomized_model(model, seed)).
        maps: the trained model's maps when already computed.
        seed: seeds the re-initialization and the method.
        **options: the method's options, as explain() takes them.

    Returns float (N,) Spearman correlations (NaN where either map is constant)."""
    randomized = randomized_model(model, seed) if randomized is None else randomized
    if maps is None:
        maps = explain(model, images, classes, method, seed=seed, **options)
    return spearman(maps, explain(randomized, images, classes, method, seed=seed, **options))


def evaluate_methods(model, images, classes, methods, curve_steps=CURVE_STEPS, randomized=None, seed=0,
                     baselines=BASELINES, patch=PATCH, **options):
    """The method x metric table: for each method (then each baseline order) the mean deletion
    and insertion AUC, insertion minus deletion, the mean Spearman correlation with the
    randomized network's maps, the share of empty (all-zero) maps, and seconds per face.

    Args:
        model: a network as built by models.build_model or loaded by load_run.
        images: uint8-valued faces, (N, 48, 48, 1), (N, 48, 48) or one (48, 48).
        classes: the class each map explains, one per image or one for all.
        methods: names of METHODS.
        curve_steps: curve points after the start (perturbation_curves).
        randomized: the re-initialized network (None: randomized_model(model, seed)); False skips
            the randomization check.
        seed: seeds the maps, the ties and the baselines.
        baselines: baseline orders to add as rows ("random", "centre").
        patch: side of the blocks removed together (perturbation_curves).
        **options: the methods' options, as explain() takes them.

    Returns a list of dicts, one per row, with keys method, deletion, insertion, gap,
    randomization, empty, seconds_per_face, n."""
    x = _as_batch(images)
    c = _as_classes(classes, len(x))
    if randomized is None:
        randomized = randomized_model(model, seed)
    rows = []
    for name in list(methods) + list(baselines):
        start = time.perf_counter()
        if name in baselines:
            maps, rho = baseline_maps(name, len(x), seed), np.full(len(x), np.nan)
        else:
            maps = explain(model, x, c, name, seed=seed, **options)
        seconds = (time.perf_counter() - start) / max(len(x), 1)
        if name not in baselines and randomized is not False:
            rho = randomization_check(model, x, c, name, randomized=randomized, maps=maps, seed=seed, **options)
        elif name not in baselines:
            rho = np.full(len(x), np.nan)
        deletion = auc(perturbation_curves(model, x, c, maps, "deletion", curve_steps, seed, patch))
        insertion = auc(perturbation_curves(model, x, c, maps, "insertion", curve_steps, seed, patch))
        flat = maps.reshape(len(maps), -1)
        rows.append({
            "method": name, "n": int(len(x)),
            "deletion": float(deletion.mean()), "insertion": float(insertion.mean()),
            "gap": float((insertion - deletion).mean()),
            "randomization": float(np.nanmean(rho)) if np.isfinite(rho).any() else float("nan"),
            "empty": float(np.mean(flat.max(axis=1) <= 0)),
            "seconds_per_face": float(seconds) if name not in baselines else 0.0,
        })
    return rows


COLUMNS = [  # (key, header, format): the table's columns, arrows saying which way is better
    ("method", "method", "{}"),
    ("deletion", "deletion AUC (lower better)", "{:.3f}"),
    ("insertion", "insertion AUC (higher better)", "{:.3f}"),
    ("gap", "insertion - deletion", "{:+.3f}"),
    ("randomization", "Spearman vs random weights (lower better)", "{:.3f}"),
    ("empty", "empty maps", "{:.0%}"),
    ("seconds_per_face", "s/face", "{:.3f}"),
]


def format_table(rows):
    """The rows as a plain-text table, one line per method; NaN shows as "-".

    Args:
        rows: evaluate_methods()'s list of dicts."""
    def cell(row, key, fmt):
        v = row[key]
        return "-" if isinstance(v, float) and not np.isfinite(v) else fmt.format(v)

    body = [[h for _, h, _ in COLUMNS]] + [[cell(r, k, f) for k, _, f in COLUMNS] for r in rows]
    widths = [max(len(line[j]) for line in body) for j in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) if j == 0 else v.rjust(w) for j, (v, w) in enumerate(zip(line, widths)))
             for line in body]
    return "\n".join(lines[:1] + ["-" * len(lines[0])] + lines[1:])
