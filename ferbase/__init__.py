"""The bottom layer of the toolkit: what every other part may use and which uses none of them.

    errors.py   FERError, the one exception type for a user's mistake (one line, exit 2)
    atomic.py   atomic file writes (temporary file + rename)
    outputs.py  the one way scripts open outputs: never over an input, atomic, one-line OS errors
    cli.py      run_main: how every script ends (one-line errors, exit codes)
    runfile.py  a run folder's file names and run.json reader, without Keras
    quiet.py    import_keras without TensorFlow's start-up chatter; configure_tensorflow()

Layers, each importing only from those before it:
    ferbase  ->  data, models  ->  ferkit (training, inference, explanation, figures)  ->  scripts
"""
