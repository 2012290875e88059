"""The command line of train_cnn.py and train_dnn.py: the parser, in argument groups, and every
check that needs no TensorFlow (option ranges, input files, the --out folder, and for --resume
the run's saved settings, read from its run.json).

Nothing here imports TensorFlow, so `--help` and a bad option or a missing file answer at once;
main() loads the training routine (ferkit.train.loop, which imports Keras) only once they all passed.
"""
import ast
import math
import os
import shlex
import sys

from ferkit import files as outputs
from ferkit.cli import Parser, add_usage, run_main
from ferkit.errors import FERError
from ferkit.runs.layout import OUTPUTS, RUN_FILE, RUNS_DIR, newest_unfinished, read_info
from ferkit.backend import configure_tensorflow



def build_parser(prog, description, model="cnn3", choose_model=True, model_args=None):
    """The training parser. `model`: the network trained (the default of --model when
    `choose_model`, else the only one). `model_args(group)` adds a script's own model options."""
    p = Parser(prog=prog, description=description, config=True)
    p.add_argument("train_csv", help="labelled CSV (label,feature or Kaggle emotion,pixels,Usage), plain or .gz")
    _model_group(p.add_argument_group("model"), model, choose_model, model_args)
    if not choose_model:
        p.set_defaults(model=model)
    _data_group(p.add_argument_group("data and validation"))
    _optimization_group(p.add_argument_group("optimization and schedule"))
    _regularization_group(p.add_argument_group("regularization and augmentation"))
    _run_group(p.add_argument_group("run folder and output"))
    return p


def _model_group(g, model, choose_model, model_args):
    if choose_model:
        g.add_argument("--model", default=model, help="network from the models registry (cnn1, cnn2, cnn3, fernet, fervgg)")
    g.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="model option, e.g. --option width=24 (repeatable; see models/)")
    g.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="no per-image standardization inside the model")
    if model_args:
        model_args(g)


def _data_group(g):
    val = g.add_mutually_exclusive_group()
    val.add_argument("--val", metavar="CSV", help="labelled validation CSV (e.g. public_test.csv.gz)")
    val.add_argument("--val-split", type=float, default=0.1, metavar="FRACTION",
                     help="stratified fraction of TRAIN_CSV held out for validation when --val is not given; 0 holds "
                          "none out and keeps the last epoch's weights (the final fit of a recipe chosen on a split)")
    g.add_argument("--split-seed", type=int, metavar="N",
                   help="seed of the --val-split draw (and of --train-limit's) alone (default: --seed); runs with "
                        "other --seed values and one --split-seed hold out the same faces, so their ensemble can be "
                        "chosen on them")
    g.add_argument("--train-limit", type=int, metavar="N",
                   help="train on a stratified N of the training faces, drawn after the validation faces are set "
                        "apart (so they stay the same): quick experiments and learning curves")
    add_usage(g, help="Kaggle fer2013.csv: train on the rows of this Usage (e.g. Training)")


def _optimization_group(g):
    g.add_argument("--epochs", type=int, default=30, metavar="N",
                   help="epochs to train (an upper bound with --time-budget)")
    g.add_argument("--batch-size", type=int, default=64, metavar="N", help="images per step (per device with --distribute)")
    g.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    g.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default="adam",
                   help="sgd is Nesterov with momentum 0.9")
    g.add_argument("--weight-decay", type=float, default=0.0, metavar="X", help="decoupled weight decay (adamw, sgd; not adam)")
    g.add_argument("--schedule", choices=["cosine", "plateau", "constant"], default="cosine",
                   help="cosine: warm-up then cosine decay to 0 over the run; plateau: halve on a stalled val loss")
    g.add_argument("--warmup", type=float, default=0.02, metavar="FRACTION",
                   help="warm-up, as a fraction of the run (cosine)")
    g.add_argument("--time-budget", type=float, metavar="MINUTES",
                   help="train for this much wall time: the cosine schedule runs over time, not epochs, "
                        "and training stops when it is spent (--epochs is then an upper bound)")
    g.add_argument("--mixed-precision", action="store_true", help="mixed_bfloat16 (for GPUs that have it)")
    g.add_argument("--distribute", action="store_true",
                   help="data-parallel over all local devices (JAX: keras.distribution.DataParallel; "
                        "TensorFlow: MirroredStrategy)")


def _regularization_group(g):
    g.add_argument("--no-augment", dest="augment", action="store_false",
                   help="no data augmentation (rotation, shift, zoom, flip)")
    g.add_argument("--erasing", type=float, default=0.0, metavar="P",
                   help="random erasing probability on top of the augmentation")
    g.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                   help="MixUp: blend pairs of training faces and their labels, lambda ~ Beta(ALPHA, ALPHA), "
                        "e.g. 0.2 (data/mixing.py); 0 turns it off")
    g.add_argument("--cutmix", type=float, default=0.0, metavar="ALPHA",
                   help="CutMix: paste a box of another face, labels weighted by its area, e.g. 1.0; "
                        "with --mixup too, each batch takes one of the two")
    g.add_argument("--label-smoothing", type=float, default=0.0, metavar="X", help="label smoothing, below 1")
    g.add_argument("--teacher", action="append", default=[], metavar="RUN_DIR",
                   help="distil from this trained run's class probabilities (repeatable: their mean); "
                        "computed once on the training faces and cached in the run folder as teacher_probs.npy, "
                        "which may itself be given as a teacher to a run on the same data and held-out split "
                        "(--val-split, and --split-seed or --seed)")
    g.add_argument("--teacher-mode", choices=("cached", "online"), default="cached",
                   help="cached: the teachers' probabilities on the unaugmented faces, computed once; online: the "
                        "teachers run on every batch, on the augmented and mixed faces the student sees "
                        "(a teacher forward pass per step; needs the teachers' run folders)")
    g.add_argument("--teacher-tta", action="store_true",
                   help="the teacher's probabilities averaged over the 10 TTA views (10x the one-off cost; cached mode)")
    g.add_argument("--distill-temperature", type=float, default=4.0, metavar="T",
                   help="softmax temperature of the teacher term (with --teacher)")
    g.add_argument("--distill-weight", type=float, default=0.5, metavar="W",
                   help="weight of the teacher term; 1 - W goes to the labels (with --teacher)")
    g.add_argument("--ema", type=float, default=0.0, metavar="MOMENTUM",
                   help="evaluate and keep an exponential moving average of the weights (Polyak averaging, "
                        "e.g. 0.999); 0 keeps the raw weights")


def _run_group(g):
    g.add_argument("--out", metavar="DIR", help="run folder (default: runs/<model>-<time>/)")
    g.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out (without --out: the newest unfinished run) "
                        "from its last finished epoch, with its saved settings")
    g.add_argument("--seed", type=int, default=1337, metavar="N", help="seed of every random stream")
    g.add_argument("--quiet", action="store_true", help="no per-batch progress bar (one line per epoch)")


def parse_options(pairs):
    """--option k=v pairs -> dict, values read as Python literals when they are ones."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise FERError(f"--option {pair!r}: expected KEY=VALUE")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def _finite(v):
    return isinstance(v, (int, float)) and math.isfinite(v)


# (option, test, what a valid value is); checked on the command line and again on a resumed run's settings.
_RULES = [
    ("epochs", lambda v: v >= 1, "must be at least 1"),
    ("batch_size", lambda v: v >= 1, "must be at least 1"),
    ("lr", lambda v: _finite(v) and v > 0, "must be a finite number above 0"),
    ("weight_decay", lambda v: _finite(v) and v >= 0, "must be a finite number, at least 0"),
    ("warmup", lambda v: 0 <= v < 1, "must be at least 0 and below 1"),
    ("time_budget", lambda v: v is None or (_finite(v) and v > 0), "must be a finite number of minutes above 0"),
    ("label_smoothing", lambda v: 0 <= v < 1, "must be at least 0 and below 1"),
    ("erasing", lambda v: 0 <= v <= 1, "must be between 0 and 1"),
    ("mixup", lambda v: _finite(v) and v >= 0, "must be a finite number, at least 0 (0 turns it off)"),
    ("cutmix", lambda v: _finite(v) and v >= 0, "must be a finite number, at least 0 (0 turns it off)"),
    ("ema", lambda v: 0 <= v < 1, "must be at least 0 and below 1"),
    ("distill_temperature", lambda v: _finite(v) and v > 0, "must be a finite number above 0"),
    ("distill_weight", lambda v: 0 <= v <= 1, "must be between 0 and 1"),
    ("seed", lambda v: 0 <= v < 2**32, "must be a whole number from 0 to 4294967295 (NumPy's seed range)"),
    ("train_limit", lambda v: v is None or v >= 2 * 7, "must be at least 14 (two faces of each class)"),
    ("split_seed", lambda v: v is None or 0 <= v < 2**32,
     "must be a whole number from 0 to 4294967295 (NumPy's seed range)"),
]


def check_args(args):
    """Raise FERError for the first option out of its range (NaN and infinity included)."""
    rules = list(_RULES)
    if not args.val:
        rules.append(("val_split", lambda v: 0 <= v < 1, "must be at least 0 (none held out) and below 1"))
    for name, valid, wording in rules:
        value = getattr(args, name)
        try:
            ok = valid(value)
        except TypeError:  # e.g. a hand-edited run.json resumed
            ok = False
        if not ok:
            raise FERError(f"--{name.replace('_', '-')} {value}: {wording}")
    if args.weight_decay and args.optimizer == "adam":  # Keras' Adam would train without it, silently
        raise FERError(f"--weight-decay {args.weight_decay} with --optimizer adam: Adam has no weight decay here; "
                       "use --optimizer adamw (Adam with decoupled weight decay) or sgd")
    if getattr(args, "teacher_mode", "cached") == "online":
        _check_online_teachers(args)
    full_fit = not args.val and args.val_split == 0  # every face trains; none is held out
    if full_fit and args.schedule == "plateau":
        raise FERError("--schedule plateau with --val-split 0: the plateau schedule follows the validation loss, "
                       "and no faces are held out; use --schedule cosine or a --val-split above 0")
    if getattr(args, "split_seed", None) is not None and not getattr(args, "train_limit", None) and (full_fit or args.val):
        # no split is drawn: it would be ignored (--train-limit draws with it)
        why = ("a validation file is given, so no split is drawn from the training file" if args.val
               else "no faces are held out, so no split is drawn")
        raise FERError(f"--split-seed {args.split_seed} with {f'--val {args.val}' if args.val else '--val-split 0'}: {why}")


def _check_online_teachers(args):
    if not args.teacher:
        raise FERError("--teacher-mode online: no --teacher given")
    if args.teacher_tta:
        raise FERError("--teacher-tta with --teacher-mode online: online teachers answer on the augmented faces "
                       "themselves; TTA applies to cached probabilities")
    for path in args.teacher:
        if str(path).endswith(".npy"):
            raise FERError(f"--teacher {path}: --teacher-mode online runs the teachers on every batch, so it needs "
                           "their run folders, not cached probabilities")


def check_out(args):
    """--out of a new run: a new or empty folder (hidden files aside), never one that holds a run or
    anything else: a run folder is the run's alone."""
    if args.out is None:
        return
    outputs.check_folder(args.out, OUTPUTS, marker=RUN_FILE)
    if os.path.exists(os.path.join(args.out, RUN_FILE)):
        raise FERError(f"{args.out}: already holds a run; use --resume to continue it or choose another --out")
    if os.path.isdir(args.out) and [n for n in os.listdir(args.out) if not n.startswith(".")]:
        raise FERError(f"{args.out}: not a run folder (no {RUN_FILE}) and not empty; choose a new or empty folder")


def resume(args):
    """--resume: (run folder, its run.json, args with the run's saved settings, its model options).
    The saved settings win (a resumed run is the same run), except where the run is and how it
    prints, and a --val named now."""
    run_dir = args.out or newest_unfinished()
    if run_dir is None:
        raise FERError(f"--resume: no unfinished run under {RUNS_DIR}/; name one with --out DIR")
    if not os.path.isfile(os.path.join(run_dir, RUN_FILE)):
        raise FERError(f"{run_dir}: not a run folder (no {RUN_FILE}); nothing to resume")
    info = read_info(run_dir)
    if info.get("status") == "done":
        raise FERError(f"{run_dir}: this run already finished; nothing to resume")
    given_val = args.val
    for key, value in (info.get("args") or {}).items():
        if key not in ("resume", "out", "train_csv", "quiet"):
            setattr(args, key, value)
    args.val, args.out = given_val or args.val, run_dir
    return run_dir, info, args, info.get("options") or {}


def main(argv, prog, description, model="cnn3", choose_model=True, model_args=None, options_from_args=None):
    """Entry point of the train_*.py scripts. `model_args(group)` adds a script's options to the model
    group, `options_from_args(args)` turns them into model options."""
    configure_tensorflow()  # before TensorFlow loads
    parser = build_parser(prog, description, model, choose_model, model_args)

    def run():
        args = parser.parse_args(argv)
        options = parse_options(args.option)
        if options_from_args:
            options.update(options_from_args(args))
        check_args(args)
        resumed = None
        if args.resume:
            resumed = resume(args)
            check_args(args)  # the saved settings, as strictly as the command line's
            options = resumed[3]
        from data import check_file  # here: pandas loads only once the options passed

        for path in (args.train_csv, args.val):
            if path is not None:
                check_file(path)
        for path in args.teacher:
            if not os.path.exists(path):
                raise FERError(f"--teacher {path}: no such run folder or weights file")
        if not args.resume:
            check_out(args)
        # Imported only now: TensorFlow takes seconds to load, and the checks above answer without it.
        from ferkit.train import loop as train

        command = shlex.join([prog, *(sys.argv[1:] if argv is None else argv)])
        return train.train(args, options, prog=prog, command=command, resumed=resumed and resumed[:2])

    return run_main(run)
