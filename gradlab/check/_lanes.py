r"""One input of a search as one lane of a ``vmap``: hand against autodiff, then a referee.

Screen (every lane). With :math:`g^h, g^a` the raveled hand and autodiff gradients at the lane's
input, the lane is judged by ``_compare`` eq. (1) through the violation ratio

.. math::  \rho_i = \frac{\lvert g^h_i - g^a_i\rvert}
           {\mathrm{rtol}\,(\lVert g\rVert_\infty + \lvert g^a_i\rvert)}, \qquad
           \rho = \max_i \rho_i                                                       \tag{1}

(:math:`\rho_i = \infty` where the hand value is non-finite and differs from autodiff, or
autodiff is non-finite and the hand is not). The lane passes when :math:`\rho \le 1`; a lane
whose loss value is not finite is out of the domain and skipped. The program returns
:math:`\rho` and the ``k`` elements of largest :math:`\rho_i`, nothing of size N per lane.

Referee (failing lanes only, a second program). For each of those ``k`` elements: the four loss
values :math:`f(x \pm h e_i), f(x \pm \tfrac h2 e_i)` and :math:`f(x)` in float64 (``_witnesses``
eq. (1)-(2); where a value is not finite, the step drops below :math:`\lvert x_i\rvert/8`, so a
difference next to a domain boundary such as :math:`\theta \ge 0` stays inside it), and, for a
float32 input, the hand and autodiff values of a float64 copy. From them
:func:`classify` names each element an :class:`Outcome`: a kink (one-sided slopes differ,
``_kinks`` eq. (2)) with the hand value in :math:`[\min(\partial^-, \partial^+),
\max(\partial^-, \partial^+)]` is not a bug, nor is a float32 disagreement that the float64 copy
resolves (precision); otherwise the Richardson value decides which side is wrong
(``_compare`` eq. (3)). A lane takes the most severe outcome of its ``k`` elements.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradlab.check import _compare, _differences, _kinks, _tree


class Outcome(enum.Enum):
    """What the referee says about a lane (or one element) where hand and autodiff disagree."""

    HAND_NONFINITE = "non-finite hand gradient where the loss and autodiff are finite"
    HAND_BUG = "hand bug: finite differences side with autodiff"
    HAND_BUG_AT_KINK = "hand bug at a kink: outside the subdifferential"
    AUTODIFF_DISAGREES = "autodiff disagrees: finite differences side with the hand gradient"
    INCONCLUSIVE = "hand and autodiff disagree; finite differences inconclusive"
    PRECISION = "precision: the float64 copy agrees, the input dtype loses accuracy"
    KINK = "kink: hand and autodiff differ but both lie in the subdifferential"
    OK = "ok"

    @property
    def is_failure(self) -> bool:
        """Everything but a kink, a float32 precision loss and ok counts against the hand."""
        return self not in (Outcome.KINK, Outcome.PRECISION, Outcome.OK)


SEVERITY = tuple(Outcome)  # most severe first


class Screen(NamedTuple):
    """Per lane: loss finite, the largest ratio (1) and the ``k`` worst elements."""

    finite: jax.Array
    ratio: jax.Array
    top: jax.Array
    top_ratio: jax.Array


class Witness(NamedTuple):
    """Per lane, at its ``k`` worst elements: the values :func:`classify` needs."""

    hand: jax.Array  # (k,) in the input dtype
    auto: jax.Array
    scale: jax.Array  # () the largest finite gradient magnitude, input dtype
    hand_wide: jax.Array  # (k,) float64 copy
    auto_wide: jax.Array
    scale_wide: jax.Array
    f0: jax.Array  # () float64 loss value
    values: jax.Array  # (k, 4) f(x + h), f(x - h), f(x + h/2), f(x - h/2)
    h: jax.Array  # (k,)


def _flat_grads(loss, grad, argnums, args):
    value, ad = jax.value_and_grad(loss, argnums)(*args)
    hand = grad(*args)
    return value, ravel_pytree(hand)[0], ravel_pytree(ad)[0]


def _finite_max(x):
    return jnp.max(jnp.where(jnp.isfinite(x), jnp.abs(x), 0.0), initial=0.0)


def ratios(hand, auto, rtol):
    """Elementwise ratio (1); ``inf`` where one side is non-finite and they differ."""
    scale = jnp.maximum(_finite_max(hand), _finite_max(auto))
    tol = rtol * (scale + jnp.abs(auto))
    err = jnp.abs(hand - auto)
    rho = jnp.where(err == 0, 0.0, err / jnp.where(tol > 0, tol, jnp.inf))
    rho = jnp.where(err > 0, jnp.where(tol > 0, rho, jnp.inf), rho)
    same = hand == auto  # equal infinities pass
    finite = jnp.isfinite(hand) & jnp.isfinite(auto)
    return jnp.where(finite, rho, jnp.where(same, 0.0, jnp.inf))


def screen(loss: Callable, grad: Callable, argnums, rtol: float, k: int) -> Callable:
    """The traceable screen of one lane: ``args -> Screen`` (eq. (1))."""

    def run(args) -> Screen:
        value, hand, auto = _flat_grads(loss, grad, argnums, args)
        rho = ratios(hand, auto, jnp.asarray(rtol, hand.dtype))
        top_ratio, top = jax.lax.top_k(rho, k)
        return Screen(jnp.isfinite(value), jnp.max(rho), top.astype(jnp.int32), top_ratio)

    return run


def _fd_steps(x, eps: float):
    raw = eps**_differences.FD_STEP_POWER * jnp.maximum(1.0, jnp.abs(x))
    return jnp.exp2(jnp.round(jnp.log2(raw)))


def witness(loss: Callable, grad: Callable, argnums, wide) -> Callable:
    """The traceable referee of one lane: ``(args, idx (k,)) -> Witness``."""
    eps = float(np.finfo(wide).eps)

    def run(args, idx) -> Witness:
        _, hand, auto = _flat_grads(loss, grad, argnums, args)
        wargs = _tree.cast_floating(args, wide)
        f0, hand_w, auto_w = _flat_grads(loss, grad, argnums, wargs)
        x, unravel = ravel_pytree(_tree.get_params(wargs, argnums))

        def f_at(i, d):
            return loss(*_tree.set_params(wargs, argnums, unravel(x.at[i].add(d))))

        def four(i, hi):
            return jax.vmap(lambda d: f_at(i, d))(jnp.stack([hi, -hi, 0.5 * hi, -0.5 * hi]))

        h = _fd_steps(x[idx], eps)
        values = jax.vmap(four)(idx, h)
        # a step that crosses a domain boundary (theta - h < 0) gives NaN: retry with a step
        # below |x_i| / 8, which stays on x_i's side
        small = jnp.minimum(h, jnp.exp2(jnp.floor(jnp.log2(jnp.abs(x[idx]) / 8))))
        retry = ~jnp.all(jnp.isfinite(values), axis=1) & (x[idx] != 0)
        h = jnp.where(retry, small, h)
        values = jnp.where(retry[:, None], jax.vmap(four)(idx, small), values)
        scale = jnp.maximum(_finite_max(hand), _finite_max(auto))
        scale_w = jnp.maximum(_finite_max(hand_w), _finite_max(auto_w))
        return Witness(
            hand[idx], auto[idx], scale, hand_w[idx], auto_w[idx], scale_w, f0, values, h
        )

    return run


def classify(w: Witness, top_ratio: np.ndarray, dtype, wide) -> np.ndarray:
    """Outcome index (into ``SEVERITY``) per lane and element, shape ``(lanes, k)``.

    ``top_ratio`` is the screen's ratio (1) at the same elements; elements that pass are OK.
    """
    hand, auto = np.asarray(w.hand, np.float64), np.asarray(w.auto, np.float64)
    lanes, k = hand.shape
    rows = lanes * k
    f0 = np.repeat(np.asarray(w.f0, np.float64), k)
    fd = fd_rows(
        np.asarray(w.values, np.float64).reshape(rows, 4),
        np.asarray(w.h, np.float64).reshape(rows),
        f0,  # per row: the lane's own f(x)
        float(np.finfo(wide).eps),
    )
    r, r_err = fd.richardson()
    sl = _kinks.slopes(fd)
    scale = np.repeat(np.asarray(w.scale, np.float64), k)
    eps = float(np.finfo(dtype).eps)
    h, a = hand.ravel(), auto.ravel()
    slack = _compare.default_rtol(dtype) * (np.abs(a) + scale)
    with np.errstate(invalid="ignore"):  # [min(l, r), max(l, r)] widened by 4 err + slack
        tol = 4.0 * sl.err + slack
        lo, hi = np.minimum(sl.left, sl.right) - tol, np.maximum(sl.left, sl.right) + tol
        inside = (h >= lo) & (h <= hi) & np.isfinite(h)
    fd_auto = _compare.referee(r, r_err, a, scale, max(eps, fd.eps))
    fd_hand = _compare.referee(r, r_err, h, scale, max(eps, fd.eps))
    wide_ok = _wide_ok(w, np.repeat(np.asarray(w.scale_wide, np.float64), k), wide)
    out = np.full(rows, SEVERITY.index(Outcome.INCONCLUSIVE))
    picks = (
        (fd_hand & ~fd_auto & ~sl.kink, Outcome.AUTODIFF_DISAGREES),
        (fd_auto & ~fd_hand & ~sl.kink, Outcome.HAND_BUG),
        (sl.kink & ~inside, Outcome.HAND_BUG_AT_KINK),
        (sl.kink & inside, Outcome.KINK),
        (np.isfinite(h) & (np.dtype(dtype) != np.dtype(wide)) & wide_ok, Outcome.PRECISION),
        (~np.isfinite(h) & np.isfinite(a), Outcome.HAND_NONFINITE),
        (np.asarray(top_ratio).ravel() <= 1.0, Outcome.OK),
    )
    for mask, outcome in picks:  # later picks override earlier ones
        out = np.where(mask, SEVERITY.index(outcome), out)
    return out.reshape(lanes, k)


def fd_rows(values: np.ndarray, h: np.ndarray, f0: np.ndarray, eps: float) -> _differences.FD:
    """An ``FD`` whose rows come from different inputs (``f0`` per row): ``_differences``
    eq. (2) through its one ``richardson``."""
    d1, d2 = _differences.central(values, h)
    size = np.maximum(np.abs(values).max(axis=1, initial=0.0), np.abs(f0))
    r, err = _differences.richardson(d1, d2, size, eps, h)
    return _differences.FD(values, h, f0, eps, r, err, np.zeros(r.shape, bool))


def _wide_ok(w: Witness, scale: np.ndarray, wide) -> np.ndarray:
    hw = np.asarray(w.hand_wide, np.float64).ravel()
    aw = np.asarray(w.auto_wide, np.float64).ravel()
    rtol = _compare.default_rtol(wide)
    with np.errstate(all="ignore"):
        ok = np.abs(hw - aw) <= rtol * (scale + np.abs(aw))
    return ok & np.isfinite(hw) & np.isfinite(aw)


def lane_outcomes(per_element: np.ndarray) -> np.ndarray:
    """The most severe outcome index of each lane (``SEVERITY`` is ordered most severe first)."""
    return per_element.min(axis=1)
