"""FER2013 CSV loading.

    ds = data.load_csv("train.csv.gz")          # course layout: label,feature  (or id,feature)
    ds = data.load_csv("fer2013.csv", usage="PublicTest")   # Kaggle layout: emotion,pixels,Usage
    ds.images  # uint8 (N, 48, 48, 1);  ds.labels  # int64 (N,) or None;  ds.ids  # str (N,) or None
    data.check_csv("test.csv")                  # header and first row only: fails fast, before any model loads

Parsing is vectorized with numpy over the whole file (see benchmarks/load_csv.py); a file that
the fast path cannot read cleanly is read again row by row, which names the first bad row.
`iter_csv` reads a file in chunks of rows, for inputs too large to hold at once. Both accept and
refuse the same files: gzip is recognized by its content, whatever the name (.csv or .gz); a file
with a header and no rows is refused; ids are kept as the text written in the file; a UTF-8
byte-order mark (as Excel writes it) is skipped; labels are whole numbers written with digits only
(`3`; `3.0`, `+3` and `3e0` are refused, so that nothing is rounded silently).

Every byte is read through one bounded line reader (_BoundedLines): a line longer than
ferkit.limits.MAX_CSV_LINE_BYTES is refused with one line naming the file and line as soon as
that many bytes of it were read, never read whole, also inside a .gz, so memory stays bounded.
"""
import codecs
import csv
import gzip
import io
import os
import re
import warnings
import zlib

import numpy as np
import pandas as pd

from data import cache as parse_cache
from data.fer2013 import _LAYOUTS, IMAGE_SIZE, NUM_CLASSES, NUM_PIXELS, USAGES, Dataset, concat
from ferkit.errors import FERError
from ferkit.limits import MAX_CSV_LINE_BYTES


def load_csv(path, usage=None, cache=True):
    """Read a whole FER2013 CSV (plain or .gz). Raises FERError naming file, line and problem.

    With `cache`, the parsed arrays are kept as .npy files under $FER_CACHE_DIR (default
    ~/.cache/fer2013-toolkit), keyed on the file's absolute path, size and mtime, so the next
    load of an unchanged file takes a fraction of a second."""
    path = os.fspath(path)
    check_csv(path, usage)
    key = parse_cache.key(path, usage) if cache else None
    if key and (hit := parse_cache.get(key, path)) is not None:
        return hit
    ds = None
    if usage is None:
        ds = _parse_fast(_read_bytes(path), path)
    if ds is None:
        chunks = list(iter_csv(path, usage=usage))
        if not chunks:
            raise FERError(f"{path}: no rows" + (f" with Usage {usage}" if usage else ""))
        ds = concat(chunks)
    if key:
        parse_cache.put(key, ds)
    return ds


def check_csv(path, usage=None):
    """Check what can be checked in a moment, before any model loads: the file exists and can be
    read, its header is a known layout (with a Usage column if `usage`), and a row follows it.
    Returns the layout; raises FERError naming the file."""
    path = os.fspath(path)
    check_file(path)
    if usage is not None and usage not in USAGES:
        raise FERError(f"unknown Usage {usage!r}: choose one of {', '.join(USAGES)}")
    try:
        with _open_text(path) as f:
            header, row = f.readline(), f.readline()
            while row and not row.strip():
                row = f.readline()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise FERError(f"{path}: truncated or corrupt gzip file ({_first_line(e)})") from None
    except UnicodeDecodeError:
        raise FERError(_not_utf8(path)) from None
    except OSError as e:
        raise FERError(f"{path}: cannot read ({e.strerror or _first_line(e)})") from None
    if not header.strip():
        raise FERError(f"{path}: empty file")
    layout = _layout_of(next(csv.reader([header.rstrip("\r\n")])), path)
    if usage is not None and layout[3] is None:
        raise FERError(f"{path}: --usage needs a Usage column, the header is {header.strip()}")
    if not row:
        raise FERError(f"{path}: no rows (only a header)")
    return layout


def iter_csv(path, chunk_rows=None, usage=None):
    """Yield Datasets of at most `chunk_rows` rows each (all rows at once when None)."""
    path = os.fspath(path)
    layout = check_csv(path, usage)
    try:
        with _open_binary(path) as handle:
            # Blank lines are read as empty rows and dropped in _parse_frame, so that a row's index
            # stays its line number in the file (pandas would skip them and shift every later line).
            reader = pd.read_csv(handle, dtype=str, keep_default_na=False, chunksize=chunk_rows or 10**9,
                                 skipinitialspace=True, index_col=False, encoding="utf-8-sig",
                                 skip_blank_lines=False)
            rows = 0
            for frame in _frames(reader, path):
                chunk = _parse_frame(frame, layout, path, usage)
                rows += len(chunk)
                if len(chunk):
                    yield chunk
        if not rows:
            raise FERError(f"{path}: no rows" + (f" with Usage {usage}" if usage else " (only a header)"))
    except pd.errors.EmptyDataError:
        raise FERError(f"{path}: empty file") from None
    except pd.errors.ParserError as e:
        raise FERError(_parser_problem(e, path)) from None
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as e:
        raise FERError(f"{path}: truncated or corrupt file ({_first_line(e)})") from None
    except UnicodeDecodeError:
        raise FERError(_not_utf8(path)) from None


def _frames(reader, path):
    """The reader's frames; a row with more fields than the header is an error, never shifted
    columns (pandas only warns when it is the first row, and would drop the extra field)."""
    with reader:
        while True:
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                try:
                    frame = next(reader)
                except StopIteration:
                    return
                except pd.errors.ParserWarning:
                    raise FERError(_first_long_row(path)) from None
            yield frame


def _parser_problem(e, path):
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(e))
    if m:
        return f"{path}, line {m[2]}: {m[3]} fields, but the header has {m[1]}"
    return f"{path}: not a readable CSV ({_first_line(e)})"


def _first_long_row(path):
    with _open_text(path) as f:
        rows = csv.reader(f)
        width = len(next(rows))
        for line, row in enumerate(rows, start=2):
            if len(row) > width:
                return f"{path}, line {line}: {len(row)} fields, but the header has {width}"
    return f"{path}: rows with more fields than the header"


# ---------------------------------------------------------------- reading


def check_file(path):
    """A file that can be read (not a folder); a one-line FERError naming it otherwise."""
    if not os.path.exists(path):
        raise FERError(f"{path}: no such file")
    if os.path.isdir(path):
        raise FERError(f"{path}: is a folder, expected a CSV file")
    if not os.access(path, os.R_OK):
        raise FERError(f"{path}: cannot read (permission denied)")


class _BoundedLines(io.RawIOBase):
    """A binary stream (a file, or gzip's decompressed bytes) whose reads refuse any line longer
    than `limit` bytes, with a FERError naming the file and line, once that many bytes of the line
    were read: the one place where CSV bytes come in, so no reader (pandas, csv, readline, the
    fast path) ever holds an over-long line whole."""

    def __init__(self, raw, path, limit=MAX_CSV_LINE_BYTES):
        self.raw, self.path, self.limit = raw, path, limit
        self.line, self.run = 1, 0  # line number being read; its bytes read so far

    def readable(self):
        return True

    def readinto(self, b):
        data = self.raw.read(min(len(b), 1 << 20))
        n = len(data)
        self._check(data)
        b[:n] = data
        return n

    def _check(self, data):
        if not data:
            return
        newlines = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
        if not len(newlines):
            self.run += len(data)
        else:
            # lengths of the lines that end here (the first one began in an earlier block)
            ends = np.concatenate([[newlines[0] + self.run], np.diff(newlines) - 1])
            if ends.max() > self.limit:
                self._refuse(self.line + int(np.argmax(ends > self.limit)))
            self.line += len(newlines)
            self.run = len(data) - int(newlines[-1]) - 1
        if self.run > self.limit:
            self._refuse(self.line)

    def _refuse(self, line):
        raise FERError(f"{self.path}, line {line}: longer than {self.limit:,} bytes (a FER2013 row is under "
                       "10,000); not a FER2013 CSV, or a damaged one")

    def close(self):
        self.raw.close()
        super().close()


def _open_binary(path):
    """The file's bytes through the bounded line reader, gunzipped when its content is gzip."""
    raw = gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")
    return io.BufferedReader(_BoundedLines(raw, path), buffer_size=1 << 16)


def _open_text(path):
    """The file as text (a UTF-8 byte-order mark skipped), bounded lines, gunzipped when its
    content is gzip (whatever its name)."""
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", newline="")


def _read_bytes(path):
    check_file(path)
    try:
        with _open_binary(path) as f:
            buf = bytearray()
            while block := f.read(1 << 22):
                buf += block
            return bytes(buf)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise FERError(f"{path}: truncated or corrupt gzip file ({_first_line(e)})") from None


def _is_gzip(path):
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _first_line(e):
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _not_utf8(path):
    """The first line that is not UTF-8, with its byte: read again only once decoding has failed."""
    try:
        with _open_binary(path) as f:
            for number, line in enumerate(f, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as e:
                    return (f"{path}, line {number}: not UTF-8 text (byte 0x{line[e.start]:02x} at byte "
                            f"{e.start + 1} of the line); save the CSV as UTF-8")
    except (FERError, OSError, EOFError, zlib.error):
        pass
    return f"{path}: not a text CSV file"


def _layout_of(columns, path):
    cols = tuple(str(c).strip() for c in columns)
    if cols not in _LAYOUTS:
        known = "; ".join(",".join(k) for k in _LAYOUTS)
        raise FERError(f"{path}, line 1: unknown header {','.join(cols)!r} (expected one of: {known})")
    return _LAYOUTS[cols]


# ---------------------------------------------------------------- fast path


def _parse_fast(raw, path):
    """Whole-file numpy parse of a two-column numeric layout; None when anything looks unusual
    (the careful row-by-row path then reads the file and names the problem)."""
    start = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    head_end = raw.find(b"\n")
    try:
        header = tuple(c.strip() for c in raw[start:max(head_end, 0)].decode("ascii").strip().split(","))
    except UnicodeDecodeError:
        return None
    if header != ("label", "feature"):
        return None  # ids are kept as written, so id files take the careful path
    values = _ints_per_line(raw, 1 + NUM_PIXELS, separators=b" ,\r", start=head_end + 1, one_comma=True)
    if values is None or len(values) == 0:
        return None
    first, pixels = values[:, 0], values[:, 1:]
    if pixels.max() > 255:
        return None
    if first.max() >= NUM_CLASSES:
        return None
    images = pixels.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1)
    return Dataset(images, first.astype(np.int64), None, path)


def _ints_per_line(buf, per_line, separators=b" ", start=0, one_comma=False):
    """Parse buf[start:] (lines of non-negative integers) into an int16 (lines, per_line) array.

    Returns None unless every line holds exactly `per_line` integers of at most 3 digits.
    Works on numpy views of blocks of about 4 MB, copying nothing, so temporaries stay in
    cache: several times faster than one pass over the whole file (benchmarks/load_csv.py).
    With `one_comma`, each line must be `first,rest` (one comma, right after the first number),
    as the careful path reads a two-column file; anything else goes to the careful path."""
    end = len(buf)
    while end > start and buf[end - 1] in b"\r\n \t":
        end -= 1
    if end == start:
        return np.zeros((0, per_line), np.int16)
    a = np.frombuffer(buf, np.uint8)
    parts, pos = [], start
    while pos < end:
        stop = buf.find(b"\n", pos + (1 << 22), end)
        stop = end if stop < 0 else stop
        part = _ints_block(a[pos:stop], per_line, separators, one_comma)
        if part is None:
            return None
        parts.append(part)
        pos = stop + 1
    return np.concatenate(parts)


def _ints_block(a, per_line, separators, one_comma=False):
    digit = a - np.uint8(48)  # wraps non-digits to >= 10
    is_digit = digit < 10
    is_newline = a == 10
    allowed = is_digit | is_newline
    is_comma = None
    for s in separators:
        is_sep = a == s
        allowed |= is_sep
        if s == ord(","):
            is_comma = is_sep
    if not allowed.all():
        return None
    # Digit runs: +1 where a run starts, -1 one past where it ends; they alternate.
    padded = np.zeros(len(a) + 2, np.int8)
    padded[1:-1] = is_digit
    edges = np.flatnonzero(np.diff(padded))
    starts, ends = edges[0::2], edges[1::2]
    newlines = np.flatnonzero(is_newline)
    n_lines = len(newlines) + 1
    if len(starts) != n_lines * per_line:
        return None
    # Every line must hold exactly per_line numbers: count numbers that start before each newline.
    if len(newlines) and not np.array_equal(np.searchsorted(starts, newlines),
                                            np.arange(1, n_lines) * per_line):
        return None
    if one_comma:
        commas = np.flatnonzero(is_comma) if is_comma is not None else np.zeros(0, np.int64)
        if len(commas) != n_lines or not (np.all(ends[0::per_line] <= commas)
                                          and np.all(commas < starts[1::per_line])):
            return None
    length = ends - starts
    if length.max() > 3:
        return None
    values = digit[ends - 1].astype(np.int16)
    values += np.where(length >= 2, digit[ends - 2], 0).astype(np.int16) * 10
    values += np.where(length >= 3, digit[ends - 3], 0).astype(np.int16) * 100
    return values.reshape(n_lines, per_line)


# ---------------------------------------------------------------- careful path


def _parse_frame(frame, layout, path, usage):
    label_col, id_col, pixel_col, usage_col = layout
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame[frame.ne("").any(axis=1)]  # blank lines
    if usage is not None:
        frame = frame[frame[usage_col].str.strip() == usage]
    lines = frame.index.to_numpy() + 2  # file line numbers (header is line 1; blank lines kept as rows)
    n = len(frame)
    features = frame[pixel_col].str.strip().tolist()
    values = _ints_per_line("\n".join(features).encode("ascii", "replace"), NUM_PIXELS) if n else None
    if n and (values is None or len(values) != n):  # an empty field joins into no line at all
        values = _parse_pixels_slowly(features, lines, path)  # raises on the first bad row
    if n and values.max() > 255:
        row = int(np.argmax(values.max(axis=1) > 255))
        col = int(np.argmax(values[row] > 255))
        raise FERError(f"{path}, line {lines[row]}: pixel {col + 1} value {values[row, col]} outside 0..255")
    images = (values if n else np.zeros((0, NUM_PIXELS))).astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1)
    labels = _int_column(frame, label_col, lines, path, "label", 0, NUM_CLASSES - 1) if label_col else None
    ids = _id_column(frame, id_col, lines, path) if id_col else None
    return Dataset(images, labels, ids, path)


def _id_column(frame, col, lines, path):
    """Ids exactly as written (a 25-digit id or `1e3` stays that text). Refused: an empty id, and
    one with a comma, a quote or a line break, which would break the `id,label` rows written from it."""
    ids = frame[col].str.strip().to_numpy().astype(str)
    empty = ids == ""
    if empty.any():
        raise FERError(f"{path}, line {lines[int(np.argmax(empty))]}: empty id")
    odd = np.zeros(len(ids), bool)
    for c in (",", '"', "\n", "\r"):
        odd |= np.char.find(ids, c) >= 0
    if odd.any():
        row = int(np.argmax(odd))
        raise FERError(f"{path}, line {lines[row]}: id {str(ids[row])!r} holds a comma, a quote or a line break")
    return ids


def _int_column(frame, col, lines, path, what, lo, hi):
    vals = frame[col].str.strip()
    bad = ~vals.str.fullmatch(r"[0-9]+").to_numpy(dtype=bool)  # digits only: `3.0` is not rounded to 3
    if bad.any():
        row = int(np.argmax(bad))
        raise FERError(f"{path}, line {lines[row]}: {what} {vals.iloc[row]!r} is not an integer "
                       f"(write it with digits only, {lo}..{hi})")
    out = pd.to_numeric(vals).to_numpy(dtype=np.float64)
    bad = (out < lo) | (out > hi)  # before the cast, so a huge value is named as written
    if bad.any():
        row = int(np.argmax(bad))
        raise FERError(f"{path}, line {lines[row]}: {what} {vals.iloc[row]} outside {lo}..{hi}")
    return out.astype(np.int64)


def _parse_pixels_slowly(features, lines, path):
    """Row by row, for what the fast parse rejects: names the first bad row, or parses rows
    that are merely spaced oddly (tabs, double spaces)."""
    rows = []
    for feature, line in zip(features, lines):
        tokens = feature.split()
        if not tokens:
            raise FERError(f"{path}, line {line}: no pixels (an empty pixel field; a missing comma?)")
        if len(tokens) != NUM_PIXELS:
            raise FERError(f"{path}, line {line}: {len(tokens)} pixels, expected {NUM_PIXELS} (48x48)")
        for i, tok in enumerate(tokens):
            if tok[:1] == "-" and tok[1:].isascii() and tok[1:].isdigit():
                raise FERError(f"{path}, line {line}: pixel {i + 1} value {tok} outside 0..255")
            if not (tok.isascii() and tok.isdigit()):
                try:
                    float(tok)
                    problem = "is not an integer"
                except ValueError:
                    problem = "is not a number"
                raise FERError(f"{path}, line {line}: pixel {i + 1} {tok!r} {problem}")
            if int(tok) > 255:
                raise FERError(f"{path}, line {line}: pixel {i + 1} value {int(tok)} outside 0..255")
        rows.append(np.array(tokens, dtype=np.int32))
    return np.stack(rows)
