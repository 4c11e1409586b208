"""Plain-text tables: the one column padder behind every table gradlab prints.

Cells are strings, left-aligned in columns as wide as their widest cell, two spaces apart, no
trailing blanks; the first row is the header. Used by the check report
(``check._render``), ``gradlab check``'s registry and search tables, and any other table.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["format_table"]


def format_table(
    rows: Sequence[Sequence[str]], *, indent: str = "", rule: bool = False
) -> list[str]:
    """The rows as aligned lines; the first row is the header.

    Args:
      rows: the header then the data rows, each a sequence of strings of one common length.
      indent: put before every line.
      rule: add a line of dashes under the header, one run per column.

    Returns:
      One string per line, without newlines (``len(rows)`` lines, plus one with ``rule``).

    Raises:
      ValueError: rows of different lengths (a cell would silently land in the wrong column).

    Examples:
      >>> print("\\n".join(format_table([("leaf", "ok"), ("['w']", "yes")], rule=True)))
      leaf   ok
      -----  ---
      ['w']  yes
    """
    if not rows:
        return []
    n = len(rows[0])
    bad = next((i for i, r in enumerate(rows) if len(r) != n), None)
    if bad is not None:
        raise ValueError(
            f"format_table: row {bad} has {len(rows[bad])} cells but the header has {n}"
        )
    widths = [max(len(r[c]) for r in rows) for c in range(n)]
    lines = [
        indent + "  ".join(s.ljust(w) for s, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]
    if rule:
        lines.insert(1, indent + "  ".join("-" * w for w in widths))
    return lines
