"""The named pieces of a loss that is a visible sum, and the loss with one piece alone.

A loss whose value is ``a + b - c`` (returned directly, or returned as a name whose last
top-level assignment is that sum: ``loss = mse + l1 + l2; return loss``) has the pieces ``a``,
``b``, ``-c``; each becomes a term: a copy of the function in which the sum is replaced by that
piece, so the terms sum to the loss and ``check_grad(terms=...)`` can blame one of them. All of
it works on detached copies of the definition's syntax tree.
"""

from __future__ import annotations

import ast
import copy
import dataclasses

from gradlab.audit._source import Def, FunctionNode


@dataclasses.dataclass(frozen=True)
class Piece:
    """One piece of the sum: its source text, its sign, and where the sum is (``None``: the
    return; else the index of the top-level assignment in the function's body)."""

    name: str
    sign: int
    site: int | None


def detached(d: Def) -> FunctionNode:
    """A copy of ``d``'s definition (lines renumbered from 1; no decorators)."""
    node = ast.parse(ast.unparse(d.node)).body[0]
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)  # d.node, re-parsed
    node.decorator_list = []
    return node


def returning(node: FunctionNode, element: int | None) -> FunctionNode | None:
    """A copy whose final ``return (a, b, ...)`` returns element ``element`` alone (None: as is);
    None when the function does not end in such a return."""
    if element is None:
        return copy.deepcopy(node)
    if not node.body or not isinstance(node.body[-1], ast.Return):
        return None
    ret = node.body[-1].value
    if not isinstance(ret, ast.Tuple) or element >= len(ret.elts):
        return None
    out = copy.deepcopy(node)
    out.body[-1] = ast.Return(copy.deepcopy(ret.elts[element]))
    return out


def _flatten_sum(node: ast.expr, sign: int, out: list) -> None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        _flatten_sum(node.left, sign, out)
        _flatten_sum(node.right, sign if isinstance(node.op, ast.Add) else -sign, out)
    else:
        out.append((sign, node))


def _sum_site(node: FunctionNode) -> tuple[ast.expr, int | None] | None:
    if not node.body or not isinstance(node.body[-1], ast.Return) or node.body[-1].value is None:
        return None
    value = node.body[-1].value
    if isinstance(value, ast.Name):
        for i in range(len(node.body) - 2, -1, -1):
            stmt = node.body[i]
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and stmt.targets[0].id == value.id
            ):
                return stmt.value, i
        return None
    return value, None


def pieces(node: FunctionNode) -> list[Piece]:
    """The pieces of the sum the function's value is (at least two, distinct), else ``[]``."""
    site = _sum_site(node)
    if site is None:
        return []
    flat: list[tuple[int, ast.expr]] = []
    _flatten_sum(site[0], 1, flat)
    names = [ast.unparse(e) for _, e in flat]
    if len(flat) < 2 or len(set(names)) != len(names):
        return []
    return [Piece(n, s, site[1]) for n, (s, _) in zip(names, flat, strict=True)]


def with_piece(node: FunctionNode, piece: Piece) -> FunctionNode:
    """A copy of ``node`` whose sum is replaced by ``piece`` (with its sign)."""
    out = copy.deepcopy(node)
    expr = ast.parse(piece.name, mode="eval").body
    expr = expr if piece.sign > 0 else ast.UnaryOp(ast.USub(), expr)
    if piece.site is None:
        out.body[-1] = ast.Return(expr)
    else:
        site = out.body[piece.site]
        assert isinstance(site, ast.Assign)  # found by _sum_site
        site.value = expr
    return out


def compile_def(node: FunctionNode, like, globals_: dict, label: str):
    """``node`` compiled against ``globals_``, with the defaults of the function ``like``."""
    mod = ast.fix_missing_locations(ast.Module([node], []))
    scope: dict = {}
    exec(compile(mod, f"<gradlab-audit {label}>", "exec"), globals_, scope)  # noqa: S102
    out = scope[node.name]
    out.__defaults__ = like.__defaults__
    out.__kwdefaults__ = like.__kwdefaults__
    return out


def term_functions(node: FunctionNode, like, globals_: dict, label: str) -> dict:
    """``{piece: function}``: ``node`` with each piece alone, compiled against ``globals_``."""
    return {
        p.name: compile_def(with_piece(node, p), like, globals_, f"{label} term {p.name}")
        for p in pieces(node)
    }
