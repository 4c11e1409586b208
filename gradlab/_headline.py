"""One line that says why a check failed, for the first line of an exception message.

pytest shows an exception's first line in its short summary (``FAILED test_x.py::test_grad -
gradlab.GradientMismatch: ...``) and the rest below, so the line names the failing leaf, how many
of its elements differ and the worst one with its relative error; the full table follows it.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["headline"]


def _g(x) -> str:
    return "-" if x is None else f"{float(x):.4g}"


def _failing_leaves(report):
    """The report's failing leaves and a label for where they were found (dtype, copy, term)."""
    failing = [leaf for leaf in report.leaves if not leaf.ok]
    if failing:
        return report, failing, ""
    copy = report.float64_copy
    if copy is not None and not copy.ok:
        failing = [leaf for leaf in copy.leaves if not leaf.ok]
        if failing:
            return copy, failing, " in the float64 copy"
    for name, term in report.terms.items():
        failing = [leaf for leaf in term.leaves if not leaf.ok]
        if failing:
            return term, failing, f" in term {name!r}"
    return report, [], ""


def headline(report: Any) -> str:
    """The reason a ``GradReport`` is not ok, in one line.

    ``['b']: 1 of 1 element differs, worst ['b'][] rel err 2.50e-01 (hand -23.83, autodiff
    -47.65)``; further failing leaves are counted (``; 2 more leaves fail``). A report failing only
    on non-finite values names the first one; otherwise its first verdict.

    Args:
      report: a ``gradlab.GradReport`` (gradient or Hessian check).

    Returns:
      One line, without a newline.
    """
    source, failing, where = _failing_leaves(report)
    if failing:
        worst = max(failing, key=lambda leaf: _key(leaf.max_rel_err))
        size = math.prod(worst.shape)
        n_fail = worst.n_fail or size
        verb = "differs" if n_fail == 1 else "differ"
        line = f"{worst.path}: {n_fail} of {size} element{'s' * (size != 1)} {verb}{where}"
        if worst.worst:
            e = worst.worst[0]
            idx = "[" + ", ".join(map(str, e.index)) + "]"
            line += (
                f", worst {worst.path}{idx} rel err {float(e.rel_err):.2e} "
                f"(hand {_g(e.hand)}, autodiff {_g(e.autodiff)}, fd {_g(e.fd)})"
            )
        if len(failing) > 1:
            line += f"; {len(failing) - 1} more lea{'f' if len(failing) == 2 else 'ves'} fail"
        return line
    if report.nonfinite:
        n = report.nonfinite[0]
        idx = "[" + ", ".join(map(str, n.index)) + "]"
        more = f" (+{len(report.nonfinite) - 1} more)" if len(report.nonfinite) > 1 else ""
        return f"non-finite {n.witness} value {n.value} at {n.path}{idx}{more}"
    if report.verdicts:
        return report.verdicts[0].splitlines()[0]
    return f"gradlab {report.title}: MISMATCH"


def _key(x) -> float:
    x = float(x)
    return math.inf if math.isnan(x) else x
