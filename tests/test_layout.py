"""The package's layout rules, read from its source: no import cycle, no private name of one
module used by another, and a wheel that holds the library only (no benchmark or test code).

Private *modules* (``_rows``, ``_validation``, ``_ext.indexing`` ...) are how modules share
code; a private *name* (``_helper``, ``obj._method``) stays inside the module that defines it.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

import fastembed

PACKAGE = pathlib.Path(fastembed.__file__).resolve().parent


def _modules():
    """{dotted name: (path, is a package)} for every .py file of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        found[name] = (path, is_package)
    return found


MODULES = _modules()


def _resolve(module, is_package, level, target):
    """The absolute module name of a (possibly relative) import in ``module``."""
    if level == 0:
        return target
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports(name):
    """[(line, imported module, [names imported from it])] of a module, top level and nested."""
    path, is_package = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(name, is_package, node.level, node.module or "")
            found.append((node.lineno, target, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names]
    return found


def _internal_dependencies(name):
    """The package's modules that ``name`` imports (``from . import x`` counts as x)."""
    deps = set()
    for _, target, names in _imports(name):
        submodules = {f"{target}.{n}" for n in names} & set(MODULES)
        # `from . import optim` imports the module optim (the package is already loading);
        # `from .nn import Linear` runs nn/__init__.py.
        for candidate in (submodules if len(submodules) == len(names) else {target}):
            if candidate in MODULES and candidate != name:
                deps.add(candidate)
    return deps


def test_the_modules_are_found():
    assert {"fastembed", "fastembed.functional", "fastembed.nn.embedding",
            "fastembed.models.word2vec", "fastembed._validation"} <= set(MODULES)


def test_no_import_cycle():
    graph = {name: _internal_dependencies(name) for name in MODULES}
    # A package's __init__ re-exports its submodules; an import of the package by one of its
    # own submodules would be a cycle, an import of a submodule by __init__ is not.
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                cycle = stack[stack.index(dep):] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_private_name_crosses_modules(name):
    """``from .x import _y`` and ``module._y`` for another module of the package are refused."""
    path, _ = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = []
    for lineno, target, names in _imports(name):
        if target.startswith("fastembed") and target != name:
            bad += [f"line {lineno}: from {target} import {n}" for n in names
                    if n.startswith("_") and not n.startswith("__")
                    and f"{target}.{n}" not in MODULES]  # a private module is fine
    # attribute access on objects of other modules: obj._name where obj is not self/cls
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id not in ("self", "cls", "np", "sys", "os", "numbers", "ctypes")):
            defined_here = any(
                isinstance(d, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                and d.name == node.attr for d in ast.walk(tree)
            ) or any(
                isinstance(d, ast.Attribute) and d.attr == node.attr
                and isinstance(d.ctx, ast.Store) for d in ast.walk(tree)
            ) or any(  # a class annotation, or setattr(obj, "_name", ...)
                (isinstance(d, ast.AnnAssign) and isinstance(d.target, ast.Name)
                 and d.target.id == node.attr)
                or (isinstance(d, ast.Constant) and d.value == node.attr)
                for d in ast.walk(tree)
            )
            if not defined_here:
                bad.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    assert not bad, f"{name} uses private names of other modules: {bad}"


def test_the_package_holds_no_benchmark_or_test_code():
    names = {p.name for p in PACKAGE.rglob("*.py")}
    assert not {n for n in names if n.startswith(("bench", "test_", "fuzz"))}, names
    for name in MODULES:
        for _, target, _names in _imports(name):
            assert not target.startswith(("matplotlib", "pytest", "torch", "gensim")), (
                f"{name} imports {target}: the library depends on NumPy (and tqdm) only")
