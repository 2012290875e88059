"""ferkit.files: outputs never replace an input, never appear half-written, and OS errors are
one line naming the path. No TensorFlow here: these checks run before it loads."""
import errno
import os

import pytest

from ferkit import files as outputs
from ferkit.errors import FERError


def _write(path, text="keep me\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_output_that_is_an_input_is_refused(tmp_path):
    src = _write(tmp_path / "x.csv")
    with pytest.raises(FERError, match=r"x\.csv: is also an input"):
        outputs.check_outputs([str(src)], [str(src)])
    # the same file under another name: a relative path, a symlink, a hard link
    os.symlink(src, tmp_path / "link.csv")
    os.link(src, tmp_path / "hard.csv")
    for alias in (tmp_path / "link.csv", tmp_path / "hard.csv", tmp_path / "sub" / ".." / "x.csv"):
        with pytest.raises(FERError, match="is also an input"):
            outputs.check_outputs([str(alias)], [str(src)])
    assert src.read_text() == "keep me\n"


def test_a_folder_input_stands_for_every_file_in_it(tmp_path):
    run = tmp_path / "run"
    for name in ("best.weights.h5", "run.json", "history.csv", "backup/state.json"):
        _write(run / name)
    assert sorted(os.path.relpath(p, run) for p in outputs.folder_files(run)) == \
        ["backup/state.json", "best.weights.h5", "history.csv", "run.json"]
    for name in ("best.weights.h5", "run.json", "history.csv"):
        with pytest.raises(FERError, match=f"{name}: is also an input"):
            outputs.check_outputs([str(run / name)], [str(tmp_path / "t.csv"), str(run)])
    outputs.check_outputs([str(run / "predictions.csv")], [str(run)])  # a new file beside them is fine


def test_check_outputs_refuses_folders_duplicates_and_files_as_parents_and_creates_nothing(tmp_path):
    _write(tmp_path / "plain.txt")
    with pytest.raises(FERError, match="is a folder, expected a file path"):
        outputs.check_outputs([str(tmp_path)], [])
    with pytest.raises(FERError, match="two outputs would be written to this one path"):
        outputs.check_outputs([str(tmp_path / "a.json"), str(tmp_path / "." / "a.json")], [])
    with pytest.raises(FERError, match=r"plain\.txt is a file, not a folder"):
        outputs.check_outputs([str(tmp_path / "plain.txt" / "deeper" / "out.csv")], [])
    outputs.check_outputs([str(tmp_path / "new" / "deeper" / "out.csv")], [])
    assert not (tmp_path / "new").exists()  # folders appear only when the output is opened


def test_check_outputs_refuses_an_unwritable_folder(tmp_path, monkeypatch):
    # Tests may run as root, for whom chmod does not bite: simulate the permission answer.
    monkeypatch.setattr(outputs.os, "access", lambda p, mode: False)
    with pytest.raises(FERError, match=r"out\.csv: cannot write \(permission denied in "):
        outputs.check_outputs([str(tmp_path / "out.csv")], [])


def test_check_folder_protects_a_users_own_files_but_not_a_run_folder(tmp_path):
    mine = tmp_path / "mine"
    _write(mine / "history.csv")
    with pytest.raises(FERError, match=r"mine: not a run folder \(no run\.json\) and it already holds history\.csv"):
        outputs.check_folder(mine, ["run.json", "history.csv", "best.weights.h5"], marker="run.json")
    assert (mine / "history.csv").read_text() == "keep me\n"
    _write(mine / "run.json", "{}")
    outputs.check_folder(mine, ["history.csv"], marker="run.json")  # a run folder: its owner decides
    _write(tmp_path / "other" / "notes.txt")
    outputs.check_folder(tmp_path / "other", ["history.csv"], marker="run.json")  # nothing replaced
    outputs.check_folder(tmp_path / "absent", ["history.csv"], marker="run.json")
    with pytest.raises(FERError, match="is a file, expected a folder"):
        outputs.check_folder(mine / "history.csv", ["x"], marker="run.json")


def test_open_output_is_atomic_and_creates_parents(tmp_path):
    target = tmp_path / "a" / "b" / "out.csv"
    with outputs.open_output(target, "w") as f:
        f.write("id,label\n")
        assert not target.exists()  # only a temporary file so far
    assert target.read_text() == "id,label\n"
    with pytest.raises(RuntimeError):
        with outputs.open_output(target, "w") as f:
            f.write("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "id,label\n"
    assert os.listdir(target.parent) == ["out.csv"]  # no temporary left behind


def test_open_output_on_a_folder_or_under_a_file_is_one_line(tmp_path):
    with pytest.raises(FERError, match="is a folder, expected a file path"):
        with outputs.open_output(tmp_path, "w"):
            pass
    _write(tmp_path / "f")
    with pytest.raises(FERError, match=r"out\.csv: cannot write") as e:
        with outputs.open_output(tmp_path / "f" / "out.csv", "w"):
            pass
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left on the device"),
                                          (errno.EACCES, "permission denied"),
                                          (errno.EROFS, "read-only file system")])
def test_os_errors_while_writing_become_one_line_and_leave_no_file(tmp_path, code, words):
    target = _write(tmp_path / "out.csv", "old\n")
    with pytest.raises(FERError) as e:
        with outputs.open_output(target, "w") as f:
            f.write("new")
            raise OSError(code, os.strerror(code))  # what a full disk does to f.write/f.close
    assert str(e.value) == f"{target}: cannot write ({words}" + ("; nothing was written)" if code == errno.ENOSPC
                                                                 else ")")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_output_path_and_write_json(tmp_path):
    with outputs.output_path(tmp_path / "w.weights.h5") as tmp:
        assert tmp.endswith("w.weights.h5")  # writers choose the format by suffix
        open(tmp, "wb").write(b"x")
    assert (tmp_path / "w.weights.h5").read_bytes() == b"x"
    outputs.write_json(tmp_path / "r" / "m.json", {"a": 1})
    assert (tmp_path / "r" / "m.json").read_text() == '{\n  "a": 1\n}\n'


def test_an_output_ending_in_a_slash_or_naming_a_folder_says_so(tmp_path):
    # The audit: 'out/newdir/' was "a part of the path is a file", and a folder given after a file
    # inside it was "an output file, and another output goes inside it".
    with pytest.raises(FERError, match=r"newdir/: names a folder \(it ends in '/'\); give a file name"):
        outputs.check_outputs([str(tmp_path / "newdir") + "/"])
    with pytest.raises(FERError, match=r"names a folder"):
        with outputs.open_output(str(tmp_path / "newdir") + "/"):
            pass
    (tmp_path / "d").mkdir()
    with pytest.raises(FERError, match=r"^" + str(tmp_path / "d") + r": is a folder, expected a file path$"):
        outputs.check_outputs([str(tmp_path / "d" / "c.png"), str(tmp_path / "d")])
    assert os.listdir(tmp_path) == ["d"] and os.listdir(tmp_path / "d") == []


def test_a_folder_where_no_file_can_be_created_is_refused_before_writing(tmp_path, monkeypatch):
    # os.access says yes to root, and to /proc: one empty file is tried (and removed), once per folder.
    tries = []
    real = outputs.tempfile.mkstemp
    monkeypatch.setattr(outputs.tempfile, "mkstemp", lambda **kw: tries.append(kw["dir"]) or real(**kw))
    outputs.check_outputs([str(tmp_path / "a.csv")], derived=[str(tmp_path / f"{i}.png") for i in range(50)])
    assert tries == [str(tmp_path)] and os.listdir(tmp_path) == []
    for code, words in [(errno.ENOENT, "no file can be created in"), (errno.EROFS, "read-only file system in")]:
        def refuse(**kw):
            raise OSError(code, os.strerror(code))
        monkeypatch.setattr(outputs.tempfile, "mkstemp", refuse)
        with pytest.raises(FERError, match=rf"o\.csv: cannot write \({words} {tmp_path}\)"):
            outputs.check_outputs([str(tmp_path / "sub" / "o.csv")])


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_an_output_under_proc_is_refused_by_the_check():
    with pytest.raises(FERError, match=r"^/proc/x\.csv: cannot write \(.* in /proc\)$"):
        outputs.check_outputs(["/proc/x.csv"])
