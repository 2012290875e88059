#!/usr/bin/env python
"""Several camera clients at once against serve.py on 127.0.0.1: frames/s, latency, server memory.

    python benchmarks/serve_load.py                          # 1, 2 and 4 clients, 20 s each
    python benchmarks/serve_load.py --clients 1 4 --seconds 30 --weights models/pretrained/ensemble

It starts `serve.py --port 0` as a child process (so that its memory is measured alone), then
for each client count runs that many WebSocket clients, each sending a 640x480 JPEG with three
faces (grace_hopper.jpg's face pasted on scikit-learn's china.jpg) and waiting for its reply
before sending the next, as the page does. Per phase it prints the replies per second (all
clients together), the latency per frame (median and 95th percentile) and the server's resident
memory (the highest sample, read from /proc every 0.2 s). Then the misbehaving clients: one
that sends 200 frames without reading a reply, three that leave mid-frame, and one past the
camera limit (refused); the server's memory and its answer to a last ordinary frame follow.
Bounded, by design: a client has at most one frame being processed and the server stops reading
a connection while one of its messages waits (ferkit/web/app.py uvicorn_settings).
"""
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ferkit.cli import Parser, positive_int, run_main  # noqa: E402


def frame_jpeg(seed=0):
    import cv2
    import matplotlib.cbook
    from PIL import Image
    from sklearn.datasets import load_sample_images

    from data import synthetic

    hopper = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("L"))
    face = hopper[105:335, 150:380]
    scene = cv2.resize(load_sample_images().images[0], (640, 480), interpolation=cv2.INTER_AREA)
    squares = synthetic.random_squares(np.random.default_rng(seed), (480, 640), 3, (100, 150), gap=20)
    buf = io.BytesIO()
    Image.fromarray(synthetic.paste_faces(scene, [face] * len(squares), squares)).save(buf, format="JPEG", quality=85)
    return buf.getvalue(), len(squares)


def rss_mb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Sampler:
    """The server's resident memory every 0.2 s, while running."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def client(url, payload, seconds, out):
    from websockets.sync.client import connect

    latencies, faces, errors = [], [], []
    with connect(url, max_size=2**22) as ws:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            ws.send(payload)
            reply = json.loads(ws.recv(timeout=120))
            latencies.append(time.perf_counter() - t0)
            (errors if "error" in reply else faces).append(reply.get("error") or len(reply["faces"]))
    out.append((latencies, faces, errors))


def phase(url, payload, n, seconds, pid):
    results = []
    threads = [threading.Thread(target=client, args=(url, payload, seconds, results)) for _ in range(n)]
    t0 = time.perf_counter()
    with Sampler(pid) as mem:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    wall = time.perf_counter() - t0
    lat = np.concatenate([np.array(r[0]) for r in results]) * 1000
    faces = [f for r in results for f in r[1]]
    errors = [e for r in results for e in r[2]]
    per_client = [len(r[0]) / wall for r in results]
    return {"clients": n, "replies/s": len(lat) / wall, "min client/s": min(per_client),
            "p50 ms": float(np.median(lat)), "p95 ms": float(np.percentile(lat, 95)),
            "faces/frame": float(np.mean(faces)) if faces else 0.0, "errors": len(errors), "peak MB": mem.peak}


def wait_idle(url, timeout=300):
    """Seconds until /api/info counts no camera stream, 5 times in a row over 0.5 s (a connection
    just closed may not have been counted yet)."""
    import urllib.request

    info = url.replace("ws://", "http://").replace("/ws/camera", "/api/info")
    t0, idle = time.perf_counter(), 0
    while time.perf_counter() - t0 < timeout and idle < 5:
        with urllib.request.urlopen(info, timeout=30) as r:
            idle = idle + 1 if json.load(r)["cameras"] == 0 else 0
        time.sleep(0.1)
    return time.perf_counter() - t0


def misbehave(url, payload, pid):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    notes = []
    with Sampler(pid) as mem:
        with connect(url, max_size=2**22) as ws:  # a flood: 200 frames, no reply read
            sent, why = 0, "then left"
            try:
                for _ in range(200):
                    ws.send(payload)
                    sent += 1
            except (ConnectionClosed, TimeoutError) as e:
                why = f"then the connection ended ({e})"
        notes.append(f"flood: sent {sent} frames without reading a reply, {why}; the server counted "
                     f"it gone {wait_idle(url):.1f} s later")
        from ferkit.web import service

        leavers = service.MAX_CAMERAS - 1  # a stream counts until its frame in flight is done
        for _ in range(leavers):
            with connect(url, max_size=2**22) as ws:
                ws.send(payload)
        notes.append(f"{leavers} clients left mid-frame; the server counted them gone {wait_idle(url):.1f} s later")

        with contextlib.ExitStack() as stack:
            held = [stack.enter_context(connect(url, max_size=2**22)) for _ in range(service.MAX_CAMERAS)]
            for ws in held:  # each sends a frame, so all are registered
                ws.send(payload)
            with connect(url, max_size=2**22) as extra:
                notes.append(f"camera {service.MAX_CAMERAS + 1}: {json.loads(extra.recv(timeout=120))['error']}")
            for ws in held:
                ws.recv(timeout=300)
        time.sleep(1)
        with connect(url, max_size=2**22) as ws:
            t0 = time.perf_counter()
            ws.send(payload)
            reply = json.loads(ws.recv(timeout=300))
            notes.append(f"then an ordinary client: {len(reply.get('faces', []))} faces in "
                         f"{1000 * (time.perf_counter() - t0):.0f} ms")
    notes.append(f"server memory: peak {mem.peak:.0f} MB during these, {rss_mb(pid):.0f} MB after")
    return notes


def run(args):
    payload, pasted = frame_jpeg()
    cmd = [sys.executable, os.path.join(ROOT, "serve.py"), "--port", "0"]
    for w in args.weights or []:
        cmd += ["--weights", w]
    if args.detector:
        cmd += ["--detector", args.detector]
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = None
        for line in server.stdout:
            print(line.rstrip())
            found = re.search(r"serving on http://([^/\s]+)/", line)
            if found:
                url = f"ws://{found.group(1)}/ws/camera"
                break
        if url is None:
            raise SystemExit("serve.py did not start")
        load = os.getloadavg()
        print(f"{len(payload) // 1024} KB JPEG frames of 640x480 with {pasted} faces; {os.cpu_count()} CPUs, "
              f"load average {load[0]:.1f} before")
        phase(url, payload, 1, 3, server.pid)  # warm-up: first calls build the model's graphs
        print(f"server after warm-up: {rss_mb(server.pid):.0f} MB resident")
        cols = ["clients", "replies/s", "min client/s", "p50 ms", "p95 ms", "faces/frame", "errors", "peak MB"]
        print(" ".join(f"{c:>12}" for c in cols))
        for n in args.clients:
            row = phase(url, payload, n, args.seconds, server.pid)
            print(" ".join(f"{row[c]:12.1f}" if isinstance(row[c], float) else f"{row[c]:>12}" for c in cols), flush=True)
        for note in misbehave(url, payload, server.pid):
            print(note)
        print(f"load average at the end {os.getloadavg()[0]:.1f}; server peak resident memory (VmHWM) "
              f"{rss_mb(server.pid, 'VmHWM'):.0f} MB")
    finally:
        server.terminate()
        server.wait(30)
    return 0


def main(argv=None):
    p = Parser(prog="serve_load.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=positive_int, nargs="+", default=[1, 2, 4], help="client counts, one phase each")
    p.add_argument("--seconds", type=positive_int, default=20, help="length of each phase")
    p.add_argument("--weights", action="append", metavar="RUN_DIR", help="as for serve.py")
    p.add_argument("--detector", choices=("mtcnn", "haar"), help="as for serve.py")
    return run_main(lambda: run(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
