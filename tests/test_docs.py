"""The examples in README.md and in the docstrings run and say what they claim."""
from __future__ import annotations

import dataclasses
import doctest
import importlib
import importlib.util
import inspect
import pathlib
import pkgutil
import re

import numpy as np
import pytest

import fastembed

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks():
    """The README's runnable python blocks (the Embedding signature listing is not one)."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return [b for b in blocks if not b.lstrip().startswith("Embedding(")]


def test_readme_has_python_examples():
    assert len(_python_blocks()) >= 1


@pytest.mark.parametrize("block", _python_blocks())
def test_readme_python_blocks_run(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    if "Embedding(4, 3" in block:
        # the seed example: [0, 1, 2, 0] -> (4, 3); (32, 10) ids -> (32, 10, 3)
        layer = namespace["layer"]
        np.testing.assert_array_equal(layer(np.array([0, 1, 2, 0])),
                                      layer.weight[[0, 1, 2, 0]])
        assert namespace["y"].shape == (32, 10, 3)
        assert namespace["grad"].values.shape == (namespace["grad"].rows.size, 3)
    if "optim.Adam(layer" in block:
        # the training example learns: the table moved most of the way to its target
        layer, target = namespace["layer"], namespace["target"]
        assert np.mean((layer.weight - target) ** 2) < 0.5 * np.mean(target ** 2)
        assert set(namespace["checkpoint"]["state"][0]) == {"state1", "state2"}
    if "tiny.txt" in block:
        assert namespace["mapped"].weight.shape == (3, 2)
        assert (tmp_path / "tiny.npy.vocab").read_text() == "king\nqueen\napple\n"
    if "from fastembed import EmbeddingBag" in block:
        assert namespace["y"].shape == (3, 64) and namespace["y2"].shape == (2, 64)
        np.testing.assert_array_equal(namespace["y"][1], 0)  # the empty bag
        assert 0 not in namespace["grad"].rows  # padding never gets gradient
    if "class Model(nn.Module)" in block:
        # the composed model learns, and its parameters have the names the block prints
        assert namespace["losses"][0] > 0.6 and np.mean(namespace["losses"][-20:]) < 0.2
        assert namespace["accuracy"] > 0.95
        assert list(namespace["state"]) == ["bag.weight", "linear.weight", "linear.bias"]


# ---------------------------------------------------------------------------------------
# What "public" means, enforced below
# ---------------------------------------------------------------------------------------
#
# The public API is:
#   * the public modules: the package itself and the submodules listed here (plus
#     OPTIONAL_MODULES when their dependency is importable); each has an ``__all__``;
#   * every name in the ``__all__`` of a public module;
#   * every public method and property of a public class: a function, classmethod,
#     staticmethod or property without a leading underscore, defined in the class or in one
#     of its fastembed base classes (private bases such as ``_TableLayer`` included), not
#     inherited from ``object``, ``tuple`` or other classes outside fastembed. Data
#     attributes (dataclass and NamedTuple fields, class constants) are documented in the
#     class's ``Attributes`` or ``Parameters`` section instead.
#
# Every such function, class, method and property has a numpydoc docstring: a one-line
# summary, a ``Parameters`` section naming every parameter beyond ``self``/``cls`` when it
# takes any (for a NamedTuple or a dataclass: its fields), and an ``Examples`` section with
# ``>>>`` doctests (run by ``pytest --doctest-modules fastembed``).
# A module docstring has a summary and an ``Examples`` section too. Names that cannot hold a
# collected doctest of their own (constants, and functions compiled by Cython, whose
# docstrings live in .pyx files that ``--doctest-modules`` does not collect) must appear in a
# ``>>>`` line of the ``Examples`` section of the module that exports them.
#
# Private modules (a leading underscore: the compiled kernels in ``_ext``, ``_validation``,
# ``_rows``, ``_bags``, ``_atomic``) are not API. The command-line program (``__main__``) is a
# tool rather than library API: its doctests still run, but its names are not enumerated here.

PUBLIC_MODULES = (
    "fastembed", "fastembed.functional", "fastembed.nn", "fastembed.optim", "fastembed.models",
    "fastembed.text", "fastembed.train", "fastembed.vectors", "fastembed.models.word2vec",
    "fastembed.io", "fastembed.datasets", "fastembed.models.classifier", "fastembed.cli",
    "fastembed.nn.embedding", "fastembed.nn.linear", "fastembed.nn.parameter",
    "fastembed.nn.pooling", "fastembed.nn.losses", "fastembed.nn.module", "fastembed.subwords",
)
# Public when their optional dependency is installed (and the module exists).
OPTIONAL_MODULES = {"fastembed.dask": "dask"}
TOOL_MODULES = ("fastembed.__main__",)
# Module-level helpers without a leading underscore that are not API.
INTERNAL_HELPERS = {"fastembed.vectors": {"vectors_from_checked"}}  # for fastembed.io

_PACKAGE_DIR = pathlib.Path(fastembed.__file__).resolve().parent
_SECTION = re.compile(r"^([A-Z][A-Za-z ]*)\n(-+)[ \t]*$", re.M)
_SIGNATURE_LINE = re.compile(r"^\w+\(.*\)(\s*->.*)?$")  # Cython's embedsignature line


def _public_module_names():
    names = list(PUBLIC_MODULES)
    for name, dependency in OPTIONAL_MODULES.items():
        exists = (_PACKAGE_DIR / (name.rsplit(".", 1)[1] + ".py")).exists()
        if exists and importlib.util.find_spec(dependency) is not None:
            names.append(name)
    return names


def _public_modules():
    return [importlib.import_module(name) for name in _public_module_names()]


def _doc(obj):
    """The cleaned docstring, without an embedded signature line (compiled functions)."""
    doc = inspect.cleandoc(obj.__doc__) if isinstance(obj.__doc__, str) else ""
    lines = doc.splitlines()
    if lines and _SIGNATURE_LINE.match(lines[0]) and len(lines) > 1 and not lines[1].strip():
        doc = "\n".join(lines[2:])
    return doc


def _sections(doc):
    """{title: body} of the numpydoc sections of a cleaned docstring."""
    found = [m for m in _SECTION.finditer(doc) if len(m.group(2)) >= len(m.group(1))]
    return {m.group(1): doc[m.end():found[k + 1].start() if k + 1 < len(found) else len(doc)]
            for k, m in enumerate(found)}


def _class_members(cls):
    """{name: (object, kind)}: the public methods and properties of a public class."""
    members = {}
    for klass in cls.__mro__:
        if not klass.__module__.startswith("fastembed"):
            continue  # object, tuple, Exception ...: not ours
        for name, value in vars(klass).items():
            if name.startswith("_") or name in members:
                continue
            if isinstance(value, (classmethod, staticmethod)):
                members[name] = (value.__func__, "method")
            elif isinstance(value, property):
                members[name] = (value, "property")
            elif inspect.isfunction(value):
                members[name] = (value, "method")
            else:  # data; it also hides a base class's member of that name
                members[name] = (None, "data")
    return {name: m for name, m in members.items() if m[1] != "data"}


def _fields(cls):
    """The data fields of a NamedTuple or a dataclass (their constructor's parameters)."""
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    return list(getattr(cls, "_fields", ()))


def _public_api():
    """{qualified name: (object, kind, exporting module)} of every public name.

    An object exported by several modules (``fastembed.Embedding`` is
    ``fastembed.nn.Embedding``) is listed once, under its submodule's name.
    """
    api = {}
    named = {}  # id(object) -> its qualified name, for functions and classes
    modules = _public_modules()
    for module in sorted(modules, key=lambda m: m.__name__ == "fastembed"):
        api[module.__name__] = (module, "module", module)
        for name in getattr(module, "__all__", ()):  # a missing __all__ fails below
            obj = getattr(module, name, None)
            if inspect.ismodule(obj):
                continue  # checked as a public module in its own right
            if inspect.isclass(obj) or callable(obj):
                if id(obj) in named:
                    continue
                named[id(obj)] = qualname = f"{module.__name__}.{name}"
            else:
                qualname = f"{module.__name__}.{name}"
            if inspect.isclass(obj):
                api[qualname] = (obj, "class", module)
                for member, (value, kind) in _class_members(obj).items():
                    api[f"{qualname}.{member}"] = (value, kind, module)
            elif inspect.isfunction(obj):
                api[qualname] = (obj, "function", module)
            elif callable(obj):
                api[qualname] = (obj, "compiled", module)
            else:
                api[qualname] = (obj, "data", module)
    return api


_API = _public_api()


def _parameters(obj, kind):
    """The names of the parameters a caller passes (``self`` and ``cls`` left out)."""
    if kind in ("property", "module", "data"):
        return []
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):  # e.g. an Exception subclass: no signature
        return []
    if kind == "method" and params and params[0].name in ("self", "cls"):
        params = params[1:]
    return [p.name for p in params]


def _documented_parameters(section):
    """Names a numpydoc Parameters section describes (``a, b : int``, ``*arrays``, ...)."""
    names = set()
    for line in section.splitlines():
        if line.strip() and not line[0].isspace():
            names.update(n.strip().lstrip("*") for n in line.split(":")[0].split(","))
    return names


def _shown_in_examples(name, module):
    """Whether ``name`` appears in a ``>>>`` or ``...`` line of the module's Examples."""
    examples = _sections(_doc(module)).get("Examples", "")
    pattern = re.compile(rf"^\s*(?:>>>|\.\.\.) .*(?<!\w){re.escape(name)}(?!\w)", re.M)
    return bool(pattern.search(examples))


def test_every_module_is_classified():
    """A new module must be declared public, optional, a tool or private (a leading _)."""
    known = set(PUBLIC_MODULES) | set(OPTIONAL_MODULES) | set(TOOL_MODULES)
    for info in pkgutil.walk_packages([str(_PACKAGE_DIR)], prefix="fastembed."):
        private = any(part.startswith("_") for part in info.name.split(".")[1:])
        name = info.name
        assert name in known or (private and name not in TOOL_MODULES), (
            f"{name} is neither private (a leading underscore) nor listed in PUBLIC_MODULES, "
            f"OPTIONAL_MODULES or TOOL_MODULES of tests/test_docs.py")


@pytest.mark.parametrize("module_name", _public_module_names())
def test_public_module_all_is_exact(module_name):
    """``__all__`` exists, names only real objects, and lists every public function/class."""
    module = importlib.import_module(module_name)
    assert hasattr(module, "__all__"), f"{module_name} has no __all__"
    names = list(module.__all__)
    assert len(names) == len(set(names)), f"{module_name}.__all__ repeats a name"
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{module_name}.__all__ names missing objects {missing}"
    for name in names:
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            assert obj.__name__ in _public_module_names(), (
                f"{module_name}.__all__ exports {obj.__name__}, which is not a public module")
    unlisted = sorted(
        name for name, value in vars(module).items()
        if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
        and getattr(value, "__module__", None) == module_name and name not in names
        and name not in INTERNAL_HELPERS.get(module_name, ()))
    assert not unlisted, (f"{module_name} defines public-looking {unlisted} that are not in "
                          f"__all__: list them, or make them private")


def test_public_api_is_enumerated():
    kinds = {kind for _, kind, _ in _API.values()}
    assert {"module", "class", "function", "method", "property"} <= kinds
    for name in ("fastembed.nn.Embedding.from_pretrained", "fastembed.optim.Adam.step",
                 "fastembed.functional.SparseGrad.to_dense", "fastembed.text.Vocab.total",
                 "fastembed.models.word2vec.corpus_sentences", "fastembed.get_num_threads",
                 "fastembed.text.TOKEN_PATTERN", "fastembed.__version__"):
        assert name in _API, name


@pytest.mark.parametrize("qualname", sorted(_API))
def test_public_name_has_numpydoc(qualname):
    obj, kind, module = _API[qualname]
    name = qualname.rsplit(".", 1)[-1]
    if kind == "data":
        assert _shown_in_examples(name, module), (
            f"{qualname} is a constant: show it in a >>> line of the Examples section of "
            f"{module.__name__}'s docstring")
        return
    doc = _doc(obj)
    assert doc.strip(), f"{qualname} has no docstring"
    lines = doc.splitlines()
    assert lines[0].strip() and (len(lines) == 1 or not lines[1].strip()), (
        f"{qualname}: the docstring must open with a one-line summary and a blank line")
    sections = _sections(doc)
    parameters = _parameters(obj, kind)
    if parameters:
        assert "Parameters" in sections, f"{qualname} takes parameters: add a Parameters section"
        missing = [p for p in parameters
                   if p not in _documented_parameters(sections["Parameters"])]
        assert not missing, f"{qualname}: the Parameters section does not describe {missing}"
    if kind == "class":
        described = sections.get("Parameters", "") + sections.get("Attributes", "")
        undocumented = [f for f in _fields(obj)
                        if not re.search(rf"^{re.escape(f)}\b|, {re.escape(f)}\b", described,
                                         re.M)]
        assert not undocumented, f"{qualname}: describe the fields {undocumented}"
    if kind == "compiled":
        assert _shown_in_examples(name, module), (
            f"{qualname} is compiled (its doctests would not be collected): show it in a >>> "
            f"line of the Examples section of {module.__name__}'s docstring")
        return
    assert ">>>" in sections.get("Examples", ""), (
        f"{qualname}: add an Examples section with >>> doctests")


@pytest.mark.parametrize("module_name", _public_module_names() + list(TOOL_MODULES))
def test_docstring_examples(module_name):
    """The doctests of every public module run (``pytest --doctest-modules fastembed`` too)."""
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE
                             | doctest.ELLIPSIS)
    if module_name not in TOOL_MODULES:
        assert result.attempted > 0
    assert result.failed == 0


def test_main_without_command_prints_seed_example_and_commands(capsys):
    from fastembed.__main__ import main

    assert main([]) == 0
    out = capsys.readouterr().out
    assert "layer(np.array([0, 1, 2, 0]))" in out
    assert "(32, 10, 3)" in out
    for command in ("word2vec", "similar", "classify"):
        assert command in out
    assert "bench" not in out.split("positional arguments")[1]  # benchmarks live in bench/
