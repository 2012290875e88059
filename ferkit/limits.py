"""The toolkit's size limits, in one place (README, "Bad input" guarantees): inputs above them are
refused with one line before they are read whole, so memory stays bounded whatever a file holds.
Nothing here imports anything; serve.py and any other reader of untrusted input import these."""

# A CSV line (one FER2013 row). The longest well-formed row, 2304 pixels of "255 " plus a label,
# an id and a Usage, is under 10 KB; a longer line is refused before it is read whole, also
# inside a .gz (a 1 MB .gz can hold a 1 GB line).
MAX_CSV_LINE_BYTES = 32 * 1024

# A picture's width x height, read from its header before it is decoded: 64 megapixels (an
# 8000 x 8000 picture; phones take up to 50 MP) decode to at most 192 MB of RGB.
MAX_PICTURE_PIXELS = 64_000_000

# One file uploaded to the web page (serve.py, ferkit/web/service.py): a phone photo or a short clip;
# checked while the body arrives.
MAX_UPLOAD_BYTES = 64 * 2**20

# run.json of a run folder (untrusted input: it may come from someone else).
MAX_RUN_JSON_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 20
