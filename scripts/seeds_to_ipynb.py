"""Convert the seed notebooks rendered as text (``../shared/seeds/*.txt``) back into ``.ipynb``.

A rendered notebook is markdown, then ``In [N]:`` followed by the cell's code, then (sometimes)
its output, then markdown again. Where a code cell ends is not marked, so after each blank line
inside a code cell the next block of lines (up to the next blank line) is classified:

- the block right after ``In [N]:`` is code; an ``In [..]:`` line starts the next code cell;
- a block that looks like an output (``array(``, a number, a repr, an ``...Error:`` line) ends
  the code and becomes the cell's ``text/plain`` output;
- a block after code that does not parse yet (a docstring spanning a blank line) is code;
- a block that parses as Python and holds a statement (not only a bare name or constant) is code;
- a block of comments only is code when the block after it is code (``# Example usage``), else
  markdown (``## 4. Mirror Descent``);
- anything else ends the code: markdown.

The code itself is never edited. Usage::

    python scripts/seeds_to_ipynb.py ../shared/seeds tests/fixtures/seeds
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import nbformat

IN_PROMPT = re.compile(r"^In \[[^\]]*\]:\s*$")
OUTPUT_START = re.compile(
    r"^(array\(|np\.\w+\(|\(array|-?\d|True\b|False\b|None\b|<|\[|\{|'|"
    r"\w+(Error|Exception|Interrupt|Warning)\b.*:)"
)


def _blocks(lines: list[str], start: int) -> tuple[list[str], int]:
    """The block of non-blank lines starting at ``start`` (skipping leading blanks), and its end."""
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    j = i
    while j < len(lines) and lines[j].strip() and not (j > i and IN_PROMPT.match(lines[j])):
        j += 1
    return lines[i:j], j


def _kind(block: list[str]) -> str:
    """``"prompt"``, ``"output"``, ``"code"``, ``"comments"`` or ``"markdown"``."""
    if not block:
        return "markdown"
    if IN_PROMPT.match(block[0]):
        return "prompt"
    if OUTPUT_START.match(block[0]):
        return "output"
    if all(line.lstrip().startswith("#") for line in block):
        return "comments"
    try:
        tree = ast.parse("\n".join(block))
    except SyntaxError:
        try:  # a compound statement's header whose body follows a blank line (``class M:``)
            ast.parse("\n".join(block) + "\n    pass")
            return "code"
        except SyntaxError:
            pass
        try:  # an indented continuation of the code above (a function body after a blank line)
            tree = ast.parse("if True:\n" + "\n".join(block))
        except SyntaxError:
            return "markdown"
        return "code" if block[0][:1] in (" ", "\t") else "markdown"
    real = [
        s
        for s in tree.body
        if not (isinstance(s, ast.Expr) and isinstance(s.value, (ast.Name, ast.Constant)))
    ]
    return "code" if real else "markdown"


def _parses(lines: list[str]) -> bool:
    try:
        ast.parse("\n".join(lines))
    except SyntaxError:
        return False
    return True


def _code_cell_end(lines: list[str], start: int) -> int:
    """Index of the first line after the code cell that starts at ``start``."""
    end = start
    while True:
        block, after = _blocks(lines, end)
        if not block:
            return end
        # the prompt's own block is code; so is whatever follows code that does not parse yet
        # (a docstring or a bracket left open across a blank line)
        kind = "code" if end == start or not _parses(lines[start:end]) else _kind(block)
        if kind == "comments":
            following, _ = _blocks(lines, after)
            kind = "code" if following and _kind(following) == "code" else "markdown"
        if kind != "code":
            return end
        end = after


def convert(text: str) -> nbformat.NotebookNode:
    """A rendered notebook's text to an nbformat v4 notebook (code cells verbatim)."""
    lines = text.splitlines()
    cells = []
    markdown: list[str] = []

    def flush_markdown():
        body = "\n".join(markdown).strip("\n")
        if body.strip():
            cells.append(nbformat.v4.new_markdown_cell(body))
        markdown.clear()

    i = 0
    while i < len(lines):
        if not IN_PROMPT.match(lines[i]):
            markdown.append(lines[i])
            i += 1
            continue
        flush_markdown()
        start = i + 1
        end = _code_cell_end(lines, start)
        cell = nbformat.v4.new_code_cell("\n".join(lines[start:end]).strip("\n"))
        outputs = []
        while True:
            block, after = _blocks(lines, end)
            if not block or _kind(block) != "output":
                break
            outputs.append("\n".join(block))
            end = after
        if outputs:
            cell.outputs = [
                nbformat.v4.new_output(
                    "execute_result",
                    data={"text/plain": "\n\n".join(outputs)},
                    execution_count=None,
                )
            ]
        cells.append(cell)
        i = end
    flush_markdown()
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst = Path(argv[0]), Path(argv[1])
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.txt")):
        nb = convert(path.read_text(encoding="utf-8"))
        nbformat.validate(nb)
        out = dst / f"seed{path.name[:3]}.ipynb"
        nbformat.write(nb, out)
        n_code = sum(c.cell_type == "code" for c in nb.cells)
        print(f"{path.name} -> {out} ({len(nb.cells)} cells, {n_code} code)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
