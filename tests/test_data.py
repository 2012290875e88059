"""data.load_csv: every layout, gzip, ids, chunks, the cache, and every bad input's message."""
import gzip
import os

import numpy as np
import pandas as pd
import pytest

import data
from data import synthetic
from ferkit.errors import FERError
from tests.conftest import real_data


@pytest.fixture()
def faces():
    return synthetic.make_faces(30, seed=5)


def naive_parse(path):
    """The straightforward reading the fast parser must agree with."""
    frame = pd.read_csv(path)
    col = "feature" if "feature" in frame else "pixels"
    return np.stack([np.array(s.split(), dtype=np.uint8) for s in frame[col]]).reshape(-1, 48, 48, 1)


def test_course_train_layout(tmp_path, faces):
    x, y = faces
    ds = data.load_csv(synthetic.write_csv(tmp_path / "t.csv", x, y))
    assert ds.images.dtype == np.uint8 and ds.images.shape == (30, 48, 48, 1)
    np.testing.assert_array_equal(ds.images, x)
    np.testing.assert_array_equal(ds.labels, y)
    assert ds.ids is None


def test_course_test_layout_keeps_ids(tmp_path, faces):
    x, _ = faces
    ids = np.arange(100, 130)[::-1]
    ds = data.load_csv(synthetic.write_csv(tmp_path / "t.csv", x, ids=ids))
    assert ds.labels is None
    np.testing.assert_array_equal(ds.ids, ids.astype(str))
    np.testing.assert_array_equal(ds.images, x)


def test_ids_are_kept_exactly_as_written(tmp_path, faces):
    # An id past 64 bits, one in float notation, one with leading zeros, a word: all text, unchanged.
    x, _ = faces
    written = ["1234567890123456789012345", "1e3", "007", "face-4"]
    path = tmp_path / "ids.csv"
    path.write_text("id,feature\n" + "".join(f"{i},{' '.join(map(str, x[k].ravel()))}\n"
                                             for k, i in enumerate(written)))
    assert list(data.load_csv(path).ids) == written
    assert [i for c in data.iter_csv(path, chunk_rows=3) for i in c.ids] == written


def test_gzip_and_windows_line_endings(tmp_path, faces):
    x, y = faces
    plain = synthetic.write_csv(tmp_path / "t.csv", x, y)
    text = open(plain).read().replace("\n", "\r\n").encode()
    gz = tmp_path / "t.csv.gz"
    gz.write_bytes(gzip.compress(text))
    ds = data.load_csv(gz)
    np.testing.assert_array_equal(ds.images, x)
    np.testing.assert_array_equal(ds.labels, y)


def test_kaggle_layout_and_usage(tmp_path, faces):
    x, y = faces
    path = synthetic.write_csv(tmp_path / "fer2013.csv", x, y, layout="kaggle")
    everything = data.load_csv(path)
    assert len(everything) == 30
    public = data.load_csv(path, usage="PublicTest")
    keep = np.arange(30) % 5 == 0
    np.testing.assert_array_equal(public.images, x[keep])
    np.testing.assert_array_equal(public.labels, y[keep])
    with pytest.raises(FERError, match="unknown Usage 'Public'"):
        data.load_csv(path, usage="Public")


def test_fast_parse_equals_naive_parse_and_chunks_agree(tmp_path, faces):
    x, y = faces
    path = synthetic.write_csv(tmp_path / "t.csv", x, y)
    whole = data.load_csv(path, cache=False)
    np.testing.assert_array_equal(whole.images, naive_parse(path))
    chunks = list(data.iter_csv(path, chunk_rows=7))
    assert [len(c) for c in chunks] == [7, 7, 7, 7, 2]
    np.testing.assert_array_equal(data.concat(chunks).images, whole.images)
    np.testing.assert_array_equal(data.concat(chunks).labels, whole.labels)


def test_oddly_spaced_rows_still_parse(tmp_path, faces):
    x, y = faces
    path = synthetic.write_csv(tmp_path / "t.csv", x, y)
    text = open(path).read().replace(" 1", "  1", 3)
    (tmp_path / "odd.csv").write_text(text)
    np.testing.assert_array_equal(data.load_csv(tmp_path / "odd.csv").images, x)


def test_cache_is_keyed_on_size_and_mtime(tmp_path, faces):
    x, y = faces
    path = synthetic.write_csv(tmp_path / "t.csv", x, y)
    data.load_csv(path)
    assert len(os.listdir(data.cache_dir())) == 1
    np.testing.assert_array_equal(data.load_csv(path).images, x)  # from the cache
    synthetic.write_csv(path, x[:10], y[:10])  # the file changes: the cache must not answer
    os.utime(path, ns=(1, 1))
    assert len(data.load_csv(path)) == 10


def write_rows(tmp_path, header, rows, name="bad.csv"):
    path = tmp_path / name
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def good_pixels(value=7):
    return " ".join([str(value)] * 2304)


@pytest.mark.parametrize("header,rows,message", [
    ("label,feature", [f"1,{good_pixels()}", f"2,{' '.join(['1'] * 2303)}"], r"bad\.csv, line 3: 2303 pixels, expected 2304"),
    ("label,feature", [f"1,{good_pixels()}", f"2,{good_pixels()} 5"], r"line 3: 2305 pixels"),
    ("label,feature", [f"1,12.5 {' '.join(['1'] * 2303)}"], r"line 2: pixel 1 '12.5' is not an integer"),
    ("label,feature", [f"1,{' '.join(['1'] * 2303)} abc"], r"line 2: pixel 2304 'abc' is not a number"),
    ("label,feature", [f"1,{good_pixels()}", f"1,300 {' '.join(['1'] * 2303)}"], r"line 3: pixel 1 value 300 outside 0\.\.255"),
    ("label,feature", [f"1,-4 {' '.join(['1'] * 2303)}"], r"line 2: pixel 1 value -4 outside 0\.\.255"),
    ("label,feature", [f"1,{good_pixels()}", f"7,{good_pixels()}"], r"line 3: label 7 outside 0\.\.6"),
    ("label,feature", [f"happy,{good_pixels()}"], r"line 2: label 'happy' is not an integer"),
    ("id,feature", [f"x1,{good_pixels()}", f" ,{good_pixels()}"], r"line 3: empty id"),
    ("id,feature", [f"x1,{good_pixels()}", f'"a,b",{good_pixels()}'], r"line 3: id 'a,b' holds a comma, a quote or a line break"),
    ("label,feature", [f"1,{good_pixels()}", f"2,{good_pixels()},9"], r"bad\.csv, line 3: 3 fields, but the header has 2"),
    # an extra field in the first row: pandas would have taken column 1 as an index and shifted the rest
    ("label,feature", [f"1,{good_pixels()},9", f"2,{good_pixels()}"], r"bad\.csv, line 2: 3 fields, but the header has 2"),
    ("image,label", [f"{good_pixels()},1"], r"line 1: unknown header 'image,label'"),
    # blank lines are skipped but still counted: the bad row is named by its line in the file
    ("label,feature", [f"1,{good_pixels()}", "", f"1,{good_pixels()}", "", "", f"9,{good_pixels()}"],
     r"bad\.csv, line 7: label 9 outside 0\.\.6"),
    ("id,feature", ["", f"a,{good_pixels()}", f"b,{' '.join(['1'] * 2303)}"], r"line 4: 2303 pixels"),
    # what the fast path must not take for a separator: a space for the comma, a comma among pixels
    ("label,feature", [f"1,{good_pixels()}", f"3 {good_pixels()}"], r"line 3: no pixels \(an empty pixel field"),
    ("label,feature", [f"1,{good_pixels()}", f"3,7 7,{good_pixels()[4:]}"], r"line 3: 3 fields, but the header has 2"),
    ("label,feature", [f"1,{good_pixels()}", f"3,{good_pixels()},"], r"line 3: 3 fields, but the header has 2"),
])
def test_bad_rows_name_file_line_and_problem(tmp_path, header, rows, message):
    path = write_rows(tmp_path, header, rows)
    with pytest.raises(FERError, match=message):
        data.load_csv(path)  # what training reads
    with pytest.raises(FERError, match=message):
        data.concat(list(data.iter_csv(path, chunk_rows=1)))  # what predict reads, a row at a time


def test_blank_lines_are_skipped_by_both_readers(tmp_path):
    path = write_rows(tmp_path, "label,feature", ["", f"1,{good_pixels()}", "", "  ", f"2,{good_pixels(9)}", ""])
    for ds in (data.load_csv(path, cache=False), data.concat(list(data.iter_csv(path, chunk_rows=2)))):
        assert ds.labels.tolist() == [1, 2] and ds.images[1].max() == 9


def test_missing_empty_and_truncated_files(tmp_path, faces):
    with pytest.raises(FERError, match=r"nope\.csv: no such file"):
        data.load_csv(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(FERError, match=r"empty\.csv: empty file"):
        data.load_csv(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("label,feature\n")
    with pytest.raises(FERError, match=r"header\.csv: no rows"):
        data.load_csv(tmp_path / "header.csv")
    x, y = faces
    blob = gzip.compress(open(synthetic.write_csv(tmp_path / "t.csv", x, y), "rb").read())
    (tmp_path / "cut.csv.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(FERError, match=r"cut\.csv\.gz: truncated or corrupt"):
        data.load_csv(tmp_path / "cut.csv.gz")


def outcome(fn):
    try:
        return ("ok", len(fn()))
    except FERError as e:
        return ("error", str(e))


def test_load_csv_and_iter_csv_accept_and_refuse_the_same_files(tmp_path, faces):
    # What train (load_csv) reads, predict (iter_csv) reads, and the other way round.
    x, y = faces
    text = open(synthetic.write_csv(tmp_path / "t.csv", x, y), "rb").read()
    (tmp_path / "gzip_named.csv").write_bytes(gzip.compress(text))  # gzip content, plain name
    (tmp_path / "plain_named.csv.gz").write_bytes(text)  # plain content, gzip name
    (tmp_path / "header_only.csv").write_text("label,feature\n")
    (tmp_path / "header_only.csv.gz").write_bytes(gzip.compress(b"id,feature\n"))
    expected = {"gzip_named.csv": ("ok", 30), "plain_named.csv.gz": ("ok", 30),
                "header_only.csv": ("error", f"{tmp_path / 'header_only.csv'}: no rows (only a header)"),
                "header_only.csv.gz": ("error", f"{tmp_path / 'header_only.csv.gz'}: no rows (only a header)")}
    for name, want in expected.items():
        path = tmp_path / name
        assert outcome(lambda: data.load_csv(path, cache=False)) == want, name
        assert outcome(lambda: data.concat(list(data.iter_csv(path, chunk_rows=7)))) == want, name
        assert outcome(lambda: data.check_csv(path) and [0] * 30) == (want if want[0] == "error" else ("ok", 30))


def test_check_csv_reads_only_the_start(tmp_path):
    # A bad row late in the file is found by the full read, not by the quick check before a model loads.
    path = write_rows(tmp_path, "id,feature", [f"1,{good_pixels()}", "2,1 2 3"])
    assert data.check_csv(path) == (None, "id", "feature", None)
    with pytest.raises(FERError, match="unknown header 'image,label'"):
        data.check_csv(write_rows(tmp_path, "image,label", ["1,2"], name="h.csv"))
    with pytest.raises(FERError, match="--usage needs a Usage column"):
        data.check_csv(path, usage="PublicTest")


def test_stratified_split_keeps_class_balance():
    labels = np.repeat(np.arange(7), [50, 10, 50, 100, 60, 40, 60])
    train, val = data.stratified_split(labels, 0.1, seed=0)
    assert len(val) == 37 and not set(train) & set(val)
    assert np.all(np.abs(np.bincount(labels[val], minlength=7) - np.bincount(labels, minlength=7) * 0.1) <= 1)


@pytest.mark.slow
def test_real_public_test_matches_the_naive_parse():
    path = real_data("public_test.csv.gz")
    ds = data.load_csv(path, cache=False)
    assert ds.images.shape == (3589, 48, 48, 1)
    np.testing.assert_array_equal(ds.images, naive_parse(path))
    np.testing.assert_array_equal(ds.labels, pd.read_csv(path)["label"].to_numpy())
