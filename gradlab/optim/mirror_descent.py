r"""Exponentiated gradient: mirror descent on the probability simplex with KL geometry.

Seed 000 (MIRAGE++) updates portfolio weights :math:`\theta \in \Delta^{d-1}` by

.. math::  \theta_{t+1,i} = \frac{\theta_{t,i}\, e^{-\eta g_{t,i}}}
                                 {\sum_j \theta_{t,j}\, e^{-\eta g_{t,j}}}          \tag{1}

the mirror-descent step with the negative-entropy mirror map, whose Bregman divergence is
:math:`\mathrm{KL}(\theta\,\|\,\theta_t)`:
:math:`\theta_{t+1} = \arg\min_{\theta\in\Delta} \eta\langle g_t,\theta\rangle +
\mathrm{KL}(\theta\|\theta_t)`.

Computed as written, :math:`e^{-\eta g}` underflows to 0 in every coordinate once
:math:`\eta g \gtrsim 745` (float64) or :math:`\gtrsim 104` (float32) and (1) becomes
:math:`0/0`; the seed clips at ``1e-12`` to hide it. Here the weights live in the log domain,
:math:`\ell = \log\theta`, kept in the optimizer state:

.. math::  z_t = \ell_t - \eta\,(g_t - \min_j g_{t,j})                             \tag{2}
.. math::  \ell_{t+1} = z_t - \operatorname{logsumexp}(z_t)                         \tag{3}
.. math::  u_t = e^{\ell_{t+1}} - \theta_t                                           \tag{4}

The shift by :math:`\min_j g_{t,j}` in (2) cancels in the normalization (3) and keeps the
coordinate with the smallest gradient at :math:`z = \ell`, so ``logsumexp`` stays finite for
any finite gradient; a weight pushed to :math:`e^{-10^4}` is stored as
:math:`\ell = -10^4`, not as 0, and can come back. The update (4) follows optax's convention:
``optax.apply_updates(params, updates)`` lands on the new weights (up to one rounding,
which never makes them negative, and which does not accumulate, since the next step starts
from :math:`\ell` in the state, not from the rounded params).

Each leaf of ``params`` is a stack of probability vectors along its last axis (a ``(d,)``
leaf is one simplex, a ``(k, d)`` leaf is ``k`` of them). Use ``optax.masked`` or
``optax.partition`` to run it on the simplex leaves of a larger model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from gradlab import _validate as v
from gradlab.optim._common import check_hyperparam
from gradlab.optim._learning_rate import carrying

ScalarOrSchedule = float | jax.Array | Callable[[jax.Array], jax.Array]


class ExponentiatedGradientState(NamedTuple):
    """State of :func:`exponentiated_gradient`.

    Attributes:
      count: number of updates applied (feeds a learning-rate schedule).
      log_params: :math:`\\ell = \\log\\theta`, same tree as the params, eq. (3).
    """

    count: jax.Array  # type: ignore[assignment]  # optax names its step counters count
    log_params: optax.Params


def _check_on_simplex(params) -> None:
    leaves = jax.tree.leaves(params)
    for name, leaf in zip(v.leaf_names(params, "params"), leaves, strict=True):
        v.check_floating(name, leaf)
        if leaf.ndim == 0:
            raise ValueError(
                f"{name} must have at least 1 dimension (a probability vector along its last "
                "axis); got a scalar"
            )
        v.check_simplex(name, leaf, axis=-1)


def exponentiated_gradient(learning_rate: ScalarOrSchedule) -> optax.GradientTransformation:
    r"""Exponentiated gradient (entropic mirror descent) on the simplex, in the log domain.

    .. math::  \theta_{t+1} \propto \theta_t \odot e^{-\eta g_t},\qquad
               \ell_{t+1} = \ell_t - \eta g_t - \operatorname{logsumexp}(\ell_t - \eta g_t)

    (module docstring, eqs. (1)-(4)). The transformation needs ``params`` in ``update`` and
    returns ``new_params - params``; chain gradient transformations *before* it (clipping,
    an added entropy gradient), nothing that changes its updates after it.

    Args:
      learning_rate: :math:`\eta > 0`: a float, a 0-d jax array (so it can be ``vmap``-ed or
        injected with ``optax.inject_hyperparams``) or a schedule ``count -> eta``.

    Returns:
      An ``optax.GradientTransformation`` with state :class:`ExponentiatedGradientState`.
      ``init`` raises ``ValueError`` naming the leaf when concrete params are off the
      simplex (negative entries or sums away from 1 along the last axis). Entries exactly 0
      stay 0 (a face of the simplex is invariant under (1)).

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from gradlab.optim import exponentiated_gradient
      >>> opt = exponentiated_gradient(0.5)
      >>> theta = jnp.full(3, 1 / 3)
      >>> state = opt.init(theta)
      >>> updates, state = opt.update(jnp.array([1.0, 0.0, -1.0]), state, theta)
      >>> theta = optax.apply_updates(theta, updates)
      >>> bool(jnp.isclose(theta.sum(), 1.0))
      True

    References:
      Kivinen and Warmuth, *Exponentiated gradient versus gradient descent for linear
      predictors*, Information and Computation 132 (1997).
      Beck and Teboulle, *Mirror descent and nonlinear projected subgradient methods for
      convex optimization*, Operations Research Letters 31 (2003).
    """
    check_hyperparam("learning_rate", learning_rate, positive=True, allow_schedule=True)

    def init_fn(params):
        _check_on_simplex(params)
        log_params = jax.tree.map(jnp.log, params)
        return ExponentiatedGradientState(count=jnp.zeros([], jnp.int32), log_params=log_params)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                "exponentiated_gradient needs params in update(updates, state, params)"
            )
        eta = learning_rate(state.count) if callable(learning_rate) else learning_rate

        def step(g, ell):
            g_min = jnp.min(g, axis=-1, keepdims=True)
            z = ell - jnp.asarray(eta, g.dtype) * (g - g_min)  # (2)
            return z - jax.nn.logsumexp(z, axis=-1, keepdims=True)  # (3)

        log_params = jax.tree.map(step, updates, state.log_params)
        new_updates = jax.tree.map(lambda ell, p: jnp.exp(ell) - p, log_params, params)  # (4)
        count = optax.safe_increment(state.count)
        return new_updates, ExponentiatedGradientState(count=count, log_params=log_params)

    return carrying(optax.GradientTransformation(init_fn, update_fn), learning_rate)
