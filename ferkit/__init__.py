"""The toolkit's upper layer: the one training routine (train.py; its command line, train_cli.py;
run folders, train_run.py; callbacks.py), inference (inference.py: TTA, ensembles), explanation
methods (explain.py), what the analysis scripts share (evaluate.py: accuracy, confusion, example
faces and their maps; preflight.py: their checks before TensorFlow), figures (figures.py), the
pages of report.pdf (report.py), the report's experiment plan and table (experiments.py), speed
measurements (throughput.py), and faces in photos and videos (faces.py: detection, FER-style
crops, the FaceReader API; media.py: reading pictures and videos, annotated copies).

It builds on `ferbase` (errors, atomic files, CLI), `data` and `models`; scripts build on it.
Nothing here changes the process on import: scripts call ferbase.quiet.configure_tensorflow().
"""
