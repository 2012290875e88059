"""What the scripts that read runs (predict.py, plot_confusion.py, saliency.py, filter_vis.py,
make_report.py) refuse before TensorFlow loads, in about a second: a missing or malformed input CSV, a named
run that does not exist, an output that is one of the inputs (the CSV or a run folder's files),
an output path that cannot be written; for predict.py, which reads its CSV only after the model has
loaded, the first rows too (check_first_rows).

Nothing here imports Keras; once the model is loaded, ferkit.report.evaluate.load_model repeats the
input check for the default run (which only ferkit.runs.load can resolve).
"""
import os

from ferkit.errors import FERError
from ferkit.files import check_outputs
from ferkit.runs.layout import expand_weights, run_files


def check(outputs, csvs=(), weights=(), usage=None, inputs=(), derived=()):
    """Raise FERError for the first problem: `outputs` (paths to write, None entries skipped),
    `csvs` (input CSVs, None skipped), `weights` (--weights arguments, None skipped), `inputs`
    (other files or folders read, checked only against the outputs), `derived` (outputs the user
    did not name, as a .json beside --out: ferkit.files.check_outputs)."""
    import data

    csvs = [c for c in csvs if c is not None]
    weights = expand_weights([w for w in weights if w is not None])
    for csv in csvs:
        data.check_csv(csv, usage=usage)
    for w in weights:
        if not os.path.exists(w):
            raise FERError(f"{w}: no such run folder or weights file (--weights)")
    check_outputs(outputs, csvs + list(inputs) + [f for w in weights for f in run_files(w)], derived=derived)


FIRST_ROWS = 100  # rows check_first_rows reads: about 1 MB, a few milliseconds


def check_first_rows(path, usage=None, rows=FIRST_ROWS):
    """After check(): parse the first `rows` rows of a CSV as the loader will (data.iter_csv), so
    that a bad value near the top is refused before a model loads, not after. Not with `usage`:
    the first row of that Usage may lie anywhere in the file."""
    import data

    if usage is None:
        chunks = data.iter_csv(path, chunk_rows=rows)
        try:
            next(chunks, None)
        finally:
            chunks.close()
