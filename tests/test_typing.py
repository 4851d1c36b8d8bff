"""rnnkit's types: py.typed ships with the package, mypy passes over the
package and its examples (configured in pyproject.toml, reading the
checked-in stub python/rnnkit/_core.pyi for the extension), and that stub
agrees with the built rnnkit._core: stubtest compares the names, and the
signatures pybind11 writes into the docstrings give the arguments.

mypy keeps its cache in .mypy_cache at the repository root, so runs after
the first check only what changed."""

import ast
import importlib
import importlib.resources
import inspect
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import rnnkit

try:
    import mypy  # noqa: F401
except ImportError:
    raise ImportError("tests/test_typing.py needs mypy, a test dependency: pip install -e '.[test]'") from None

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"
SOURCE = ROOT / "python"
STUB = SOURCE / "rnnkit" / "_core.pyi"


def _mypy(*args, sanitizer=False):
    """`python -m <args>` at the repository root, the checked-in sources first
    on mypy's path; the sanitizer's preload only where the extension is imported."""
    env = dict(os.environ, MYPYPATH=str(SOURCE))
    if not sanitizer:
        env.pop("LD_PRELOAD", None)
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def test_py_typed_ships_with_the_package():
    assert (SOURCE / "rnnkit" / "py.typed").is_file()
    # the imported package (an installed wheel, or the sources in an editable install) has it too
    assert importlib.resources.files(rnnkit).joinpath("py.typed").is_file()


def test_mypy_passes_over_the_package_and_examples():
    result = _mypy("mypy", "--config-file", str(CONFIG), "--cache-dir", str(ROOT / ".mypy_cache"))
    assert result.returncode == 0, (
        "mypy found type errors in python/rnnkit (annotations, the examples, or _core.pyi's types):\n"
        + result.stdout + result.stderr)


def test_core_stub_matches_the_extension():
    result = _mypy("mypy.stubtest", "rnnkit._core", "--mypy-config-file", str(CONFIG), sanitizer=True)
    assert result.returncode == 0, (
        "python/rnnkit/_core.pyi does not match the built rnnkit._core: add, remove or rename its "
        "entries to follow the bindings in src/ (stubtest's report below):\n" + result.stdout + result.stderr)


def _parameters(args):
    """[(name, has a default)] of an ast.arguments."""
    positional = args.posonlyargs + args.args
    defaults = [False] * (len(positional) - len(args.defaults)) + [True] * len(args.defaults)
    return [(a.arg, d) for a, d in zip(positional, defaults)]


def _stub_functions():
    """{name: parameters} of the stub's functions (an overloaded one: its first form)."""
    functions = {}
    for node in ast.parse(STUB.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef):
            functions.setdefault(node.name, _parameters(node.args))
    return functions


def _extension_parameters(function):
    """The parameters of a pybind11 function, from the signature that opens its docstring."""
    signature = function.__doc__.splitlines()[0].rsplit(" -> ", 1)[0]
    return _parameters(ast.parse(f"def {signature}: ...").body[0].args)


def test_core_stub_has_the_arguments_of_the_extension():
    stub = _stub_functions()
    assert len(stub) > 30, f"{STUB} holds only {len(stub)} functions"
    wrong = []
    for name, parameters in sorted(stub.items()):
        function = getattr(rnnkit._core, name, None)
        if function is None:
            continue  # test_core_stub_matches_the_extension names it
        found = _extension_parameters(function)
        # the same names in order; a default in the stub only where the extension has one
        if [n for n, _ in found] != [n for n, _ in parameters] or any(
                stub_default and not default for (_, stub_default), (_, default) in zip(parameters, found)):
            wrong.append(f"  {name}: the stub has {parameters},\n  {' ' * len(name)}  the extension {found}")
    assert not wrong, ("python/rnnkit/_core.pyi's arguments ((name, has a default) in order) differ from the built "
                       "rnnkit._core's (names must agree; a default in the stub needs one in the extension):\n"
                       + "\n".join(wrong))


# The modules whose public functions and classes make rnnkit's API, with
# every module of rnnkit.cells (_api_modules).
API_MODULES = ("rnnkit", "rnnkit.nn", "rnnkit.losses", "rnnkit.optimizers", "rnnkit.layers", "rnnkit.variables",
               "rnnkit.rnn", "rnnkit.bidirectional", "rnnkit.sequential", "rnnkit.callbacks", "rnnkit.generate",
               "rnnkit.checkpoint", "rnnkit.initializers", "rnnkit.random", "rnnkit.ops", "rnnkit.interop",
               "rnnkit.onnx", "rnnkit.tf_checkpoint", "rnnkit.charrnn", "rnnkit.distributed")


def _public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items()
                 if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__]
    return names


def _unannotated(function, where):
    """What `function` leaves without an annotation, as 'where(param)' and 'where -> return'."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return []
    missing = [f"{where}({p.name})" for p in signature.parameters.values()
               if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    if signature.return_annotation is inspect.Signature.empty and function.__name__ != "__init__":
        missing.append(f"{where} -> return")
    return missing


def _api_modules():
    """API_MODULES and the modules of rnnkit.cells (its bases and wrappers
    among them, which rnnkit itself does not export)."""
    cells = importlib.import_module("rnnkit.cells")
    return API_MODULES + tuple(m.name for m in pkgutil.iter_modules(cells.__path__, "rnnkit.cells."))


def _api_objects():
    """(name, object) of every public function and class of _api_modules()."""
    seen = {}
    for module_name in _api_modules():
        module = importlib.import_module(module_name)
        for name in _public_names(module):
            value = getattr(module, name)
            if (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__.startswith("rnnkit"):
                seen.setdefault(f"{value.__module__}.{value.__qualname__}", value)
    return sorted(seen.items())


def test_the_public_api_is_annotated():
    objects = _api_objects()
    # the cells' modules are found: a base class rnnkit does not export is among them
    assert "rnnkit.cells.wrappers.CellWrapper" in dict(objects), [name for name, _ in objects]
    missing = []
    for name, value in objects:
        if inspect.isfunction(value):
            missing += _unannotated(value, name)
            continue
        for attr, member in vars(value).items():
            if attr.startswith("_") and attr not in ("__init__", "__call__"):
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if isinstance(member, property):
                missing += _unannotated(member.fget, f"{name}.{attr}")
            elif inspect.isfunction(member):
                missing += _unannotated(member, f"{name}.{attr}")
    assert not missing, "public functions and methods without annotations:\n  " + "\n  ".join(missing)
