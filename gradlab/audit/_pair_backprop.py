"""A layer whose ``backward(upstream)`` stores ``self.<param>_grad``, wired to a loss class, as a
:class:`~gradlab.audit._problem.Problem` (seed 001's ``LinearModel`` and ``Loss``).

Wired as a training step would: ``y_pred = model(X)``, ``value = loss(y, y_pred)``,
``model.backward(loss.get_loss_grad())``, and the gradients read back from the attributes
``backward`` assigns (``weight_grad`` for ``weight``). An attribute ``backward`` reads that the
layer never sets (an ``AttributeError`` as written) is taken from the loss object when it holds
one of that name, and reported as a bug.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import re

import numpy as np

from gradlab.audit import _args
from gradlab.audit._discover import Candidate
from gradlab.audit._numpy import Rebound
from gradlab.audit._pair_methods import instance_of
from gradlab.audit._problem import Problem, ProblemError, call_guarded, float_array, scalar
from gradlab.audit._run import Run
from gradlab.audit._source import GRAD_NAME, Source
from gradlab.audit._terms import detached, term_functions

FORWARD = ("forward", "__call__", "predict")
MAX_BORROWED = 8


def grad_attributes(c: Candidate, model) -> dict[str, str]:
    """``{param: attribute holding its gradient}`` from what ``backward`` assigns on self."""
    out: dict[str, str] = {}
    attrs = vars(model)
    for n in ast.walk(c.grad.node):
        targets = n.targets if isinstance(n, ast.Assign) else [getattr(n, "target", None)]
        for t in targets:
            if not (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)):
                continue
            a = t.attr
            if t.value.id != "self" or not GRAD_NAME.match(a):
                continue
            for pat in (r"_grads?$", r"_gradients?$", r"^grad_", r"^d_", r"^d"):
                base = re.sub(pat, "", a)
                if base != a and base in attrs and float_array(attrs[base]) is not None:
                    out.setdefault(base, a)
                    break
    return out


def roles(params) -> tuple[str, str]:
    """``(target name, prediction name)`` of a loss's two arguments."""
    names = [p.name for p in params]
    if len(names) != 2:
        raise ProblemError(f"loss takes ({', '.join(names)}); expected (target, prediction)")
    pred = [n for n in names if re.search(r"pred|hat|out|logit|score|yp", n, re.I)]
    p = pred[0] if pred else names[1]
    return next(n for n in names if n != p), p


@dataclasses.dataclass
class Wiring:
    """One training step over deep copies of the model and the loss object."""

    model: object
    loss_obj: object
    forward_name: str
    call_name: str  # the loss object's method computing the value (``__call__``)
    grad_name: str  # the loss object's gradient method (``get_loss_grad``)
    backward_name: str
    target: str
    pred: str
    grad_attrs: dict
    rebound: Rebound
    data: dict = dataclasses.field(default_factory=dict)  # "X", "y"
    borrowed: dict = dataclasses.field(default_factory=dict)

    def fresh(self, p: dict, traced: bool = False):
        m, lo = copy.deepcopy((self.model, self.loss_obj))
        for k, v in self.borrowed.items():
            setattr(m, k, v)
        if traced:
            self.rebound.instance(m)
            self.rebound.instance(lo)
        for k, v in p.items():
            setattr(m, k, v)
        return m, lo

    def forward(self, m, X):
        return m(X.copy()) if self.forward_name == "__call__" else getattr(m, self.forward_name)(X)

    def step(self, p: dict, method=None, traced: bool = False):
        """``(model, loss object, loss value)`` after the forward pass and the loss."""
        m, lo = self.fresh(p, traced)
        y_pred = self.forward(m, self.data["X"])
        f = getattr(lo, self.call_name) if method is None else (lambda **k: method(lo, **k))
        return m, lo, f(**{self.target: self.data["y"].copy(), self.pred: y_pred})

    def hand(self, p: dict) -> dict:
        m, lo, _ = self.step(p)
        lg = getattr(lo, self.grad_name)
        if _args.params_of(lg):
            up = lg(
                **{self.target: self.data["y"].copy(), self.pred: self.forward(m, self.data["X"])}
            )
        else:
            up = lg()
        getattr(m, self.backward_name)(up)
        return {k: np.asarray(getattr(m, a)) for k, a in self.grad_attrs.items()}


def _data(w: Wiring, run: Run, rng, dims: list[int], mcls: str) -> list:
    """Set ``w.data``: the notebook's ``X``/``y`` when they fit the model, else drawn; sources."""
    fparams = _args.params_of(getattr(w.model, w.forward_name))
    xname = fparams[0].name if fparams else "X"
    X = run.namespace.get(xname)
    candidates = [X] if isinstance(X, np.ndarray) else []
    candidates += [rng.standard_normal((_args.N_ROWS, d)) for d in dims or [3]]
    for k, trial in enumerate(candidates):
        try:
            y_pred = np.asarray(w.forward(w.fresh({})[0], trial), np.float64)
        except Exception:  # noqa: BLE001 - probing shapes
            continue
        w.data["X"] = trial
        how = _args.Origin.NOTEBOOK if k == 0 and X is trial else _args.Origin.DRAWN
        detail = (
            f"notebook's {xname} {trial.shape}"
            if how is _args.Origin.NOTEBOOK
            else (f"standard normal {trial.shape} (drawn)")
        )
        sources = [_args.ArgSource(xname, how, detail)]
        break
    else:
        raise ProblemError(f"{mcls}.{w.forward_name}: no (n, d) input runs it (tried d in {dims})")
    y = run.namespace.get(w.target)
    if isinstance(y, np.ndarray) and y.shape == y_pred.shape:
        w.data["y"] = y
        detail = f"notebook's {w.target} {y.shape}"
        sources.append(_args.ArgSource(w.target, _args.Origin.NOTEBOOK, detail))
    else:
        w.data["y"] = rng.standard_normal(y_pred.shape)
        detail = f"standard normal {y_pred.shape} (drawn, like the prediction)"
        sources.append(_args.ArgSource(w.target, _args.Origin.DRAWN, detail))
    return sources


def _borrow(w: Wiring, c: Candidate, params: dict) -> list[str]:
    """Run the hand gradient once; attributes ``backward`` reads but the layer never sets are
    taken from the loss object (a bug, reported); any other failure is the pair's error."""
    notes: list[str] = []
    mcls, lcls = c.grad.cls, c.loss.cls
    for _ in range(MAX_BORROWED):
        try:
            w.hand(params)
            return notes
        except AttributeError as err:
            name, owner = getattr(err, "name", None), getattr(err, "obj", None)
            if name is None or not isinstance(owner, type(w.model)) or name in w.borrowed:
                raise ProblemError(f"{c.grad.qualname} raised AttributeError: {err}") from err
            if not hasattr(w.loss_obj, name):
                raise ProblemError(
                    f"{c.grad.qualname} reads self.{name}, which no {mcls} sets and the loss "
                    "object does not hold"
                ) from err
            w.borrowed[name] = getattr(w.loss_obj, name)
            notes.append(
                f"BUG as written: {c.grad.qualname} reads self.{name}, which {mcls} never sets "
                f"(AttributeError when run); gradlab set it from {lcls}.{name} = "
                f"{w.borrowed[name]!r} to check the rest"
            )
        except Exception as err:  # noqa: BLE001 - the user's code may raise anything
            raise ProblemError(
                f"{c.grad.qualname} raised {type(err).__name__}: {err}"[:220]
            ) from err
    raise ProblemError(f"{c.grad.qualname}: more than {MAX_BORROWED} attributes missing")


def _wiring(c: Candidate, src: Source, run: Run, rebound: Rebound, rng):
    # a BACKPROP candidate pairs two methods and the loss class's gradient method (discover)
    assert c.grad.cls is not None and c.loss.cls is not None and c.loss_grad is not None
    model, msrc = instance_of(c.grad.cls, "model", src, run, rng, {})
    lobj, lsrc = instance_of(c.loss.cls, "loss", src, run, rng, {"model": model})
    held = getattr(lobj, "model", model)
    if held is not model and type(held) is type(model):
        model = held  # the notebook's loss object and the model it holds
    fwd = next((m for m in FORWARD if hasattr(type(model), m)), None)
    if fwd is None:
        raise ProblemError(f"{c.grad.cls} has no forward/__call__/predict to compute predictions")
    call_name = c.loss.qualname.split(".")[1]
    target, pred = roles(_args.params_of(getattr(lobj, call_name)))
    attrs = grad_attributes(c, model)
    if not attrs:
        raise ProblemError(f"{c.grad.qualname} stores no <param>_grad for a float array of self")
    w = Wiring(
        model,
        lobj,
        fwd,
        call_name,
        c.loss_grad.qualname.split(".")[1],
        c.grad.qualname.split(".")[1],
        target,
        pred,
        attrs,
        rebound,
    )
    return w, (msrc, lsrc)


def backprop(c: Candidate, src: Source, run: Run, rebound: Rebound, rng) -> Problem:
    """The problem of a layer's ``backward`` wired to a loss class (see the module doc)."""
    w, instance_sources = _wiring(c, src, run, rebound, rng)
    params = {k: float_array(getattr(w.model, k)) for k in w.grad_attrs}
    dims = sorted({d for v in params.values() if v is not None for d in v.shape}, reverse=True)
    assert c.grad.cls is not None  # a method (discover)
    sources = _data(w, run, rng, dims, c.grad.cls)
    notes = _borrow(w, c, params)
    scalar(c.loss.qualname, call_guarded(c.loss.qualname, lambda: w.step(params)[2]))
    fn = getattr(type(w.loss_obj), w.call_name)
    t_np = term_functions(detached(c.loss), fn, run.namespace, c.loss.qualname)
    t_tr = term_functions(detached(c.loss), fn, rebound.globals, c.loss.qualname)
    terms = {
        name: (
            lambda p, v=t_np[name]: w.step(p, method=v)[2],
            lambda p, v=t_tr[name]: w.step(p, method=v, traced=True)[2],
        )
        for name in t_np
    }
    return Problem(
        c,
        params,
        lambda p: w.step(p)[2],
        w.hand,
        lambda p: w.step(p, traced=True)[2],
        terms,
        (*instance_sources, *sources),
        tuple(notes),
        rebound,
    )
