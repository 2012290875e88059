"""The run folder: its file names (layout), the folder training writes (folder: lock, commit,
checksums, resume state) and the loader every consumer uses (load: load_run, the default run).
Imports nothing here, so that layout's names load without Keras."""
