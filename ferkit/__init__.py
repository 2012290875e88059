"""The toolkit's upper layer: the one training routine (train.py; its command line, train_cli.py;
run folders, train_run.py; callbacks.py), inference (inference.py: TTA, ensembles), explanation
methods (explain.py), what the analysis scripts share (evaluate.py: accuracy, confusion, example
faces and their maps; preflight.py: their checks before TensorFlow), figures (figures.py) and the
pages of report.pdf (report.py).

It builds on `ferbase` (errors, atomic files, CLI), `data` and `models`; scripts build on it.
Nothing here changes the process on import: scripts call ferbase.quiet.configure_tensorflow().
"""
