"""Clips with constant bounds (``np.clip(theta, 1e-8, 1.0)``) in a loss or its gradient, said as
kinks: the clipped function is flat beyond a bound, so a derivative there is a convention of the
code (seed 000's ``-1 - log(clip(theta))``), and where the bound binds the check is at a kink.
Read from the syntax; the binding is counted on the parameter the clipped variable is named as.
"""

from __future__ import annotations

import ast

import numpy as np

from gradlab.audit._problem import Problem
from gradlab.audit._source import Source


def _literal(node, defaults: dict):
    if isinstance(node, ast.Name) and node.id in defaults:
        return defaults[node.id]
    try:
        return ast.literal_eval(node)
    except Exception:  # noqa: BLE001 - not a literal
        return None


def clip_notes(src: Source, problem: Problem) -> list[str]:
    """Clips with constant bounds in the loss and the gradient: flat beyond a bound, so a kink
    there; counted on the parameter whose name is the clipped variable."""
    out = []
    c = problem.candidate
    defs = {d.qualname: d for d in src.callees(c.loss) + src.callees(c.grad)}
    for d in defs.values():
        a = d.node.args
        defaults = {
            p.arg: _literal(v, {})
            for p, v in zip(a.args[len(a.args) - len(a.defaults) :], a.defaults, strict=True)
        }
        for node in ast.walk(d.node):
            if not (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("clip")):
                continue
            bounds = [_literal(x, defaults) for x in node.args[1:3]]
            bounds += [None] * (2 - len(bounds))
            if not any(isinstance(b, (int, float)) for b in bounds):
                continue
            lo = bounds[0] if isinstance(bounds[0], (int, float)) else -np.inf
            hi = bounds[1] if isinstance(bounds[1], (int, float)) else np.inf
            first = node.args[0] if node.args else None
            target = first.id if isinstance(first, ast.Name) else None
            text = f"`{ast.unparse(node)}` in {d.qualname} ({d.cell.at(node.lineno)})"
            if target in problem.params:
                v = problem.params[target]
                binds = int(np.sum((v <= lo) | (v >= hi)))
                out.append(
                    f"kink/convention: {text} is flat outside [{lo:g}, {hi:g}]; where it binds the "
                    f"derivative is 0 from outside and the code's value there is a convention; it "
                    f"binds at {binds} of {v.size} element(s) of {target} at the checked point"
                    + (" (judged below)" if binds else "")
                )
            else:
                out.append(f"kink/convention: {text} is flat outside [{lo:g}, {hi:g}]")
    return out
