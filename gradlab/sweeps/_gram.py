r"""The quadratic fast path: gradient descent on the Gram matrix, ``d x d`` work per step.

For the mean squared error with a ridge penalty (seed 002's :math:`J`, seed 001's ridge), with
:math:`X \in \mathbb{R}^{n\times d}` (put a column of ones in ``X`` for a bias, seed 002's bias
trick) and :math:`\lambda \ge 0`,

.. math::  J(w) = \tfrac1n \lVert Xw - y\rVert^2 + \lambda\lVert w\rVert^2              \tag{1}

depends on the data only through three statistics computed once,

.. math::  G = \tfrac1n X^\top X, \qquad c = \tfrac1n X^\top y, \qquad
           s = \tfrac1n y^\top y                                                         \tag{2}

.. math::  J(w) = w^\top G w - 2 c^\top w + s + \lambda w^\top w, \qquad
           \nabla J(w) = 2(Gw - c) + 2\lambda w                                          \tag{3}

while the data path computes the same gradient from the residual :math:`r = Xw - y`,

.. math::  J(w) = \tfrac1n r^\top r + \lambda w^\top w, \qquad
           \nabla J(w) = \tfrac2n X^\top r + 2\lambda w                                  \tag{4}

Both run heavy-ball gradient descent (``optax.sgd(lr, momentum=beta)``; plain GD for
:math:`\beta = 0`) from :math:`w_0` (zeros, as the seed), recording the loss *after* each step
as seed 002's ``history.append`` (and ``gradlab.fit``) do:

.. math::  v_{t+1} = \beta v_t + \nabla J(w_t), \quad w_{t+1} = w_t - \alpha v_{t+1}, \quad
           h_t = J(w_{t+1})                                                              \tag{5}

Cost per step and configuration: (3) needs :math:`Gw` (:math:`2d^2` flops, carried from the
previous step's loss), (4) needs :math:`Xw` and :math:`X^\top r` (:math:`4nd` flops). Under
``vmap`` over :math:`L` configurations both become matrix products, ``(L, d) @ (d, d)`` against
``(n, d) @ (d, L)`` and ``(L, n) @ (n, d)``: the Gram path is about :math:`2n/d` times less work.

The two paths give the same losses up to float rounding. (3) forms the loss as a difference
(:math:`w^\top G w - 2c^\top w + s`), so its rounding error is about
:math:`\varepsilon\,(|w^\top G w| + 2|c^\top w| + s)`, not :math:`\varepsilon J`: near a
minimum much smaller than :math:`s` it loses :math:`\log_{10}(s/J)` digits against (4).

When it applies: full-batch gradient descent, with or without momentum, on a quadratic
objective -- MSE (1) and ridge. Not for mini-batches (the batch Gram matrix changes every step),
L1 or elastic-net penalties (non-smooth: proximal steps), logistic, softmax or any
non-quadratic loss, or optimizers whose update is not linear in the gradient history (Adam).
Use ``sweep`` with a ``gradlab.fit`` train function there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gradlab import _validate as v
from gradlab.sweeps._grid import Grid, make_grid
from gradlab.sweeps._result import SweepResult
from gradlab.sweeps._run import sweep
from gradlab.train._types import default_divergence_bound

HPARAMS = ("lr", "l2", "momentum", "seed")
PATHS = ("gram", "data")


class QuadraticFit(NamedTuple):
    """One configuration's run, shaped like ``gradlab.fit``'s result (``sweep`` reads it the
    same way): final ``params`` (``w``), the strided ``history``, ``diverged``, ``steps_taken``.
    A diverged run is not frozen: its ``params`` may be inf or NaN (lanes never mix)."""

    params: jax.Array
    history: dict[str, jax.Array]
    history_steps: jax.Array
    loss: jax.Array
    diverged: jax.Array
    steps_taken: jax.Array


def _check(X, y, steps, record_every, w0):
    v.check_ndim("X", X, 2)
    v.check_floating("X", X)
    n, d = X.shape
    v.check_shape("y", y, (n,))
    v.check_same_dtype("X", X, "y", y)  # a promoted y would change the scan carry's dtype
    v.check_finite("X", X)
    v.check_finite("y", y)
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer; got {steps!r}")
    if int(record_every) != record_every or record_every < 1 or steps % record_every:
        raise ValueError(
            f"record_every must be a positive integer dividing steps={steps}; got {record_every!r}"
        )
    if w0 is not None:
        v.check_shape("w0", w0, (d,))
        v.check_finite("w0", w0)


class _Problem(NamedTuple):
    """What one configuration's run of (5) needs besides its hyperparameters."""

    X: jax.Array  # (n, d)
    y: jax.Array  # (n,)
    G: jax.Array  # (d, d), eq. (2)
    c: jax.Array  # (d,)
    s: jax.Array  # ()
    w_init: jax.Array  # (d,)
    bound: float  # divergence bound on the recorded loss
    record_steps: jax.Array  # (steps / record_every,)
    steps: int
    record_every: int
    path: str


class _Hparams(NamedTuple):
    lr: jax.Array
    l2: jax.Array | None  # lambda of (1), None when not in the grid
    beta: jax.Array | None  # momentum of (5), None when not in the grid


def _hparams(hparams: Mapping[str, jax.Array], dt) -> _Hparams:
    unknown = set(hparams) - set(HPARAMS)
    if "lr" not in hparams or unknown:
        raise ValueError(
            f"quadratic_train's hparams are 'lr' (required), 'l2', 'momentum' (and 'seed', "
            f"ignored); got {sorted(hparams)}"
        )

    def get(name):
        return jnp.asarray(hparams[name]).astype(dt) if name in hparams else None

    return _Hparams(get("lr"), get("l2"), get("momentum"))


def _penalty(h: _Hparams, w):
    return jnp.zeros((), w.dtype) if h.l2 is None else h.l2 * (w @ w)


def _update(h: _Hparams, w, vel, g):  # (5)
    if h.l2 is not None:
        g = g + 2.0 * h.l2 * w
    if h.beta is not None:
        vel = h.beta * vel + g
        g = vel
    return w - h.lr * g, vel


def _scan_gram(p: _Problem, h: _Hparams):
    def step(carry, _):
        w, vel, Gw = carry
        w, vel = _update(h, w, vel, 2.0 * (Gw - p.c))  # (3)
        Gw = p.G @ w  # G symmetric: w @ G == G @ w
        loss = w @ Gw - 2.0 * (p.c @ w) + p.s + _penalty(h, w)  # (3)
        return (w, vel, Gw), loss

    carry0 = (p.w_init, jnp.zeros_like(p.w_init), p.G @ p.w_init)
    return lax.scan(step, carry0, None, length=p.steps)


def _scan_data(p: _Problem, h: _Hparams):
    n = p.X.shape[0]

    def step(carry, _):
        w, vel, r = carry
        w, vel = _update(h, w, vel, (2.0 / n) * (r @ p.X))  # (4), r @ X == X^T r
        r = p.X @ w - p.y
        loss = (r @ r) / n + _penalty(h, w)  # (4)
        return (w, vel, r), loss

    carry0 = (p.w_init, jnp.zeros_like(p.w_init), p.X @ p.w_init - p.y)
    return lax.scan(step, carry0, None, length=p.steps)


def _run(p: _Problem, hparams: Mapping[str, jax.Array], key: jax.Array) -> QuadraticFit:
    """One configuration: (5) on (1) by the Gram path (3) or the data path (4)."""
    del key  # full batch: deterministic
    h = _hparams(hparams, p.X.dtype)
    (w, _, _), losses = (_scan_gram if p.path == "gram" else _scan_data)(p, h)
    hist = losses[p.record_every - 1 :: p.record_every]
    diverged = ~jnp.all(jnp.isfinite(losses)) | jnp.any(losses > p.bound)
    return QuadraticFit(
        params=w,
        history={"loss": hist},
        history_steps=p.record_steps,
        loss=losses[-1],
        diverged=diverged,
        steps_taken=jnp.asarray(p.steps, jnp.int32),
    )


def quadratic_train(
    X: jax.Array,
    y: jax.Array,
    steps: int,
    *,
    path: str = "gram",
    w0: jax.Array | None = None,
    record_every: int = 1,
    divergence_bound: float | None = None,
) -> Callable[[Mapping[str, jax.Array], jax.Array], QuadraticFit]:
    r"""A pure ``train(hparams, key)`` running (5) on (1) by the Gram path (3) or the data path (4).

    Args:
      X: ``(n, d)`` floating design matrix (a ones column gives a bias).
      y: ``(n,)`` targets, of ``X``'s dtype (a ``TypeError`` otherwise: no silent promotion).
      steps: gradient steps.
      path: ``"gram"`` (eq. (3), ``d x d`` per step) or ``"data"`` (eq. (4), ``n x d``).
      w0: ``(d,)`` start (default zeros).
      record_every: history stride (must divide ``steps``).
      divergence_bound: a run diverged when a recorded loss is not finite or exceeds this;
        default ``gradlab.train.default_divergence_bound(J(w0))``, ``1e6 max(J(w0), 1)``.

    Returns:
      ``train(hparams, key) -> QuadraticFit``; ``hparams`` holds ``"lr"`` and optionally
      ``"l2"`` (:math:`\lambda`) and ``"momentum"`` (:math:`\beta`); ``key`` is unused.
    """
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}; got {path!r}")
    X = jnp.asarray(X)
    y = jnp.asarray(y)
    _check(X, y, steps, record_every, w0)
    n, d = X.shape
    w_init = jnp.zeros(d, X.dtype) if w0 is None else jnp.asarray(w0, X.dtype)
    with jax.default_matmul_precision("highest"):
        G = (X.T @ X) / n  # (2), once
        c = (y @ X) / n
        s = (y @ y) / n
        r0 = X @ w_init - y
        j0 = (r0 @ r0) / n
        default = default_divergence_bound(j0)  # 1e6 max(|J(w0)|, 1), as gradlab.fit
    bound = float(default) if divergence_bound is None else float(divergence_bound)
    record_steps = jnp.arange(record_every, steps + 1, record_every, dtype=jnp.int32)
    problem = _Problem(X, y, G, c, s, w_init, bound, record_steps, steps, record_every, path)
    return functools.partial(_run, problem)


def sweep_quadratic(
    X: jax.Array,
    y: jax.Array,
    grid: Mapping | Grid,
    steps: int,
    *,
    path: str = "gram",
    w0: jax.Array | None = None,
    record_every: int = 1,
    divergence_bound: float | None = None,
    combine: str = "product",
    **sweep_kwargs: Any,
) -> SweepResult:
    r"""Sweep full-batch GD (or heavy-ball momentum) on MSE / ridge (1) by the Gram path (3).

    See the module docstring for when it applies (full batch, quadratic objective). The table
    is the same as ``sweep(quadratic_train(X, y, steps, path="data"), grid)`` up to float
    rounding, at about :math:`d / (2n)` of its cost per step.

    Args:
      X, y: ``(n, d)`` design matrix and ``(n,)`` targets.
      grid: ``"lr"`` (required), ``"l2"``, ``"momentum"``, ``"seed"`` (ignored) values.
      steps: gradient steps.
      path: ``"gram"`` (default) or ``"data"``, the reference path (4).
      w0, record_every, divergence_bound: see :func:`quadratic_train`.
      combine: ``"product"`` or ``"zip"``.
      **sweep_kwargs: passed to :func:`gradlab.sweep` (``chunk_size``, ``checkpoint``,
        ``progress``, ``precision``, ...).

    Returns:
      A ``SweepResult`` whose rows carry the final ``loss``, ``diverged`` and ``steps_taken``.

    Examples:
      >>> import numpy as np, gradlab
      >>> x = np.linspace(0, 10, 80); X = np.c_[np.ones_like(x), x]; y = 2.5 + 1.7 * x
      >>> res = gradlab.sweep_quadratic(X, y, {"lr": [0.001, 0.01, 0.05]}, 200, progress=False)
      >>> res.diverged.tolist()
      [False, False, True]
    """
    g = make_grid(grid, combine)
    unknown = set(g.names) - set(HPARAMS)
    if "lr" not in g.names or unknown:
        raise ValueError(
            f"sweep_quadratic's grid names are 'lr' (required), 'l2', 'momentum', 'seed'; got "
            f"{list(g.names)}"
        )
    for name in ("lr", "l2"):
        if name in g.names and not np.all(g.values[name] >= 0):
            raise ValueError(f"grid[{name!r}] must be >= 0; got {g.values[name].min()}")
    train = quadratic_train(
        X, y, steps, path=path, w0=w0, record_every=record_every, divergence_bound=divergence_bound
    )
    return sweep(train, g, **sweep_kwargs)
