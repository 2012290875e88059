"""Every file a script writes goes through the outputs guard (ferkit/files.py), including the ones
the user did not name one by one: predict.py --annotate's copies, make_report.py's .json beside
--out. A folder of pictures with odd names or unreadable parts still gets its rows; a full disk is
one line; SIGTERM is Ctrl-C; a Ctrl-C after the last epoch is not lost (issue 27)."""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import matplotlib.cbook
import numpy as np
import pytest
from PIL import Image

import make_report
import predict
import train_cnn
from data import synthetic
from ferkit import files as outputs
from ferkit.faces import media
from ferkit.runs import load as runs
from tests.conftest import ROOT

BUNDLED = os.path.join(runs.PRETRAINED_DIR, "fernet")
HOPPER = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


def one_error_line(capsys):
    out, err = capsys.readouterr()
    err = err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "model:" not in out  # refused before any model loaded
    return err[0]


def run_predict(*args):
    return predict.main([str(a) for a in args] + ["--weights", BUNDLED, "--detector", "haar"])


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "in" / "face.jpg"
    path.parent.mkdir()
    shutil.copy(HOPPER, path)
    return path


def listing(folder):
    return sorted(os.path.relpath(os.path.join(r, f), folder) for r, _, fs in os.walk(folder) for f in fs)


# ---------------------------------------------------------------- --annotate obeys the guard


@pytest.mark.slow
def test_annotate_never_replaces_a_users_file_but_replaces_its_own_copies(tmp_path, photo, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "face.jpg").write_bytes(b"my own picture")
    assert run_predict(photo, tmp_path / "faces.csv", "--annotate", mine) == 2
    assert f"{mine / 'face.jpg'}: already exists and this toolkit did not write it" in one_error_line(capsys)
    assert (mine / "face.jpg").read_bytes() == b"my own picture" and not (tmp_path / "faces.csv").exists()

    ours = tmp_path / "ours"
    for _ in range(2):  # a second run replaces the copies the first one wrote
        assert run_predict(photo, tmp_path / "faces.csv", "--annotate", ours) == 0
        capsys.readouterr()
    assert Image.open(ours / "face.jpg").size == (512, 600)
    os.utime(ours / "face.jpg", ns=(1, 1))  # changed since: now it is the user's
    assert run_predict(photo, tmp_path / "faces.csv", "--annotate", ours) == 2
    assert "did not write it" in one_error_line(capsys)


def test_annotate_never_replaces_a_users_video(tmp_path, capsys):
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5, (160, 120))
    for i in range(3):
        writer.write(np.full((120, 160, 3), 40 * i, np.uint8))
    writer.release()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "clip.avi").write_bytes(b"my holiday video")
    assert run_predict(clip, tmp_path / "faces.csv", "--annotate", mine) == 2
    assert "clip.avi: already exists and this toolkit did not write it" in one_error_line(capsys)
    assert (mine / "clip.avi").read_bytes() == b"my holiday video"


def test_the_csv_and_an_annotated_copy_may_not_collide(tmp_path, photo, capsys):
    ac = tmp_path / "ac"
    assert run_predict(photo, ac / "face.jpg", "--annotate", ac) == 2  # the example
    assert "two outputs would be written to this one path" in one_error_line(capsys)
    assert not ac.exists()


def test_two_inputs_whose_copies_share_a_name_are_refused_before_loading(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    rgb = np.asarray(Image.open(HOPPER).convert("RGB"))
    Image.fromarray(rgb).save(folder / "a.gif")  # its copy is a.gif.png (Pillow writes no GIF copies here)
    Image.fromarray(rgb).save(folder / "a.gif.png")
    out, ann = tmp_path / "faces.csv", tmp_path / "ann"
    assert run_predict(folder, out, "--annotate", ann) == 2
    assert f"{ann / 'a.gif.png'}: two outputs would be written to this one path" in one_error_line(capsys)
    assert not ann.exists() and not out.exists()


@pytest.mark.parametrize("where", ["the csv output", "a file", "below a file", "a read-only folder"])
def test_a_bad_annotate_target_is_refused_before_the_model_loads_and_leaves_nothing(tmp_path, photo, capsys,
                                                                                   monkeypatch, where):
    out = tmp_path / "faces.csv"
    (tmp_path / "note.txt").write_text("mine")
    target = {"the csv output": out, "a file": tmp_path / "note.txt", "below a file": tmp_path / "note.txt" / "x",
              "a read-only folder": tmp_path / "locked" / "ann"}[where]
    if where == "a read-only folder":
        (tmp_path / "locked").mkdir()
        real = os.access
        monkeypatch.setattr(outputs.os, "access", lambda p, mode: False if "locked" in str(p) else real(p, mode))
    before = listing(tmp_path)
    assert run_predict(photo, out, "--annotate", target) == 2
    assert one_error_line(capsys).startswith("error: ")
    assert listing(tmp_path) == before and (tmp_path / "note.txt").read_text() == "mine"
    assert not out.exists() and not os.path.isdir(out)


def test_a_video_copy_cut_short_is_one_line_and_not_kept(tmp_path, capsys, monkeypatch):
    """An encoder or disk that drops frames without an error leaves a short video: the copy is
    read back (its packets counted) before it takes its name."""
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5, (160, 120))
    for i in range(6):
        writer.write(np.full((120, 160, 3), 30 * i, np.uint8))
    writer.release()
    real = media._VideoWriter.write

    def drops_after_two(self, rgb):  # the frames after the second are lost, silently
        if self.frames < 2:
            real(self, rgb)

    monkeypatch.setattr(media._VideoWriter, "write", drops_after_two)
    out, ann = tmp_path / "faces.csv", tmp_path / "ann"
    assert run_predict(clip, out, "--annotate", ann) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {ann / 'clip.avi'}: cannot write (the video came out with 2 of 6 frames; "
                   "is the disk full?); nothing was written"]
    assert not out.exists() and listing(ann) == []


def test_a_full_disk_seen_only_when_the_file_is_synced_is_one_line(tmp_path, monkeypatch):
    """File systems with delayed allocation accept write() and report the full disk at fsync."""
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs.os, "fsync", full)
    with pytest.raises(outputs.FERError, match=r"out\.csv: cannot write \(no space left on the device"):
        with outputs.open_output(tmp_path / "out.csv") as f:
            f.write("id,label\n")
    assert os.listdir(tmp_path) == []


def tmpfs(path, size):
    """Mount a tiny tmpfs at `path` (root only): a real full disk. Skips where that is not possible."""
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    return path


@pytest.fixture
def small_disk(tmp_path):
    disk = tmpfs(tmp_path / "disk", "160k")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.slow
def test_annotated_copies_on_a_really_full_disk_are_one_line_and_nothing_is_left(tmp_path, small_disk, capsys):
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5, (640, 480))
    noise = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)  # JPEG cannot shrink it
    for _ in range(6):
        writer.write(noise)
    writer.release()
    big = tmp_path / "noise.png"
    Image.fromarray(noise).save(big)
    for source in (clip, big):
        assert run_predict(source, tmp_path / "faces.csv", "--annotate", small_disk) == 2
        err = [e for e in capsys.readouterr().err.strip().splitlines() if not e.startswith("note: ")]
        assert len(err) == 1 and err[0].startswith(f"error: {small_disk / source.name}: cannot write ("), err
        assert listing(small_disk) == [] and not (tmp_path / "faces.csv").exists()


# ---------------------------------------------------------------- files written beside the one named


def test_make_report_never_replaces_a_users_json_beside_the_pdf(tmp_path, capsys):
    mydocs = tmp_path / "mydocs"
    mydocs.mkdir()
    (mydocs / "report.json").write_text('{"mine": true}\n')
    assert make_report.main(["--out", str(mydocs / "report.pdf"), "--experiments", str(tmp_path)]) == 2
    assert f"{mydocs / 'report.json'}: already exists and this toolkit did not write it" in one_error_line(capsys)
    assert (mydocs / "report.json").read_text() == '{"mine": true}\n' and not (mydocs / "report.pdf").exists()
    # named with --json, it is the user's choice, as --out is
    assert make_report.main(["--out", str(mydocs / "report.pdf"), "--json", str(mydocs / "report.json"),
                             "--experiments", str(tmp_path), "--data", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv: no such file" in one_error_line(capsys)


@pytest.mark.parametrize("script, args, beside", [
    ("plot_confusion", ["--out", "{d}/c.png", "--json"], "c.json"),
    ("filter_vis", ["--out", "{d}/f.png"], "f-maps.png"),
])
def test_the_figure_scripts_never_replace_a_users_file_beside_their_output(tmp_path, capsys, script, args, beside):
    import importlib

    mydocs = tmp_path / "mydocs"
    mydocs.mkdir()
    (mydocs / beside).write_bytes(b"mine")
    x, y = synthetic.make_faces(8, seed=1)
    labelled = synthetic.write_csv(tmp_path / "l.csv", x, y)
    argv = ["--data", str(labelled), "--weights", BUNDLED] + [a.format(d=mydocs) for a in args]
    assert importlib.import_module(script).main(argv) == 2
    assert f"{mydocs / beside}: already exists and this toolkit did not write it" in one_error_line(capsys)
    assert (mydocs / beside).read_bytes() == b"mine" and os.listdir(mydocs) == [beside]


def test_derived_outputs_are_recorded_and_only_unchanged_ones_count_as_ours(tmp_path):
    named, beside = tmp_path / "r.pdf", tmp_path / "r.json"
    outputs.check_outputs([named], derived=[beside])
    outputs.write_json(beside, {"a": 1})
    assert outputs.written_here(beside)
    outputs.check_outputs([named], derived=[beside])  # a rerun may replace it
    beside.write_text("edited by hand\n")
    assert not outputs.written_here(beside)
    with pytest.raises(outputs.FERError, match="did not write it"):
        outputs.check_outputs([named], derived=[beside])


# ---------------------------------------------------------------- folders of pictures: no traceback


def test_a_file_name_that_is_not_utf8_still_gets_its_row(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(HOPPER, folder / "good.jpg")
    odd = os.path.join(os.fsencode(folder), b"caf\xe9-\xff.jpg")  # Latin-1 bytes, as old cameras wrote
    shutil.copy(HOPPER, odd)
    out = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"r\xe9sultats.csv"))  # printed at the end
    assert run_predict(folder, out, "--annotate", tmp_path / "ann") == 0
    assert "r\\udce9sultats.csv in " in capsys.readouterr().out  # printed, not a UnicodeEncodeError
    text = open(out, encoding="utf-8").read()  # still UTF-8: the odd bytes are written as \xNN
    assert f"{folder}/caf\\xe9-\\xff.jpg,0," in text and f"{folder}/good.jpg,0," in text
    assert os.path.exists(os.path.join(os.fsencode(tmp_path), b"ann", b"caf\xe9-\xff.jpg"))


def test_an_unreadable_subfolder_is_skipped_by_name_with_exit_3(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "photos"
    (folder / "locked").mkdir(parents=True)
    shutil.copy(HOPPER, folder / "good.jpg")
    shutil.copy(HOPPER, folder / "locked" / "hidden.jpg")
    real = os.scandir

    def scandir(path="."):  # root ignores permissions: answer as the kernel would for a user
        if os.fspath(path).endswith("locked"):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    out = tmp_path / "faces.csv"
    assert run_predict(folder, out) == media.PARTIAL_EXIT == 3
    captured = capsys.readouterr()
    assert f"skipped: {folder / 'locked'}: cannot read this folder (permission denied)" in captured.err
    assert "1 unreadable picture or folder skipped" in captured.out
    rows = out.read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith(f"{folder / 'good.jpg'},0,")
    monkeypatch.setattr(os, "scandir", lambda path=".": (_ for _ in ()).throw(PermissionError(errno.EACCES, "x")))
    assert run_predict(folder, out) == 2  # the folder itself: nothing to read at all
    assert "cannot read this folder (permission denied)" in one_error_line(capsys)


# ---------------------------------------------------------------- signals


_SLOW_PREDICT = """
import sys, time
import ferkit.infer
real = ferkit.infer.predict_proba
def slow(*args, **kwargs):
    print("predicting", flush=True)
    time.sleep(60)
    return real(*args, **kwargs)
ferkit.infer.predict_proba = slow
import predict
sys.exit(predict.main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_during_predict_is_handled_as_ctrl_c_and_leaves_no_temporary_file(tmp_path, sig):
    src = tmp_path / "t.csv"
    x, _ = synthetic.make_faces(20, seed=1)
    synthetic.write_csv(src, x)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    child = subprocess.Popen([sys.executable, "-c", _SLOW_PREDICT, str(src), str(out_dir / "p.csv"),
                              "--weights", BUNDLED], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in child.stdout:
        if line.startswith("predicting"):
            break
    sent = time.monotonic()
    child.send_signal(sig)
    _, err = child.communicate(timeout=60)
    assert time.monotonic() - sent < 30  # Python's exit with TensorFlow loaded takes seconds on a busy CPU
    assert child.returncode == 130 and err.strip().splitlines()[-1] == "interrupted"
    assert os.listdir(out_dir) == []  # no .tmp-* file beside the output, and no output


@pytest.mark.slow
def test_sigterm_during_training_stops_it_as_ctrl_c_and_says_how_to_resume(tmp_path):
    from tests.test_training_reliability import _SLOW_SECOND_EPOCH

    x, y = synthetic.make_faces(64, seed=1)
    xv, yv = synthetic.make_faces(21, seed=2)
    train, val = synthetic.write_csv(tmp_path / "t.csv", x, y), synthetic.write_csv(tmp_path / "v.csv", xv, yv)
    out = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", _SLOW_SECOND_EPOCH, str(train), "--model", "fernet", "--option",
                              "width=4", "--batch-size", "32", "--val", str(val), "--epochs", "3", "--out", str(out),
                              "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in child.stdout:
        if line.startswith("slow step"):
            break
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err[-2000:]
    assert f"interrupted after 1 epoch; continue with: python train_cnn.py {train} --out {out} --resume" in err
    assert json.load(open(out / "run.json"))["status"] == "interrupted" and ".lock" not in os.listdir(out)


@pytest.mark.slow
def test_ctrl_c_after_the_last_epochs_checks_still_says_how_to_resume(tmp_path, capsys, monkeypatch):
    """The race: a Ctrl-C that came while the last epoch's files were written passed every check
    of fit() and was lost; the run exited 0 without the "interrupted ... --resume" line."""
    from ferkit.train import callbacks, loop

    x, y = synthetic.make_faces(64, seed=1)
    xv, yv = synthetic.make_faces(21, seed=2)
    train, val = synthetic.write_csv(tmp_path / "t.csv", x, y), synthetic.write_csv(tmp_path / "v.csv", xv, yv)
    stops, real_list, real_end = [], loop.callback_list, callbacks.RunKeeper.on_epoch_end

    def keep_stop(args, keeper, stop, *rest):
        stops.append(stop)
        return real_list(args, keeper, stop, *rest)

    def ctrl_c_while_saving_the_last_epoch(self, epoch, logs=None):
        if epoch == 1:
            stops[0].set()  # as the main thread does on Ctrl-C, after fit's last check
        real_end(self, epoch, logs)

    monkeypatch.setattr(loop, "callback_list", keep_stop)
    monkeypatch.setattr(callbacks.RunKeeper, "on_epoch_end", ctrl_c_while_saving_the_last_epoch)
    out = tmp_path / "run"
    argv = [str(train), "--model", "fernet", "--option", "width=4", "--batch-size", "32", "--val", str(val),
            "--epochs", "2", "--out", str(out), "--quiet"]
    assert train_cnn.main(argv) == 130
    assert f"interrupted after 2 epochs; continue with: python train_cnn.py {train} --out {out} --resume" in \
        capsys.readouterr().err
    assert json.load(open(out / "run.json"))["status"] == "interrupted"
    monkeypatch.setattr(callbacks.RunKeeper, "on_epoch_end", real_end)
    assert train_cnn.main([str(train), "--out", str(out), "--resume"]) == 0
    assert json.load(open(out / "run.json"))["status"] == "done"


_TRAIN = "import sys, train_cnn; sys.exit(train_cnn.main(sys.argv[1:]))"


@pytest.mark.slow
def test_a_really_full_disk_during_training_is_one_line_and_a_clean_exit(tmp_path):
    """HDF5 failing inside h5py left half-closed objects: two tracebacks when they were freed, then
    exit 139 at interpreter exit. The weights are now built in memory and written by Python."""
    disk = tmpfs(tmp_path / "disk", "1000k")
    try:
        x, y = synthetic.make_faces(64, seed=1)
        xv, yv = synthetic.make_faces(21, seed=2)
        train = synthetic.write_csv(tmp_path / "t.csv", x, y)
        val = synthetic.write_csv(tmp_path / "v.csv", xv, yv)
        done = subprocess.run([sys.executable, "-c", _TRAIN, str(train), "--model", "fernet", "--option", "width=4",
                               "--batch-size", "32", "--val", str(val), "--epochs", "4", "--out", str(disk / "run"),
                               "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, done.stderr[-2000:]
        err = done.stderr.strip().splitlines()
        assert len(err) == 1 and "no space left on the device" in err[0], err
        assert "Traceback" not in done.stderr
        assert not [f for f in listing(disk) if ".tmp-" in f]
    finally:
        subprocess.run(["umount", str(disk)], check=False)
