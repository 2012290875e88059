"""What run folders of earlier versions hold and today's code no longer writes, in one place, so
that it can all be deleted together once no such runs are left."""
import json
import os

from ferkit.errors import FERError
from ferkit.runs.layout import STATE_DIR

# Preprocessing that earlier versions put inside the network (a Gaussian blur against a blurred
# copy of FER2013's training split); a run that used it is a different network from today's.
RETIRED_PREPROCESS = ("blur", "test_blur")


def refuse_retired(info):
    """A one-line FERError for a run trained with preprocessing this version removed."""
    retired = [k for k in RETIRED_PREPROCESS if (info.get("preprocess") or {}).get(k)]
    if retired:
        raise FERError(f"{info.get('run_dir', 'this run')}: trained by an older version of this toolkit "
                       f"(with {' and '.join(retired)} preprocessing, since removed); retrain it")


def backup_and_restore_state(run_dir, epoch):
    """A run begun by an earlier version holds Keras BackupAndRestore's files: its weights count
    when their metadata names the epoch that run.json committed. The path, or None."""
    folder = os.path.join(run_dir, STATE_DIR)
    try:
        with open(os.path.join(folder, "training_metadata.json")) as f:
            matches = json.load(f).get("epoch") == epoch
    except (OSError, ValueError, AttributeError, RecursionError):  # untrusted: any JSON, any depth
        return None
    return os.path.join(folder, "latest.weights.h5") if matches else None


def drop_old_entries(info):
    """Remove run.json entries only earlier versions wrote ("cli_args", a third copy of the command)."""
    info.pop("cli_args", None)
    return info
