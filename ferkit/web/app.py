"""The web server behind serve.py: a FastAPI app, and the uvicorn settings that bound it.

    GET  /                      the page (static/index.html, app.js, style.css)
    GET  /api/info              the model line, the limits, the cameras and uploads in progress
    WS   /ws/camera             binary JPEG frames in, one JSON reply per frame out
    POST /api/photo?name=N      the picture's bytes as the body -> faces + annotated JPEG (data: URL)
    POST /api/video?name=N&every=K   the video's bytes -> rows + links to the annotated .mp4 and CSV
    GET  /api/result/TOKEN/annotated.mp4 | faces.csv

Every failure is a JSON {"error": "..."} the page shows (camera: a reply, uploads: status 400,
413 or 503), and the server goes on. Uploads are streamed into this server's own temporary
folder under names it makes (`name` is only shown and written into the CSV, never opened) and
deleted once processed; annotated videos stay there for download, the last MAX_RESULTS of them,
until the server stops and the folder goes. Model work runs in worker threads (service.py).
"""
import asyncio
import collections
import concurrent.futures
import contextlib
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
import traceback
import types

from fastapi import APIRouter, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import ClientDisconnect

from ferkit.errors import FERError
from ferkit.faces import media
from ferkit.web import service as svc

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
RESULT_FILES = ("annotated.mp4", "faces.csv")
_TOKEN = re.compile(r"[0-9a-f]{32}")
router = APIRouter()  # the routes; each reads the shared service and state from app.state.shared


class Refused(Exception):
    """A request the server turns down: HTTP status and the line the page shows."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _display_name(name, default):
    """The client's file name as shown and written into the CSV: its last part, printable, short."""
    name = os.path.basename(str(name or "").replace("\\", "/")) or default
    return "".join(c for c in name if c.isprintable())[:120] or default


def _size(n):
    return f"{n / 2**20:.1f} MB".replace(".0 MB", " MB") if n >= 2**20 else f"{n:,} bytes"


def uvicorn_settings():
    """What keeps a client's memory bounded at the socket: frames above MAX_FRAME_BYTES close the
    connection (1009); the sans-I/O WebSocket stops reading a connection while a message of it
    waits for the app (a client sending faster than it is answered is held back by TCP); 32
    connections at once. log_config None: uvicorn leaves the process's logging alone (its own
    set-up closes every handler already there) and its warnings reach stderr through Python's."""
    return {"log_config": None, "ws": "websockets-sansio", "ws_max_size": svc.MAX_FRAME_BYTES + 4096,
            "ws_per_message_deflate": False, "limit_concurrency": 32, "timeout_keep_alive": 5}


def create_app(service, workdir=None):
    """The app around a service.Service. `workdir`: where the temporary folder goes (default: the
    system's); it is made private (0700) and removed when the app shuts down."""
    root = tempfile.mkdtemp(prefix="ferkit-serve-", dir=workdir)
    shared = types.SimpleNamespace(
        service=service, root=root, uploads=os.path.join(root, "uploads"), results_dir=os.path.join(root, "results"),
        pool=concurrent.futures.ThreadPoolExecutor(svc.MAX_CAMERAS + svc.MAX_JOBS, thread_name_prefix="ferkit-web"),
        state={"cameras": 0, "jobs": 0}, results=collections.OrderedDict())  # results: token -> folder, oldest first
    os.makedirs(shared.uploads)
    os.makedirs(shared.results_dir)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            shared.pool.shutdown(wait=False, cancel_futures=True)
            shutil.rmtree(root, ignore_errors=True)

    app = FastAPI(title="ferkit live", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.tempdir = root
    app.state.shared = shared
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(Exception, _bug)
    app.include_router(router)
    return app


async def _refused(request, e):
    return JSONResponse({"error": str(e)}, status_code=e.status)


async def _bug(request, e):  # a line the page can show; the traceback still goes to stderr
    return JSONResponse({"error": f"internal error: {type(e).__name__}: {e}"}, status_code=500)


async def _in_worker(shared, fn, *args):
    return await asyncio.get_running_loop().run_in_executor(shared.pool, fn, *args)


@router.get("/")
async def index():
    return FileResponse(os.path.join(STATIC, "index.html"), headers={"Cache-Control": "no-store"})


@router.get("/api/info")
async def info(request: Request):
    shared = request.app.state.shared
    return {"model": shared.service.description, "cameras": shared.state["cameras"], "jobs": shared.state["jobs"],
            "limits": {"frame_bytes": svc.MAX_FRAME_BYTES, "upload_bytes": svc.MAX_UPLOAD_BYTES,
                       "picture_pixels": svc.MAX_PICTURE_PIXELS, "video_pixels": svc.MAX_VIDEO_PIXELS,
                       "video_frames": svc.MAX_VIDEO_FRAMES, "cameras": svc.MAX_CAMERAS, "jobs": svc.MAX_JOBS},
            "picture_suffixes": list(media.IMAGE_SUFFIXES), "video_suffixes": list(media.VIDEO_SUFFIXES)}


async def _camera_reply(shared, stream, payload):
    """One frame's reply: the service's, or an error line; a bug must not end the stream, nor the server."""
    if payload is None:
        return {"error": "expected a camera frame as a binary message (JPEG bytes), got text"}
    try:
        return await _in_worker(shared, shared.service.frame, stream, payload)
    except FERError as e:
        return {"error": str(e)}
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        return {"error": f"internal error: {type(e).__name__}: {e}"}


@router.websocket("/ws/camera")
async def camera(ws: WebSocket):
    shared = ws.app.state.shared
    state = shared.state
    await ws.accept()
    if state["cameras"] >= svc.MAX_CAMERAS:
        await ws.send_json({"error": f"busy: {svc.MAX_CAMERAS} cameras are streaming already; try again later"})
        await ws.close(code=1013)
        return
    state["cameras"] += 1
    stream, count = shared.service.stream(), 0
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            count += 1
            t0 = time.perf_counter()
            reply = await _camera_reply(shared, stream, message.get("bytes"))
            reply["frame"] = count
            reply.setdefault("ms", {})["server"] = round(1000 * (time.perf_counter() - t0), 1)
            await ws.send_json(reply)
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass  # the client left, mid-frame or between frames
    finally:
        state["cameras"] -= 1


@contextlib.contextmanager
def _job(state):
    if state["jobs"] >= svc.MAX_JOBS:
        raise Refused(503, f"busy: {svc.MAX_JOBS} uploads are being processed; try again in a moment")
    state["jobs"] += 1
    try:
        yield
    finally:
        state["jobs"] -= 1


async def _receive(request, allowed):
    """Stream the body into a new file of the uploads folder (a suffix from `allowed` kept, for the
    decoders); refuse it past MAX_UPLOAD_BYTES. Returns the path; the caller deletes it."""
    limit = svc.MAX_UPLOAD_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"the upload is {_size(int(declared))}; the limit is {_size(limit)}")
    suffix = svc.safe_suffix(request.query_params.get("name", ""), allowed)
    fd, path = tempfile.mkstemp(prefix="upload-", suffix=suffix, dir=request.app.state.shared.uploads)
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise Refused(413, f"the upload is over the limit of {_size(limit)}")
                f.write(chunk)
        if size == 0:
            raise Refused(400, "the upload is empty")
    except ClientDisconnect:
        os.remove(path)
        raise Refused(400, "the upload was cut off") from None
    except BaseException:
        os.remove(path)
        raise
    return path


def _failed(e, path, name):
    return Refused(400, str(e).replace(path, name))  # the message names the client's file


@router.post("/api/photo")
async def photo(request: Request, name: str = ""):
    shared = request.app.state.shared
    name = _display_name(name, "picture")
    with _job(shared.state):
        path = await _receive(request, media.IMAGE_SUFFIXES)
        try:
            return await _in_worker(shared, shared.service.photo, path, name)
        except FERError as e:
            raise _failed(e, path, name) from None
        finally:
            os.remove(path)


@router.post("/api/video")
async def video(request: Request, name: str = "", every: int = 1):
    shared = request.app.state.shared
    name = _display_name(name, "video")
    if not 1 <= every <= 100:
        raise Refused(400, f"every must be 1..100, not {every}")
    if not svc.safe_suffix(name, media.VIDEO_SUFFIXES):
        raise Refused(400, f"{name}: not a video file name (expected {' '.join(media.VIDEO_SUFFIXES)})")
    with _job(shared.state):
        path = await _receive(request, media.VIDEO_SUFFIXES)
        token = secrets.token_hex(16)
        folder = os.path.join(shared.results_dir, token)
        os.makedirs(folder)
        try:
            out = await _in_worker(shared, shared.service.video, path, name, os.path.join(folder, RESULT_FILES[0]),
                                   os.path.join(folder, RESULT_FILES[1]), every)
        except FERError as e:
            shutil.rmtree(folder, ignore_errors=True)
            raise _failed(e, path, name) from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            os.remove(path)
        shared.results[token] = folder
        while len(shared.results) > svc.MAX_RESULTS:
            shutil.rmtree(shared.results.popitem(last=False)[1], ignore_errors=True)
        return {**out, "name": name, "video": f"/api/result/{token}/{RESULT_FILES[0]}",
                "csv": f"/api/result/{token}/{RESULT_FILES[1]}"}


@router.get("/api/result/{token}/{file}")
async def result(request: Request, token: str, file: str):
    results = request.app.state.shared.results
    if not _TOKEN.fullmatch(token) or file not in RESULT_FILES or token not in results:
        raise Refused(404, "no such result (results are kept for the last few videos only)")
    kind = "video/mp4" if file.endswith(".mp4") else "text/csv"
    return FileResponse(os.path.join(results[token], file), media_type=kind,
                        filename=None if kind == "video/mp4" else file)
