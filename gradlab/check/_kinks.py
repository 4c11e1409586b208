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
when it lies inside, with a tolerance of the extrapolation error plus eq. (1) of ``_compare``.
Elements within :math:`h` of a kink are flagged as well (their central difference spans it);
their interval is the slopes across the kink, which still holds the exact derivative.

Limitation: the noise floor of (2) assumes the loss is computed in the dtype of the differences.
A loss that rounds internally to a lower precision (float32 inside, float64 arguments) can show
spurious kinks where its rounding steps; the hand value is then judged by membership in a narrow
interval around the slope, which a correct gradient still passes.

Conventions. At :math:`|x|` for :math:`x = 0`, ``jax.grad`` returns :math:`+1` (the right slope),
``torch`` returns 0, finite differences return the midpoint 0; :func:`convention` names which.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gradlab.check._witnesses import FD

KINK_RATIO = 0.75
KINK_NOISE_FACTOR = 64.0


@dataclasses.dataclass(frozen=True)
class Slopes:
    """Per element: kink mask, one-sided derivatives and their error."""

    kink: np.ndarray
    left: np.ndarray
    right: np.ndarray
    err: np.ndarray


def slopes(fd: FD) -> Slopes:
    """One-sided derivatives and the kink test, eq. (1)-(2)."""
    fp, fm, fp2, fm2 = fd.values.T
    h, f0 = fd.h, fd.f0
    with np.errstate(all="ignore"):
        r1, l1 = (fp - f0) / h, (f0 - fm) / h  # (1) at h
        r2, l2 = (fp2 - f0) / (0.5 * h), (f0 - fm2) / (0.5 * h)  # (1) at h/2
        j1, j2 = r1 - l1, r2 - l2
        big = np.maximum(np.abs(fd.values).max(axis=1), abs(f0))
        noise = 8.0 * fd.eps * big / h
        kink = (np.abs(j2) >= KINK_RATIO * np.abs(j1)) & (np.abs(j2) > KINK_NOISE_FACTOR * noise)
        right = 2.0 * r2 - r1
        left = 2.0 * l2 - l1
        err = np.abs(right - r2) + np.abs(left - l2) + noise
    kink &= np.isfinite(right) & np.isfinite(left)
    return Slopes(kink, left, right, err)


def in_subdifferential(
    value: np.ndarray, left: np.ndarray, right: np.ndarray, err: np.ndarray, slack: np.ndarray
) -> np.ndarray:
    """``min(l, r) - tol <= value <= max(l, r) + tol`` elementwise, ``tol = 4 err + slack``."""
    tol = 4.0 * err + slack
    lo, hi = np.minimum(left, right), np.maximum(left, right)
    with np.errstate(all="ignore"):
        return (value >= lo - tol) & (value <= hi + tol) & np.isfinite(value)


def convention(value: float, left: float, right: float, tol: float) -> str:
    """Which point of the subdifferential ``value`` is: left or right slope, midpoint, inside."""
    if not np.isfinite(value):
        return "non-finite"
    lo, hi = min(left, right), max(left, right)
    if value < lo - tol or value > hi + tol:
        return "outside the subdifferential"
    if abs(value - right) <= tol:
        return "right slope"
    if abs(value - left) <= tol:
        return "left slope"
    if abs(value - 0.5 * (left + right)) <= tol:
        return "midpoint"
    return "inside"
