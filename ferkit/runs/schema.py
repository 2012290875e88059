"""run.json as untrusted input: a run folder may come from someone else, so what its run.json says
is checked here, in one place, before anything is read, built or written because of it.

    info = validate(json_text_loaded, path, run_dir)   # layout.read_info calls it; FERError if bad

- size and nesting: at most ferkit.limits.MAX_RUN_JSON_BYTES and MAX_JSON_DEPTH levels (read_info);
- types and bounds of every entry a loader uses (RUN_SCHEMA, JSON Schema via the jsonschema
  package): `model` a short name, `options` flat scalars or lists of small integers, `augment`
  and `preprocess` objects, `weights_sha256` 64 hex digits, counts and accuracies in range;
  the model's own option values and bounds are checked by models.check_options before building;
- `weights` stays inside the run folder: a relative path without `..`, which (symlinks followed)
  resolves to a file in the folder (weights_path).
"""
import os

import jsonschema

from ferkit.errors import FERError
from ferkit.limits import MAX_JSON_DEPTH

_SCALAR = {"type": ["boolean", "number", "string", "null"], "maxLength": 256}
RUN_SCHEMA = {
    "type": "object",
    "required": ["model"],
    "properties": {
        "model": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
        "options": {"type": "object", "maxProperties": 64, "additionalProperties": {
            "anyOf": [_SCALAR, {"type": "array", "maxItems": 16, "items": {"type": "integer"}}]}},
        "augment": {"type": ["null", "boolean", "object"], "maxProperties": 64, "additionalProperties": _SCALAR},
        "preprocess": {"type": ["null", "object"], "maxProperties": 64, "additionalProperties": _SCALAR},
        "weights": {"type": "string", "minLength": 1, "maxLength": 255},
        "weights_sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
        "val_accuracy": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "val_loss": {"type": ["number", "null"]},
        "epochs_done": {"type": "integer", "minimum": 0},
        "best_epoch": {"type": "integer", "minimum": 0},
        "train_seconds": {"type": "number", "minimum": 0},
        "status": {"type": "string", "maxLength": 64},
        "class_names": {"type": "array", "maxItems": 64, "items": {"type": "string", "maxLength": 64}},
        "args": {"type": "object"},
        "input": {"type": "object"},
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(RUN_SCHEMA)


def depth(obj):
    """Nesting depth of a loaded JSON value (iterative: any depth is measured without recursion)."""
    deepest, todo = 0, [(obj, 1)]
    while todo:
        value, d = todo.pop()
        deepest = max(deepest, d)
        if isinstance(value, dict):
            todo += [(v, d + 1) for v in value.values()]
        elif isinstance(value, list):
            todo += [(v, d + 1) for v in value]
    return deepest


def validate(info, path):
    """`info` (run.json loaded from `path`) if it fits RUN_SCHEMA, else a one-line FERError naming
    the entry and what it should be."""
    if not isinstance(info, dict):
        raise FERError(f"{path}: expected a JSON object, got {type(info).__name__}")
    if depth(info) > MAX_JSON_DEPTH:
        raise FERError(f"{path}: nested more than {MAX_JSON_DEPTH} levels deep; not a run.json of this toolkit")
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(info))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        value = repr(error.instance)
        value = value if len(value) <= 60 else value[:57] + "..."
        raise FERError(f"{path}: {where} = {value}: {_expected(error)}")
    return info


def _expected(error):
    """jsonschema's message, in one short line."""
    if error.validator == "type":
        kinds = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return f"expected {' or '.join(kinds)}"
    if error.validator == "required":
        return error.message.splitlines()[0]
    return f"out of bounds ({error.validator} {error.validator_value!r:.60})"


def inside(run_dir, path):
    """Refuse `path` (a file of the run folder) when, symlinks followed, it lies outside `run_dir`."""
    real, home = os.path.realpath(path), os.path.realpath(run_dir)
    if os.path.commonpath([real, home]) != home:
        raise FERError(f"{path}: leads outside the run folder ({real}); refused")
    return path


def weights_path(run_dir, info, default):
    """The weights file run.json names (`default` when it names none), refused unless it lies
    inside `run_dir`: a relative path without `..`, and, symlinks followed, still inside."""
    name = info.get("weights", default)
    where = os.path.join(run_dir, "run.json")
    if not isinstance(name, str) or not name:
        raise FERError(f"{where}: weights = {name!r:.60}: expected a file name")
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name) or ".." in parts or "\0" in name:
        raise FERError(f"{where}: weights = {name!r:.60}: must name a file inside the run folder")
    path = os.path.join(run_dir, name)
    try:
        return inside(run_dir, path)
    except FERError as e:
        raise FERError(f"{where}: weights = {name!r:.60}: {str(e).split(': ', 1)[1]}") from None
