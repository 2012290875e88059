#!/usr/bin/env python
"""Faces per second end to end on a folder of photos: decode, detect, classify, as predict.py does.

    python benchmarks/faces_e2e.py                           # 48 JPEGs of 640x480, 3 faces each, MTCNN
    python benchmarks/faces_e2e.py --detector haar --size 1280x960 --tta

It builds a folder of JPEG photos (in a temporary folder): real FER2013 faces from
../shared/data/fer2013/public_test.csv.gz when present, else grace_hopper.jpg's face (matplotlib
ships it), pasted 3 to a picture at random places and sizes (80-200 px, scaled with the picture)
on scikit-learn's two sample photos. Then it runs predict.py's loop over it in this process
(ferkit.faces.FaceReader: pictures in groups of 16, one model call a group) after one warm-up
group, and prints pictures/s and faces/s with the share of each stage, in wall and process CPU
seconds. Model loading and Python start-up are left out (about 5 s once per run of predict.py).
"""
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ferkit.backend import configure_tensorflow  # noqa: E402
from ferkit.cli import Parser, add_weights, frame_size, positive_int, run_main  # noqa: E402

REAL = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fer2013", "public_test.csv.gz")


def build_folder(folder, count, size, seed=0):
    """`count` JPEG photos of `size` (w, h) with 3 faces each; returns the source of the faces."""
    import cv2
    import matplotlib.cbook
    from PIL import Image
    from sklearn.datasets import load_sample_images

    import data
    from data import synthetic

    if os.path.exists(REAL):
        faces, source = data.load_csv(REAL).images[:, :, :, 0], "FER2013 public_test"
    else:
        hopper = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("L"))
        faces, source = hopper[None, 105:335, 150:380], "grace_hopper.jpg"
    rng = np.random.default_rng(seed)
    photos = load_sample_images().images
    k = size[0] / 640
    for i in range(count):
        bg = cv2.resize(photos[i % 2], size, interpolation=cv2.INTER_AREA)
        squares = synthetic.random_squares(rng, bg.shape, 3, (int(80 * k), int(200 * k)))
        picked = faces[rng.choice(len(faces), len(squares))]
        Image.fromarray(synthetic.paste_faces(bg, picked, squares)).save(os.path.join(folder, f"{i:04d}.jpg"), quality=90)
    return source


def run(files, reader, group):
    """Seconds (wall, cpu) per stage over `files`, and the number of faces found."""
    from ferkit.faces import media

    stages = {s: [0.0, 0.0] for s in ("decode", "detect", "classify")}

    def timed(stage, fn, *args):
        t, c = time.perf_counter(), time.process_time()
        out = fn(*args)
        stages[stage][0] += time.perf_counter() - t
        stages[stage][1] += time.process_time() - c
        return out

    faces = 0
    for start in range(0, len(files), group):
        pictures = [timed("decode", media.read_image, f) for f in files[start:start + group]]
        boxes = timed("detect", reader.detector.many, pictures)
        faces += sum(len(f) for f in timed("classify", reader.classify, pictures, boxes))
    return stages, faces


def main(argv=None):
    return run_main(lambda: benchmark(argv))


def benchmark(argv):
    p = Parser(prog="faces_e2e.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--pictures", type=positive_int, default=48, help="timed photos (after a warm-up group)")
    p.add_argument("--size", type=frame_size, default="640x480", metavar="WxH", help="WIDTHxHEIGHT of the photos")
    p.add_argument("--detector", choices=("mtcnn", "haar", "blazeface"))
    add_weights(p)
    p.add_argument("--tta", action="store_true")
    args = p.parse_args(argv)
    configure_tensorflow()  # before TensorFlow loads, as predict.py
    from ferkit.faces.reader import GROUP, FaceReader
    from ferkit.faces.media import list_images

    size = args.size
    with tempfile.TemporaryDirectory() as folder:
        source = build_folder(folder, args.pictures + GROUP, size)
        files = list_images(folder)
        reader = FaceReader(args.weights, tta=args.tta, detector=args.detector)
        run(files[:GROUP], reader, GROUP)  # warm-up: graph tracing, first allocations
        stages, faces = run(files[GROUP:], reader, GROUP)
    wall = sum(s[0] for s in stages.values())
    cpu = sum(s[1] for s in stages.values())
    from ferkit.runs.folder import hardware

    print(f"machine: {hardware()}; {reader.describe()}")
    print(f"{args.pictures} JPEG photos of {size[0]}x{size[1]}, faces from {source}: {faces} faces found")
    print(f"{args.pictures / wall:.1f} pictures/s, {faces / wall:.1f} faces/s end to end "
          f"(wall; {faces / cpu:.1f} faces per CPU-second)")
    print("  " + ", ".join(f"{k} {1000 * w / args.pictures:.0f} ms wall / {1000 * c / args.pictures:.0f} ms CPU"
                           for k, (w, c) in stages.items()) + " per picture")


if __name__ == "__main__":
    sys.exit(main())
