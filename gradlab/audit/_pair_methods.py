"""A class's loss and gradient methods reading their parameters from ``self``, as a
:class:`~gradlab.audit._problem.Problem`; and how an instance is found or built.

The instance is the notebook's own when one exists after the run, else built from its
constructor's parameters (calls in the notebook, notebook variables, defaults, draws by name:
sizes for ``input_dim``, coefficients for ``l1_lambda``). Every evaluation works on a deep copy,
so neither the notebook's object nor a traced value leaks between calls.
"""

from __future__ import annotations

import copy

from gradlab.audit import _args
from gradlab.audit._discover import Candidate
from gradlab.audit._numpy import Rebound
from gradlab.audit._problem import (
    Problem,
    ProblemError,
    call_guarded,
    copy_data,
    dims_of,
    float_array,
    key_map,
    layout_of,
    ordered,
    runs,
    scalar,
)
from gradlab.audit._run import Run
from gradlab.audit._source import Source
from gradlab.audit._terms import detached, term_functions


def _constructor_args(cls, cls_name: str, src: Source, run: Run, rng, extra: dict):
    """``(given, values, sources, rest)`` for ``cls.__init__``: ``extra`` objects by parameter
    name (or class name), the rest resolved or drawn by name."""
    params = _args.params_of(cls.__init__, skip_self=True)
    given = {}
    for p in params:
        for obj in extra.values():
            if p.name in extra or p.name == type(obj).__name__.lower():
                given[p.name] = extra.get(p.name, obj)
    rest = [p for p in params if p.name not in given]
    values, sources, missing = _args.resolve(src, [cls_name], rest, run.namespace, run.bound_in)
    for p in missing:
        s = _args.draw_scalar(p.name, rng)
        if s is None:
            raise ProblemError(
                f"{cls_name}({', '.join(p.name for p in params)}): no value for {p.name!r} "
                "(not in the notebook, no default, and its name says neither size nor coefficient)"
            )
        values[p.name] = s
        sources[p.name] = _args.ArgSource(p.name, _args.Origin.DRAWN, f"{s!r} (drawn)", s)
    return given, values, sources, rest


def instance_of(
    cls_name: str, role: str, src: Source, run: Run, rng, extra: dict
) -> tuple[object, _args.ArgSource]:
    """An instance of ``cls_name``: the notebook's own, else one built (see the module doc)."""
    cls = run.namespace.get(cls_name)
    if not isinstance(cls, type):
        raise ProblemError(f"class {cls_name} is not defined after the run")
    for name, v in run.namespace.items():
        if type(v) is cls and not name.startswith("_"):
            cell = run.bound_in.get(name)
            detail = f"the notebook's {name}" + (f" ({cell.label})" if cell else "")
            return v, _args.ArgSource(role, _args.Origin.NOTEBOOK, detail)
    given, values, sources, rest = _constructor_args(cls, cls_name, src, run, rng, extra)
    obj = call_guarded(f"{cls_name}.__init__", cls, **given, **values)
    parts = tuple(
        _args.ArgSource(k, _args.Origin.BUILT, f"the {type(v).__name__}") for k, v in given.items()
    ) + tuple(sources[p.name] for p in rest if p.name in sources)
    detail = f"built {cls_name}(" + ", ".join(str(x) for x in parts) + ")"
    return obj, _args.ArgSource(role, _args.Origin.BUILT, detail, None, parts)


def self_params(obj) -> dict:
    """Float arrays and float scalars held on ``obj`` (the candidates for its parameters)."""
    return {
        k: float_array(v)
        for k, v in vars(obj).items()
        if not k.startswith("_") and float_array(v) is not None
    }


class _Bound:
    """Call a method of fresh copies of one instance, with parameters set on ``self`` (or in
    its dict attribute ``container``: ``self.params = {"W": ..., "b": ...}``)."""

    def __init__(self, obj, rebound: Rebound):
        self.obj, self.rebound = obj, rebound
        self.container: str | None = None

    def fresh(self, p: dict, traced: bool = False):
        o = copy.deepcopy(self.obj)
        if traced:
            self.rebound.instance(o)
        if self.container and p:
            setattr(o, self.container, {**getattr(o, self.container), **p})
            return o
        for k, v in p.items():
            setattr(o, k, v)
        return o

    def call(self, method: str, names: set[str], vals: dict, p: dict | None = None):
        kwargs = {k: v for k, v in copy_data(vals).items() if k in names}
        return getattr(self.fresh(p or {}), method)(**kwargs)


def methods(c: Candidate, src: Source, run: Run, rebound: Rebound, rng) -> Problem:
    """The problem of ``obj.loss(...)`` and ``obj.grad(...)`` with parameters on ``self``."""
    assert c.grad.cls is not None  # a METHODS candidate pairs two methods (discover)
    obj, self_src = instance_of(c.grad.cls, "self", src, run, rng, {})
    bound = _Bound(obj, rebound)
    m_loss, m_grad = c.loss.qualname.split(".")[1], c.grad.qualname.split(".")[1]
    lparams = _args.params_of(getattr(obj, m_loss))
    gparams = _args.params_of(getattr(obj, m_grad))
    union = lparams + [p for p in gparams if p.name not in {q.name for q in lparams}]
    lnames, gnames = {p.name for p in lparams}, {p.name for p in gparams}
    values, sources, missing = _args.resolve(
        src, [m_grad, m_loss], union, run.namespace, run.bound_in
    )
    if missing:
        drawn, dsrc, err = _args.draw(
            missing,
            lambda v: runs(
                lambda vals: bound.call(m_loss, lnames, vals),
                lambda vals: bound.call(m_grad, gnames, vals),
                {**values, **v},
            ),
            rng,
            dims_of({**values, **self_params(obj)}),
        )
        if err:
            raise ProblemError(f"{c.loss.qualname}: {err}")
        values.update(drawn)
        sources.update(dsrc)
    out = call_guarded(c.grad.qualname, bound.call, m_grad, gnames, values)
    scalar(c.loss.qualname, call_guarded(c.loss.qualname, bound.call, m_loss, lnames, values))
    cands = self_params(obj)
    for name, value in vars(obj).items():  # gradients of a dict of parameters on self
        if isinstance(out, dict) and isinstance(value, dict) and key_map(out, value) is not None:
            bound.container = name
            cands = {k: float_array(v) for k, v in value.items() if float_array(v) is not None}
            break
    prefix = f"self.{bound.container}." if bound.container else "self."
    layout = layout_of(c.grad.qualname, out, cands, prefix=prefix)
    lvals = {k: v for k, v in values.items() if k in lnames}
    fn = getattr(type(obj), m_loss)
    t_np = term_functions(detached(c.loss), fn, run.namespace, c.loss.qualname)
    t_tr = term_functions(detached(c.loss), fn, rebound.globals, c.loss.qualname)
    terms = {
        name: (
            lambda p, v=t_np[name]: v(bound.fresh(p), **copy_data(lvals)),
            lambda p, v=t_tr[name]: v(bound.fresh(p, True), **lvals),
        )
        for name in t_np
    }
    return Problem(
        c,
        {k: cands[k] for k in layout.names},
        lambda p: bound.call(m_loss, lnames, values, p),
        lambda p: layout.to_dict(c.grad.qualname, bound.call(m_grad, gnames, values, p)),
        lambda p: getattr(bound.fresh(p, True), m_loss)(**lvals),
        terms,
        (self_src, *ordered(sources, union)),
        (),
        rebound,
    )
