#!/usr/bin/env python
"""Pack a labelled FER2013 CSV as xz-compressed uint8 pixels, and unpack it back to the same CSV.

    python scripts/pack_pixels.py pack ../shared/data/fer2013/train.csv.gz .gpu/train.u8.xz
    python scripts/pack_pixels.py unpack .gpu/train.u8.xz /tmp/train.csv      # on the GPU machine

A lent GPU machine receives at most 64 MiB and reaches nothing else (docs/GPU.md). The CSV's
text is 72 MB gzipped; its raw pixels under xz with a delta filter are 47 MB, the best of the
lossless coders tried (docs/GPU.md). Neither way loads Keras.
"""
import lzma
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run as `python scripts/pack_pixels.py`: the packages live one level up

import data  # noqa: E402
from data import NUM_PIXELS as PIXELS  # noqa: E402
from ferkit.cli import Parser, run_main  # noqa: E402
from ferkit.errors import FERError  # noqa: E402
from ferkit.files import check_outputs, output_path  # noqa: E402

MAGIC = b"FERPX1\n"
FILTERS = [{"id": lzma.FILTER_DELTA, "dist": 1}, {"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]


def build_parser():
    p = Parser(prog="pack_pixels.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("pack", help="labelled CSV (.gz too) -> pack")
    a.add_argument("csv")
    a.add_argument("pack")
    b = sub.add_parser("unpack", help="pack -> label,feature CSV")
    b.add_argument("pack")
    b.add_argument("csv")
    return p


def main(argv=None):
    return run_main(lambda: _run(build_parser().parse_args(argv)))


def _run(args):
    src, dst = (args.csv, args.pack) if args.command == "pack" else (args.pack, args.csv)
    check_outputs([dst], [src])  # `pack g.csv g.csv` would replace the faces with their pack
    t0 = time.time()
    n = pack(args.csv, args.pack) if args.command == "pack" else unpack(args.pack, args.csv)
    size = os.path.getsize(args.pack)
    print(f"{args.command}ed {n} faces ({size / 1e6:.1f} MB packed) in {time.time() - t0:.1f} s", flush=True)


def pack(csv, dst):
    """Write labels then pixels, row by row, as one xz stream after a header with the count."""
    ds = data.load_csv(csv, cache=False)
    if ds.labels is None:
        raise FERError(f"{csv}: no label column; only a labelled CSV can be packed")
    raw = ds.labels.astype(np.uint8).tobytes() + ds.images.reshape(len(ds), PIXELS).tobytes()
    with output_path(dst) as tmp, open(tmp, "wb") as f:
        f.write(MAGIC + len(ds).to_bytes(4, "little"))
        f.write(lzma.compress(raw, format=lzma.FORMAT_XZ, filters=FILTERS))
    return len(ds)


def unpack(src, csv):
    """The pack back as `label,feature` text, the layout data.load_csv reads."""
    labels, pixels = read_pack(src)
    with output_path(csv) as tmp, open(tmp, "w") as f:
        f.write("label,feature\n")
        for label, row in zip(labels.tolist(), pixels):
            f.write(f"{label}," + " ".join(map(str, row.tolist())) + "\n")
    return len(labels)


def read_pack(src):
    """(labels uint8 (N,), pixels uint8 (N, 2304)); FERError for anything that is not a whole pack."""
    try:
        with open(src, "rb") as f:
            head = f.read(len(MAGIC) + 4)
            if not head.startswith(MAGIC):
                raise FERError(f"{src}: not a pixel pack (made by scripts/pack_pixels.py pack)")
            n = int.from_bytes(head[len(MAGIC):], "little")
            raw = lzma.decompress(f.read())
    except OSError as e:
        raise FERError(f"{src}: {e.strerror or e}") from None
    except lzma.LZMAError as e:
        raise FERError(f"{src}: damaged pack ({e})") from None
    if len(raw) != n * (1 + PIXELS):
        raise FERError(f"{src}: damaged pack (holds {len(raw)} bytes, {n} faces need {n * (1 + PIXELS)})")
    return np.frombuffer(raw[:n], np.uint8), np.frombuffer(raw[n:], np.uint8).reshape(n, PIXELS)


if __name__ == "__main__":
    sys.exit(main())
