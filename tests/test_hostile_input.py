"""Untrusted input, tried as a hostile but fair user would (issue 27): CSVs with over-long lines or a
byte-order mark, labels and ids that would be read dishonestly, pictures above the pixel limit or
of odd kinds, file names that are not UTF-8, folders that cannot be read, and run folders whose
run.json points outside them or holds values no network can be built from. Each is one line and a
non-zero exit, or the honest result, and never a traceback or a file outside the run read or
written."""
import gzip
import json
import os
import re
import shutil
import struct
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

import data
import predict
import train_cnn
from data import synthetic
from ferkit.errors import FERError
from ferkit.faces import media
from ferkit.limits import MAX_CSV_LINE_BYTES, MAX_PICTURE_PIXELS
from ferkit.runs import load as runs

BUNDLED = os.path.join(runs.PRETRAINED_DIR, "fernet")


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture(scope="module")
def faces_csv(tmp_path_factory):
    x, y = synthetic.make_faces(40, seed=3)
    return synthetic.write_csv(tmp_path_factory.mktemp("faces") / "faces.csv", x, y)


def lines_of(path):
    return open(path, "rb").read().split(b"\n")


# ---------------------------------------------------------------- CSV: a UTF-8 byte-order mark


@pytest.mark.parametrize("gz", [False, True])
def test_a_csv_saved_with_a_byte_order_mark_is_read_as_without_one(faces_csv, tmp_path, gz):
    raw = b"\xef\xbb\xbf" + open(faces_csv, "rb").read()  # as Excel saves "CSV UTF-8"
    path = tmp_path / "bom.csv"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    plain = data.load_csv(faces_csv, cache=False)
    for ds in (data.load_csv(path, cache=False), data.concat(list(data.iter_csv(path, chunk_rows=7)))):
        np.testing.assert_array_equal(ds.images, plain.images)
        np.testing.assert_array_equal(ds.labels, plain.labels)
    ids = tmp_path / "ids.csv"  # the careful path (ids) too
    x, _ = synthetic.make_faces(3, seed=1)
    synthetic.write_csv(ids, x, ids=["a", "b", "c"])
    ids.write_bytes(b"\xef\xbb\xbf" + ids.read_bytes())
    assert list(data.load_csv(ids, cache=False).ids) == ["a", "b", "c"]


# ---------------------------------------------------------------- CSV: bounded lines


def with_line(faces_csv, path, line, at=3):
    rows = lines_of(faces_csv)
    rows.insert(at - 1, line)
    path.write_bytes(b"\n".join(rows))
    return path


@pytest.mark.parametrize("case", ["many fields", "one long field", "long id", "just over the limit"])
def test_an_over_long_line_is_refused_naming_file_and_line(faces_csv, tmp_path, case):
    line = {"many fields": b"1," + b"1," * 200_000,
            "one long field": b"1," + b"7 " * 100_000,
            "long id": b"x" * (MAX_CSV_LINE_BYTES + 1) + b",1",
            "just over the limit": b"1," + b"1" * (MAX_CSV_LINE_BYTES - 1)}[case]
    path = with_line(faces_csv, tmp_path / "long.csv", line, at=5)
    message = rf"long\.csv, line 5: longer than {MAX_CSV_LINE_BYTES:,} bytes"
    for read in (lambda: data.load_csv(path, cache=False), lambda: list(data.iter_csv(path, chunk_rows=2))):
        with pytest.raises(FERError, match=message):
            read()
    header = tmp_path / "header.csv"  # on the first lines, check_csv (before any model) says it
    header.write_bytes(line + b"\n" + b"\n".join(lines_of(faces_csv)[1:]))
    with pytest.raises(FERError, match=r"header\.csv, line 1: longer than"):
        data.check_csv(header)


def test_a_line_exactly_at_the_limit_is_read_as_usual(faces_csv, tmp_path):
    pixels = " ".join(["7"] * 2304)
    line = "1," + pixels + " " * (MAX_CSV_LINE_BYTES - 2 - len(pixels))  # odd spacing, but a valid row
    path = with_line(faces_csv, tmp_path / "edge.csv", line.encode())
    assert len(data.load_csv(path, cache=False)) == 41


def test_a_small_gz_holding_a_huge_line_is_refused_without_reading_it_whole(faces_csv, tmp_path):
    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wb", compresslevel=1) as g:
        g.write(lines_of(faces_csv)[0] + b"\n" + lines_of(faces_csv)[1] + b"\n")
        for _ in range(40):
            g.write(b"1" * (1 << 20))  # a 40 MB line in a file of a few hundred KB
    assert os.path.getsize(path) < 1 << 20
    tracemalloc.start()
    try:
        for read in (lambda: data.load_csv(path, cache=False), lambda: list(data.iter_csv(path))):
            with pytest.raises(FERError, match=r"bomb\.csv\.gz, line 3: longer than"):
                read()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak / 2**20:.0f} MB held"  # the old reader held the whole 40 MB line (and copies)


def test_an_over_long_line_in_the_training_file_is_one_line_before_training(faces_csv, tmp_path, capsys):
    path = with_line(faces_csv, tmp_path / "train.csv", b"1," + b"1 " * 50_000)
    assert train_cnn.main([str(path), "--model", "fernet", "--option", "width=4", "--epochs", "1",
                           "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert f"{path}, line 3: longer than" in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- CSV: labels and ids, honestly


@pytest.mark.parametrize("label", ["3.0", "+3", "3e0", "3.", "0x3", "٣"])
def test_a_label_is_digits_only_so_nothing_is_rounded_silently(faces_csv, tmp_path, label):
    rows = lines_of(faces_csv)
    rows[2] = label.encode() + rows[2][rows[2].index(b","):]
    path = tmp_path / "labels.csv"
    path.write_bytes(b"\n".join(rows))
    with pytest.raises(FERError, match=rf"labels\.csv, line 3: label '{re.escape(label)}' is not an integer "
                                       r"\(write it with digits only, 0\.\.6\)"):
        data.load_csv(path, cache=False)


def test_labels_with_spaces_or_a_leading_zero_are_still_digits(faces_csv, tmp_path):
    rows = lines_of(faces_csv)
    label = rows[2][:rows[2].index(b",")]
    rows[2] = b" 0" + label + b" " + rows[2][rows[2].index(b","):]
    path = tmp_path / "spaced.csv"
    path.write_bytes(b"\n".join(rows))
    assert data.load_csv(path, cache=False).labels[1] == int(label)


@pytest.mark.parametrize("bad_id", ['"a\nb"', '"a\r\nb"', '"a\rb"', '"a""b"', '"a,b"'])
def test_an_id_with_a_line_break_is_refused_like_one_with_a_comma(tmp_path, bad_id, capsys):
    x, _ = synthetic.make_faces(3, seed=1)
    pixels = " ".join(map(str, x[0].ravel()))
    path = tmp_path / "ids.csv"
    path.write_text(f"id,feature\nfirst,{pixels}\n{bad_id},{pixels}\nlast,{pixels}\n", newline="")
    with pytest.raises(FERError, match=r"ids\.csv, line 3: id .* holds a comma, a quote or a line break"):
        data.load_csv(path, cache=False)
    out = tmp_path / "out.csv"
    assert predict.main([str(path), str(out), "--weights", BUNDLED]) == 2
    assert "holds a comma, a quote or a line break" in one_error_line(capsys) and not out.exists()


# ---------------------------------------------------------------- pictures: the pixel limit


def png_header(width, height):
    """The first bytes of a PNG of that size (signature, IHDR, an empty IDAT): a huge picture's
    header without its pixels, which a reader must judge before decoding anything."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def bmp_header(width, height):
    return (b"BM" + struct.pack("<IHHI", 54 + width * height * 3, 0, 0, 54)
            + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0))


@pytest.mark.parametrize("name, header", [("big.png", png_header(12000, 12000)),   # Pillow warns here
                                          ("huge.png", png_header(20000, 20000)),  # Pillow refuses here
                                          ("wide.bmp", bmp_header(100_000, 700)),
                                          ("just-over.png", png_header(8001, 8000))])
def test_a_picture_above_the_pixel_limit_is_one_line_from_its_header(tmp_path, capsys, name, header):
    path = tmp_path / name
    path.write_bytes(header)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        with pytest.raises(FERError, match=rf"{name}: (\d+x\d+ is )?[\d,]+ pixels, above the limit of "
                                           rf"{MAX_PICTURE_PIXELS:,} for a picture"):
            media.read_image(path)
    out = tmp_path / "faces.csv"
    assert predict.main([str(path), str(out), "--weights", BUNDLED]) == 2
    assert "above the limit of" in one_error_line(capsys) and not out.exists()


@pytest.mark.slow
def test_a_big_picture_below_the_limit_is_read_whole():
    big = np.zeros((3000, 4000, 3), np.uint8)
    big[1000:2000, 1000:3000] = 200
    import io
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG")
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"big-{os.getpid()}.png")
    try:
        open(path, "wb").write(buf.getvalue())
        np.testing.assert_array_equal(media.read_image(path), big)
    finally:
        os.remove(path)


def test_a_picture_is_still_turned_as_its_exif_orientation_says(tmp_path):
    stripe = np.zeros((40, 100, 3), np.uint8)
    stripe[:, :10] = 255  # a white band on the left
    im = Image.fromarray(stripe)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    im.save(tmp_path / "turned.jpg", exif=exif)
    got = media.read_image(tmp_path / "turned.jpg")  # turned in place, without a copy of the picture
    assert got.shape == (100, 40, 3) and got[:8].mean() > 200 and got[-30:].mean() < 30


# ---------------------------------------------------------------- pictures: float TIFF, one rule


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_a_float_tiff_is_read_by_the_rule_of_the_python_api(tmp_path, scale):
    ramp = np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64) * scale
    path = tmp_path / "float.tif"
    Image.fromarray(ramp, mode="F").save(path)
    got = media.read_image(path)
    np.testing.assert_array_equal(got, media.to_rgb(ramp))  # the API's rule, for the same array
    assert got.max() == 255 and got[:, :, 0].mean() > 100  # 0..1 is not read as a black picture


@pytest.mark.parametrize("name, array", [
    ("grey16.png", (np.arange(48 * 64).reshape(48, 64) * 21).astype(np.uint16)),   # 16-bit: top 8 bits
    ("int32-8bit.tif", np.arange(48 * 64).reshape(48, 64).astype(np.int32) % 256),  # 32-bit holding 0..255
    ("int32-16bit.tif", (np.arange(48 * 64).reshape(48, 64) * 21).astype(np.int32)),
])
def test_wide_integer_pictures_follow_the_same_rule_as_arrays(tmp_path, name, array):
    path = tmp_path / name
    Image.fromarray(array).save(path)
    got = media.read_image(path)
    np.testing.assert_array_equal(got, media.to_rgb(array))
    assert got.max() > 200  # neither black nor cut to 8 bits of a 16-bit value


def test_a_float_tiff_with_nan_is_one_line_naming_it(tmp_path):
    bad = np.full((8, 8), np.nan, np.float32)
    path = tmp_path / "nan.tif"
    Image.fromarray(bad, mode="F").save(path)
    with pytest.raises(FERError, match=r"nan\.tif: the picture holds NaN"):
        media.read_image(path)


# ---------------------------------------------------------------- run folders are untrusted


@pytest.fixture
def victim(tmp_path):
    """A file outside the run folder that a hostile run.json points at: a copy of real weights
    (so that reading it would succeed and go unnoticed)."""
    path = tmp_path / "victim.weights.h5"
    shutil.copy(os.path.join(BUNDLED, runs.WEIGHTS_FILE), path)
    return path


def hostile_run(tmp_path, name, **entries):
    run = tmp_path / name
    shutil.copytree(BUNDLED, run)
    info = json.load(open(run / runs.RUN_FILE))
    for key, value in entries.items():
        if value is None:
            info.pop(key, None)
        else:
            info[key] = value
    (run / runs.RUN_FILE).write_text(json.dumps(info))
    return run


HOSTILE = {
    "weights outside": ({"weights": "../victim.weights.h5"}, "weights = '../victim.weights.h5': must name a file inside"),
    "weights absolute": ({"weights": "/etc/passwd"}, "weights = '/etc/passwd': must name a file inside"),
    "weights a number": ({"weights": 5}, "weights = 5: expected string"),
    "weights empty": ({"weights": ""}, "weights = '': out of bounds"),
    "options a string": ({"options": "width=3"}, "options = 'width=3': expected object"),
    "width negative": ({"options": {"width": -1}}, "option width=-1: model fernet expects an integer 1..256"),
    "width huge": ({"options": {"width": 100000}}, "option width=100000: model fernet expects an integer 1..256"),
    "width a float": ({"options": {"width": 3.5}}, "option width=3.5: model fernet expects an integer"),
    "blocks a string": ({"options": {"blocks": "x"}}, "option blocks=x: model fernet expects a list of 1-8 integers"),
    "blocks too deep": ({"options": {"blocks": [1, 2, 99]}}, "option blocks=[1, 2, 99]: model fernet expects a list"),
    "dropout above 1": ({"options": {"dropout": 7}}, "option dropout=7: model fernet expects a number from 0"),
    "unknown option": ({"options": {"depth": 2}}, "option depth=2: model fernet has no option depth"),
    "preprocess a string": ({"preprocess": "standardize"}, "preprocess = 'standardize': expected null or object"),
    "augment a string": ({"augment": "yes"}, "augment = 'yes': expected null or boolean or object"),
    "model a number": ({"model": 5}, "model = 5: expected string"),
    "model unknown": ({"model": "../../evil"}, "model = '../../evil': out of bounds"),
    "sha256 not hex": ({"weights_sha256": "zz"}, "weights_sha256 = 'zz': out of bounds"),
    "accuracy a string": ({"val_accuracy": "high"}, "val_accuracy = 'high': expected number or null"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_run_json_is_one_line_and_nothing_outside_the_run_is_read(tmp_path, capsys, victim, case):
    entries, message = HOSTILE[case]
    run = hostile_run(tmp_path / "r", "run", **entries)
    src = tmp_path / "t.csv"
    x, _ = synthetic.make_faces(4, seed=1)
    synthetic.write_csv(src, x, ids=[1, 2, 3, 4])
    out = tmp_path / "out.csv"
    before = victim.read_bytes()
    assert predict.main([str(src), str(out), "--weights", str(run)]) == 2
    line = one_error_line(capsys)
    assert f"{run / 'run.json'}: {message}" in line, line
    assert not out.exists() and victim.read_bytes() == before


def test_a_deeply_nested_or_huge_run_json_is_one_line(tmp_path, capsys):
    src = tmp_path / "t.csv"
    x, _ = synthetic.make_faces(2, seed=1)
    synthetic.write_csv(src, x)
    for name, text, message in (
            ("deep", '{"model": "fernet", "args": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
            ("nested", '{"model": "fernet", "args": {"a": ' + "[" * 30 + "]" * 30 + "}}", "nested more than 20 levels"),
            ("huge", '{"model": "fernet", "args": {"a": "' + "x" * (2 << 20) + '"}}', "larger than 1,048,576 bytes")):
        run = hostile_run(tmp_path, name)
        (run / "run.json").write_text(text)
        assert predict.main([str(src), str(tmp_path / "out.csv"), "--weights", str(run)]) == 2
        assert f"{run / 'run.json'}: {message}" in one_error_line(capsys)


def test_the_weights_file_just_read_is_never_overwritten_by_the_csv(tmp_path, capsys, victim):
    src = tmp_path / "t.csv"
    x, _ = synthetic.make_faces(4, seed=1)
    synthetic.write_csv(src, x)
    before = victim.read_bytes()
    run = hostile_run(tmp_path / "r", "run", weights="../../victim.weights.h5")
    assert predict.main([str(src), str(victim), "--weights", str(run)]) == 2  # the example
    assert "must name a file inside the run folder" in one_error_line(capsys)
    link = hostile_run(tmp_path / "r", "link")  # its weights a symlink leading out of the folder
    os.remove(link / runs.WEIGHTS_FILE)
    os.symlink(victim, link / runs.WEIGHTS_FILE)
    assert predict.main([str(src), str(victim), "--weights", str(link)]) == 2
    assert "leads outside the run folder" in one_error_line(capsys)
    nested = hostile_run(tmp_path / "r", "nested", weights="sub/w.weights.h5")  # inside, in a subfolder: fine
    os.makedirs(nested / "sub")
    os.rename(nested / runs.WEIGHTS_FILE, nested / "sub" / "w.weights.h5")
    assert predict.main([str(src), str(nested / "sub" / "w.weights.h5"), "--weights", str(nested)]) == 2
    assert "is also an input" in one_error_line(capsys)
    assert victim.read_bytes() == before


def test_no_file_of_a_run_is_read_through_a_symlink_leading_out_of_it(tmp_path, capsys):
    src = tmp_path / "t.csv"
    x, _ = synthetic.make_faces(4, seed=1)
    synthetic.write_csv(src, x)
    run = hostile_run(tmp_path, "linked")
    os.rename(run / runs.RUN_FILE, tmp_path / "elsewhere.json")
    os.symlink(tmp_path / "elsewhere.json", run / runs.RUN_FILE)
    assert predict.main([str(src), str(tmp_path / "out.csv"), "--weights", str(run)]) == 2
    assert f"{run / 'run.json'}: leads outside the run folder" in one_error_line(capsys)
    from ferkit.runs import layout

    hist = hostile_run(tmp_path, "history")
    (hist / runs.HISTORY_FILE).write_text("epoch,loss\n1," + "9" * 200_000 + "\n")  # past csv's field limit
    with pytest.raises(FERError, match=r"history\.csv: not a readable history\.csv"):
        layout.read_history(hist)


@pytest.mark.slow
def test_a_run_without_weights_sha256_warns_in_one_line(tmp_path, capsys):
    run = hostile_run(tmp_path, "nosha", weights_sha256=None)
    src = tmp_path / "t.csv"
    x, _ = synthetic.make_faces(4, seed=1)
    synthetic.write_csv(src, x)
    assert predict.main([str(src), str(tmp_path / "out.csv"), "--weights", str(run)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"warning: {run / 'run.json'} records no weights_sha256, so {run / runs.WEIGHTS_FILE} "
                   "cannot be checked for damage"]


@pytest.mark.parametrize("option, message", [
    ("blocks=x", "--option blocks=x: model fernet expects a list of 1-8 integers 0..16 for blocks"),
    ("blocks=(1,2,100)", "--option blocks=(1, 2, 100): model fernet expects a list of 1-8 integers"),
    ("width=0", "--option width=0: model fernet expects an integer 1..256"),
    ("dropout=1.5", "--option dropout=1.5: model fernet expects a number from 0 up to (not including) 1"),
    ("dropout=nan", "--option dropout=nan: model fernet expects a number from 0"),
])
def test_model_options_of_the_wrong_kind_or_size_are_one_line_not_a_traceback(faces_csv, tmp_path, capsys,
                                                                               option, message):
    assert train_cnn.main([str(faces_csv), "--model", "fernet", "--option", option, "--epochs", "1",
                           "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "run").exists()
