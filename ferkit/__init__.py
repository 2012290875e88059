"""The toolkit's upper layer: the one training routine (train.py, callbacks.py), inference
(inference.py: TTA, ensembles), explanation methods (explain.py) and figures (figures.py).

It builds on `ferbase` (errors, atomic files, CLI), `data` and `models`; scripts build on it.
Nothing here changes the process on import: scripts call ferbase.quiet.configure_tensorflow().
"""
