"""Bad input to the benchmarks and scripts/pack_pixels.py: one `error:` line naming the file or
option, exit 2, no traceback, and nothing an input was overwritten with (tiny synthetic data, no
model loaded, no training)."""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from data import synthetic
from tests.conftest import file_sha256, one_error_line

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import pack_pixels  # noqa: E402
from benchmarks import augment, face_detectors, faces_e2e, load_csv, peer_fer, recipe_ab, train_throughput, video_encode  # noqa: E402
from ferkit import cli  # noqa: E402


@pytest.fixture
def faces(tmp_path):
    x, y = synthetic.make_faces(49, seed=1)
    return synthetic.write_csv(tmp_path / "g.csv", x, y)


def run_script(*args):
    """The script as a user runs it: every line on stderr counts, TensorFlow's included."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------------- 1. pack_pixels.py


def test_pack_refuses_to_write_over_its_input(faces, capsys):
    before = file_sha256(faces)
    assert pack_pixels.main(["pack", str(faces), str(faces)]) == 2
    line = one_error_line(capsys)
    assert str(faces) in line and "is also an input" in line, line
    assert file_sha256(faces) == before


def test_unpack_refuses_to_write_over_its_input_even_through_a_link(faces, tmp_path, capsys):
    pack = tmp_path / "p.pack"
    assert pack_pixels.main(["pack", str(faces), str(pack)]) == 0
    capsys.readouterr()
    before = file_sha256(pack)
    assert pack_pixels.main(["unpack", str(pack), str(pack)]) == 2
    assert str(pack) in one_error_line(capsys)
    os.symlink(pack, tmp_path / "link.pack")
    assert pack_pixels.main(["unpack", str(tmp_path / "link.pack"), str(pack)]) == 2
    assert "is also an input" in one_error_line(capsys)
    assert file_sha256(pack) == before


def test_pack_over_its_input_as_a_script_is_one_line(faces):
    before = file_sha256(faces)
    done = run_script("scripts/pack_pixels.py", "pack", str(faces), str(faces))
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"error: {faces}: is also an input; writing it would destroy it, choose another output path"]
    assert file_sha256(faces) == before


def test_pack_and_unpack_leave_only_their_output(faces, tmp_path):
    # Written atomically: a temporary file beside the output, renamed once complete.
    out = tmp_path / "out"
    assert pack_pixels.main(["pack", str(faces), str(out / "p.pack")]) == 0
    assert pack_pixels.main(["unpack", str(out / "p.pack"), str(out / "back.csv")]) == 0
    assert sorted(os.listdir(out)) == ["back.csv", "p.pack"]


# ---------------------------------------------------------------- 2. load_csv.py


@pytest.mark.parametrize("problem", ["missing", "bad pixel", "folder"])
def test_load_csv_bench_names_the_bad_file(problem, faces, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    os.makedirs(tempfile.tempdir)
    if problem == "missing":
        path, expected = tmp_path / "nope.csv", "no such file"
    elif problem == "folder":
        path, expected = tmp_path, "is a folder"
    else:
        lines = open(faces).read().splitlines()
        lines[3] = lines[3].replace(" ", " x", 1)
        path, expected = tmp_path / "bad.csv", "line 4"
        path.write_text("\n".join(lines) + "\n")
    assert load_csv.main([str(path)]) == 2
    line = one_error_line(capsys)
    assert str(path) in line and expected in line, line
    assert os.listdir(tempfile.tempdir) == []


def test_load_csv_bench_removes_its_cache_folder(faces, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    os.makedirs(tempfile.tempdir)
    cache = os.environ["FER_CACHE_DIR"]
    assert load_csv.main([str(faces)]) == 0
    assert "all three readings identical" in capsys.readouterr().out
    assert os.listdir(tempfile.tempdir) == [] and os.environ["FER_CACHE_DIR"] == cache


# ---------------------------------------------------------------- 3. augment.py


@pytest.mark.parametrize("value", ["0", "-3", "x"])
def test_augment_refuses_a_batch_size_below_one(value, faces, capsys):
    assert augment.main(["--train-csv", str(faces), "--batch-size", value]) == 2
    assert "--batch-size" in one_error_line(capsys)


def test_augment_refuses_a_batch_larger_than_the_images(faces, capsys):
    assert augment.main(["--train-csv", str(faces), "--batch-size", "128"]) == 2
    line = one_error_line(capsys)
    assert "--batch-size 128" in line and "49 images" in line and "g.csv" in line, line
    assert augment.main(["--train-csv", str(faces), "--limit", "5", "--batch-size", "10"]) == 2
    assert "5 images" in one_error_line(capsys)


def test_augment_batch_too_large_as_a_script_is_one_line_before_keras(faces):
    done = run_script("benchmarks/augment.py", "--train-csv", str(faces), "--batch-size", "128")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "--batch-size 128" in lines[0], done.stderr[-2000:]


# ---------------------------------------------------------------- 4. recipe_ab.py


def fake_run(folder, history):
    """A run folder: the bundled model's run.json and the given history.csv text."""
    os.makedirs(folder)
    shutil.copy(os.path.join(ROOT, "models", "pretrained", "fernet", "run.json"), folder)
    with open(os.path.join(folder, "history.csv"), "w") as f:
        f.write(history)
    return folder


GOOD = "epoch,accuracy,loss,val_accuracy,val_loss,lr,seconds\n1,0.4,1.5,0.35,1.6,0.001,30\n2,0.5,1.3,0.45,1.4,0.001,60\n"


def test_recipe_ab_names_a_path_without_runs(tmp_path, capsys):
    for path, expected in ((tmp_path / "nonexistent", "no such folder"), (tmp_path, "no run folders found")):
        assert recipe_ab.main([str(path)]) == 2
        line = one_error_line(capsys)
        assert str(path) in line and expected in line, line


def test_recipe_ab_names_a_history_without_val_accuracy(tmp_path, capsys):
    fake_run(tmp_path / "ab" / "a", GOOD)
    bad = fake_run(tmp_path / "ab" / "b", "epoch,accuracy,loss,seconds\n1,0.4,1.5,30\n")
    assert recipe_ab.main([str(tmp_path / "ab")]) == 2
    line = one_error_line(capsys)
    assert os.path.join(bad, "history.csv") in line and "val_accuracy" in line, line


def test_recipe_ab_names_the_line_of_a_bad_value(tmp_path, capsys):
    run = fake_run(tmp_path / "a", GOOD + "3,0.6,1.2,oops,1.3,0.001,90\n")
    assert recipe_ab.main([str(run)]) == 2
    assert f"{os.path.join(run, 'history.csv')}, line 4: val_accuracy 'oops'" in one_error_line(capsys)


def test_recipe_ab_prints_a_good_run(tmp_path, capsys):
    run = fake_run(tmp_path / "a", GOOD)
    assert recipe_ab.main([str(run)]) == 0
    out = capsys.readouterr().out
    assert "45.00% (  2)" in out, out


# ---------------------------------------------------------------- 5. face_detectors.py


def test_face_detectors_measure_names_the_missing_folder(tmp_path, capsys):
    assert face_detectors.main(["measure", str(tmp_path / "nonexist")]) == 2
    assert os.path.join(str(tmp_path / "nonexist"), "truth.json") in one_error_line(capsys)


# ---------------------------------------------------------------- 6. --size WxH


@pytest.mark.parametrize("bench", [video_encode, faces_e2e])
@pytest.mark.parametrize("size", ["abc", "640x", "x480", "0x480", "640x480x3"])
def test_a_bad_size_is_a_usage_error(bench, size, capsys):
    assert bench.main(["--size", size]) == 2
    line = one_error_line(capsys)
    assert "--size" in line and size in line, line


def test_a_size_is_width_then_height():
    assert cli.frame_size("1280X720") == (1280, 720)
    assert cli.frame_size(" 640 x 480 ") == (640, 480)


# ---------------------------------------------------------------- 7. peer_fer.py --help


def test_peer_fer_help_shows_each_default_once_and_the_real_one():
    text = " ".join(peer_fer.build_parser().format_help().split())
    assert "(default: None)" not in text and "newest run" not in text
    options = text[text.index("options:"):]
    weights = options[options.index("--weights RUN_DIR"):options.index("--ensemble DIR")]
    assert weights.count("default") == 1 and "highest recorded validation accuracy" in weights, weights


# ---------------------------------------------------------------- 8. train_throughput.py


@pytest.mark.parametrize("option", ["--steps", "--batch-size", "--infer-batch-size", "--steps-per-execution"])
def test_train_throughput_refuses_zero(option, capsys):
    assert train_throughput.main([option, "0"]) == 2
    assert option in one_error_line(capsys)


def test_distill_cost_names_a_missing_teacher(tmp_path, capsys):
    from benchmarks import distill_cost

    assert distill_cost.main([str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope'}: no such run folder or weights file\n"
