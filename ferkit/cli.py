"""How every script ends: bad input is one line on stderr and exit status 2, never a traceback."""
import argparse
import math
import sys

from ferkit.errors import FERError


def positive_int(text):
    """argparse type: an integer >= 1 (`--batch-size 0` is refused by argparse, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def positive_float(text):
    """argparse type: a finite number > 0 (refuses 0, negatives, nan, inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a finite number above 0")
    return value


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


class HelpFormatter(argparse.HelpFormatter):
    """--help that shows an option's default once, and only where it means something: not for
    on/off flags, not when the option's absence is the default (None, an empty list), not when
    the help text already names it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (not action.option_strings or "default" in text or default is None or default is argparse.SUPPRESS
                or isinstance(default, (bool, list))):
            return text
        return f"{text} (default: %(default)s)"
