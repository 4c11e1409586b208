"""A checkable problem: parameters, the loss and the hand gradient of them, and the helpers the
pair builders share (``_pair_functions``, ``_pair_methods``, ``_pair_backprop``; ``build``).

Whatever the pair's shape (two functions, a ``(loss, grad)`` function, methods reading parameters
from ``self``, a layer's ``backward`` storing ``self.weight_grad``), the result is one
:class:`Problem`: ``loss(p)`` and ``grad(p)`` of a dict ``p`` of float64 arrays, the user's code
as written (numpy, called eagerly on copies so nothing of the notebook changes), and the same loss
recompiled with numpy rebound to jax.numpy (``_numpy``) for autodiff. Terms are the named pieces
of a loss returned as a visible sum (``return mse + l1 + l2``), built the same two ways.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import jax
import numpy as np

from gradlab.audit import _args
from gradlab.audit._discover import Candidate
from gradlab.audit._numpy import Rebound

PREFERRED = re.compile(r"^(theta|w|weights?|params?|beta|coef\w*|p|x|z|mu|logits?)$", re.I)


class ProblemError(ValueError):
    """The pair cannot be checked: the message is one line naming the function and the cause."""


@dataclasses.dataclass(frozen=True)
class Problem:
    """A pair ready for the checker.

    Attributes:
      candidate: the pair as found.
      params: the differentiated values, ``{name: float64 array}``.
      loss: ``loss(p)``, the user's numpy code.
      grad: ``grad(p)``, the hand gradient as ``{name: array}``.
      traced_loss: ``loss(p)`` with numpy rebound to jax.numpy.
      terms: ``{piece: (numpy term, rebound term)}`` when the loss is a visible sum.
      sources: where each argument came from.
      notes: what gradlab did to run the code (attributes borrowed, values squeezed).
      rebound: the rebound namespace (for its description).
      sliced_loss: for a ``(loss, grad)`` function, the rebound loss without the statements
        only the gradient needs (``_slice``), tried when the whole function does not trace.
    """

    candidate: Candidate
    params: dict
    loss: Callable
    grad: Callable
    traced_loss: Callable
    terms: dict
    sources: tuple
    notes: tuple
    rebound: Rebound
    sliced_loss: Callable | None = None


def copy_data(values: dict) -> dict:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in values.items()}


def float_array(v) -> np.ndarray | None:
    if isinstance(v, (float, np.floating)) or (isinstance(v, np.ndarray) and v.dtype.kind == "f"):
        return np.asarray(v, np.float64)
    return None


def _shape(x) -> tuple:
    return tuple(np.shape(x))


def match_grad(qualname: str, out, candidates: dict, prefix: str = "") -> list[str]:
    """Which of ``candidates`` (``{name: array}``) the hand gradient ``out`` is the gradient of
    (``prefix`` names them in messages: ``self.``).

    Raises:
      ProblemError: no argument has the gradient's shape (the shapes disagree).
    """
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    chosen: list[str] = []
    for k, o in enumerate(outs):
        if float_array(o) is None and not isinstance(o, (int, np.integer)):
            raise ProblemError(
                f"{qualname} returns {type(o).__name__} as gradient part {k}; expected an array"
            )
        fits = [n for n, v in candidates.items() if _shape(v) == _shape(o) and n not in chosen]
        if not fits:
            sizes = [n for n, v in candidates.items() if np.size(v) == np.size(o)]
            hint = (
                f"; {prefix}{sizes[0]} has shape {_shape(candidates[sizes[0]])}: shapes disagree"
                if sizes
                else ""
            )
            raise ProblemError(
                f"{qualname} returns a gradient of shape {_shape(o)} but no argument has that "
                f"shape (arguments: "
                + ", ".join(f"{prefix}{n} {_shape(v)}" for n, v in candidates.items())
                + f"){hint}"
            )
        good = [n for n in fits if PREFERRED.match(n)]
        coeffs = [n for n in fits if _args.FLOAT_NAME.match(n)]
        chosen.append((good or [n for n in fits if n not in coeffs] or fits)[0])
    return chosen


def key_map(out: dict, target) -> dict | None:
    """``{key of out: name in target}``: the same names, or gradient names for them (``dW1``,
    ``d_w``, ``grad_w``, ``w_grad`` for ``W1``, ``w``); None unless every key maps."""
    names = list(target)
    found = {}
    for k in out:
        bases = [k] + [
            re.sub(pat, "", str(k)) for pat in (r"^d_?", r"^grad_", r"_grads?$", r"_gradient$")
        ]
        hit = next((b for b in bases if b in names), None)
        if hit is None:
            return None
        found[k] = hit
    return found if len(set(found.values())) == len(found) else None


def listed(out):
    """A list of numbers (``[dJ0, dJ1]``) is one gradient array, not a gradient per element."""
    if isinstance(out, list) and out and all(np.ndim(x) == 0 for x in out):
        return np.asarray(out, np.float64)
    return out


def scalar(qualname: str, value):
    """A loss value as a float; a size-1 array is accepted (and said), anything else raises."""
    shape = _shape(value)
    try:
        arr = np.asarray(value, np.float64)
    except (TypeError, ValueError) as err:
        raise ProblemError(f"{qualname} returns {type(value).__name__}, not a number") from err
    if arr.size != 1:
        raise ProblemError(
            f"{qualname} returns shape {shape} on these arguments, not a scalar loss"
        )
    return float(arr.reshape(())), shape != ()


def call_guarded(qualname: str, fn, *a, **k):
    try:
        return fn(*a, **k)
    except ProblemError:
        raise
    except Exception as err:  # noqa: BLE001 - the user's code may raise anything
        text = str(err).strip().splitlines()
        raise ProblemError(
            f"{qualname} raised {type(err).__name__}: {text[0] if text else ''}"[:220]
        ) from err


@dataclasses.dataclass(frozen=True)
class Layout:
    """How the hand gradient's output maps onto parameter names: in order (an array, a tuple)
    or by key (a dict, ``keys`` from its keys to the names)."""

    names: tuple[str, ...]
    keys: dict | None = None

    def to_dict(self, qualname: str, out) -> dict:
        out = listed(out)
        if isinstance(out, dict):
            if self.keys is None or set(out) != set(self.keys):
                raise ProblemError(f"{qualname} returned keys {sorted(out)}; first {self.keys}")
            return {self.keys[k]: v for k, v in out.items()}
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        if len(outs) != len(self.names):
            raise ProblemError(
                f"{qualname} returned {len(outs)} gradient part(s); first {len(self.names)}"
            )
        return dict(zip(self.names, outs, strict=True))


def layout_of(qualname: str, out, candidates: dict, prefix: str = "") -> Layout:
    """The :class:`Layout` of a first hand gradient ``out`` over ``candidates`` (name: value)."""
    out = listed(out)
    if isinstance(out, dict):
        keys = key_map(out, candidates)
        if keys is None:
            raise ProblemError(
                f"{qualname} returns a dict with keys {sorted(out)}; they do not name "
                f"{', '.join(prefix + n for n in candidates)}"
            )
        return Layout(tuple(keys[k] for k in out), keys)
    return Layout(tuple(match_grad(qualname, out, candidates, prefix)))


def dims_of(values: dict) -> list[int]:
    """The sizes of the known arrays (the candidates for a drawn array's dimensions)."""
    dims = []
    for v in values.values():
        for d in np.shape(v) if isinstance(v, np.ndarray) else ():
            if d not in dims:
                dims.append(d)
    return dims


def traces(fn, kwargs) -> bool:
    """Does ``fn(**kwargs)`` trace to a scalar with implicit rank promotion refused?"""
    try:
        with jax.numpy_rank_promotion("raise"):
            out = jax.eval_shape(lambda kw: fn(**kw), kwargs)
    except Exception:  # noqa: BLE001 - a probe
        return False
    return int(np.prod(getattr(out, "shape", ()))) == 1


def runs(call_f, call_g, vals) -> bool:
    """Do the loss and the gradient run on ``vals``, the loss to one finite number?"""
    try:
        value = call_f(vals)
        call_g(vals)
        arr = np.asarray(value, np.float64)
        return arr.size == 1 and bool(np.isfinite(arr).all())
    except Exception:  # noqa: BLE001 - a probe: any failure means "not this shape"
        return False


def ordered(sources: dict, params) -> tuple:
    """The argument sources in the order of the parameters."""
    return tuple(sources[p.name] for p in params if p.name in sources)
