"""The loss alone from a function returning ``(loss, grad)``: its statements that the gradient
needs but the loss does not are dropped (a backward slice over the function's top-level
statements), so in-place gradient code (``dscores[range(n), y] -= 1``) no longer stops jax from
tracing the loss.

A statement is kept when it binds (or mutates: ``x[i] = ...``, ``x += ...``, ``x.append(...)``) a
name the kept code reads. The bodies of kept ``for``/``while`` loops are sliced the same way to a
fixed point (a later iteration reads what an earlier one bound), those of ``if`` per branch;
other compound statements are kept whole. The slice is only trusted when its value equals the
whole function's (``_judge``).
"""

from __future__ import annotations

import ast
import copy

from gradlab.audit._source import FunctionNode


def _base(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Subscript, ast.Attribute, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _binds_and_reads(stmt: ast.stmt) -> tuple[set[str], set[str]]:
    binds: set[str] = set()
    reads: set[str] = set()
    for n in ast.walk(stmt):
        if isinstance(n, ast.Name):
            (binds if isinstance(n.ctx, (ast.Store, ast.Del)) else reads).add(n.id)
        elif isinstance(n, (ast.Subscript, ast.Attribute)) and isinstance(n.ctx, ast.Store):
            if (b := _base(n)) is not None:
                binds.add(b)
        elif isinstance(n, ast.AugAssign) and (b := _base(n.target)) is not None:
            binds.add(b)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
            if (b := _base(n.func.value)) is not None:
                binds.add(b)  # x.append(...), x.sort(): may change x
    return binds, reads


def _header_reads(stmt: ast.stmt) -> set[str]:
    parts = {ast.For: ("iter", "target"), ast.While: ("test",), ast.If: ("test",)}[type(stmt)]
    out = set()
    for name in parts:
        for n in ast.walk(getattr(stmt, name)):
            if isinstance(n, ast.Name):
                out.add(n.id)
    return out


def _slice_stmt(stmt: ast.stmt, needed: set[str]) -> tuple[ast.stmt, set[str]]:
    """A kept statement, its loop/branch bodies sliced; and the names it then reads."""
    if isinstance(stmt, (ast.For, ast.While)) and not stmt.orelse:
        inner = set(needed)
        while True:  # a later iteration may read what an earlier one bound
            body, reads = _slice_body(stmt.body, inner)
            if reads <= inner:
                break
            inner |= reads
        stmt.body = body or [ast.Pass()]
        return stmt, inner | _header_reads(stmt)
    if isinstance(stmt, ast.If):
        body, reads = _slice_body(stmt.body, set(needed))
        orelse, reads2 = _slice_body(stmt.orelse, set(needed))
        stmt.body, stmt.orelse = body or [ast.Pass()], orelse
        return stmt, reads | reads2 | _header_reads(stmt)
    return stmt, _binds_and_reads(stmt)[1]


def _slice_body(stmts: list[ast.stmt], needed: set[str]) -> tuple[list[ast.stmt], set[str]]:
    """The statements of ``stmts`` that bind what ``needed`` (or later kept code) reads."""
    need, kept = set(needed), []
    for stmt in reversed(stmts):
        binds, _ = _binds_and_reads(stmt)
        if binds & need or isinstance(stmt, (ast.Global, ast.Nonlocal)):
            stmt, reads = _slice_stmt(stmt, need)
            kept.append(stmt)
            need |= reads
    return kept[::-1], need


def slice_ast(node: FunctionNode) -> FunctionNode | None:
    """A copy of ``node`` (ending in ``return expr``) without the statements ``expr`` does not
    need; None when the function does not end in a return or nothing drops."""
    if not node.body or not isinstance(node.body[-1], ast.Return) or node.body[-1].value is None:
        return None
    out = copy.deepcopy(node)
    ret = out.body[-1]
    assert isinstance(ret, ast.Return) and ret.value is not None  # checked on node above
    loss_expr = ret.value
    needed = {n.id for n in ast.walk(loss_expr) if isinstance(n, ast.Name)}
    kept, _ = _slice_body(out.body[:-1], needed)
    out.body = [*kept, out.body[-1]]
    if ast.dump(out) == ast.dump(node):
        return None
    return out
