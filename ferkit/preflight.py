"""What the scripts that read runs (predict.py, plot_confusion.py, saliency.py, filter_vis.py,
make_report.py) refuse before TensorFlow loads, in about a second: a missing or malformed input CSV, a named
run that does not exist, an output that is one of the inputs (the CSV or a run folder's files),
an output path that cannot be written.

Nothing here imports Keras; once the model is loaded, ferkit.report.evaluate.load_model repeats the
input check for the default run (which only ferkit.runs.load can resolve).
"""
import os

import data
from ferkit.errors import FERError
from ferkit.files import check_outputs
from ferkit.runs.layout import expand_weights, run_files


def check(outputs, csvs=(), weights=(), usage=None, inputs=(), derived=()):
    """Raise FERError for the first problem: `outputs` (paths to write, None entries skipped),
    `csvs` (input CSVs, None skipped), `weights` (--weights arguments, None skipped), `inputs`
    (other files or folders read, checked only against the outputs), `derived` (outputs the user
    did not name, as a .json beside --out: ferkit.files.check_outputs)."""
    csvs = [c for c in csvs if c is not None]
    weights = expand_weights([w for w in weights if w is not None])
    for csv in csvs:
        data.check_csv(csv, usage=usage)
    for w in weights:
        if not os.path.exists(w):
            raise FERError(f"{w}: no such run folder or weights file (--weights)")
    check_outputs(outputs, csvs + list(inputs) + [f for w in weights for f in run_files(w)], derived=derived)
