r"""Blame without an autodiff witness: which piece of a visible-sum loss explains the hand
gradient's error, from finite differences alone.

The residual :math:`\rho = g^{hand} - R` (``R`` the Richardson differences of the whole loss) is
fitted by least squares on the Richardson differences of the pieces
:math:`G = [R_{T_1}, \dots, R_{T_m}]`, columns scaled to unit norm:

.. math::  c = \arg\min_c \lVert \rho - G c\rVert_2, \qquad
           \mathrm{explained}_t = R^2\,\frac{\lVert c_t G_t\rVert^2}{\sum_s \lVert c_s G_s\rVert^2}
                                                                                          \tag{1}

the same fit the checker makes on autodiff gradients: a piece whose hand gradient is off by a
factor :math:`a` has coefficient :math:`a - 1`. Only pieces explaining at least ``1e-6`` are
kept; finite-difference noise (relative ``1e-10`` or so) cannot make a coefficient on its own
when the residual is a real error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.audit._fd_only import callback_loss
from gradlab.check import finite_differences

FLOOR = 1e-6


@dataclasses.dataclass(frozen=True)
class FdBlame:
    term: str
    coef: float
    explained: float


def _flat(tree: dict, names: list[str]) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(tree[k], np.float64)) for k in names])


def blame(terms: dict[str, Callable], hand: dict, params: dict) -> tuple[FdBlame, ...]:
    """Eq. (1): ``terms`` are the numpy pieces of the loss (``{name: piece(p)}``)."""
    names = list(params)
    with jax.enable_x64(True):
        p = {k: jnp.asarray(v, jnp.float64) for k, v in params.items()}
        cols = {
            t: _flat(finite_differences(callback_loss(fn, names), p).richardson, names)
            for t, fn in terms.items()
        }
    r = sum(cols.values())  # the pieces sum to the loss, so their differences sum to its own
    rho = _flat(hand, names) - r
    rr = float(rho @ rho)
    G = np.stack([cols[t] for t in terms], axis=1)
    if rr == 0.0 or not np.all(np.isfinite(G)) or not np.all(np.isfinite(rho)):
        return ()
    norms = np.linalg.norm(G, axis=0)
    safe = np.where(norms > 0, norms, 1.0)
    c, *_ = np.linalg.lstsq(G / safe, rho, rcond=None)
    coef = np.where(norms > 0, c / safe, 0.0)
    fit = G * coef
    resid = rho - fit.sum(axis=1)
    r2 = max(0.0, 1.0 - float(resid @ resid) / rr)
    parts = np.einsum("ij,ij->j", fit, fit)
    explained = r2 * parts / parts.sum() if parts.sum() > 0 else np.zeros_like(parts)
    out = [FdBlame(t, float(k), float(e)) for t, k, e in zip(terms, coef, explained, strict=True)]
    return tuple(sorted((b for b in out if b.explained >= FLOOR), key=lambda b: -b.explained))
