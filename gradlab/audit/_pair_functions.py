"""A pair of functions (``loss``/``grad``), or one function returning ``(loss, grad)``, as a
:class:`~gradlab.audit._problem.Problem`.

The arguments are the union of both signatures, each valued once (``_args``): a call in the
notebook, a notebook variable, a default, the notebook's data function, else a draw whose shapes
run the loss (preferring shapes that need no silent numpy broadcasting). The parameters are the
arguments the hand gradient's output has the shape of (or names, for a dict).
"""

from __future__ import annotations

import functools

import numpy as np

from gradlab.audit import _args
from gradlab.audit._discover import Candidate, PairKind, tuple_return
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
    listed,
    ordered,
    runs,
    scalar,
    traces,
)
from gradlab.audit._run import Run
from gradlab.audit._slice import slice_ast
from gradlab.audit._source import Source
from gradlab.audit._terms import compile_def, detached, returning, term_functions


def _pick(fn, index):
    """``fn``, or the element(s) ``index`` of the tuple it returns."""
    if index is None:
        return fn

    def picked(*a, **k):
        out = fn(*a, **k)
        return out[index] if isinstance(index, int) else tuple(out[i] for i in index)

    return picked


def _call(fn, names: set[str], vals: dict):
    """``fn`` on copies of the values it takes (so in-place code cannot touch the notebook's)."""
    return fn(**{k: v for k, v in copy_data(vals).items() if k in names})


def _defined(c: Candidate, ns: dict):
    out = []
    for d in (c.loss, c.grad):
        obj = ns.get(d.qualname)
        if not callable(obj):
            raise ProblemError(f"{d.qualname} ({d.where}) is not defined after the run")
        out.append(obj)
    return out


def _values(c, src: Source, run: Run, rng, union, call_f, call_g, strict):
    """Every argument's value and source: the notebook's, else its data function's, else drawn."""
    values, sources, missing = _args.resolve(
        src, [c.grad.qualname, c.loss.qualname], union, run.namespace, run.bound_in
    )
    if missing:
        data = _args.from_data_functions(src, run.namespace, {p.name for p in missing})
        for k, (v, source) in data.items():
            values[k], sources[k] = v, source
        missing = [p for p in missing if p.name not in data]
    if missing:
        drawn, dsrc, err = _args.draw(
            missing,
            lambda v: runs(call_f, call_g, {**values, **v}),
            rng,
            dims_of(values),
            lambda v: strict({**values, **v}),
        )
        if err:
            raise ProblemError(f"{c.loss.qualname}: {err}")
        values.update(drawn)
        sources.update(dsrc)
    return values, sources


def _wrt(c: Candidate, out, values: dict, fparams, gnames: set[str]):
    """``(params, dict argument or None, layout)``: what the hand gradient ``out`` is of."""
    out = listed(out)
    if isinstance(out, dict):
        for p in fparams:
            v = values.get(p.name)
            if p.name in gnames and isinstance(v, dict) and key_map(out, v) is not None:
                layout = layout_of(c.grad.qualname, out, v)
                params = {n: np.asarray(v[n], np.float64) for n in layout.names}
                return params, p.name, layout
    cands = {
        p.name: float_array(values[p.name])
        for p in fparams
        if p.name in gnames and float_array(values.get(p.name)) is not None
    }
    layout = layout_of(c.grad.qualname, out, cands)
    return {n: cands[n] for n in layout.names}, None, layout


def functions(c: Candidate, src: Source, run: Run, rebound: Rebound, rng) -> Problem:
    """The problem of two functions, or of one returning ``(loss, grad)``."""
    f, g = _defined(c, run.namespace)
    loss_index, grad_index = None, None
    if c.kind is PairKind.VALUE_AND_GRAD:
        returned = tuple_return(c.grad)
        assert returned is not None  # how discover found a VALUE_AND_GRAD candidate
        loss_index, gi = returned
        grad_index = gi[0] if len(gi) == 1 else tuple(gi)
    fparams, gparams = _args.params_of(f), _args.params_of(g)
    union = fparams + [p for p in gparams if p.name not in {q.name for q in fparams}]
    fnames, gnames = {p.name for p in fparams}, {p.name for p in gparams}
    call_f = functools.partial(_call, _pick(f, loss_index), fnames)
    call_g = functools.partial(_call, _pick(g, grad_index), gnames)
    f_traced = _pick(rebound.function(f), loss_index)

    def strict(vals):
        return traces(f_traced, {k: v for k, v in vals.items() if k in fnames})

    values, sources = _values(c, src, run, rng, union, call_f, call_g, strict)
    out = call_guarded(c.grad.qualname, call_g, values)
    scalar(c.loss.qualname, call_guarded(c.loss.qualname, call_f, values))
    params, container, layout = _wrt(c, out, values, fparams, gnames)

    def put(p):
        return {**values, container: dict(p)} if container else {**values, **p}

    def traced_loss(p):
        return f_traced(**{k: v for k, v in put(p).items() if k in fnames})

    loss_node = returning(detached(c.grad if loss_index is not None else c.loss), loss_index)
    sliced = None
    if loss_node is not None and loss_index is not None:
        cut = slice_ast(loss_node)
        if cut is not None:
            loss_node = cut
            cut_fn = compile_def(cut, f, rebound.globals, f"loss of {c.grad.qualname}")

            def sliced(p):
                return cut_fn(**{k: v for k, v in put(p).items() if k in fnames})

    terms = {}
    if loss_node is not None:
        t_np = term_functions(loss_node, f, run.namespace, c.loss.qualname)
        t_tr = term_functions(loss_node, f, rebound.globals, c.loss.qualname)
        for name in t_np:
            terms[name] = (
                lambda p, v=t_np[name]: _call(v, fnames, put(p)),
                lambda p, v=t_tr[name]: v(**{k: x for k, x in put(p).items() if k in fnames}),
            )
    return Problem(
        c,
        params,
        lambda p: call_f(put(p)),
        lambda p: layout.to_dict(c.grad.qualname, call_g(put(p))),
        traced_loss,
        terms,
        ordered(sources, union),
        (),
        rebound,
        sliced,
    )
