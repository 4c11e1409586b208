"""The public surface has no traps: read from gradlab's source (AST) and its imported packages.

* no module shadowed by a function (or anything else) of the same name in its package, so
  ``import gradlab.optim.projection as m`` and ``gradlab.optim.projection`` are one object;
* no private name reached across modules (``from gradlab.x._y import _z``, or ``_mod._name`` on
  an imported gradlab module): what two modules share is public in its home module;
* no import cycle among gradlab's modules (module-level imports, the ones that run on import);
* every ``__all__`` sorted (constants, classes, then the rest) and naming what the module has.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import gradlab

ROOT = Path(gradlab.__file__).parent

# Areas another branch is rewriting; each entry leaves with its branch's merge.
IN_FLIGHT: tuple[str, ...] = ()  # modules being rewritten on another branch (none now)
# Modules that reach a private name of a module being edited on f2; they leave with its merge.
WAITING_ON_F2: dict[str, str] = {}


def _in_flight(module: str) -> bool:
    return any(module == a or module.startswith(a + ".") for a in IN_FLIGHT)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_package(module: str) -> bool:
    return SOURCES[module].name == "__init__.py"


def _resolve(module: str, level: int, target: str | None, here: str) -> str:
    """The absolute name of ``from <level dots><target> import ...`` written in ``here``."""
    if level == 0:
        return target or ""
    base = here.split(".")
    base = base if _is_package(here) else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _module_level_imports(tree: ast.Module):
    """Import statements that run when the module is imported (not in defs, not TYPE_CHECKING)."""

    def visit(body):
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                yield node
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    yield from visit(node.body)
                yield from visit(node.orelse)
            elif isinstance(node, ast.Try):
                for part in (
                    node.body,
                    node.orelse,
                    node.finalbody,
                    *(h.body for h in node.handlers),
                ):
                    yield from visit(part)

    yield from visit(tree.body)


def _trees():
    return {m: ast.parse(p.read_text(encoding="utf-8"), str(p)) for m, p in SOURCES.items()}


TREES = _trees()


# ---- shadowing --------------------------------------------------------------------------------


def _submodules():
    out = []
    for info in pkgutil.walk_packages(gradlab.__path__, "gradlab."):
        if info.name.rsplit(".", 1)[-1] != "__main__":
            out.append(info.name)
    return out


def _names_bound_in(package: str) -> dict[str, str]:
    """``{name: what binds it}`` for the names a package's ``__init__`` binds to anything but its
    own submodule of that name (an import of a function, a def, a class, an assignment)."""
    out = {}
    for node in TREES[package].body:
        if isinstance(node, ast.ImportFrom):
            source = _resolve(node.module or "", node.level, node.module, package)
            for a in node.names:
                if f"{source}.{a.name}" != f"{package}.{a.asname or a.name}":
                    out[a.asname or a.name] = f"from {source} import {a.name}"
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            out[node.name] = f"def {node.name}"
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = f"{t.id} = ..."
    return out


@pytest.mark.parametrize("module", _submodules())
def test_no_module_shadowed_by_a_name_in_its_package(module):
    parent_name, _, leaf = module.rpartition(".")
    binding = _names_bound_in(parent_name).get(leaf)
    assert binding is None, (
        f"{parent_name}/__init__.py binds {leaf!r} ({binding}), shadowing the module {module}: "
        "rename the module after its idea"
    )
    mod = importlib.import_module(module)
    assert getattr(importlib.import_module(parent_name), leaf) is mod


# ---- private names across modules -----------------------------------------------------------


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_reaches(module: str, tree: ast.Module) -> list[str]:
    """``from gradlab... import _name`` and ``alias._name`` on an imported gradlab module."""
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _resolve(node.module or "", node.level, node.module, module)
            if not source.startswith("gradlab"):
                continue
            for a in node.names:
                full = f"{source}.{a.name}"
                if full in SOURCES:  # a module imported by name: track its alias
                    aliases[a.asname or a.name] = full
                elif _private(a.name):
                    found.append(f"line {node.lineno}: from {source} import {a.name}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("gradlab") and a.asname:
                    aliases[a.asname] = a.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and _private(node.attr)
            and f"{aliases[node.value.id]}.{node.attr}" not in SOURCES  # a private submodule
        ):
            found.append(
                f"line {node.lineno}: {node.value.id}.{node.attr} ({aliases[node.value.id]})"
            )
    return found


@pytest.mark.parametrize(
    "module", [m for m in SOURCES if not _in_flight(m) and m not in WAITING_ON_F2]
)
def test_no_private_name_reached_across_modules(module):
    found = _private_reaches(module, TREES[module])
    assert not found, f"{module} uses private names of other modules: {found}"


def test_the_private_access_scan_catches_both_forms():
    planted = ast.parse(
        "from gradlab.derivations import mse as _mse\n"
        "from gradlab.derivations._derivation import _hidden\n"
        "def f(p):\n    return _mse._check(p)\n"
    )
    found = _private_reaches("gradlab.derivations.elastic_net", planted)
    assert len(found) == 2, found


# ---- import cycles ------------------------------------------------------------------------------


def _edges(module: str, tree: ast.Module) -> set[str]:
    out = set()
    for node in _module_level_imports(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in SOURCES}
            continue
        source = _resolve(node.module or "", node.level, node.module, module)
        if source not in SOURCES:
            continue
        subs = {f"{source}.{a.name}" for a in node.names} & SOURCES.keys()
        out |= subs
        if len(subs) < len(node.names):  # some names are attributes of the module itself
            out.add(source)
    out.discard(module)
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state and (found := visit(n)) is not None:
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)) is not None:
            return found
    return None


def test_no_import_cycle_among_gradlab_modules():
    graph = {m: _edges(m, t) for m, t in TREES.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


# ---- __all__ ------------------------------------------------------------------------------------


def _sort_key(name: str):
    """ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then the rest; natural within."""
    group = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return group, [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _declared_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    return None


@pytest.mark.parametrize("module", [m for m in SOURCES if _declared_all(TREES[m]) is not None])
def test_all_is_sorted_and_names_what_the_module_has(module):
    names = _declared_all(TREES[module])
    assert names is not None
    if not _in_flight(module):
        assert names == sorted(names, key=_sort_key), f"{module}.__all__ is not sorted"
    assert len(set(names)) == len(names), f"{module}.__all__ repeats a name"
    mod = importlib.import_module(module)
    missing = [n for n in names if not hasattr(mod, n)]
    assert not missing, f"{module}.__all__ names what it does not have: {missing}"


def test_top_level_all_lists_every_subpackage_and_public_module():
    public = {
        info.name
        for info in pkgutil.iter_modules(gradlab.__path__)
        if not info.name.startswith("_") and info.name not in ("cli", "pytest_plugin")
    }
    assert public <= set(gradlab.__all__), sorted(public - set(gradlab.__all__))
