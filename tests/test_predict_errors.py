"""predict.py never destroys a file, refuses bad input before the model loads, and says every
problem in one line with exit status 2, leaving no output file behind."""
import errno
import os
import shutil
import subprocess
import sys

import pytest

import predict
from ferkit import files as outputs
from tests.conftest import ROOT


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def snapshot(folder):
    return {p: open(p, "rb").read() for p in outputs.folder_files(folder)}


def test_predict_refuses_to_write_over_its_input_csv(synthetic_csvs, tmp_path, capsys):
    # Data loss on the old code: `predict.py X.csv X.csv` replaced the input with predictions.
    src = tmp_path / "x.csv"
    shutil.copy(synthetic_csvs["test"], src)
    before = src.read_bytes()
    assert predict.main([str(src), str(src)]) == 2
    assert f"{src}: is also an input" in one_error_line(capsys)
    assert src.read_bytes() == before
    os.symlink(src, tmp_path / "alias.csv")  # the same file by another name
    assert predict.main([str(src), str(tmp_path / "alias.csv")]) == 2
    assert "is also an input" in one_error_line(capsys)
    assert src.read_bytes() == before


@pytest.mark.parametrize("name", ["best.weights.h5", "run.json", "history.csv"])
def test_predict_refuses_to_write_over_the_runs_files(trained_run, synthetic_csvs, tmp_path, capsys, name):
    # Data loss on the old code: `predict.py t.csv RUN/best.weights.h5 --weights RUN` wrote CSV text
    # over the model's weights.
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = snapshot(run)
    for weights in (run, run / "best.weights.h5"):
        assert predict.main([str(synthetic_csvs["test"]), str(run / name), "--weights", str(weights)]) == 2
        assert f"{run / name}: is also an input" in one_error_line(capsys)
    assert snapshot(run) == before


def test_predict_refuses_to_write_over_the_default_runs_files(trained_run, synthetic_csvs, tmp_path,
                                                               monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(trained_run, tmp_path / "runs" / "only")
    before = snapshot(tmp_path / "runs")
    assert predict.main([str(synthetic_csvs["test"]), "runs/only/history.csv"]) == 2
    assert "runs/only/history.csv: is also an input" in one_error_line(capsys)
    assert snapshot(tmp_path / "runs") == before


def test_a_missing_or_unknown_input_fails_before_tensorflow_loads(tmp_path):
    # In a fresh interpreter: the error must come before TensorFlow/Keras are imported (a second,
    # not the 10-20 s of loading them and the model).
    (tmp_path / "bad.csv").write_text("image,label\n1,2\n")
    code = ("import sys, predict\n"
            f"rc1 = predict.main([{str(tmp_path / 'missing.csv')!r}, {str(tmp_path / 'o.csv')!r}])\n"
            f"rc2 = predict.main([{str(tmp_path / 'bad.csv')!r}, {str(tmp_path / 'o.csv')!r}])\n"
            f"rc3 = predict.main([{str(tmp_path / 'bad.csv')!r}, {str(tmp_path / 'o.csv')!r}, '--weights', 'nope'])\n"
            "loaded = [m for m in ('tensorflow', 'keras', 'torch') if m in sys.modules]\n"
            "print(rc1, rc2, rc3, loaded)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "2 2 2 []", done.stderr
    assert done.stderr.splitlines() == [
        f"error: {tmp_path / 'missing.csv'}: no such file",
        f"error: {tmp_path / 'bad.csv'}, line 1: unknown header 'image,label' (expected one of: "
        "label,feature; id,feature; emotion,pixels,Usage; emotion,pixels; pixels; feature)",
        f"error: {tmp_path / 'bad.csv'}, line 1: unknown header 'image,label' (expected one of: "
        "label,feature; id,feature; emotion,pixels,Usage; emotion,pixels; pixels; feature)"]
    assert not (tmp_path / "o.csv").exists()


def test_a_missing_weights_argument_is_named_before_the_model_loads(synthetic_csvs, tmp_path, capsys):
    assert predict.main([str(synthetic_csvs["test"]), str(tmp_path / "o.csv"), "--weights", "no/such/run"]) == 2
    assert one_error_line(capsys) == "error: no/such/run: no such run folder or weights file (--weights)"


@pytest.mark.parametrize("option", ["--batch-size", "--chunk-rows"])
@pytest.mark.parametrize("value", ["0", "-3", "abc"])
def test_sizes_must_be_positive_integers(synthetic_csvs, tmp_path, capsys, option, value):
    assert predict.main([str(synthetic_csvs["test"]), str(tmp_path / "o.csv"), option, value]) == 2
    assert one_error_line(capsys).startswith(f"error: argument {option}: ")
    assert not (tmp_path / "o.csv").exists()


def test_an_output_that_is_a_folder_or_under_a_file_is_one_line(trained_run, synthetic_csvs, tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    assert predict.main([str(synthetic_csvs["test"]), str(tmp_path / "folder"), "--weights", str(trained_run)]) == 2
    assert one_error_line(capsys) == f"error: {tmp_path / 'folder'}: is a folder, expected a file path"
    assert os.listdir(tmp_path / "folder") == []
    (tmp_path / "file").write_text("mine\n")
    assert predict.main([str(synthetic_csvs["test"]), str(tmp_path / "file" / "o.csv"),
                         "--weights", str(trained_run)]) == 2
    assert "is a file, not a folder" in one_error_line(capsys)
    assert (tmp_path / "file").read_text() == "mine\n"


def test_an_unwritable_output_folder_is_one_line(trained_run, synthetic_csvs, tmp_path, monkeypatch, capsys):
    # chmod does not stop root (CI containers): answer the permission check as for another user.
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if os.fspath(p) == str(locked) else real_access(p, mode))
    assert predict.main([str(synthetic_csvs["test"]), str(locked / "o.csv"), "--weights", str(trained_run)]) == 2
    assert one_error_line(capsys) == f"error: {locked / 'o.csv'}: cannot write (permission denied in {locked})"
    assert os.listdir(locked) == []


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(trained_run, synthetic_csvs, tmp_path, monkeypatch,
                                                            capsys):
    out = tmp_path / "o.csv"
    out.write_text("previous predictions\n")

    class FullDisk:
        """A file whose disk fills after the first write, as ENOSPC arrives mid-file."""
        def __init__(self, f):
            self.f, self.writes = f, 0

        def write(self, text):
            self.writes += 1
            if self.writes > 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.f.write(text)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(outputs, "open", lambda *a, **k: FullDisk(open(*a, **k)), raising=False)
    assert predict.main([str(synthetic_csvs["test"]), str(out), "--weights", str(trained_run),
                         "--chunk-rows", "100"]) == 2
    assert one_error_line(capsys) == f"error: {out}: cannot write (no space left on the device; nothing was written)"
    assert out.read_text() == "previous predictions\n"
    assert sorted(os.listdir(tmp_path)) == ["o.csv"]  # no temporary file left


def test_ids_pass_through_predict_exactly_as_written(trained_run, synthetic_csvs, tmp_path, capsys):
    lines = open(synthetic_csvs["test"]).read().splitlines()[:4]
    ids = ["1234567890123456789012345", "1e3", "007"]
    rows = [f"{i},{r.split(',', 1)[1]}" for i, r in zip(ids, lines[1:])]  # the pixels of the first faces
    (tmp_path / "t.csv").write_text("\n".join([lines[0]] + rows) + "\n")
    assert predict.main([str(tmp_path / "t.csv"), str(tmp_path / "o.csv"), "--weights", str(trained_run)]) == 0
    assert [r.split(",")[0] for r in (tmp_path / "o.csv").read_text().splitlines()[1:]] == ids


def _edited(src, dst, line, old, new):
    """A copy of the CSV `src` with bytes `old` replaced by `new` in (1-based) line `line`."""
    lines = open(src, "rb").read().split(b"\n")
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    dst.write_bytes(b"\n".join(lines))
    return dst


def test_bad_first_rows_and_unwritable_outputs_fail_before_tensorflow_loads(synthetic_csvs, tmp_path):
    # The audit: each of these printed the model line first and failed only after it had loaded.
    test = synthetic_csvs["test"]
    lines = open(test).read().split("\n")
    row_id, pixels = lines[1].split(",")
    bad_pixel = tmp_path / "bad_pixel.csv"
    bad_pixel.write_text("\n".join([lines[0], f"{row_id},{' '.join(pixels.split()[:5] + ['abc'] + pixels.split()[6:])}"]
                                   + lines[2:]))
    latin1 = _edited(test, tmp_path / "latin1.csv", 7, b"1005,", b"1005\xe9,")
    cases = [([str(bad_pixel), str(tmp_path / "o.csv")], f"{bad_pixel}, line 2: pixel 6 'abc' is not a number"),
             ([str(latin1), str(tmp_path / "o.csv")],
              f"{latin1}, line 7: not UTF-8 text (byte 0xe9 at byte 5 of the line); save the CSV as UTF-8"),
             ([str(test), str(tmp_path / "newdir") + "/"],
              f"{tmp_path / 'newdir'}/: names a folder (it ends in '/'); give a file name")]
    if os.path.isdir("/proc/self"):
        cases.append(([str(test), "/proc/x.csv"], "/proc/x.csv: cannot write ("))
    code = ("import sys, predict\n"
            f"rcs = [predict.main(argv) for argv in {[argv for argv, _ in cases]!r}]\n"
            "loaded = [m for m in ('tensorflow', 'keras', 'torch') if m in sys.modules]\n"
            "print(rcs, loaded)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == f"{[2] * len(cases)} []", done.stderr
    err = done.stderr.splitlines()
    assert len(err) == len(cases), err
    for line, (_, expected) in zip(err, cases):
        assert line.startswith("error: " + expected), (line, expected)
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "newdir").exists()


def test_the_first_rows_check_reads_what_the_loader_reads(tmp_path):
    # Only the first rows are parsed early; with --usage none is (the rows of another Usage, which
    # the loader skips unread, may come first), so a file the loader accepts is never refused early.
    import data
    from data import synthetic
    from ferkit import preflight
    from ferkit.errors import FERError

    x, y = synthetic.make_faces(3, seed=1)
    rows = [f"{label},{' '.join(map(str, img.ravel()))}" for img, label in zip(x, y)]
    kaggle = tmp_path / "kaggle.csv"
    kaggle.write_text("emotion,pixels,Usage\n" + f"{y[0]},1 2 abc,Training\n"
                      + "".join(f"{r},PublicTest\n" for r in rows))
    preflight.check_first_rows(str(kaggle), usage="PublicTest")
    assert len(data.load_csv(str(kaggle), usage="PublicTest")) == 3
    with pytest.raises(FERError, match=r"kaggle\.csv, line 2: 3 pixels"):
        preflight.check_first_rows(str(kaggle))
    late = tmp_path / "late.csv"  # a bad row past the first rows is left to the loader
    late.write_text("label,feature\n" + "\n".join(rows * 40) + "\n0,1 2 abc\n")
    preflight.check_first_rows(str(late), rows=100)
    with pytest.raises(FERError, match=r"late\.csv, line 122: 3 pixels"):
        data.load_csv(str(late))
