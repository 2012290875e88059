"""Training in a worker thread, so that Ctrl-C answers within about a second: Python handles
Ctrl-C only in the main thread and only between two bytecodes, so a main thread inside a
TensorFlow step (seconds on a CPU, minutes for the first, compiling one) would answer only once
the step ends. Measurements: docs/PERFORMANCE.md."""
import contextlib
import os
import sys
import threading
import traceback

from ferkit.errors import FERError

STOP_GRACE_S = 1.0  # after Ctrl-C, how long the step in progress may take to end before the process exits


def run_interruptible(job):
    """job.main() in a worker thread; returns its exit status. Ctrl-C sets job.stop (the job
    stops at its next batch) or, if the step in progress outlasts STOP_GRACE_S, calls
    job.stop_now(); then the process ends at once (os._exit): everything is on disk by then, and
    Python's teardown with TensorFlow loaded takes long enough to look like a hang.

    The job must honour a stop set after its last check too: a Ctrl-C that came while the last
    epoch was validated or saved passed every check inside fit(), the job returned 0 within the
    grace period, and the process exited 0 without the "interrupted ... --resume" line (issue 27;
    loop.Training.fit checks once more after fit). Only a Ctrl-C after the run recorded "done"
    ends with status 0, and then its summary line says so. SIGTERM arrives here as Ctrl-C
    (ferkit.cli.run_main)."""
    result, finished = {}, threading.Event()

    def work():
        try:
            result["rc"] = job.main()
        except BaseException as e:  # noqa: BLE001 -- handed to the main thread, raised there
            result["error"] = e
        finally:
            finished.set()

    # Waiting on an Event, not Thread.join: in Python 3.11 a Ctrl-C inside join() marks the thread
    # as ended though it still runs.
    threading.Thread(target=work, name="training", daemon=True).start()
    try:
        while not finished.wait(0.2):
            pass
    except KeyboardInterrupt:
        job.stop.set()
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: no more waiting
            finished.wait(STOP_GRACE_S)
        if not finished.is_set():
            job.stop_now()
        error = result.get("error")
        if isinstance(error, FERError):
            print(f"error: {error}", file=sys.stderr)
        elif error is not None:
            traceback.print_exception(error)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(result.get("rc", 130) if "error" not in result else 2)
    if "error" in result:
        raise result["error"]
    return result["rc"]
