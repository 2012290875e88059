#!/usr/bin/env python
"""Frames per second of the live path (ferkit.faces.live.LiveTracker) on a 640x480 stream with
1-3 moving faces: decode, detect or track, crop and classify, answer; and the faces it finds.

    python benchmarks/live.py                          # real photographs; LiveTracker's defaults
    python benchmarks/live.py --faces fer              # FER2013 crops pasted
    python benchmarks/live.py --detector mtcnn --every 1 --max-side 640    # as predict.py did before the live path
    python benchmarks/live.py --detector blazeface --every 3 --second none # BlazeFace alone
    python benchmarks/live.py --model-call             # model.predict against predict_on_batch, 3 faces
    python benchmarks/live.py --write-video /tmp/live.avi && time python predict.py /tmp/live.avi /tmp/live.csv

The stream: 300 frames (`--frames`) of 640x480, a thirds with 1, 2 and 3 faces, on a still
background cut from scikit-learn's sample photos, with fresh sensor-like noise in every frame.
Each face sways (up to 24 px, 2-4 px a frame) around a random place, at a random size of 80-130
px. `--faces photo` (default) pastes head-and-shoulders crops of real photographs (matplotlib's
grace_hopper.jpg, scikit-image's astronaut and camera); `--faces fer` pastes FER2013 public_test
faces (../shared/data/fer2013, enlarged, grey, no hair or context) as benchmarks/face_detectors.py
does. Frames are JPEG-encoded beforehand (quality 85), as a browser or camera sends them; the
timed loop decodes each (cv2.imdecode), runs LiveTracker.process and turns the faces into JSON.

It prints frames/s end to end (wall, after 15 warm-up frames; and per CPU-second of the process,
which other load on a shared machine changes less), the mean milliseconds of each stage per
frame, and recall: the share of (frame, face) pairs with a box whose centre lies within a quarter
side of the face's centre and whose width is 0.35-1.3 sides, as in face_detectors.py, per source.
"""
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ferkit.backend import configure_tensorflow  # noqa: E402
from ferkit.cli import Parser, positive_int, run_main  # noqa: E402

REAL = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fer2013", "public_test.csv.gz")
SIZE = (640, 480)
WARMUP = 15
FACE_SIDES = (80, 130)  # pixels
SWAY = 24  # pixels each face moves around its place, both ways
# Real photographs with one face each, and that face as a square (centre x, centre y, side) in the
# photo's pixels: the centre and mean side of MTCNN's box on it (checked by eye).
PHOTOS = {"grace_hopper": (264.5, 220.0, 196.0), "astronaut": (223.5, 117.5, 95.0), "camera": (226.0, 156.5, 70.0)}


def photo_sources():
    """[(rgb patch, face side / patch side, name)]: each photo cut to a square of 1.6 face sides around its face."""
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    images = {"grace_hopper": np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")),
              "astronaut": skimage.data.astronaut(), "camera": np.repeat(skimage.data.camera()[:, :, None], 3, 2)}
    out = []
    for name, (cx, cy, side) in PHOTOS.items():
        half = 0.8 * side
        x0, y0, n = int(round(cx - half)), int(round(cy - half)), int(round(2 * half))
        out.append((images[name][y0:y0 + n, x0:x0 + n], side / n, name))
    return out, "real photographs (grace_hopper, astronaut, camera)"


def fer_sources(n=200, seed=0):
    """[(rgb patch, face side / patch side = 1: the whole crop, name)] from FER2013 public_test."""
    import data

    if not os.path.exists(REAL):
        raise SystemExit(f"--faces fer needs {REAL}")
    images = data.load_csv(REAL).images[:, :, :, 0]
    rng = np.random.default_rng(seed)
    picked = images[rng.choice(len(images), n, replace=False)]
    return [(np.repeat(im[:, :, None], 3, 2), 1.0, "FER2013") for im in picked], "FER2013 public_test crops"


def build_stream(sources, frames, seed=0):
    """JPEG bytes of each frame, and per frame the true face squares (x0, y0, side, source name)."""
    import cv2
    from sklearn.datasets import load_sample_images

    from data import synthetic

    rng = np.random.default_rng(seed)
    photo = load_sample_images().images[0]
    background = cv2.resize(photo, SIZE, interpolation=cv2.INTER_AREA).astype(np.int16)
    encoded, truth = [], []
    third = -(-frames // 3)
    for start in range(0, frames, third):
        count = start // third + 1
        share = sources[0][1]  # face side / patch side, the same for all sources of a kind
        places = synthetic.random_squares(rng, (SIZE[1], SIZE[0]), count,
                                          (round(FACE_SIDES[0] / share), round(FACE_SIDES[1] / share)), gap=2 * SWAY + 8)
        chosen = [sources[i] for i in rng.choice(len(sources), len(places), replace=len(places) > len(sources))]
        faces, shares, names = [f for f, _, _ in chosen], [r for _, r, _ in chosen], [n for _, _, n in chosen]
        patches = [side for _, _, side in places]
        phase = rng.uniform(0, 2 * np.pi, (len(places), 2))
        speed = rng.uniform(0.08, 0.15, (len(places), 2))  # radians a frame: up to 2-4 px a frame
        scaled = [cv2.resize(p, (n, n), interpolation=cv2.INTER_AREA if n < len(p) else cv2.INTER_CUBIC)
                  for p, n in zip(faces, patches)]
        for t in range(start, min(frames, start + third)):
            frame = background.copy()
            squares = []
            for k, (patch, n) in enumerate(zip(scaled, patches)):
                x0, y0, _ = places[k]
                dx, dy = (SWAY * np.sin(phase[k] + speed[k] * t)).round().astype(int)
                x, y = int(np.clip(x0 + dx, 0, SIZE[0] - n)), int(np.clip(y0 + dy, 0, SIZE[1] - n))
                frame[y:y + n, x:x + n] = patch
                side = n * shares[k]
                squares.append((x + (n - side) / 2, y + (n - side) / 2, float(side), names[k]))
            frame += rng.normal(0, 3, frame.shape).astype(np.int16)  # a camera's noise, fresh each frame
            bgr = cv2.cvtColor(np.clip(frame, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
            encoded.append(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
            truth.append(squares)
    return encoded, truth


def matched(boxes, squares):
    """Whether each square has a box matching it (benchmarks/face_detectors.py's rule), and the
    number of boxes matching none."""
    used, hits = set(), []
    for sx, sy, s, *_ in squares:
        hits.append(False)
        for i, (x, y, w, h) in enumerate(boxes):
            if i not in used and abs(x + w / 2 - sx - s / 2) < s / 4 and abs(y + h / 2 - sy - s / 2) < s / 4 \
                    and 0.35 * s <= w <= 1.3 * s:
                used.add(i)
                hits[-1] = True
                break
    return hits, len(boxes) - len(used)


def model_call(weights, faces=3, repeats=30):
    """Milliseconds of model.predict and model.predict_on_batch on `faces` faces (wall, median)."""
    from ferkit.infer import load_runs

    model = load_runs([weights] if weights else None)[0][0]
    x = np.random.default_rng(0).integers(0, 256, (faces, 48, 48, 1), dtype=np.uint8)
    for name, call in (("model.predict", lambda: model.predict(x, verbose=0)),
                       ("model.predict_on_batch", lambda: model.predict_on_batch(x))):
        call(), call()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)
        print(f"{name}: {1000 * np.median(times):.1f} ms for {faces} faces (median of {repeats})")


def build_parser():
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--faces", choices=("photo", "fer"), default="photo", help="what is pasted (see above)")
    p.add_argument("--detector", help="blazeface, mtcnn or haar (default: LiveTracker's)")
    p.add_argument("--every", type=positive_int, default=None, help="detect on one frame in N (default: LiveTracker's)")
    p.add_argument("--second", default="auto", help="a second detector run on one frame in --second-every too "
                   "(default: LiveTracker's, mtcnn beside blazeface; 'none')")
    p.add_argument("--max-side", type=positive_int, help="detect on a copy of at most this long side "
                   "(default: LiveTracker's, 320)")
    p.add_argument("--second-every", type=positive_int, default=15)
    p.add_argument("--frames", type=positive_int, default=300)
    p.add_argument("--weights", help="run folder (default: the default run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-frame", metavar="PNG", help="also write the last frame with the boxes found, to look at")
    p.add_argument("--write-video", metavar="AVI", help="only write the stream (with the warm-up frames) as an MJPG "
                   "video, e.g. for timing predict.py on it")
    p.add_argument("--model-call", action="store_true", help="only time one model call on 3 faces: Keras' "
                   "model.predict against model.predict_on_batch (which predict_proba uses for one batch)")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    configure_tensorflow()
    if args.model_call:
        return model_call(args.weights)
    import cv2

    from ferkit.faces.live import DETECT_EVERY, LiveTracker

    sources, source = photo_sources() if args.faces == "photo" else fer_sources(seed=args.seed)
    encoded, truth = build_stream(sources, args.frames + WARMUP, seed=args.seed)
    if args.write_video:
        writer = cv2.VideoWriter(args.write_video, cv2.VideoWriter_fourcc(*"MJPG"), 30, SIZE)
        for jpeg in encoded:
            writer.write(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))
        writer.release()
        print(f"wrote {len(encoded)} frames of {source} to {args.write_video}")
        return 0
    detector = args.detector
    if args.max_side:
        from ferkit.faces.detect import Detector, default_detector

        detector = Detector(detector or default_detector(live=True), max_side=args.max_side)
    tracker = LiveTracker(args.weights, detector=detector, every=args.every or DETECT_EVERY,
                          second=None if args.second == "none" else args.second, second_every=args.second_every)
    stats = run_stream(tracker, encoded, truth)
    if args.save_frame:
        save_frame(args.save_frame, stats["last"], truth[-1])
    print_figures(args.frames, source, tracker, stats)
    return 0


def run_stream(tracker, encoded, truth):
    """Decode, process and answer every frame; after the warm-up, the time of each stage, the
    wall and CPU time, and the faces found per source."""
    import cv2

    stages = {s: 0.0 for s in ("decode", "convert", "detect", "track", "classify", "answer")}
    detections = false = 0
    found = {}  # source name -> [found, total]
    start = None
    for i, (jpeg, squares) in enumerate(zip(encoded, truth)):
        if i == WARMUP:
            stages = dict.fromkeys(stages, 0.0)
            detections = false = 0
            found = {}
            start, cpu = time.perf_counter(), time.process_time()
        t0 = time.perf_counter()
        bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        t1 = time.perf_counter()
        faces = tracker.process(bgr, order="bgr")
        t2 = time.perf_counter()
        answer = json.dumps([f.as_dict() for f in faces])
        t3 = time.perf_counter()
        stages["decode"] += t1 - t0
        stages["answer"] += t3 - t2
        for k, ms in tracker.timings.items():
            stages[k] += ms / 1000
        detections += "detect" in tracker.timings
        hits, f = matched([face.box for face in faces], squares)
        false += f
        for hit, (*_, name) in zip(hits, squares):
            found.setdefault(name, [0, 0])
            found[name][0] += hit
            found[name][1] += 1
        assert answer
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"stages": stages, "detections": detections, "false": false, "found": found, "wall": wall, "cpu": cpu,
            "last": (bgr, faces)}


def save_frame(path, last, squares):
    """The last frame with the boxes found, and the true faces as thin white squares."""
    import cv2

    from ferkit.faces import media

    bgr, faces = last
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    for sx, sy, side, _ in squares:
        cv2.rectangle(rgb, (int(sx), int(sy)), (int(sx + side), int(sy + side)), (255, 255, 255), 1)
    media.write_image(path, media.draw_faces(rgb, faces))


def print_figures(n, source, tracker, stats):
    stages, found, wall, cpu = stats["stages"], stats["found"], stats["wall"], stats["cpu"]
    detections, false = stats["detections"], stats["false"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    from ferkit.runs.folder import hardware

    print(f"machine: {hardware()}, load average {load:.1f}; {tracker.describe()}")
    print(f"{n} frames of {SIZE[0]}x{SIZE[1]} with 1-3 moving faces of 80-130 px from {source}")
    hits, total = (sum(v[i] for v in found.values()) for i in (0, 1))
    by_source = ", ".join(f"{k} {v[0] / v[1]:.0%}" for k, v in sorted(found.items())) if len(found) > 1 else ""
    print(f"{n / wall:.1f} frames/s end to end (wall, {1000 * wall / n:.1f} ms a frame; {n / cpu:.1f} frames "
          f"per CPU-second of this process); "
          f"faces found {hits / total:.1%} ({hits}/{total}{'; ' + by_source if by_source else ''}), {false} false boxes")
    per = ", ".join(f"{k} {1000 * v / n:.1f}" for k, v in stages.items())
    print(f"  ms per frame: {per}; detection ran on {detections} frames, "
          f"{1000 * stages['detect'] / max(1, detections):.1f} ms each")


if __name__ == "__main__":
    sys.exit(run_main(main))
