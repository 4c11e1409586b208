"""Load a notebook (``.ipynb``, read with ``nbformat``) or a script (``.py``) as code cells.

A script is split into cells at ``# %%`` markers (the percent format of Jupytext, VS Code and
Spyder); without markers, each top-level statement is its own cell, so one failing statement does
not stop the rest. IPython magics and shell escapes (``%matplotlib``, ``!pip``) cannot run as
Python: they are blanked out (line numbers kept) and listed.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import re
from pathlib import Path
from typing import Any


class AuditError(ValueError):
    """A document that cannot be audited at all (unreadable, not a notebook, not Python)."""


class DocKind(enum.Enum):
    NOTEBOOK = "notebook"
    SCRIPT = "script"


@dataclasses.dataclass(frozen=True)
class Cell:
    """One code cell: its number (the notebook's cell index, markdown counted) and its code."""

    index: int
    source: str
    first_line: int = 1  # the cell's first line in a script (1 in a notebook)
    magics: tuple[int, ...] = ()  # lines (1-based, in the cell) blanked out as IPython magics
    statement: bool = False  # one top-level statement of a script without cell markers

    @property
    def label(self) -> str:
        return f"line {self.first_line}" if self.statement else f"cell {self.index}"

    def at(self, line: int) -> str:
        """Where ``line`` (the file's line in a script, the cell's in a notebook) is."""
        return f"line {line}" if self.statement else f"{self.label}, line {line}"

    @property
    def filename(self) -> str:
        """The name its code is compiled under: how a function's ``co_filename`` finds its cell."""
        return f"<gradlab-audit cell {self.index}>"


@dataclasses.dataclass(frozen=True)
class Document:
    """A notebook or script as code cells; ``notebook`` is the nbformat node (None for scripts)."""

    path: Path
    kind: DocKind
    cells: tuple[Cell, ...]
    markdown: tuple[tuple[int, str], ...] = ()  # (index, text) of each markdown cell
    notebook: Any = None

    def cell_of(self, filename: str) -> Cell | None:
        return next((c for c in self.cells if c.filename == filename), None)


_MAGIC = re.compile(r"^\s*(%|!)")
_PERCENT = re.compile(r"^# ?%%")


def _strip_magics(source: str) -> tuple[str, tuple[int, ...]]:
    lines = source.splitlines()
    blanked = tuple(i + 1 for i, line in enumerate(lines) if _MAGIC.match(line))
    for i in blanked:
        lines[i - 1] = ""
    return "\n".join(lines), blanked


def _load_notebook(path: Path) -> Document:
    try:
        import nbformat
    except ModuleNotFoundError as err:
        raise AuditError(
            f"{path}: reading notebooks needs nbformat: pip install 'gradlab[notebook]'"
        ) from err
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as err:  # noqa: BLE001 - nbformat raises JSON, schema and OS errors alike
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AuditError(
            f"{path}: not a readable notebook ({type(err).__name__}: {first})"
        ) from None
    cells, markdown = [], []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            source, magics = _strip_magics(cell.source)
            cells.append(Cell(i, source, 1, magics))
        elif cell.cell_type == "markdown":
            markdown.append((i, cell.source))
    return Document(path, DocKind.NOTEBOOK, tuple(cells), tuple(markdown), nb)


def _load_script(path: Path) -> Document:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _PERCENT.match(line)]
    if starts:
        bounds = ([0] if starts[0] else []) + starts + [len(lines)]
        spans = [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if a < b]
    else:
        try:
            tree = ast.parse(text)
        except SyntaxError as err:
            raise AuditError(f"{path}: line {err.lineno}: not valid Python ({err.msg})") from err
        spans = []
        for node in tree.body:
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            spans.append((first - 1, node.end_lineno or node.lineno))
    cells = []
    for k, (a, b) in enumerate(spans):
        source, magics = _strip_magics("\n".join(lines[a:b]))
        cells.append(Cell(k, source, a + 1, magics, statement=not starts))
    return Document(path, DocKind.SCRIPT, tuple(cells))


def load(path: str | Path) -> Document:
    """The document at ``path``: ``.ipynb`` as a notebook, anything else as a Python script.

    Raises:
      AuditError: the file is missing, not valid notebook JSON, or (a script) not valid Python.
    """
    path = Path(path)
    if not path.is_file():
        raise AuditError(f"{path}: no such file")
    if path.suffix == ".ipynb":
        return _load_notebook(path)
    return _load_script(path)
