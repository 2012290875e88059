#!/usr/bin/env python
"""A local web page for expressions: the webcam live, a photo or a video upload.

    python serve.py                                   # http://127.0.0.1:8000/ , the default model
    python serve.py --weights models/pretrained/ensemble --tta --port 8080
    python serve.py --host 0.0.0.0                    # other machines too: on purpose only

The model loads once (--weights, --tta as for predict.py); the page's camera frames, photos and
videos all go through it. Ctrl-C stops the server. Limits and the choice of web stack: README,
"Live page"; the routes: ferkit/web/app.py.
"""
import sys

from ferkit.cli import Parser, add_weights, run_main
from ferkit.backend import configure_tensorflow

DETECTOR_NAMES = ("blazeface", "mtcnn", "haar")  # ferkit.faces.detect.DETECTORS, named here so that --help loads no OpenCV


def port_number(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0..65535; 0 picks a free one)")
    return value


def build_parser():
    p = Parser(prog="serve.py", description=__doc__.split("\n\n")[0])
    add_weights(p, ensemble=True)
    p.add_argument("--tta", action="store_true", help="test-time augmentation: average 10 flipped/shifted views")
    p.add_argument("--detector", choices=DETECTOR_NAMES, help="face detector (default: photos by mtcnn; camera frames "
                   "and videos by blazeface on one frame in 3 and mtcnn on one in 15, optical flow between; haar for "
                   "both under a Keras backend other than TensorFlow). A detector named here is used alone, for photos, "
                   "camera frames and videos")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; 0.0.0.0 shares the page with "
                   "every machine that can reach this one")
    p.add_argument("--port", type=port_number, default=8000, help="port to listen on; 0 picks a free one")
    return p


def main(argv=None, ready=None):
    """`ready`: called with the uvicorn.Server once it listens (tests stop it with .should_exit)."""
    configure_tensorflow()  # before TensorFlow loads
    return run_main(lambda: serve(build_parser().parse_args(argv), ready))


def serve(args, ready=None):
    import socket

    from ferkit import preflight
    from ferkit.errors import FERError
    from ferkit.runs.layout import expand_weights

    args.weights = expand_weights(args.weights)
    preflight.check([], [], args.weights or [])
    try:  # bound before the model loads: a port in use is one line, not a traceback after a minute
        sock = socket.create_server((args.host, args.port), family=socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    except OSError as e:
        raise FERError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e})") from None
    import uvicorn

    from ferkit.web.app import create_app, uvicorn_settings
    from ferkit.web.service import Service

    with sock:
        service = Service.load(args.weights, tta=args.tta, detector=args.detector)
        print(service.description, flush=True)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        config = uvicorn.Config(create_app(service), log_level="warning", **uvicorn_settings())
        server = uvicorn.Server(config)
        if ready is not None:
            _notify_when_started(server, ready)
        print(f"serving on http://{shown}:{port}/  (Ctrl-C stops it)", flush=True)
        server.run(sockets=[sock])
    print("stopped")
    return 0


def _notify_when_started(server, ready):
    import threading
    import time

    def wait():
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        ready(server)

    threading.Thread(target=wait, daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
