"""The layering of the code (README, ferkit/__init__.py): imports go one way only,

    ferkit's base (errors, files, backend)  ->  data  ->  models  ->  the rest of ferkit
        ->  scripts (top-level *.py, scripts/, benchmarks/)

never upward, never in a cycle, never from one script to another, and importing a module
changes nothing in the process (no environment variables or TensorFlow settings on import).
Checked twice: by importing each package in a fresh interpreter and looking at what got loaded,
and by reading every .py file's imports (including those inside functions) with ast."""
import ast
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A group of modules imports only from its own group and lower layers. ferkit's base modules
# import nothing of ours but each other; the package `ferkit` itself (an import-free __init__)
# counts as base, every other ferkit module as "ferkit".
BASE_MODULES = ["ferkit", "ferkit.errors", "ferkit.files", "ferkit.backend", "ferkit.limits"]
LAYER = {"base": 0, "data": 1, "models": 2, "ferkit": 3}


def group(module):
    """The group of one of our modules; None for scripts and other people's modules."""
    if module in BASE_MODULES or any(module.startswith(b + ".") for b in BASE_MODULES[1:]):
        return "base"
    top = module.split(".")[0]
    return top if top in LAYER else None

SCRIPT_DIRS = ("scripts", "benchmarks")
SKIP_DIRS = {".venv", "tests", "runs", "__pycache__", ".git", "node_modules"}


def _python_files():
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith((".", "venv")))
        yield from (os.path.join(folder, f) for f in sorted(files) if f.endswith(".py"))


def _module_name(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


FILES = {_module_name(p): p for p in _python_files()}
PACKAGE_MODULES = {m for m in FILES if group(m)}
SCRIPTS = {m for m in FILES if m not in PACKAGE_MODULES}
# a script is imported by its file name (a top-level script, or a sibling put on sys.path)
SCRIPT_NAMES = SCRIPTS | {m.split(".")[-1] for m in SCRIPTS}


# ---------------------------------------------------------------- what an import loads


# One fresh interpreter imports the layers bottom-up, every module of each, and reports what each
# step loaded; a package that imported a higher one would load it in its own step. (One process
# instead of one per package: TensorFlow is imported once, not twice.)
IMPORT_LAYERS = """
import importlib, json, pkgutil, sys
loaded = {}
for name, modules in %r:
    before = set(sys.modules)
    for pkg in modules:
        found = importlib.import_module(pkg)
        if name != "base" and hasattr(found, "__path__"):
            for m in pkgutil.walk_packages(found.__path__, pkg + "."):
                importlib.import_module(m.name)
    loaded[name] = sorted(set(sys.modules) - before)
print(json.dumps(loaded))
"""


@pytest.mark.slow
def test_importing_a_package_loads_nothing_above_it():
    steps = [("base", BASE_MODULES), ("data", ["data"]), ("models", ["models"]), ("ferkit", ["ferkit"])]
    proc = subprocess.run([sys.executable, "-c", IMPORT_LAYERS % steps], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "ferkit.files" in loaded["base"] and "data" in loaded["data"]  # it did import them
    assert "models.registry" in loaded["models"] and "ferkit.train.loop" in loaded["ferkit"]
    for name, modules in loaded.items():
        above = sorted(m for m in modules if group(m) and LAYER[group(m)] > LAYER[name])
        assert not above, f"importing {name} loads {above}"
        scripts = sorted(set(modules) & SCRIPT_NAMES)
        assert not scripts, f"importing {name} loads the scripts {scripts}"


# ---------------------------------------------------------------- what the source says


def _imports(module):
    """(line, imported module) for every import statement of `module`, functions included;
    relative imports resolved, `from pkg import sub` read as the submodule when it is one."""
    tree = ast.parse(open(FILES[module]).read(), FILES[module])
    package = module if FILES[module].endswith("__init__.py") else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                yield node.lineno, f"{base}.{a.name}" if f"{base}.{a.name}" in FILES else base


def _violations(module):
    mine = group(module)
    where = os.path.relpath(FILES[module], ROOT)
    for line, target in _imports(module):
        top, theirs = target.split(".")[0], group(target)
        if target in SCRIPT_NAMES or top in SCRIPT_DIRS:
            yield f"{where}:{line} imports the script {target}"
        elif mine and theirs and theirs != mine and LAYER[theirs] >= LAYER[mine]:
            yield f"{where}:{line} imports {target}, which is not below {mine}"


def test_no_upward_import_and_no_script_imports_a_script():
    found = [v for m in sorted(FILES) for v in _violations(m)]
    assert not found, "\n".join(found)


def test_no_import_cycle_between_modules():
    graph = {m: {t for _, t in _imports(m) if t in PACKAGE_MODULES and t != m} for m in PACKAGE_MODULES}
    state, cycle = {}, []

    def visit(m, path):  # depth-first; a module met again on the current path closes a cycle
        state[m] = "open"
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                cycle.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycle, f"import cycles: {cycle}"


# Calls that change the process: by their last name anywhere, or under these prefixes.
SETTERS = {"configure_tensorflow", "plain_kernels_for_input_gradients", "set_global_policy", "set_random_seed",
           "os.putenv", "os.unsetenv", "matplotlib.use"}
SETTER_PREFIXES = ("os.environ.", "tf.config.", "tensorflow.config.", "keras.config.")


def _dotted(node):
    """'os.environ.setdefault' for the call os.environ.setdefault(...), 'os.environ' for os.environ[k]."""
    node = node.func if isinstance(node, ast.Call) else node.value if isinstance(node, ast.Subscript) else node
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join(([node.id] if isinstance(node, ast.Name) else []) + parts[::-1])


def _module_level(body):
    """The simple statements that run on import: the module's own and those inside its top-level
    if/try/with blocks, except under `if __name__ == "__main__":`; definitions run nothing."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, ast.If):
            if "__name__" not in ast.unparse(node.test):
                yield from _module_level(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            yield from _module_level(node.body + node.orelse + node.finalbody
                                     + [s for h in node.handlers for s in h.body])
        elif isinstance(node, ast.With):
            yield from _module_level(node.body)
        else:
            yield node


def _nodes(node):
    """ast.walk without descending into lambdas (their bodies run later, if ever)."""
    yield node
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, ast.Lambda):
            yield from _nodes(child)


def _side_effects(module):
    tree = ast.parse(open(FILES[module]).read(), FILES[module])
    for statement in _module_level(tree.body):
        for node in _nodes(statement):
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
                for target in getattr(node, "targets", [getattr(node, "target", None)]):
                    if isinstance(target, ast.Subscript) and _dotted(target) == "os.environ":
                        yield node.lineno, f"sets {ast.unparse(target)}"
            elif isinstance(node, ast.Call):
                name = _dotted(node)
                if name in SETTERS or name.rsplit(".", 1)[-1] in SETTERS or name.startswith(SETTER_PREFIXES) \
                        and not name.endswith((".get", ".list_physical_devices", ".list_logical_devices")):
                    yield node.lineno, f"calls {name}()"
                elif name.startswith("sys.path.") and module in PACKAGE_MODULES:
                    yield node.lineno, f"changes sys.path ({name})"  # scripts may: run from a subfolder


def test_no_module_changes_the_process_on_import():
    found = [f"{os.path.relpath(FILES[m], ROOT)}:{line} {what}" for m in sorted(FILES)
             for line, what in _side_effects(m)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("source,problem", [
    ("import os\nos.environ['TF_ENABLE_ONEDNN_OPTS'] = '0'\n", "sets os.environ['TF_ENABLE_ONEDNN_OPTS']"),
    ("import os\nos.environ.setdefault('A', '1')\n", "calls os.environ.setdefault()"),
    ("from ferkit.backend import configure_tensorflow\nconfigure_tensorflow()\n", "calls configure_tensorflow()"),
    ("import os\ntry:\n    import x\nexcept ImportError:\n    os.putenv('A', '1')\n", "calls os.putenv()"),
])
def test_the_side_effect_check_catches_what_it_should(tmp_path, monkeypatch, source, problem):
    # The check above passes on the real tree; here it must fail on each kind of effect, and not
    # on the same statement inside main() or under `if __name__ == "__main__":`.
    path = tmp_path / "probe.py"
    path.write_text(source)
    monkeypatch.setitem(FILES, "probe", str(path))
    assert [what for _, what in _side_effects("probe")] == [problem]
    indented = "".join("    " + line + "\n" for line in source.splitlines())
    path.write_text(f"def main():\n{indented}\nif __name__ == '__main__':\n{indented}")
    assert list(_side_effects("probe")) == []


def test_the_import_checks_catch_an_upward_import_and_a_script_import(tmp_path, monkeypatch):
    path = tmp_path / "probe.py"
    path.write_text("def f():\n    from ferkit.train import loop\n    import train_cnn\n    import data\n"
                    "    from ferkit import files\n")
    monkeypatch.setitem(FILES, "models.probe", str(path))
    assert [v.split(" ", 1)[1] for v in _violations("models.probe")] == [
        "imports ferkit.train.loop, which is not below models", "imports the script train_cnn"]
    monkeypatch.setitem(FILES, "data.probe", str(path))  # data is below models; ferkit's base below both
    assert [v.split(" ", 1)[1] for v in _violations("data.probe")] == [
        "imports ferkit.train.loop, which is not below data", "imports the script train_cnn"]
    path.write_text("import data\nimport models\n")
    monkeypatch.setitem(FILES, "ferkit.errors_probe", str(path))  # only the listed base modules are base
    assert list(_violations("ferkit.errors_probe")) == []
    monkeypatch.setitem(FILES, "ferkit.files.probe", str(path))
    assert [v.split(" ", 1)[1] for v in _violations("ferkit.files.probe")] == [
        "imports data, which is not below base", "imports models, which is not below base"]


def test_the_cycle_check_catches_a_cycle(tmp_path, monkeypatch):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from ferkit.report import b\n")
    b.write_text("def f():\n    from ferkit.report import a\n")
    monkeypatch.setitem(FILES, "ferkit.report.a", str(a))
    monkeypatch.setitem(FILES, "ferkit.report.b", str(b))
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE_MODULES", PACKAGE_MODULES | {"ferkit.report.a", "ferkit.report.b"})
    with pytest.raises(AssertionError, match="import cycles"):
        test_no_import_cycle_between_modules()


def test_no_function_over_60_lines_and_no_class_over_120():
    """Issue 26's size rule: a long function or class is several jobs waiting to be split."""
    long = []
    for path in _python_files():
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            size = getattr(node, "end_lineno", 0) - getattr(node, "lineno", 0) + 1
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and size > 60 \
                    or isinstance(node, ast.ClassDef) and size > 120:
                long.append(f"{os.path.relpath(path, ROOT)}:{node.lineno} {node.name} ({size} lines)")
    assert not long, long
