"""Read the cells' code as syntax: where each function is, markers, call sites, untraceable lines
and gradients computed inline.

Everything here reads the AST; nothing runs user code.
"""

from __future__ import annotations

import ast
import dataclasses
import re

from gradlab.audit._document import Cell, Document

MARKER = re.compile(r"#\s*gradlab:\s*grad(?:ient)?\s+of\s+([A-Za-z_][\w.]*)", re.IGNORECASE)
GRAD_NAME = re.compile(
    r"^(d[A-Z]\w*|d_\w+|d[a-z]\d*|d(w|b|theta|x|z|a|h|y|loss|cost|j|out|params?|weights?|bias|mu|sigma|"
    r"pi|s|logits?|beta|alpha)\d*|grad\w*|gradients?|\w*_grads?|\w*_gradients?|nabla\w*)$"
)
INPLACE_METHODS = {"sort", "fill", "resize", "put", "itemset", "partition", "setflags"}


# A ``def`` or ``async def`` node.
FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclasses.dataclass(frozen=True)
class Def:
    """A function or method definition in a cell: ``qualname`` is ``f`` or ``Class.method``."""

    qualname: str
    cell: Cell
    node: FunctionNode
    cls: str | None = None

    @property
    def where(self) -> str:
        return self.cell.at(self.node.lineno)


@dataclasses.dataclass(frozen=True)
class Finding:
    """Code jax cannot trace, by line: ``what`` says which construct."""

    qualname: str
    cell: Cell
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.qualname} ({self.cell.at(self.line)}): {self.what}"


@dataclasses.dataclass(frozen=True)
class CallSite:
    """A call ``name(...)`` in a cell; ``top_level`` when not inside a def (names are globals)."""

    cell: Cell
    line: int
    node: ast.Call
    top_level: bool


class Source:
    """The parsed cells of a document."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.trees: dict[int, ast.Module] = {}
        for cell in doc.cells:
            try:
                pad = "\n" * (cell.first_line - 1)
                self.trees[cell.index] = ast.parse(pad + cell.source)
            except SyntaxError:
                continue
        self.defs: dict[str, Def] = {}  # the last definition of each name (as the run leaves it)
        self.all_defs: list[Def] = []  # every definition, redefinitions included
        self.classes: dict[str, tuple[Cell, ast.ClassDef]] = {}
        for cell in doc.cells:
            tree = self.trees.get(cell.index)
            for node in tree.body if tree else ():
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.defs[node.name] = Def(node.name, cell, node)
                    self.all_defs.append(self.defs[node.name])
                elif isinstance(node, ast.ClassDef):
                    self.classes[node.name] = (cell, node)
                    for sub in node.body:
                        if isinstance(sub, ast.FunctionDef):
                            q = f"{node.name}.{sub.name}"
                            self.defs[q] = Def(q, cell, sub, node.name)
                            self.all_defs.append(self.defs[q])

    # ---- lookups ----------------------------------------------------------------------------

    def def_of(self, fn) -> Def | None:
        """The definition of a function object made by a cell (by code file name and line)."""
        code = getattr(fn, "__code__", None)
        if code is None:
            return None
        for d in self.defs.values():
            first = min([d.node.lineno] + [x.lineno for x in d.node.decorator_list])
            if d.cell.filename == code.co_filename and first == code.co_firstlineno:
                return d
        return None

    def markers(self) -> list[tuple[Def, str]]:
        """``(gradient def, loss name)`` for each ``# gradlab: grad of NAME`` comment: in a def's
        body or on the lines right above it."""
        out = []
        for d in self.defs.values():
            lines = d.cell.source.splitlines()
            off = d.cell.first_line - 1
            first = min([d.node.lineno] + [x.lineno for x in d.node.decorator_list]) - off
            above = first - 2
            while above >= 0 and lines[above].lstrip().startswith("#"):
                above -= 1
            span = lines[above + 1 : (d.node.end_lineno or d.node.lineno) - off]
            for text in span:
                m = MARKER.search(text)
                if m:
                    out.append((d, m.group(1)))
                    break
        return out

    def call_sites(self, name: str) -> list[CallSite]:
        """Calls of ``name`` (a bare name, or an attribute ``obj.name``) in every cell, in order."""
        out = []
        for cell in self.doc.cells:
            tree = self.trees.get(cell.index)
            if tree is None:
                continue
            nested: set[int] = set()
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    nested.update(id(n) for n in ast.walk(node) if n is not node)
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                f = node.func
                called = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
                if called == name:
                    out.append(CallSite(cell, node.lineno, node, id(node) not in nested))
        return sorted(out, key=lambda s: (s.cell.index, s.line))

    # ---- what a loss does ---------------------------------------------------------------------

    def callees(self, d: Def) -> list[Def]:
        """``d`` and the cell-defined functions and same-class methods it calls, transitively."""
        seen, todo = {d.qualname: d}, [d]
        while todo:
            cur = todo.pop()
            for node in ast.walk(cur.node):
                if not isinstance(node, ast.Call):
                    continue
                f, q = node.func, None
                if isinstance(f, ast.Name):
                    q = f.id
                elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                    if f.value.id == "self" and cur.cls:
                        q = f"{cur.cls}.{f.attr}"
                if q in self.defs and q not in seen:
                    seen[q] = self.defs[q]
                    todo.append(self.defs[q])
        return list(seen.values())

    def untraceable(self, d: Def) -> list[Finding]:
        """Lines of ``d`` and what it calls that jax cannot trace once numpy is jax.numpy."""
        out = []
        for cur in self.callees(d):
            for node in ast.walk(cur.node):
                what = _untraceable_node(node)
                if what:
                    out.append(Finding(cur.qualname, cur.cell, getattr(node, "lineno", 0), what))
        return sorted(out, key=lambda f: (f.cell.index, f.line))

    def inline_gradients(self, d: Def) -> list[tuple[int, str]]:
        """``(line, source)`` of assignments to gradient-like names inside ``d`` (a training loop
        computing its gradient inline, with no function to check on its own)."""
        out = []
        for node in ast.walk(d.node):
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AnnAssign):
                targets = [node.target]
            else:
                continue
            for t in targets:
                if isinstance(t, ast.Name) and GRAD_NAME.match(t.id):
                    out.append((node.lineno, ast.unparse(node)[:80]))
        return out


def _is_np(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("np", "numpy")


def _untraceable_node(node: ast.AST) -> str | None:
    if isinstance(node, (ast.Assign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for t in targets:
            if isinstance(t, ast.Subscript):
                return f"in-place write `{ast.unparse(node)[:60]}`"
    if isinstance(node, ast.Call):
        f = node.func
        text = ast.unparse(f)
        if isinstance(f, ast.Attribute):
            inner = f.value
            if (
                _is_np(inner)
                and f.attr == "random"
                or (
                    isinstance(inner, ast.Attribute)
                    and _is_np(inner.value)
                    and inner.attr == "random"
                )
            ):
                return f"random draw `{text}(...)` (np.random)"
            if f.attr in INPLACE_METHODS and not _is_np(inner):
                return f"in-place method `{text}()`"
            if f.attr == "item":
                return f"`{text}()` turns an array into a Python number"
            if _is_np(inner) and any(k.arg == "out" for k in node.keywords):
                return f"`{text}(..., out=...)` writes in place"
            if isinstance(inner, ast.Attribute) and f.attr == "at" and _is_np(inner.value):
                return f"unbuffered in-place `{text}`"
        if any(k.arg == "out" for k in node.keywords) and isinstance(f, ast.Attribute):
            return f"`{text}(..., out=...)` writes in place"
    return None


def gradient_math(doc: Document) -> list[int]:
    """Markdown cells that derive a gradient in math (nabla, partial derivatives)."""
    pat = re.compile(r"\\nabla|∇|\\partial|∂")
    return [i for i, text in doc.markdown if pat.search(text)]
