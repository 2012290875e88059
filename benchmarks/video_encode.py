#!/usr/bin/env python
"""Frames per second of the annotated-video writer (ferkit/faces/media.py video_writer, PyAV).

    python benchmarks/video_encode.py                    # 150 frames of 640x480, every codec
    python benchmarks/video_encode.py --frames 300 --size 1280x720

The frames are a slow pan over scikit-learn's china.jpg with three boxes and labels drawn on each
(media.draw_faces), so the encoders see what predict.py --annotate and serve.py give them. Prints,
per suffix, the codec, frames/s (wall and process CPU) and the file size; OpenCV's mp4v, the
writer used before (not playable in browsers), is timed beside them for comparison.
"""
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ferkit.cli import Parser, frame_size, positive_int, run_main  # noqa: E402


class _Box:
    def __init__(self, box, label):
        self.box, self.label = box, label
        self.emotion = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")[label]
        self.probs = np.eye(7)[label] * 0.8 + 0.2 / 7


def frames(count, size):
    import cv2
    from sklearn.datasets import load_sample_images

    from ferkit.faces import media

    w, h = size
    scene = cv2.resize(load_sample_images().images[0], (w * 2, h), interpolation=cv2.INTER_AREA)
    for i in range(count):
        x = (3 * i) % w
        faces = [_Box((40 + i % 50, 60, 120, 120), 3), _Box((300, 200 + i % 30, 100, 100), 6),
                 _Box((w - 180, 80, 140, 140), 0)]
        yield media.draw_faces(scene[:, x:x + w], faces)


def measure(path, count, size, fps=30):
    from ferkit.faces import media

    pictures = list(frames(count, size))
    wall, cpu = time.perf_counter(), time.process_time()
    with media.video_writer(path, fps, size) as writer:
        for rgb in pictures:
            writer.write(rgb)
    return time.perf_counter() - wall, time.process_time() - cpu


def measure_opencv(path, count, size, fps=30):
    import cv2

    pictures = list(frames(count, size))
    wall, cpu = time.perf_counter(), time.process_time()
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for rgb in pictures:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return time.perf_counter() - wall, time.process_time() - cpu


def run(args):
    from ferkit.faces import media

    w, h = args.size
    print(f"{args.frames} frames of {w}x{h}; {os.cpu_count()} CPUs, load average "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(f"{'suffix':8} {'codec':12} {'frames/s wall':>14} {'frames/s CPU':>13} {'KB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for suffix, (codec, _, _) in media.VIDEO_CODECS.items():
            path = os.path.join(tmp, "clip" + suffix)
            wall, cpu = measure(path, args.frames, (w, h))
            print(f"{suffix:8} {codec:12} {args.frames / wall:14.1f} {args.frames / cpu:13.1f} "
                  f"{os.path.getsize(path) / 1024:8.0f}")
        path = os.path.join(tmp, "opencv.mp4")
        wall, cpu = measure_opencv(path, args.frames, (w, h))
        print(f"{'.mp4':8} {'cv2 mp4v':12} {args.frames / wall:14.1f} {args.frames / cpu:13.1f} "
              f"{os.path.getsize(path) / 1024:8.0f}  (before; browsers do not play it)")
    return 0


def main(argv=None):
    p = Parser(prog="video_encode.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=positive_int, default=150, help="frames per video")
    p.add_argument("--size", type=frame_size, default="640x480", metavar="WxH", help="frame size, WIDTHxHEIGHT")
    return run_main(lambda: run(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
