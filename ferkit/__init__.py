"""The toolkit, grouped by feature (README, "Layout"):

    errors.py, files.py, backend.py,  the base: FERError, atomic writes and the outputs guard, the
    limits.py                         one quiet Keras import, the size limits of untrusted input;
                                      they import nothing else of ours, so data/ and models/ build on them
    cli.py      how every script ends (one-line errors, exit 2) and shared option types
    runs/       the run folder: names, the folder training writes, the loader
    train/      the command line (config), the routine (loop), callbacks, distillation, throughput
    infer.py    predictions: uint8 faces in, probabilities out; TTA, ensembles
    explain/    explanation methods (saliency, Grad-CAM, IG, filters) and their faithfulness
    faces/      faces in photos and videos (reader, media)
    report/     evaluation, figures, report pages, the experiment plan

Layers: ferkit's base -> data -> models -> the rest of ferkit -> scripts. Nothing here changes
the process on import: scripts call ferkit.backend.configure_tensorflow().
"""
