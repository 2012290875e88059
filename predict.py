#!/usr/bin/env python
"""Predict expressions for a FER2013 CSV and write a submission file `id,label`, or for the faces
in a photo, a folder of photos or a video: one row per face, `file,frame,x,y,w,h,label,emotion`.

    python predict.py test.csv.gz out.csv                       # the default run (see --help)
    python predict.py test.csv.gz out.csv --weights runs/cnn3-20261127-120000
    python predict.py public_test.csv.gz out.csv --tta --weights runs/a --weights runs/b   # TTA + ensemble

    python predict.py photo.jpg faces.csv --annotate annotated/   # also a copy with boxes and emotions
    python predict.py clip.mp4 faces.csv --every 10                 # every 10th frame of a video
    python predict.py --camera 0 faces.csv                          # a local camera, live, until Ctrl-C

Rows keep the input's order; ids come from the file's id column, else they are 0..N-1. When
the input has labels, the accuracy is printed too. The input is read in chunks, so memory
stays flat however long it is; the output appears only when it is complete. Photos, folders and
videos: see ferkit/faces/reader.py and the README; exit status 3 means some pictures of a folder could not
be read (each named on stderr) and the others' rows were written.
"""
import sys
import time

from ferkit.cli import Parser, add_usage, add_weights, positive_int, run_main
from ferkit.backend import configure_tensorflow

DETECTOR_NAMES = ("blazeface", "mtcnn", "haar")  # ferkit.faces.detect.DETECTORS, named here so that --help loads no OpenCV


def nonnegative_int(text):
    value = int(text) if text.strip().lstrip("-").isdigit() else None
    if value is None or value < 0:
        import argparse

        raise argparse.ArgumentTypeError(f"expected a camera index 0, 1, ..., got {text!r}")
    return value


def build_parser():
    p = Parser(prog="predict.py", description=__doc__.split("\n\n")[0])
    p.add_argument("test_csv", nargs="?", help="CSV with id,feature or label,feature (or Kaggle fer2013.csv), plain or "
                   ".gz; or a picture (.jpg .png .bmp .webp ...), a folder of pictures (recursive), or a video "
                   "(.mp4 .avi ...); left out with --camera")
    p.add_argument("out_csv", nargs="?", help="where to write id,label (CSV input) or file,frame,x,y,w,h,label,emotion "
                   "(pictures, videos, camera)")
    add_weights(p, ensemble=True, help="run folder or .weights.h5; repeat it, or name a folder of run folders "
                "(models/pretrained/ensemble), for an ensemble (default: the finished run under "
                "runs/ or bundled model with the best recorded val_accuracy)")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: average 10 flipped/shifted views")
    add_usage(p)
    p.add_argument("--batch-size", type=positive_int, default=256, help="images per prediction batch")
    p.add_argument("--chunk-rows", type=positive_int, default=8192, help="rows read and predicted at a time")
    p.add_argument("--probs", action="store_true", help="also write each class's probability")
    p.add_argument("--every", type=positive_int, metavar="N", help="videos: classify frames 0, N, 2N, ... (default: every frame)")
    p.add_argument("--annotate", metavar="DIR", help="pictures and videos: write copies with each face's box, "
                   "emotion and confidence drawn into DIR")
    p.add_argument("--detector", choices=DETECTOR_NAMES, help="face detector for pictures and videos "
                   "(default: mtcnn for pictures; for videos and cameras blazeface, with mtcnn on one frame in 15 "
                   "for the faces it misses; haar under a Keras backend other than TensorFlow; docs/PERFORMANCE.md)")
    p.add_argument("--detect-every", type=positive_int, metavar="N", help="videos and cameras sampled at every "
                   "frame: detect faces on one frame in N and follow them by optical flow between (default 3; "
                   "1: detect on every frame)")
    p.add_argument("--camera", type=nonnegative_int, metavar="INDEX", help="read a local camera (0: the first) "
                   "instead of a file, writing rows as frames come, until Ctrl-C: predict.py --camera 0 OUT_CSV")
    return p


def main(argv=None):
    configure_tensorflow()  # before TensorFlow loads
    return run_main(lambda: predict(parse(argv)))


def parse(argv):
    """The arguments; with --camera the one positional is the output."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.camera is not None:
        if args.out_csv is not None:
            parser.error(f"--camera reads a camera: give only the output file, not {args.test_csv!r} too")
        if args.test_csv is None:
            parser.error("--camera needs the output file: predict.py --camera 0 OUT_CSV")
        args.test_csv, args.out_csv = None, args.test_csv
    elif args.out_csv is None:
        parser.error("the following arguments are required: " + ("out_csv" if args.test_csv else "test_csv, out_csv"))
    return args


def predict(args):
    job = plan_job(args)
    t0 = time.time()
    # TensorFlow loads here, after the checks in plan_job (ferkit.backend.configure_tensorflow ran first).
    from ferkit.files import check_outputs
    from ferkit.runs import load as runs

    if not args.weights:  # the default run's files are inputs too
        check_outputs([args.out_csv], runs.run_inputs(None), derived=job.annotated.values() if job else ())
    if job is not None:
        return predict_faces(args, job)
    return predict_csv(args, t0)


def plan_job(args):
    """Everything refused before a model loads: the input kind (CSV, pictures, video, camera),
    the options that apply to it, and every output through the outputs guard. Returns the
    pictures' job, or None for CSV input."""
    from ferkit.errors import FERError
    from ferkit import preflight
    from ferkit.runs.layout import expand_weights
    from ferkit.faces import media  # Pillow and OpenCV, no TensorFlow: checks of pictures stay instant too

    args.weights = expand_weights(args.weights)  # an ensemble folder: each of its members
    job = None
    if args.camera is not None:
        if args.usage:
            raise FERError("--usage applies to Kaggle fer2013.csv files, not to a camera")
        job = media.camera_job(args.camera, args.annotate)
    elif media.input_kind(args.test_csv).faces:
        if args.usage:
            raise FERError("--usage applies to Kaggle fer2013.csv files, not to pictures or videos")
        job = media.plan(args.test_csv, args.annotate)
    elif args.annotate or args.every or args.detector or args.detect_every:
        raise FERError("--annotate, --every, --detector and --detect-every apply to pictures, folders and videos, "
                       "not CSV input")
    # the input file's header and first row (pictures: media.plan above), the runs, the outputs:
    # the CSV and every annotated copy, all through the outputs guard before any model loads
    preflight.check([args.out_csv], [] if job else [args.test_csv], args.weights or [], usage=args.usage,
                    inputs=[args.test_csv] if job and args.test_csv else [],
                    derived=job.annotated.values() if job else ())
    if job is None:  # the CSV is read only after the model loads: its first rows are parsed now
        preflight.check_first_rows(args.test_csv, args.usage)
    elif args.camera is not None:  # opened now, and kept open for the stream
        media.check_camera(args.camera)
    return job


def predict_faces(args, job):
    """Pictures, folders, videos and cameras: detect, crop, classify (ferkit/faces)."""
    from ferkit.faces.detect import default_detector, default_second
    from ferkit.faces.reader import predict_files
    from ferkit.faces.track import DETECT_EVERY

    detector = args.detector or default_detector(live=job.kind.frames)  # docs/PERFORMANCE.md
    second = None if args.detector else default_second(detector)
    return predict_files(job, args.out_csv, weights=args.weights, tta=args.tta, probs=args.probs,
                         every=args.every or 1, detector=detector, batch_size=args.batch_size,
                         detect_every=args.detect_every or DETECT_EVERY, second=second)


def predict_csv(args, t0):
    """A CSV of faces, chunk by chunk, so memory stays bounded; prints accuracy when labelled."""
    import numpy as np

    import data
    from ferkit.files import open_output
    from ferkit.infer import load_runs, model_line, predict_proba

    loaded = load_runs(args.weights)
    nets = [m for m, _ in loaded]
    print(model_line([info for _, info in loaded], args.tta), flush=True)
    correct = labelled = rows = 0
    with open_output(args.out_csv, "w", newline="") as out:
        out.write("id,label" + "".join(f",{c}" for c in data.CLASS_NAMES) * args.probs + "\n")
        for chunk in data.iter_csv(args.test_csv, chunk_rows=args.chunk_rows, usage=args.usage):
            probs = predict_proba(nets, chunk.images, tta=args.tta, batch_size=args.batch_size)
            pred = probs.argmax(axis=1)
            ids = chunk.output_ids(offset=rows)
            if args.probs:
                lines = [f"{i},{p}," + ",".join(f"{v:.5f}" for v in pr) for i, p, pr in zip(ids, pred, probs)]
            else:
                lines = [f"{i},{p}" for i, p in zip(ids, pred)]
            out.write("\n".join(lines) + "\n")
            rows += len(chunk)
            if chunk.labels is not None:
                correct += int(np.sum(pred == chunk.labels))
                labelled += len(chunk)
    msg = f"wrote {rows} predictions to {args.out_csv} in {time.time() - t0:.1f} s"
    if labelled:
        msg += f"; accuracy {correct / labelled:.4f} ({correct}/{labelled})"
    print(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
