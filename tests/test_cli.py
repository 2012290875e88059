"""Every script and benchmark answers a bad option with one `error:` line and exit 2, before it
loads a model or reads data (issue 26: one parser class everywhere)."""
import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "*.py"))
                 + glob.glob(os.path.join(ROOT, "benchmarks", "*.py")) + glob.glob(os.path.join(ROOT, "scripts", "*.py")))


def test_the_scripts_are_found():
    assert {"train_cnn.py", "predict.py", "make_report.py", "benchmarks/face_detectors.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bad_option_is_one_line(script):
    done = subprocess.run([sys.executable, script, "--no-such-option"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (script, done.returncode, done.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error:"), (script, done.stderr[-2000:])
    assert "--no-such-option" in lines[0] or "required" in lines[0], lines[0]
