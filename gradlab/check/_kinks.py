r"""Kinks: elements where the loss has different one-sided slopes, and subgradient membership.

From the four loss values of the finite-difference witness, the one-sided slopes at steps
:math:`h` and :math:`h/2` are

.. math::  r(h) = \frac{f(x+he_i) - f(x)}{h},\qquad l(h) = \frac{f(x) - f(x-he_i)}{h}     \tag{1}

For a smooth loss the jump :math:`j(h) = r(h) - l(h) = h\,\partial_i^2 f + O(h^3)` halves with
:math:`h`; at a kink it tends to the jump of the derivative and does not. An element is a kink
when

.. math::  \lvert j(\tfrac h2)\rvert \ge \tfrac34\,\lvert j(h)\rvert \quad\text{and}\quad
           \lvert j(\tfrac h2)\rvert > 64 \cdot \frac{8\varepsilon\max\lvert f\rvert}{h}     \tag{2}

(the second factor is the rounding noise of :math:`j(h/2)`). The one-sided derivatives are the
first-order Richardson extrapolations :math:`\partial^\pm = 2r(\tfrac h2) - r(h)` and
:math:`2l(\tfrac h2) - l(h)`. For a convex (or concave) kink the subdifferential of the element is
:math:`[\min(\partial^-, \partial^+), \max(\partial^-, \partial^+)]`; the hand value passes there
when it lies inside, with a tolerance of 4 times the extrapolation error plus eq. (1) of
``_compare`` (``_judge``).
Elements within :math:`h` of a kink are flagged as well (their central difference spans it);
their interval is the slopes across the kink, which still holds the exact derivative.

Several pieces meeting. Per-coordinate slopes bound the subdifferential only for convex (or
concave) kinks. Where pieces meet along other coordinates (two ReLU units at their kink, entering
one weight with opposite signs), the Clarke subdifferential -- the convex hull of limits of
gradients at nearby points -- can be wider than :math:`[\min(\partial^-, \partial^+),
\max(\partial^-, \partial^+)]`. So at every suspect element (a kink by (2), or an element where
hand and autodiff differ) the autodiff gradient is taken at ``NEARBY_SAMPLES`` seeded nearby
points :math:`x + \delta u_s` and :math:`x + \tfrac\delta2 u_s` (:math:`u_s` seeded Gaussian,
times each element's step :math:`h`), and each pair extrapolated to its limit along the ray:

.. math::  L_s = 2\,g(x + \tfrac\delta2 u_s) - g(x + \delta u_s), \qquad
           \text{drift} = \max_s \lvert g(x + \tfrac\delta2 u_s) - g(x + \delta u_s)\rvert  \tag{3}

The element is non-differentiable (a Clarke kink) when the limits spread wider than the smooth
drift explains, :math:`\max_s L_s - \min_s L_s > 4\,\text{drift} + \text{tol}`; the hand value
there is judged against :math:`[\text{low}, \text{high}]`, the range of the :math:`L_s` and the
one-sided slopes. Coordinatewise, that range is inside the projection of the Clarke
subdifferential, so the test is necessary, never too strict for a subgradient it samples; with
Gaussian directions each region where pieces meet is hit with probability its solid angle per
sample (32 samples: a region of a quarter of the directions is missed with probability
:math:`10^{-4}`).

Limitation: the noise floor of (2) assumes the loss is computed in the dtype of the differences.
A loss that rounds internally to a lower precision (float32 inside, float64 arguments) can show
spurious kinks where its rounding steps; the hand value is then judged by membership in a narrow
interval around the slope, which a correct gradient still passes.

Conventions. At :math:`|x|` for :math:`x = 0`, ``jax.grad`` returns :math:`+1` (the right slope),
``torch`` returns 0, finite differences return the midpoint 0; :func:`convention` names which.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradlab.check import _differences, _tree

KINK_RATIO = 0.75
KINK_NOISE_FACTOR = 64.0
NEARBY_SAMPLES = 32
CLARKE_DRIFT_FACTOR = 4.0


@dataclasses.dataclass(frozen=True)
class Slopes:
    """Per element: kink mask, one-sided derivatives and their error."""

    kink: np.ndarray
    left: np.ndarray
    right: np.ndarray
    err: np.ndarray


def slopes(fd: _differences.FD) -> Slopes:
    """One-sided derivatives and the kink test, eq. (1)-(2)."""
    fp, fm, fp2, fm2 = fd.values.T
    h, f0 = fd.h, fd.f0
    with np.errstate(all="ignore"):
        r1, l1 = (fp - f0) / h, (f0 - fm) / h  # (1) at h
        r2, l2 = (fp2 - f0) / (0.5 * h), (f0 - fm2) / (0.5 * h)  # (1) at h/2
        j1, j2 = r1 - l1, r2 - l2
        big = np.maximum(np.abs(fd.values).max(axis=1), np.abs(f0))
        noise = 8.0 * fd.eps * big / h
        kink = (np.abs(j2) >= KINK_RATIO * np.abs(j1)) & (np.abs(j2) > KINK_NOISE_FACTOR * noise)
        right = 2.0 * r2 - r1
        left = 2.0 * l2 - l1
        err = np.abs(right - r2) + np.abs(left - l2) + noise
    kink &= np.isfinite(right) & np.isfinite(left)
    return Slopes(kink, left, right, err)


def convention(value: float, left: float, right: float, tol: float, low: float, high: float) -> str:
    """Which point of the subdifferential ``[low, high]`` ``value`` is: the left or right slope
    along the element, their midpoint, or another point inside."""
    if not np.isfinite(value):
        return "non-finite"
    if value < low - tol or value > high + tol:
        return "outside the subdifferential"
    if abs(value - right) <= tol:
        return "right slope"
    if abs(value - left) <= tol:
        return "left slope"
    if abs(value - 0.5 * (left + right)) <= tol:
        return "midpoint"
    return "inside"


# ---- gradients at nearby points: the Clarke subdifferential, eq. (3) ---------------------------


@dataclasses.dataclass(frozen=True)
class Nearby:
    """Per raveled element (NaN where not sampled): the range of the extrapolated limits
    ``[low, high]`` of eq. (3), their spread beyond the smooth drift, and the extrapolation size."""

    low: np.ndarray
    high: np.ndarray
    spread: np.ndarray
    drift: np.ndarray
    extrapolation: np.ndarray

    @staticmethod
    def empty(n: int) -> Nearby:
        return Nearby(*(np.full(n, np.nan) for _ in range(5)))

    def slice(self, span: slice) -> Nearby:
        return Nearby(*(getattr(self, f.name)[span] for f in dataclasses.fields(self)))


@functools.lru_cache(maxsize=128)
def _nearby_program(loss: Callable, argnums, batch: int) -> Callable:
    """Gradients at ``x + u`` and ``x + u/2`` per row ``u`` of ``U``, ``batch`` rows at a time."""

    def run(args, U):
        x, unravel = ravel_pytree(_tree.get_params(args, argnums))

        def g(xv):
            grad = jax.grad(loss, argnums)(*_tree.set_params(args, argnums, unravel(xv)))
            return ravel_pytree(grad)[0]

        pair = jax.vmap(lambda u: jnp.stack([g(x + u), g(x + 0.5 * u)]))
        blocks = U.reshape(-1, batch, U.shape[1])
        return jax.lax.map(pair, blocks).reshape(U.shape[0], 2, U.shape[1])

    return jax.jit(run)


def nearby(
    loss, args, argnums, h: np.ndarray, where: np.ndarray, seed, budget_bytes: int
) -> Nearby:
    """Eq. (3) at the raveled elements ``where`` (bool mask), in the arguments' dtype; at most
    ``budget_bytes`` of perturbed arguments alive at once (2 per sample)."""
    n = where.size
    if not where.any():
        return Nearby.empty(n)
    x, _ = ravel_pytree(_tree.get_params(args, argnums))
    rng = np.random.default_rng([*seed, 0x6B696E6B])
    U = jnp.asarray(rng.standard_normal((NEARBY_SAMPLES, n)) * h, x.dtype)
    batch = _differences.chunk_size(args, NEARBY_SAMPLES, budget_bytes * 2)  # 2, not 4, per row
    batch = 2 ** int(np.log2(batch))  # a power of two divides NEARBY_SAMPLES
    g = np.asarray(_nearby_program(loss, argnums, batch)(args, U), np.float64)  # (S, 2, n)
    g1, g2 = g[:, 0, where], g[:, 1, where]
    with np.errstate(all="ignore"):
        limits = 2.0 * g2 - g1  # (3)
        drift = np.abs(g2 - g1).max(axis=0)
        ext = np.abs(limits - g2).max(axis=0)
        low, high = limits.min(axis=0), limits.max(axis=0)
    out = Nearby.empty(n)
    for full, part in zip(
        (out.low, out.high, out.spread, out.drift, out.extrapolation),
        (low, high, high - low, drift, ext),
        strict=True,
    ):
        full[where] = part
    return out


def clarke_kink(near: Nearby, tol: np.ndarray) -> np.ndarray:
    """Elements whose nearby limits spread wider than the smooth drift explains, eq. (3)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(near.spread) & (near.spread > CLARKE_DRIFT_FACTOR * near.drift + tol)
