r"""Blame: which term of a composite loss explains the hand gradient's error, and by how much.

With the loss a sum of named terms :math:`L = \sum_t T_t`, the residual of the hand gradient
:math:`\rho = g^{hand} - \nabla L` (every leaf flattened into one vector) is fitted by least
squares onto the autodiff gradients of the terms, :math:`G = [\nabla T_1, \dots, \nabla T_m]`:

.. math::  c = \arg\min_c \lVert \rho - G c\rVert_2^2                                      \tag{1}

A term whose hand gradient was scaled by a wrong factor :math:`\alpha` shows up with coefficient
:math:`c_t = \alpha - 1` (seed 001's L1 gradient ``sign(w)`` in place of
:math:`\lambda\,\mathrm{sign}(w)`: :math:`c = 1/\lambda - 1`; its L2 gradient :math:`\lambda w` in
place of :math:`2\lambda w`: :math:`c = -1/2`). The fit explains the fraction
:math:`R^2 = 1 - \lVert \rho - Gc\rVert^2 / \lVert\rho\rVert^2` of the residual, shared among the
terms in proportion to the size of their parts of the fit:

.. math::  \mathrm{explained}_t = R^2\,\frac{\lVert c_t \nabla T_t\rVert^2}
           {\sum_s \lVert c_s \nabla T_s\rVert^2}                                          \tag{2}

(non-negative and summing to :math:`R^2`; with correlated term gradients, such as ``sign(w)`` and
``w``, the raw projections :math:`c_t \nabla T_t\cdot\rho` can exceed 1 or be negative).
The columns are scaled to unit norm before solving, and a rank-deficient :math:`G` gets the
minimum-norm solution.

Only what a term explains is blamed. The fit runs on the smooth elements (at a kink autodiff's
value is a convention, and its difference from a valid hand subgradient is no error), and terms
are named only when the fit explains at least ``BLAME_MIN_R2`` = 99% of the residual's squared
norm after adjusting for the :math:`m` columns fitted to :math:`n` elements,

.. math::  R^2_{adj} = 1 - (1 - R^2)\,\frac{n}{n - m} \ge 0.99                          \tag{3}

(with :math:`n \le m` nothing is named: :math:`m` columns fit any :math:`m` numbers). A
residual that is not a combination of the term gradients (one element off, two elements
swapped) gets "no single term explains it" and its :math:`R^2`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

BLAME_MIN_R2 = 0.99


@dataclasses.dataclass(frozen=True)
class Blame:
    """One term's share of the residual: its least-squares coefficient and explained fraction."""

    term: str
    coef: float
    explained: float


def explained(blames: list[Blame]) -> float:
    """The fit's :math:`R^2`: the fraction of the residual the terms explain together."""
    return float(sum(b.explained for b in blames))


def adjusted_r2(blames: list[Blame], n: int) -> float:
    """Eq. (3): :math:`R^2` adjusted for ``len(blames)`` columns fitted to ``n`` elements."""
    m = len(blames)
    if n <= m:
        return float("-inf")
    return 1.0 - (1.0 - explained(blames)) * n / (n - m)


def significant(blames: list[Blame], floor: float = 1e-6) -> list[Blame]:
    """The terms explaining at least ``floor`` of the residual (the ones to name in a verdict)."""
    return [b for b in blames if b.explained >= floor]


def blame(residual: np.ndarray, term_grads: dict[str, np.ndarray]) -> list[Blame]:
    """Eq. (1)-(2); terms sorted by explained fraction, largest first. Empty if nothing to blame."""
    rho = np.asarray(residual, np.float64).ravel()
    names = list(term_grads)
    if not names or not np.all(np.isfinite(rho)):
        return []
    rr = float(rho @ rho)
    if rr == 0.0:
        return []
    G = np.stack([np.asarray(term_grads[t], np.float64).ravel() for t in names], axis=1)
    if not np.all(np.isfinite(G)):
        return []
    norms = np.linalg.norm(G, axis=0)
    safe = np.where(norms > 0, norms, 1.0)
    c_scaled, *_ = np.linalg.lstsq(G / safe, rho, rcond=None)  # (1)
    coef = np.where(norms > 0, c_scaled / safe, 0.0)
    fit = G * coef
    resid = rho - fit.sum(axis=1)
    r2 = max(0.0, 1.0 - float(resid @ resid) / rr)
    parts = np.einsum("ij,ij->j", fit, fit)
    explained = r2 * parts / parts.sum() if parts.sum() > 0 else np.zeros_like(parts)  # (2)
    out = [Blame(t, float(c), float(e)) for t, c, e in zip(names, coef, explained, strict=True)]
    return sorted(out, key=lambda b: -abs(b.explained))
