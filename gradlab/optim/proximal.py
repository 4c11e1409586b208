r"""Proximal gradient for L1 and elastic-net penalties: soft-thresholding, ISTA, FISTA.

The composite objective (seed 001 with :math:`m = n`, the bias left out of the penalty):

.. math::  F(x) = f(x) + \lambda_1\lVert Mx\rVert_1 + \tfrac{\lambda_2}{2}\lVert Mx\rVert^2  \tag{1}

with :math:`f` smooth (gradient :math:`L`-Lipschitz) and :math:`M` the 0/1 mask of the
penalized leaves. The proximal operator of the penalty, with step :math:`\eta`, acts
elementwise on the penalized leaves and is the identity on the others:

.. math::  S_\tau(z) = \operatorname{sign}(z)\max(|z| - \tau, 0)                         \tag{2}
.. math::  \operatorname{prox}_{\eta}(z) = \frac{S_{\eta\lambda_1}(z)}{1 + \eta\lambda_2}   \tag{3}

ISTA (proximal gradient) is a gradient step followed by (3):

.. math::  x_{k+1} = \operatorname{prox}_\eta\big(x_k - \eta\nabla f(x_k)\big)             \tag{4}

FISTA evaluates the gradient at an extrapolated point :math:`y_k`:

.. math::  x_{k+1} = \operatorname{prox}_\eta\big(y_k - \eta\nabla f(y_k)\big)             \tag{5}
.. math::  t_{k+1} = \tfrac{1}{2}\big(1 + \sqrt{1 + 4t_k^2}\big),\qquad
           y_{k+1} = x_{k+1} + \frac{t_k - 1}{t_{k+1}}\,(x_{k+1} - x_k)                    \tag{6}

starting from :math:`y_0 = x_0`, :math:`t_0 = 1`. Adaptive restart (O'Donoghue and Candès,
gradient scheme): :math:`(y_k - x_{k+1})/\eta` is the gradient mapping at :math:`y_k`; when
it makes an acute angle with the last step,

.. math::  \langle y_k - x_{k+1},\; x_{k+1} - x_k\rangle > 0                              \tag{7}

the momentum is pointing uphill, and the method restarts: :math:`t_k \leftarrow 1` before
(6), so :math:`y_{k+1} = x_{k+1}`. With :math:`\eta \le 1/L`, ISTA converges as
:math:`O(1/k)`, FISTA as :math:`O(1/k^2)`, and with restart linearly on strongly convex
problems at a rate that adapts to the unknown strong-convexity constant.

**scikit-learn's scaling.** ``Lasso(alpha)`` minimizes
:math:`\tfrac{1}{2n}\lVert y - Xw - b\rVert^2 + \alpha\lVert w\rVert_1`: objective (1) with
:math:`f` = ``gradlab.derivations.mse.mse_half_mean``, :math:`\lambda_1 = \alpha`,
:math:`\lambda_2 = 0` and ``mask={"w": True, "b": False}``; ``ElasticNet(alpha, l1_ratio)`` is
:math:`\lambda_1 = \alpha\,\mathrm{l1\_ratio}`, :math:`\lambda_2 = \alpha(1 -
\mathrm{l1\_ratio})`. A safe step is :math:`\eta = 1/L`,
:math:`L = \lambda_{\max}([\mathbf 1, X]^\top[\mathbf 1, X])/n`. Compare at sklearn's
``tol=1e-12``: its default ``tol=1e-4`` stops short (``2e-5`` away in ``bench_optim.py``).

**How the optax params map to FISTA.** optax evaluates the gradient at ``params``, so the
params are the extrapolated points :math:`y_k` of (5)-(6), not the iterates :math:`x_k`. The
iterate, the point carrying the sparsity pattern and the one to report, lives in the state:
read it with :func:`fista_iterate` (it finds the state inside ``optax.chain`` or
``optax.inject_hyperparams``). ISTA has no such split: its params are its iterates.
A loop that returns only the params (``gradlab.fit``'s ``FitResult.params``) returns
:math:`y_k`: it converges to the same minimizer, and once the support has settled its zeros are
exact too (:math:`y = x + \beta(x - x_{\text{prev}})` is 0 where both iterates are 0), but
before that it is not sparse; read :math:`x_k` from the state for the sparsity pattern.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gradlab.optim._common import Mask, check_hyperparam, resolve_mask
from gradlab.optim._learning_rate import carrying

Scalar = float | jax.Array


def soft_threshold(z: jax.Array, threshold: Scalar) -> jax.Array:
    r"""Soft-thresholding, the proximal operator of :math:`\tau\lVert\cdot\rVert_1`.

    .. math::  S_\tau(z) = \operatorname{sign}(z)\max(|z| - \tau, 0)

    Args:
      z: array.
      threshold: :math:`\tau \ge 0`, a scalar.

    Returns:
      :math:`S_\tau(z)`, same shape and dtype as ``z``.
    """
    tau = jnp.asarray(threshold, z.dtype)
    return jnp.sign(z) * jnp.maximum(jnp.abs(z) - tau, jnp.zeros((), z.dtype))  # (2)


def _prox(z_tree, flags, l1, l2):
    """Eq. (3) on the leaves whose flag is True, identity on the others."""
    leaves, treedef = jax.tree.flatten(z_tree)
    out = [
        soft_threshold(z, l1) / (1 + jnp.asarray(l2, z.dtype)) if on else z  # (3)
        for z, on in zip(leaves, flags, strict=True)
    ]
    return jax.tree.unflatten(treedef, out)


def prox_elastic_net(
    l1_threshold: Scalar, l2_threshold: Scalar = 0.0, mask: Mask = None
) -> optax.GradientTransformation:
    r"""Elastic-net proximal step after a gradient step, eq. (3).

    .. math::  x^+ = \frac{S_{\tau_1}(x + u)}{1 + \tau_2},\qquad u^+ = x^+ - x

    where :math:`u` are the incoming updates (e.g. :math:`-\eta\nabla f` from ``optax.sgd``),
    so chained after ``optax.sgd(eta)`` with :math:`\tau_1 = \eta\lambda_1`,
    :math:`\tau_2 = \eta\lambda_2` it is one ISTA step (4) for objective (1).

    Args:
      l1_threshold: :math:`\tau_1 \ge 0` (learning rate times :math:`\lambda_1`).
      l2_threshold: :math:`\tau_2 \ge 0` (learning rate times :math:`\lambda_2`).
      mask: which leaves are penalized: a pytree of bools with the structure of the params,
        or a callable ``params -> pytree of bools``; ``None`` penalizes every leaf. Leaves
        with ``False`` pass the incoming updates through.

    Returns:
      An ``optax.GradientTransformation`` (state ``optax.EmptyState``) that needs ``params``.
    """
    check_hyperparam("l1_threshold", l1_threshold, positive=False)
    check_hyperparam("l2_threshold", l2_threshold, positive=False)

    def init_fn(params):
        resolve_mask(mask, params)  # fail early on a mask that does not fit
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("prox_elastic_net needs params in update(updates, state, params)")
        flags = resolve_mask(mask, params)
        z = jax.tree.map(lambda p, u: p + u, params, updates)
        x = _prox(z, flags, l1_threshold, l2_threshold)
        return jax.tree.map(lambda a, p: a - p, x, params), state

    return optax.GradientTransformation(init_fn, update_fn)


def prox_l1(threshold: Scalar, mask: Mask = None) -> optax.GradientTransformation:
    r"""Soft-thresholding step after a gradient step: :math:`x^+ = S_\tau(x + u)`, eq. (2).

    ``optax.chain(optax.sgd(eta), prox_l1(eta * lam, mask))`` is ISTA (4) for
    :math:`f + \lambda\lVert Mx\rVert_1`.

    Args:
      threshold: :math:`\tau \ge 0` (learning rate times :math:`\lambda`).
      mask: penalized leaves, as in :func:`prox_elastic_net`.

    Returns:
      An ``optax.GradientTransformation`` that needs ``params``.

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> from gradlab.optim import prox_l1
      >>> opt = optax.chain(optax.sgd(0.1), prox_l1(0.1 * 0.5, mask={"w": True, "b": False}))
    """
    check_hyperparam("threshold", threshold, positive=False)
    return prox_elastic_net(threshold, 0.0, mask)


def ista(
    learning_rate: Scalar, lam: Scalar, *, l2: Scalar = 0.0, mask: Mask = None
) -> optax.GradientTransformation:
    r"""ISTA (proximal gradient) for objective (1), eq. (4), as an optax chain.

    .. math::  x_{k+1} = \frac{S_{\eta\lambda_1}(x_k - \eta\nabla f(x_k))}{1 + \eta\lambda_2}

    built as ``optax.chain(optax.sgd(eta), prox_elastic_net(eta * lam, eta * l2, mask))``.

    Args:
      learning_rate: :math:`\eta > 0`; converges for :math:`\eta \le 1/L`.
      lam: :math:`\lambda_1 \ge 0`, the L1 strength.
      l2: :math:`\lambda_2 \ge 0`, the L2 strength of the elastic net (penalty
        :math:`\tfrac{\lambda_2}{2}\lVert x\rVert^2`).
      mask: penalized leaves, as in :func:`prox_elastic_net`.

    Returns:
      An ``optax.GradientTransformation``; params are the iterates :math:`x_k`.

    References:
      Daubechies, Defrise and De Mol, *An iterative thresholding algorithm for linear inverse
      problems with a sparsity constraint*, CPAM 57 (2004).
    """
    check_hyperparam("learning_rate", learning_rate, positive=True)
    check_hyperparam("lam", lam, positive=False)
    check_hyperparam("l2", l2, positive=False)
    chain = optax.chain(
        optax.sgd(learning_rate),
        prox_elastic_net(learning_rate * lam, learning_rate * l2, mask),
    )
    return carrying(chain, learning_rate)


class FistaState(NamedTuple):
    """State of :func:`fista`.

    Attributes:
      x: the iterate :math:`x_k` of eq. (5) (the params are :math:`y_k`); read it with
        :func:`fista_iterate`.
      t: the momentum sequence :math:`t_k` of eq. (6).
      count: number of updates applied.
      restarts: number of adaptive restarts taken, eq. (7).
    """

    x: optax.Params
    t: jax.Array
    count: jax.Array  # type: ignore[assignment]  # optax names its step counters count
    restarts: jax.Array


def fista(
    learning_rate: Scalar,
    lam: Scalar,
    *,
    l2: Scalar = 0.0,
    mask: Mask = None,
    restart: bool | jax.Array = True,
) -> optax.GradientTransformation:
    r"""FISTA (accelerated proximal gradient) with optional adaptive restart, for objective (1).

    .. math::  x_{k+1} = \operatorname{prox}_\eta\big(y_k - \eta\nabla f(y_k)\big),\quad
               y_{k+1} = x_{k+1} + \tfrac{t_k - 1}{t_{k+1}}(x_{k+1} - x_k)

    restarting (:math:`t_k \leftarrow 1`) when :math:`\langle y_k - x_{k+1},
    x_{k+1} - x_k\rangle > 0` (module docstring, eqs. (5)-(7)). The params passed to
    ``update`` are :math:`y_k` (where the loop evaluates the gradient); the iterate
    :math:`x_k` is in the state: call :func:`fista_iterate` on the optimizer state to read it.

    Args:
      learning_rate: :math:`\eta > 0`, at most :math:`1/L` for the :math:`O(1/k^2)` rate
        (:math:`L` the Lipschitz constant of :math:`\nabla f`).
      lam: :math:`\lambda_1 \ge 0`, the L1 strength.
      l2: :math:`\lambda_2 \ge 0`, the elastic-net L2 strength (penalty
        :math:`\tfrac{\lambda_2}{2}\lVert x\rVert^2`, handled in the prox (3)).
      mask: penalized leaves, as in :func:`prox_elastic_net` (e.g. ``{"w": True, "b": False}``).
      restart: use the gradient adaptive restart (7): a Python bool, or a 0-d bool array (so
        one compiled loop serves both, and ``optax.inject_hyperparams`` can carry it).

    Returns:
      An ``optax.GradientTransformation`` with state :class:`FistaState`.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> from gradlab.optim import fista, fista_iterate
      >>> opt = fista(0.1, 0.5, mask={"w": True, "b": False})
      >>> params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
      >>> state = opt.init(params)
      >>> grads = jax.tree.map(jnp.ones_like, params)
      >>> updates, state = opt.update(grads, state, params)
      >>> params = optax.apply_updates(params, updates)   # y_1, where the next gradient goes
      >>> x = fista_iterate(state)                        # x_1, the answer

    References:
      Beck and Teboulle, *A fast iterative shrinkage-thresholding algorithm for linear inverse
      problems*, SIAM J. Imaging Sciences 2 (2009).
      O'Donoghue and Candès, *Adaptive restart for accelerated gradient schemes*, Foundations
      of Computational Mathematics 15 (2015).
    """
    check_hyperparam("learning_rate", learning_rate, positive=True)
    check_hyperparam("lam", lam, positive=False)
    check_hyperparam("l2", l2, positive=False)
    if not isinstance(restart, bool):
        if not (
            isinstance(restart, (np.ndarray, np.generic, jax.Array))
            and np.dtype(restart.dtype) == np.bool_
            and np.ndim(restart) == 0
        ):
            raise TypeError(
                f"restart must be a bool or a 0-d bool array; got {type(restart).__name__} "
                f"{restart!r}"
            )

    def init_fn(params):
        resolve_mask(mask, params)
        leaves = jax.tree.leaves(params)
        dtype = jnp.result_type(*leaves) if leaves else jnp.float32
        return FistaState(
            x=params,
            t=jnp.ones([], dtype),
            count=jnp.zeros([], jnp.int32),
            restarts=jnp.zeros([], jnp.int32),
        )

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("fista needs params in update(updates, state, params)")
        flags = resolve_mask(mask, params)
        y = params
        eta = learning_rate
        z = jax.tree.map(lambda p, g: p - jnp.asarray(eta, g.dtype) * g, y, updates)
        x_new = _prox(z, flags, eta * lam, eta * l2)  # (5)
        step = jax.tree.map(lambda a, b: a - b, x_new, state.x)
        gmap = jax.tree.map(lambda a, b: a - b, y, x_new)
        do_restart = jnp.logical_and(restart, optax.tree.vdot(gmap, step) > 0)  # (7)
        t = jnp.where(do_restart, jnp.ones_like(state.t), state.t)
        t_next = 0.5 * (1 + jnp.sqrt(1 + 4 * t * t))  # (6)
        beta = (t - 1) / t_next
        y_next = jax.tree.map(lambda a, s: a + beta.astype(a.dtype) * s, x_new, step)  # (6)
        new_updates = jax.tree.map(lambda a, b: a - b, y_next, y)
        new_state = FistaState(
            x=x_new,
            t=t_next,
            count=optax.safe_increment(state.count),
            restarts=state.restarts + do_restart.astype(jnp.int32),
        )
        return new_updates, new_state

    return carrying(optax.GradientTransformation(init_fn, update_fn), learning_rate)


def fista_iterate(state: optax.OptState) -> optax.Params:
    """The FISTA iterate :math:`x_k` from an optimizer state (the params are :math:`y_k`).

    Args:
      state: the state of :func:`fista`, or of a transformation containing it
        (``optax.chain``, ``optax.inject_hyperparams``, ``optax.masked``).

    Returns:
      The iterate, same tree as the params.

    Raises:
      ValueError: when ``state`` holds no :class:`FistaState`, or more than one.
    """
    found = [
        s
        for s in jax.tree.leaves(state, is_leaf=lambda s: isinstance(s, FistaState))
        if isinstance(s, FistaState)
    ]
    if len(found) != 1:
        raise ValueError(
            f"state must hold exactly one FistaState (the state of gradlab.optim.fista); "
            f"found {len(found)} in a {type(state).__name__}"
        )
    return found[0].x
