r"""The fallback when the loss cannot be traced: hand gradient against finite differences only.

The numpy loss is called eagerly, point by point, through ``jax.pure_callback`` (so the public
:func:`gradlab.check.finite_differences` can take its Richardson differences and their error
estimate :math:`\delta`); numpy's global generator is reseeded before every call, so a loss
that draws ``np.random`` numbers is a fixed function of its parameters. With no autodiff witness the
tolerance is the finite differences' own (the checker's referee rule):

.. math::  \lvert g^{hand}_i - R_i\rvert \le 8\,\delta_i
           + 10^{-2}\sqrt{\varepsilon}\,(\lvert g^{hand}_i\rvert + \lVert g\rVert_\infty)
                                                                                          \tag{1}

An element that fails is probed for a kink: one-sided slopes :math:`F(h)` and
:math:`B(h) = 2D(h) - F(h)` at the default step and at a quarter of it; a jump that does not
shrink with the step is a kink, where the hand value must lie between the one-sided slopes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.check import finite_differences

LABEL = "no autodiff witness: hand against finite differences only"
SEED = 0
MAX_ELEMENTS = 512  # more: random directions (each 4 loss calls), not every element
DIRECTIONS = 8


@dataclasses.dataclass(frozen=True)
class FdElement:
    path: str
    index: tuple[int, ...]
    hand: float
    fd: float
    fd_error: float
    rel_err: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "index": list(self.index),
            "hand": _num(self.hand),
            "fd": _num(self.fd),
            "fd_error": _num(self.fd_error),
            "rel_err": _num(self.rel_err),
        }


@dataclasses.dataclass(frozen=True)
class FdOnlyReport:
    """Hand against finite differences, element by element (no autodiff witness)."""

    ok: bool
    n: int
    n_fail: int
    n_kinks: int
    max_rel_err: float
    worst: FdElement | None
    checked: str = "every element"
    label: str = LABEL

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "label": self.label,
            "checked": self.checked,
            "elements": self.n,
            "failing": self.n_fail,
            "kinks": self.n_kinks,
            "max_rel_err": _num(self.max_rel_err),
            "worst": None if self.worst is None else self.worst.to_dict(),
        }


def _num(x):
    x = float(x)
    return x if math.isfinite(x) else str(x)


def callback_loss(loss: Callable, names: list[str]) -> Callable:
    """``loss(p)`` of numpy code as a jax function (``pure_callback``, sequential under vmap),
    numpy's global generator reseeded before each call."""

    def host(*leaves):
        np.random.seed(SEED)  # noqa: NPY002 - the user's loss may draw from the global generator
        p = {k: np.array(v, np.float64) for k, v in zip(names, leaves, strict=True)}
        return np.asarray(loss(p), np.float64).reshape(())

    def traced(p):
        return jax.pure_callback(
            host,
            jax.ShapeDtypeStruct((), jnp.float64),
            *[p[k] for k in names],
            vmap_method="sequential",
        )

    return traced


def check(
    loss: Callable, hand: dict, params: dict, max_elements: int = MAX_ELEMENTS
) -> FdOnlyReport:
    """Eq. (1) for every element of ``hand`` (``{name: array}``) against the numpy ``loss``;
    beyond ``max_elements`` elements, along ``DIRECTIONS`` seeded random directions instead."""
    names = list(params)
    with jax.enable_x64(True):
        f = callback_loss(loss, names)
        p = {k: jnp.asarray(v, jnp.float64) for k, v in params.items()}
        if sum(np.size(v) for v in params.values()) > max_elements:
            return _directional(f, p, {k: np.asarray(hand[k], np.float64) for k in names})
        fd = finite_differences(f, p)
        eps = float(np.finfo(np.float64).eps)
        h = {k: np.asarray(hand[k], np.float64) for k in names}
        scale = max([0.0] + [float(np.max(np.abs(v))) for v in h.values() if v.size])
        fails, worst, n, n_kinks, max_rel = {}, None, 0, 0, 0.0
        for k in names:
            r = np.asarray(fd.richardson[k], np.float64)
            d = np.asarray(fd.error[k], np.float64)
            tol = 8 * d + 1e-2 * math.sqrt(eps) * (np.abs(h[k]) + scale)  # (1)
            err = np.abs(h[k] - r)
            rel = np.where(err == 0, 0.0, err / (np.abs(r) + scale + 1e-300))
            bad = ~(err <= tol) | ~np.isfinite(h[k])
            fails[k] = bad
            n += h[k].size
            if rel.size:
                i = int(np.argmax(np.where(np.isfinite(rel), rel, np.inf)))
                if worst is None or rel.flat[i] > worst.rel_err:
                    idx = np.unravel_index(i, rel.shape) if rel.shape else ()
                    worst = FdElement(
                        f"['{k}']",
                        tuple(int(j) for j in idx),
                        float(h[k].flat[i]),
                        float(r.flat[i]),
                        float(d.flat[i]),
                        float(rel.flat[i]),
                    )
                max_rel = max(max_rel, float(np.max(rel)))
        if any(b.any() for b in fails.values()):
            n_kinks, fails = _kinks(f, p, fd, h, fails, scale, eps)
        n_fail = int(sum(int(b.sum()) for b in fails.values()))
    return FdOnlyReport(n_fail == 0, n, n_fail, n_kinks, max_rel, worst)


def _directional(f, p: dict, h: dict) -> FdOnlyReport:
    """Eq. (1) along seeded random directions ``v``: ``<hand, v>`` against the Richardson
    derivative of ``t -> loss(p + t v)`` at 0 (the same public finite differences, on one t)."""
    eps = float(np.finfo(np.float64).eps)
    rng = np.random.default_rng(SEED)
    fails, worst, max_rel = 0, None, 0.0
    for k in range(DIRECTIONS):
        v = {n: rng.standard_normal(np.shape(x)) for n, x in p.items()}
        hv = float(sum(np.sum(h[n] * v[n]) for n in p))
        scale = float(sum(np.sum(np.abs(h[n] * v[n])) for n in p))

        def along(t, v=v):
            return f({n: p[n] + t * v[n] for n in p})

        fd = finite_differences(along, jnp.zeros((), jnp.float64))
        r, d = float(fd.richardson), float(fd.error)
        err = abs(hv - r)
        rel = 0.0 if err == 0 else err / (abs(r) + scale + 1e-300)
        if not err <= 8 * d + 1e-2 * math.sqrt(eps) * (abs(hv) + scale):  # (1) along v
            fails += 1
        if worst is None or rel > worst.rel_err:
            worst = FdElement(f"direction {k}", (), hv, r, d, rel)
        max_rel = max(max_rel, rel)
    checked = f"{DIRECTIONS} random directions"
    return FdOnlyReport(fails == 0, DIRECTIONS, fails, 0, max_rel, worst, checked)


def _kinks(f, p, fd, h, fails, scale, eps):
    """Failing elements that sit on a kink and whose hand value lies between the slopes pass."""
    step = min(float(np.min(np.asarray(s))) for s in jax.tree.leaves(fd.step)) / 4
    fd2 = finite_differences(f, p, step=step)
    n_kinks, out = 0, {}
    for k, bad in fails.items():
        right1 = np.asarray(fd.forward[k])
        left1 = 2 * np.asarray(fd.central[k]) - right1
        right2 = np.asarray(fd2.forward[k])
        left2 = 2 * np.asarray(fd2.central[k]) - right2
        jump1, jump2 = np.abs(right1 - left1), np.abs(right2 - left2)
        slack = 1e-2 * math.sqrt(eps) * (np.abs(h[k]) + scale) + 8 * np.asarray(fd.error[k])
        kink = bad & (jump2 > 0.5 * jump1) & (jump2 > slack)
        lo, hi = np.minimum(left2, right2) - slack, np.maximum(left2, right2) + slack
        inside = (h[k] >= lo) & (h[k] <= hi)
        n_kinks += int(kink.sum())
        out[k] = bad & ~(kink & inside)
    return n_kinks, out
