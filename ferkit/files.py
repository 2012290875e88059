"""The one way scripts open their outputs: never over an input, never over a user's file, never
half a file, one-line errors.

    check_outputs([args.out_csv], [args.test_csv, *folder_files(run_dir)])   # early, before TensorFlow
    with open_output(args.out_csv, "w", newline="") as f:                     # atomic; OSError -> FERError
        f.write("id,label\\n")

- check_outputs(outputs, inputs, derived) raises FERError when an output is the same file as an
  input (real paths / os.path.samefile, so symlinks and hard links count), is named twice, lies
  inside another output (a folder of copies named like the CSV), is or names a folder (`out/`), or
  lies under a path that is a file or a folder where no file can be created (tried with an empty
  file, removed at once). It leaves nothing behind. An input that is a folder stands for every file
  in it (folder_files()).
  `derived` are outputs the user did not name (a report's .json beside --out, the annotated
  copies of predict.py --annotate): one of them may replace an existing file only if this toolkit
  wrote that file (recorded in the folder's MANIFEST, size and time), never a user's own file.
- refuse_folder(path) refuses an output path that is or names a folder (`out/`): check_outputs
  and output_path call it, and so do checks that run before them (a figure's format).
- check_folder(folder, names, marker) refuses a folder that is not a run folder (no `marker` file)
  and already holds one of the files that would be written into it (the user's own files).
- open_output(path, mode) and output_path(path) write atomically (atomic_path): parent folders
  are created only then, the file appears only when the block succeeds and its bytes reached the
  disk (fsync: a full disk that shows only then is caught), and OS errors (is a folder, permission
  denied, no space left) become one FERError line naming the path. output_path(path, check=fn)
  also runs fn(temporary path) before the rename, for writers that do not report their errors
  (OpenCV's VideoWriter). write_json(path, obj) does the same for a JSON file.
"""
import contextlib
import errno
import json
import os
import tempfile

from ferkit.errors import FERError


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path in the target's folder; on success rename it to `path`."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    # End with the full name: writers choose the format by suffix (keras wants ".weights.h5").
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=f"-{base}", dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield tmp
        _sync(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _sync(path):
    """Flush a written file to the disk: a file system that accepts writes beyond its free space
    (delayed allocation) reports the full disk here, before the file takes the output's name."""
    if os.path.isfile(path):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


MANIFEST = ".ferkit-outputs"  # per folder: the derived outputs this toolkit wrote there, one JSON line each
_APPROVED = set()  # derived outputs that check_outputs let through: output_path records them once written


def _manifest(folder):
    """{name: [size, mtime_ns]} of the derived outputs written in `folder` (the last line for a
    name wins; a torn or foreign line is ignored). Appended to, never rewritten: recording stays
    cheap in a folder of thousands of annotated copies."""
    entries = {}
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8", errors="replace") as f:
            for line in f:
                with contextlib.suppress(ValueError, RecursionError):
                    name, size, mtime = json.loads(line)
                    entries[name] = [size, mtime]
    except (OSError, TypeError):
        pass
    return entries


def written_here(path, manifests=None):
    """Whether `path` is a file this toolkit wrote as a derived output, unchanged since (same size
    and modification time). `manifests`: a dict reused across calls, so each folder is read once."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    folder = os.path.dirname(os.path.abspath(path))
    manifests = {} if manifests is None else manifests
    if folder not in manifests:
        manifests[folder] = _manifest(folder)
    return manifests[folder].get(os.path.basename(path)) == [st.st_size, st.st_mtime_ns]


def _record(path):
    """Append a derived output just written to its folder's MANIFEST (best effort: a failure only
    means that the next run will refuse to replace the file)."""
    folder = os.path.dirname(os.path.abspath(path))
    with contextlib.suppress(OSError, ValueError):
        st = os.stat(path)
        with open(os.path.join(folder, MANIFEST), "a", encoding="utf-8") as f:
            f.write(json.dumps([os.path.basename(path), st.st_size, st.st_mtime_ns]) + "\n")


_PROBLEMS = {
    errno.EISDIR: "is a folder, expected a file path",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOSPC: "no space left on the device; nothing was written",
    errno.EDQUOT: "disk quota exceeded; nothing was written",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.EEXIST: "exists and is not a folder",
}


def describe_os_error(e, path):
    """One line for an OSError met while writing `path`: '<path>: cannot write (<problem>)'."""
    problem = _PROBLEMS.get(e.errno) or (e.strerror or str(e) or type(e).__name__).splitlines()[0]
    other = os.fspath(e.filename) if isinstance(e.filename, (str, bytes, os.PathLike)) else None
    if other is None or os.path.basename(other).startswith(".tmp-") or os.path.abspath(other) == os.path.abspath(path):
        return f"{path}: cannot write ({problem})"
    if os.path.abspath(path).startswith(os.path.abspath(other) + os.sep):  # a parent folder of the output
        return f"{path}: cannot write ({other}: {problem})"
    return f"{other}: {problem}"  # another file (an input read inside the block)


def folder_files(folder):
    """Every regular file under `folder` (recursively): what a script reading that folder reads."""
    found = []
    for root, _dirs, files in os.walk(folder):
        found += [os.path.join(root, f) for f in files]
    return found


def _same_file(a, b):
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _expand(inputs):
    out = []
    for p in inputs:
        if p is None:
            continue
        p = os.fspath(p)
        out += folder_files(p) if os.path.isdir(p) else [p]
    return out


def refuse_folder(path):
    """An output must name a file: not an existing folder, nor a path ending in '/' (a folder to be)."""
    if os.path.isdir(path):
        raise FERError(f"{path}: is a folder, expected a file path")
    if path.endswith(tuple(s for s in (os.sep, os.altsep) if s)):
        raise FERError(f"{path}: names a folder (it ends in {path[-1]!r}); give a file name")


def _check_location(path, probed):
    """The output's nearest existing ancestor must be a folder where files can be created;
    `probed`: the folders already tried, so a thousand annotated copies cost one try."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    if not os.path.isdir(parent):
        raise FERError(f"{path}: cannot write ({parent} is a file, not a folder)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FERError(f"{path}: cannot write (permission denied in {parent})")
    if parent in probed:
        return
    # os.access says yes to root everywhere and to folders that take no files (/proc): only creating
    # one tells, here rather than after a model has loaded
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=parent)
    except OSError as e:
        problem = "no file can be created" if e.errno == errno.ENOENT else _PROBLEMS.get(e.errno) or e.strerror
        raise FERError(f"{path}: cannot write ({problem} in {parent})") from None
    os.close(fd)
    os.remove(tmp)
    probed.add(parent)


def check_outputs(outputs, inputs=(), derived=()):
    """Raise FERError unless every output may be written without touching an input or a user's file.

    `outputs`: paths the script will write (None entries are skipped). `inputs`: files it reads,
    and folders whose every file it may read (a run folder). `derived`: outputs the user did not
    name (written beside or below a named one); they must not replace a file this toolkit did
    not write. Nothing is left behind (_check_location tries an empty file in each folder)."""
    derived = [os.fspath(d) for d in derived if d is not None]
    outputs = [os.fspath(o) for o in outputs if o is not None] + derived
    inputs = _expand(inputs)
    probed = set()
    for i, out in enumerate(outputs):
        refuse_folder(out)  # first: a folder among the outputs is that, not 'another output goes inside it'
        for inp in inputs:
            if _same_file(out, inp):
                detail = "" if os.path.realpath(out) == os.path.realpath(inp) else f" ({inp})"
                raise FERError(f"{out}: is also an input{detail}; writing it would destroy it, "
                               "choose another output path")
        for other in outputs[:i]:
            if _same_file(out, other):
                raise FERError(f"{out}: two outputs would be written to this one path and one would be lost; "
                               "choose distinct paths (or rename one of the inputs)")
            for a, b in ((out, other), (other, out)):
                if os.path.realpath(a).startswith(os.path.realpath(b) + os.sep):
                    raise FERError(f"{b}: is an output file, and another output goes inside it ({a}); "
                                   "choose distinct paths")
        _check_location(out, probed)
    manifests = {}
    for d in derived:
        if os.path.lexists(d) and not written_here(d, manifests):
            raise FERError(f"{d}: already exists and this toolkit did not write it; it would be replaced "
                           "(move it, or choose another output folder)")
    _APPROVED.update(os.path.abspath(d) for d in derived)


def check_folder(folder, names, marker):
    """Refuse `folder` if it exists, has no `marker` file (it is not a run folder) and already
    holds any of `names`, the files that writing into it would replace."""
    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise FERError(f"{folder}: is a file, expected a folder")
    if not os.path.isdir(folder) or os.path.exists(os.path.join(folder, marker)):
        return
    clash = [n for n in names if os.path.lexists(os.path.join(folder, n))]
    if clash:
        raise FERError(f"{folder}: not a run folder (no {marker}) and it already holds {', '.join(clash)}, "
                       "which would be replaced; choose a new or empty folder")


@contextlib.contextmanager
def output_path(path, check=None):
    """Yield a temporary path beside `path`; it becomes `path` when the block succeeds (and
    `check(temporary path)`, if given, raises nothing). OS errors while creating folders, writing,
    syncing or renaming become one-line FERErrors."""
    path = os.fspath(path)
    refuse_folder(path)
    try:
        with atomic_path(path) as tmp:
            yield tmp
            if check is not None:
                check(tmp)
    except FERError:
        raise
    except OSError as e:
        raise FERError(describe_os_error(e, path)) from None
    if os.path.abspath(path) in _APPROVED:
        _record(path)


@contextlib.contextmanager
def open_output(path, mode="w", **kwargs):
    """Like open(path, mode) for writing, but atomic and with one-line errors (see output_path)."""
    with output_path(path) as tmp:
        try:
            f = open(tmp, mode, **kwargs)
        except OSError as e:
            raise FERError(describe_os_error(e, os.fspath(path))) from None
        with f:
            yield f


def write_json(path, obj):
    """`obj` as indented JSON, written atomically, with one-line errors."""
    with open_output(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")
