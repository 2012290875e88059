"""How every script ends: bad input is one line on stderr and exit status 2, never a traceback."""
import sys

from ferbase.errors import FERError


def run_main(fn):
    """Call fn(); turn FERError into `error: <message>` on stderr and return 2."""
    try:
        return fn() or 0
    except FERError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
