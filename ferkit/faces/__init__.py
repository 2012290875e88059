"""Faces in photos and videos: detection, FER-style crops and the FaceReader API (reader);
reading and writing pictures and videos (media, which loads no Keras).

`from ferkit.faces import FaceReader` works; the reader (and Keras) loads only then, so that
`from ferkit.faces import media` stays instant."""


def __getattr__(name):
    if name.startswith("_") or name in ("reader", "media"):  # submodules: the import system's, not ours
        raise AttributeError(f"module 'ferkit.faces' has no attribute {name!r}")
    import importlib

    reader = importlib.import_module("ferkit.faces.reader")
    try:
        return getattr(reader, name)
    except AttributeError:
        raise AttributeError(f"module 'ferkit.faces' has no attribute {name!r}") from None
