"""serve.py run in a thread of the test process, for tests/test_serve*.py and benchmarks."""
import contextlib
import threading

import serve


@contextlib.contextmanager
def running_serve(argv, timeout=300):
    """serve.main(argv + ['--port', '0']) in a thread; yields (base URL, a dict that gets 'rc' once
    it has stopped). The server stops when the block ends."""
    started, box = threading.Event(), {}

    def ready(server):
        box["server"] = server
        started.set()

    thread = threading.Thread(target=lambda: box.setdefault("rc", serve.main(list(argv) + ["--port", "0"], ready=ready)),
                              daemon=True)
    thread.start()
    waited = 0.0
    while not started.wait(0.5):
        waited += 0.5
        if not thread.is_alive() or waited > timeout:
            raise RuntimeError(f"serve.py did not start listening (exit status {box.get('rc')})")
    server = box["server"]
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    try:
        yield f"http://{host}:{port}", box
    finally:
        server.should_exit = True
        thread.join(30)
