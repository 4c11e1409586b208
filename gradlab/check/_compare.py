r"""When do two gradients agree? The tolerances, scaled to the dtype and the gradient's size.

Hand against autodiff (the judge). Both compute the same derivative in floating point, through
different formulas; their difference is rounding, proportional to the magnitudes of the numbers
summed, which for an element near zero can exceed the element itself (cancellation). The test is
therefore elementwise relative plus normwise absolute:

.. math::  \lvert g^{hand}_i - g^{ad}_i\rvert \le
           \max(\mathrm{atol},\ \mathrm{rtol}\,\lvert g^{ad}_i\rvert), \qquad
           \mathrm{atol} = \mathrm{rtol}\,\lVert g\rVert_\infty,\quad
           \mathrm{rtol} = 2^{12}\,\varepsilon                                          \tag{1}

with :math:`\lVert g\rVert_\infty` the largest magnitude of either gradient over every leaf and
:math:`\varepsilon` the machine epsilon of the dtype checked: rtol is :math:`9.1\times10^{-13}` in
float64 (so a derivation wrong by a relative :math:`10^{-6}`, or by :math:`10^{-11}` of the
largest element, is caught) and :math:`4.9\times10^{-4}` in float32 (:math:`2^{12}` leaves room
for :math:`\sqrt n\,\varepsilon` accumulated rounding in sums of millions of terms, or
:math:`n\varepsilon` worst case for thousands). Below float32, :math:`2^{12}\varepsilon` would
exceed 1 (bfloat16: 32), so rtol is capped at ``RTOL_CAP`` = 1/16 (8 ulps of bfloat16, 64 of
float16); the float64 copy judges the formula there. The reported relative error is

.. math::  e_i = \frac{\lvert g^{hand}_i - g^{ad}_i\rvert}
           {\max(\lvert g^{ad}_i\rvert,\ \lVert g\rVert_\infty)}                            \tag{2}

so that with the default ``atol`` an element passes exactly when :math:`e_i \le` rtol, and a
hand value off by a factor of 2 at the largest element reads :math:`e = 0.5` (half of it) or
:math:`e = 1` (twice it).

Finite differences against either (the referee): a value agrees with the finite difference
:math:`R_i` of estimated error :math:`\delta_i` (``_witnesses`` eq. (2)) when

.. math::  \lvert R_i - g_i\rvert \le 8\,\delta_i
           + 10^{-2}\sqrt{\varepsilon}\,(\lvert g_i\rvert + \lVert g\rVert_\infty)          \tag{3}

The referee only explains a disagreement (which side is wrong, or that the differences are
noise); it never fails a check that hand and autodiff pass.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

RTOL_EPS_FACTOR = 2.0**12
RTOL_CAP = 1.0 / 16.0


def default_rtol(dtype) -> float:
    """``2^12 eps`` of ``dtype``, eq. (1), at most ``RTOL_CAP``."""
    return min(RTOL_EPS_FACTOR * float(jnp.finfo(dtype).eps), RTOL_CAP)


def check_tolerance(name: str, value) -> float | None:
    """``None`` or a finite non-negative float; anything else is a named error."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a non-negative float or None; got {value!r}")
    value = float(value)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0; got {value!r}")
    return value


def finite_max(*arrays: np.ndarray) -> float:
    """The largest finite magnitude over the arrays (0 when there is none)."""
    best = 0.0
    for a in arrays:
        a = np.abs(np.asarray(a, np.float64))
        a = a[np.isfinite(a)]
        if a.size:
            best = max(best, float(a.max()))
    return best


def judge(
    hand: np.ndarray, auto: np.ndarray, scale: float, rtol: float, atol: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(abs_err, rel_err, ok)`` elementwise, eq. (1)-(2).

    Non-finite values: an element passes only when both are the same infinity; a NaN in the hand
    gradient never passes.
    """
    hand = np.asarray(hand, np.float64)
    auto = np.asarray(auto, np.float64)
    a_tol = rtol * scale if atol is None else atol
    with np.errstate(all="ignore"):
        abs_err = np.abs(hand - auto)
        rel_err = abs_err / np.maximum(np.abs(auto), scale)  # (2)
        rel_err = np.where(abs_err == 0, 0.0, rel_err)
        ok = abs_err <= np.maximum(a_tol, rtol * np.abs(auto))  # (1)
    same_inf = np.isinf(hand) & (hand == auto)
    ok = np.where(np.isfinite(hand) & np.isfinite(auto), ok, same_inf)
    abs_err = np.where(same_inf, 0.0, abs_err)
    rel_err = np.where(same_inf, 0.0, rel_err)
    return abs_err, rel_err, ok


def referee(
    fd: np.ndarray, fd_err: np.ndarray, value: np.ndarray, scale: float | np.ndarray, eps: float
) -> np.ndarray:
    """Elementwise: does ``value`` agree with the finite difference ``fd`` +- ``fd_err``? (3)."""
    value = np.asarray(value, np.float64)
    with np.errstate(all="ignore"):
        tol = 8.0 * fd_err + 1e-2 * np.sqrt(eps) * (np.abs(value) + scale)  # (3)
        agree = np.abs(fd - value) <= tol
    return agree & np.isfinite(fd) & np.isfinite(value)
