r"""The finite-difference witness in hyperparameter space, with a kink test.

The response :math:`f(\lambda) = V(\mathrm{solve}(\lambda))` is differenced by the checker's own
witness, :func:`gradlab.check.finite_differences` (central differences at :math:`h` and
:math:`h/2`, Richardson-extrapolated, with an error bar). With ``solve`` exact this is the
referee: a third opinion that shares no code with either derivative.

A kink (a lasso support change at :math:`\lambda`) has no derivative, and there the witnesses
may disagree for no fault of theirs. One-sided slopes tell it: the jump
:math:`J(h) = F(h) - B(h) = 2\,(F(h) - D(h))` between the forward and backward differences is
:math:`h f'' + O(h^3)` for a smooth :math:`f` and tends to the slope jump :math:`f'_+ - f'_-` at
a kink. Differencing again at :math:`h' \le h/2`,

.. math::  \text{kink} \iff |J(h')| > \tfrac{1 + h'/h}{2}\,|J(h)| \;\text{ and }\;
           |J(h')| > 64\,\varepsilon\,(|f| + 1) / h'                                  \tag{1}

(the first: :math:`J` did not shrink with the step as a smooth :math:`f` makes it; the second:
the jump is above round-off).

Steps are relative. The checker's default step is :math:`\varepsilon^{1/5}\max(1, |x|)`, right
for parameters of order one but a 7% perturbation of a regularization strength of 0.01 (Richardson
then errs by 1e-5 relative on ridge). Each element is therefore differenced in the scaled
variable :math:`u_i = (\lambda_i - \lambda^0_i)/s_i`, :math:`s_i = |\lambda^0_i|` (1 for a
zero element), at :math:`u = 0`, and the derivatives divided by :math:`s_i`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradlab.check import finite_differences

PyTree = Any


class FDResult(NamedTuple):
    """The finite-difference hypergradient, flat over the hyperparameters' elements.

    Attributes:
      value: Richardson-extrapolated derivative, float64 ``(k,)``.
      error: its error bar, ``(k,)``.
      jump: :math:`J(h')` of eq. (1), ``(k,)``.
      kink: eq. (1) holds, ``(k,)`` bool.
      f0: :math:`f(\\lambda)`.
    """

    value: np.ndarray
    error: np.ndarray
    jump: np.ndarray
    kink: np.ndarray
    f0: float


def _flat(tree) -> np.ndarray:
    return np.asarray(ravel_pytree(jax.tree.map(jnp.asarray, tree))[0], np.float64)


def hypergrad_fd(
    val: Callable[[PyTree], jax.Array],
    solve: Callable[[PyTree], PyTree],
    hyperparams: PyTree,
    *,
    step: float | None = None,
) -> FDResult:
    """Finite differences of :math:`\\lambda \\mapsto V(\\mathrm{solve}(\\lambda))`, eq. (1).

    Args:
      val: ``val(params) -> scalar``.
      solve: traceable ``solve(hyperparams) -> params``, as exact as the referee must be.
      hyperparams: the point.
      step: the first step :math:`h` in the scaled variable (a relative step; default: the
        checker's dtype-aware step, :math:`\varepsilon^{1/5}`).

    Returns:
      An :class:`FDResult`.
    """

    x0, unravel = ravel_pytree(hyperparams)
    scale = jnp.where(x0 != 0, jnp.abs(x0), 1.0)

    def response(u):
        return val(solve(unravel(x0 + scale * u)))

    u0 = jnp.zeros_like(x0)
    fd = finite_differences(response, u0, step=step)
    h = _flat(fd.step)
    h2 = float(np.min(h)) / 2
    fd2 = finite_differences(response, u0, step=h2)
    s = np.asarray(scale, np.float64)
    j1 = 2 * (_flat(fd.forward) - _flat(fd.central)) / s
    j2 = 2 * (_flat(fd2.forward) - _flat(fd2.central)) / s
    f0 = float(response(u0))
    eps = float(np.finfo(np.asarray(x0).dtype).eps)
    with np.errstate(all="ignore"):
        kink = (np.abs(j2) > (1 + h2 / h) / 2 * np.abs(j1)) & (
            np.abs(j2) * s > 64 * eps * (abs(f0) + 1) / h2
        )  # (1)
    return FDResult(_flat(fd.richardson) / s, _flat(fd.error) / s, j2, kink, f0)
