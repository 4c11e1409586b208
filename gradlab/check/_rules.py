r"""Find every ``custom_jvp`` / ``custom_vjp`` rule inside a function, and remove them.

A custom rule replaces JAX's derivative of a primal implementation :math:`p` by a hand one. Two
transformations of a traced function make such a rule checkable:

* :func:`find_rules` walks the jaxpr of ``fn(*args)`` at every depth (inside ``jit``, ``scan``,
  ``cond``, ``while``, ``checkpoint`` and inside other rules' primals) and returns one
  :class:`RuleSite` per ``custom_jvp_call`` / ``custom_vjp_call``: the primal's name and source
  location, the rule's functions, where it sits;
* :func:`interpret` evaluates the jaxpr with a *visitor* at every rule site: :func:`strip`
  evaluates the primal :math:`p` instead (so ``jax.grad`` differentiates the implementation,
  eq. (1)), :func:`record_operands` also reports the operands each site receives (at the first
  time it runs, even inside a loop).

.. math::  \mathrm{strip}(f) = f \text{ with every } \mathrm{custom}(p, \text{rule}) \mapsto p,
           \qquad D\,\mathrm{strip}(f) = \text{autodiff of the implementation}          \tag{1}

Rules JAX itself defines (``jnp.logaddexp``, ``jax.nn.relu``) are neither reported nor removed:
they define what ``jax.grad`` means at their kinks. Higher-order primitives are handled by
inlining (``jit``, ``checkpoint``) or by re-tracing their
bodies with the visitor and binding them again (``scan``, ``cond``, ``while``); any other
primitive whose body holds a rule raises ``NotImplementedError`` naming it (never a silent skip).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.extend import core as jcore

CUSTOM_JVP = "custom_jvp_call"
CUSTOM_VJP = "custom_vjp_call"
_CUSTOM = (CUSTOM_JVP, CUSTOM_VJP)
_INLINE = ("jit", "pjit", "closed_call", "core_call", "remat2", "checkpoint")


class RuleKind(enum.Enum):
    """Which decorator defined the rule."""

    JVP = "custom_jvp"
    VJP = "custom_vjp"


@dataclasses.dataclass(frozen=True)
class RuleSite:
    """One call of a custom rule in a traced function.

    Attributes:
      kind: ``custom_jvp`` or ``custom_vjp``.
      name: the primal function's name (what ``references`` are keyed by).
      source: ``file:line`` of the primal's definition (``"?"`` when jax does not know it).
      rule: the rule's function name(s): ``jvp`` for custom_jvp, ``fwd/bwd`` for custom_vjp.
      where: the enclosing primitives from the outside in, e.g. ``("scan", "custom_vjp:attn")``.
      site: the order of this call in the walk (0, 1, ...).
    """

    kind: RuleKind
    name: str
    source: str
    rule: str
    where: tuple[str, ...]
    site: int
    eqn: Any = dataclasses.field(repr=False, compare=False)

    @property
    def label(self) -> str:
        """``name (custom_vjp at file:line)``, how reports name a rule."""
        return f"{self.name} ({self.kind.value} at {self.source})"

    @property
    def num_consts(self) -> int:
        return int(self.eqn.params.get("num_consts", 0))


def _fn_name(wrapped) -> str:
    info = getattr(wrapped, "debug_info", None)
    name = getattr(info, "func_name", None)
    return name or getattr(getattr(wrapped, "f", wrapped), "__name__", None) or str(wrapped)


def _describe(eqn, where, site) -> RuleSite:
    call = eqn.params["call_jaxpr"]
    info = getattr(call.jaxpr, "debug_info", None)
    src = getattr(info, "func_src_info", None) or ""
    name, _, source = src.partition(" at ")
    name = eqn.params.get("name") or name or "?"
    if eqn.primitive.name == CUSTOM_JVP:
        kind, rule = RuleKind.JVP, _fn_name(eqn.params.get("jvp_jaxpr_fun"))
    else:
        kind = RuleKind.VJP
        rule = f"{_fn_name(eqn.params.get('fwd_jaxpr_thunk'))}/{_fn_name(eqn.params.get('bwd'))}"
    return RuleSite(kind, str(name), _relative(source) or "?", rule, tuple(where), site, eqn)


def _relative(source: str) -> str:
    """``file:line`` with the file relative to the working directory when it lies below it."""
    path, _, line = source.rpartition(":")
    if not path:
        return source
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return source
    return f"{path if rel.startswith('..') else rel}:{line}"


def _subjaxprs(params) -> list[tuple[str, Any]]:
    """``(param name, Jaxpr or ClosedJaxpr)`` for every sub-jaxpr among an equation's params."""
    out = []
    for key, value in params.items():
        items = value if isinstance(value, (tuple, list)) else (value,)
        for item in items:
            if isinstance(item, (jcore.Jaxpr, jcore.ClosedJaxpr)):
                out.append((key, item))
    return out


def _open(j) -> jcore.Jaxpr:
    return j.jaxpr if isinstance(j, jcore.ClosedJaxpr) else j


_JAX_DIR = os.path.dirname(os.path.abspath(jax.__file__)) + os.sep


def is_library(eqn) -> bool:
    """A rule JAX itself defines (``jnp.logaddexp``, ``jax.nn.relu``, ...): kept as it is.

    Its primal is written for values, not for autodiff (``where`` traps, kinks); removing it
    would change what ``jax.grad`` means rather than test a user's rule.
    """
    info = getattr(eqn.params["call_jaxpr"].jaxpr, "debug_info", None)
    src = getattr(info, "func_src_info", None) or ""
    path = src.partition(" at ")[2].rpartition(":")[0]
    return bool(path) and os.path.abspath(path).startswith(_JAX_DIR)


def _walk(jaxpr: jcore.Jaxpr, where: tuple[str, ...], out: list[RuleSite]) -> None:
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name in _CUSTOM and is_library(eqn):
            continue
        if name in _CUSTOM:
            site = _describe(eqn, where, len(out))
            out.append(site)
            inner = (*where, f"{site.kind.value}:{site.name}")
            _walk(eqn.params["call_jaxpr"].jaxpr, inner, out)
            continue
        for _, sub in _subjaxprs(eqn.params):
            _walk(_open(sub), (*where, name), out)


@functools.lru_cache(maxsize=512)
def _has_rules(jaxpr: jcore.Jaxpr) -> bool:
    found: list[RuleSite] = []
    _walk(jaxpr, (), found)
    return bool(found)


def find_rules(fn: Callable, *args) -> tuple[jcore.ClosedJaxpr, list[RuleSite]]:
    """The jaxpr of ``fn(*args)`` (flat arguments) and every custom rule in it, at any depth.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> @jax.custom_jvp
      ... def softplus(x):
      ...     return jnp.logaddexp(x, 0.0)
      >>> _ = softplus.defjvp(lambda p, t: (softplus(p[0]), jax.nn.sigmoid(p[0]) * t[0]))
      >>> _, sites = find_rules(lambda x: jax.lax.scan(lambda c, _: (softplus(c), None), x,
      ...                                               None, length=2)[0], 1.0)
      >>> [(s.name, s.where) for s in sites]
      [('softplus', ('scan',))]
    """
    closed = jax.make_jaxpr(fn)(*args)
    sites: list[RuleSite] = []
    _walk(closed.jaxpr, (), sites)
    return closed, sites


# ---- evaluation with a visitor at every rule ---------------------------------------------------

Visitor = Callable[[Any, Sequence[Any]], Sequence[Any]]


def interpret(jaxpr: jcore.Jaxpr, consts: Sequence, args: Sequence, visit: Visitor) -> list:
    """Evaluate ``jaxpr`` on ``args``; at every custom-rule equation call ``visit(eqn, operands)``
    for its outputs instead of binding it. Traceable (use under ``jit``, ``grad``, ``vmap``)."""
    env: dict[Any, Any] = {}

    def read(v):
        return v.val if isinstance(v, jcore.Literal) else env[v]

    for v, x in zip(jaxpr.constvars, consts, strict=True):
        env[v] = x
    for v, x in zip(jaxpr.invars, args, strict=True):
        env[v] = x
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        outs = _eval_eqn(eqn, invals, visit)
        for v, x in zip(eqn.outvars, outs, strict=True):
            if not isinstance(v, jcore.DropVar):
                env[v] = x
    return [read(v) for v in jaxpr.outvars]


def _eval_eqn(eqn, invals, visit: Visitor):
    name = eqn.primitive.name
    if name in _CUSTOM and not is_library(eqn):
        return list(visit(eqn, invals))
    subs = _subjaxprs(eqn.params)
    if not subs or not any(_has_rules(_open(s)) for _, s in subs):
        return bind(eqn, invals)
    if name in _INLINE:
        (_, sub), *_ = subs
        return interpret(_open(sub), getattr(sub, "consts", ()), invals, visit)
    if any(isinstance(s, jcore.Jaxpr) for _, s in subs):
        raise NotImplementedError(
            f"a custom rule sits inside a '{name}' primitive, whose body gradlab cannot "
            "re-trace; call the checker on the function inside it"
        )
    params = {k: _retrace_param(v, visit) for k, v in eqn.params.items()}
    return bind(eqn, invals, params)


def _retrace_param(value, visit: Visitor):
    if isinstance(value, jcore.ClosedJaxpr):
        return _retrace(value, visit) if _has_rules(value.jaxpr) else value
    if isinstance(value, tuple) and any(isinstance(v, jcore.ClosedJaxpr) for v in value):
        return tuple(_retrace_param(v, visit) for v in value)
    return value


def _retrace(closed: jcore.ClosedJaxpr, visit: Visitor) -> jcore.ClosedJaxpr:
    avals = [
        jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=getattr(a, "weak_type", False))
        for a in closed.in_avals
    ]
    return jax.make_jaxpr(lambda *a: interpret(closed.jaxpr, closed.consts, a, visit))(*avals)


def bind(eqn, invals, params=None) -> list:
    """Bind one equation's primitive to ``invals`` (its rule, if any, stays in place)."""
    bind_params = eqn.primitive.get_bind_params(params or eqn.params)
    with eqn.ctx.manager:
        out = eqn.primitive.bind(*invals, **bind_params)
    return list(out) if eqn.primitive.multiple_results else [out]


def primal(eqn, invals, visit: Visitor) -> list:
    """The rule's primal implementation on ``invals`` (nested rules go through ``visit``)."""
    call = eqn.params["call_jaxpr"]
    return interpret(call.jaxpr, call.consts, invals, visit)


def strip_visitor(references: Mapping[str, Callable] | None = None) -> Visitor:
    """The visitor of :func:`strip`: each rule becomes its primal, or ``references[name]``."""
    refs = dict(references or {})

    def visit(eqn, invals):
        name = _describe(eqn, (), 0).name
        if name in refs:
            out = refs[name](*invals)
            return list(out) if isinstance(out, (tuple, list)) else [out]
        return primal(eqn, invals, visit)

    return visit


def strip(fn: Callable, references: dict[str, Callable] | None = None) -> Callable:
    """``fn`` with every custom rule removed, eq. (1): autodiff then differentiates each rule's
    primal implementation (or ``references[name](*operands)`` where given).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> @jax.custom_jvp
      ... def f(x):
      ...     return jnp.sin(x)
      >>> _ = f.defjvp(lambda p, t: (f(p[0]), 0.0 * t[0]))  # a wrong rule
      >>> float(jax.grad(f)(0.0)), float(jax.grad(strip(f))(0.0))
      (0.0, 1.0)
    """
    visit = strip_visitor(references)

    @functools.wraps(fn)
    def stripped(*args):
        flat, _ = jax.tree.flatten(args)
        closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
        outs = interpret(closed.jaxpr, closed.consts, flat, visit)
        return jax.tree.unflatten(jax.tree.structure(out_shape), outs)

    return stripped


@functools.lru_cache(maxsize=256)
def stripped(fn: Callable) -> Callable:
    """:func:`strip` without references, one per function (so jitted checks reuse programs)."""
    return strip(fn)


def record_operands(closed: jcore.ClosedJaxpr, flat_args: Sequence) -> dict[int, list]:
    """``{id(eqn): operands}``: what each rule site received the first time it ran.

    Runs ``closed`` once under ``jit`` with a ``jax.debug.callback`` at each site (so sites
    inside ``scan``/``while`` report their first iteration's operands; a site in a ``cond``
    branch not taken reports nothing).
    """
    seen: dict[int, list] = {}

    def store(key, *vals):
        if key not in seen:
            seen[key] = [np.array(v) for v in vals]

    def visit(eqn, invals):
        jax.debug.callback(functools.partial(store, id(eqn)), *invals)
        outs = primal(eqn, invals, visit)  # nested sites report too; values are the primal's
        return outs

    run = jax.jit(lambda *a: interpret(closed.jaxpr, closed.consts, a, visit))
    jax.block_until_ready(run(*flat_args))
    jax.effects_barrier()
    return seen
