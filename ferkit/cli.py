"""How every script begins and ends: one parser class (bad options are one line, exit 2; `--config
FILE` recipes), the options several scripts share, and run_main (one-line errors, exit codes)."""
import argparse
import contextlib
import math
import re
import signal
import sys
import threading

from ferkit.errors import FERError


def int_in(lo, hi=None, wording=None):
    """argparse type: an integer from `lo` (to `hi`), refused at parse time (one line, exit 2)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{value} {wording or f'must be at least {lo}'}")
        return value
    return parse


positive_int = int_in(1)  # `--batch-size 0` is refused by argparse
non_negative_int = int_in(0)  # a count where none is a choice, e.g. warm-up steps
MAX_SEED = 2**32 - 1  # keras.utils.set_random_seed seeds NumPy's legacy generator, which takes 0..2**32-1
# --seed: NumPy's own ValueError would come only after TensorFlow has loaded (train_cnn.py's rule)
seed = int_in(0, MAX_SEED, f"must be a whole number from 0 to {MAX_SEED} (NumPy's seed range)")


def frame_size(text):
    """argparse type: WIDTHxHEIGHT (640x480) as (width, height), each 64..7680 pixels; anything
    else is a usage error (one line, exit 2), not a ValueError from int() halfway through a run."""
    found = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", text.lower(), re.ASCII)
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 640x480")
    size = int(found[1]), int(found[2])
    if not all(64 <= v <= 7680 for v in size):
        raise argparse.ArgumentTypeError(f"{text}: width and height must be 64 to 7680 pixels")
    return size


def positive_float(text):
    """argparse type: a finite number > 0 (refuses 0, negatives, nan, inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a finite number above 0")
    return value


def plural(n, word):
    """'1 epoch', '2 epochs'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def run_main(fn):
    """Call fn(); turn FERError into `error: <message>` on stderr and return 2. Ctrl-C and SIGTERM
    (kill, a container or job scheduler stopping the script) both end it as a KeyboardInterrupt, so
    half-written outputs are removed (ferkit.files) and a training records where it stopped:
    `interrupted` on stderr, exit status 130."""
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 is printed with \\xNN, never a traceback
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    try:
        with sigterm_as_ctrl_c():
            return fn() or 0
    except FERError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _raise_interrupt(_signum, _frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_ctrl_c():
    """Within the block, SIGTERM raises KeyboardInterrupt in the main thread, as Ctrl-C does (its
    default would end the process at once, leaving temporary files behind). A SIGTERM the parent
    set to be ignored stays ignored; outside the main thread nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


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


class Parser(argparse.ArgumentParser):
    """Every script's parser: argparse whose errors are the toolkit's one line (`error: ...`, exit 2
    through run_main) instead of the usage block, and, with `config=True`, `--config FILE`: a recipe
    (TOML, recipes/) whose settings become the parser's defaults, so options given on the command
    line win and the final settings are what the script records."""

    def __init__(self, *args, config=False, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        if config:
            self.add_argument("--config", metavar="FILE",
                              help="recipe file (TOML, e.g. recipes/fernet-cpu.toml): its settings are the defaults; "
                                   "options given here win, and a repeatable one (--option, --teacher) adds to "
                                   "the recipe's list")

    def error(self, message):
        raise FERError(f"{message} (see {self.prog} --help)")

    def parse_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        if any(a.dest == "config" for a in self._actions):
            path = _config_path(args)
            if path is not None:
                self.set_defaults(**read_recipe(path, self))
        return super().parse_args(args, namespace)


def _config_path(args):
    """The value of the last --config in `args` (None if there is none)."""
    path = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--config":
            if i + 1 >= len(args):
                raise FERError("argument --config: expected one argument")
            path = args[i + 1]
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
    return path


def read_recipe(path, parser):
    """A recipe's settings as {dest: value} for `parser`: keys are option names without the dashes
    (`batch-size` or `batch_size`; a flag is true or false: `no-augment = true`, or its setting,
    `augment = false`); unknown keys, wrong kinds of value and values outside an option's choices
    are one-line FERErrors naming the file."""
    import tomllib

    try:
        with open(path, "rb") as f:
            recipe = tomllib.load(f)
    except FileNotFoundError:
        raise FERError(f"--config {path}: no such file") from None
    except IsADirectoryError:
        raise FERError(f"--config {path}: is a folder, expected a recipe file") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise FERError(f"--config {path}: not a readable TOML recipe ({e})") from None
    by_dest = {a.dest: a for a in parser._actions if a.option_strings and a.dest not in ("help", "config")}
    settings = {}
    for key, value in recipe.items():
        flag = parser._option_string_actions.get("--" + key.replace("_", "-"))
        if flag is not None and flag.nargs == 0 and flag.dest in by_dest:  # `no-augment = true`: the flag given
            if not isinstance(value, bool):
                raise FERError(f"{path}: {key} = {value!r}: expected true or false")
            settings[flag.dest] = flag.const if value else flag.default
            continue
        action = by_dest.get(key.replace("-", "_"))
        if action is None:
            raise FERError(f"{path}: unknown setting {key!r} (the options of {parser.prog} --help, without the dashes)")
        settings[action.dest] = _recipe_value(path, key, action, value)
    return settings


def _recipe_value(path, key, action, value):
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        return [_recipe_value(path, key, argparse.Action([], dest=action.dest, type=action.type,
                                                         choices=action.choices), v) for v in items]
    if action.nargs == 0:  # an on/off flag
        if not isinstance(value, bool):
            raise FERError(f"{path}: {key} = {value!r}: expected true or false")
        return value
    if isinstance(value, (dict, list)):
        raise FERError(f"{path}: {key}: expected one value, got {value!r}")
    if action.type is None and not isinstance(value, str):  # a name, a path or KEY=VALUE: text, as argv gives it
        raise FERError(f"{path}: {key} = {value!r}: expected text in quotes, e.g. {key} = \"{value}\"")
    if action.type is not None:
        try:
            value = action.type(str(value)) if isinstance(value, (str, int, float)) and not isinstance(value, bool) \
                else action.type(value)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as e:
            raise FERError(f"{path}: {key} = {value!r}: {e}") from None
    if action.choices is not None and value not in action.choices:
        raise FERError(f"{path}: {key} = {value!r}: choose from {', '.join(map(str, action.choices))}")
    return value


DEFAULT_RUN = ("of the finished runs under runs/ and the models bundled in models/pretrained/ (fernet), "
               "the one with the highest recorded validation accuracy")


def add_weights(p, ensemble=False, help=None):
    """--weights RUN_DIR: one run, or with `ensemble` a repeatable option (and folders of runs)."""
    if ensemble:
        p.add_argument("--weights", action="append", metavar="RUN_DIR",
                       help=help or "run folder or .weights.h5; repeat it, or name a folder of run folders "
                                    f"(models/pretrained/ensemble), for an ensemble (default: {DEFAULT_RUN})")
    else:
        p.add_argument("--weights", metavar="RUN_DIR", help=help or f"run folder or .weights.h5 (default: {DEFAULT_RUN})")


def add_data(p, help, required=False):
    """--data CSV: the faces a script reads."""
    p.add_argument("--data", metavar="CSV", required=required, help=help)


def add_usage(p, help="Kaggle fer2013.csv: only rows of this Usage (e.g. PrivateTest)"):
    """--usage: the rows of a Kaggle fer2013.csv to read."""
    p.add_argument("--usage", metavar="USAGE", help=help)
