"""Argument checks for :func:`gradlab.fit`, run eagerly at call time from shapes, before tracing.

Everything here reads shapes (``np.shape``, ``jax.eval_shape``) or concrete values when there
are some; nothing is compiled. Values that are tracers (``fit`` called inside the user's
``jit``/``vmap``) skip the value checks, as in :mod:`gradlab._validate`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from gradlab import _validate as v
from gradlab.optim import learning_rates
from gradlab.train._batching import SAMPLING
from gradlab.train._types import PRECISIONS, EarlyStop

PyTree = Any


def check_data(data: Any) -> tuple[tuple, int | None]:
    """``data`` as a tuple of arrays sharing their leading axis; returns it and ``n``."""
    if not isinstance(data, tuple | list):
        raise TypeError(
            "data must be a tuple of arrays sharing their leading axis, e.g. (X, y) (a single "
            f"array goes in as (X,)); got {type(data).__name__}"
        )
    data = tuple(data)
    n = None
    for i, a in enumerate(data):
        if not hasattr(a, "shape") and not isinstance(a, int | float | np.number):
            raise TypeError(f"data[{i}] must be an array; got {type(a).__name__}")
        shape = np.shape(a)
        if len(shape) == 0:
            raise ValueError(
                f"data[{i}] must have a leading axis (one row per example); got a scalar. Pass "
                "hyperparameters by closure, e.g. functools.partial(loss, lam=lam)"
            )
        if n is None:
            n = shape[0]
        elif shape[0] != n:
            shapes = [tuple(np.shape(b)) for b in data]
            raise ValueError(
                f"data arrays must share their leading axis (examples); data[0] has {n} rows but "
                f"data[{i}] has {shape[0]} (shapes {shapes})"
            )
    return data, n


def check_loss(loss: Callable, params0: PyTree, data: tuple, *, what: str = "loss") -> None:
    """``loss(params0, *data)`` must trace to a real scalar; wraps its error otherwise.

    ``what`` names the callable in messages (``metrics['w']`` for a metric, called on params).
    """
    call = f"{what}(params0, *data)" if what == "loss" else f"{what}(params0)"
    if not callable(loss):
        raise TypeError(f"{what} must be callable as {call}; got {loss!r}")
    try:
        out = jax.eval_shape(loss, params0, *data)
    except Exception as e:  # re-raised with what fit was given, chained to the cause
        raise ValueError(
            f"{call} failed on params0 of shapes {_shapes(params0)} and data of shapes "
            f"{_shapes(data)}: {type(e).__name__}: {e}"
        ) from e
    v.check_scalar_output(call, out)


def check_grad(grad: Callable, params0: PyTree, data: tuple) -> None:
    """A hand gradient must return a pytree of the structure, shapes and dtypes of ``params0``
    (a weakly typed Python float adopts its parameter's dtype and passes)."""
    if not callable(grad):
        raise TypeError(f"grad must be callable as grad(params, *data) or None; got {grad!r}")
    try:
        out = jax.eval_shape(grad, params0, *data)
    except Exception as e:
        raise ValueError(
            f"grad(params0, *data) failed on params0 of shapes {_shapes(params0)}: "
            f"{type(e).__name__}: {e}"
        ) from e
    v.check_gradient_tree("grad(params0, *data)", out, "params0", params0)


def check_params(params0: PyTree) -> None:
    leaves = jax.tree.leaves(params0)
    if not leaves:
        raise ValueError("params0 must hold at least one array leaf; got an empty pytree")
    for name, x in zip(v.leaf_names(params0, "params0"), leaves, strict=True):
        v.check_floating(name, x)
        v.check_finite(name, x)


def check_optimizer(optimizer: Any, params0: PyTree) -> None:
    """An optax ``GradientTransformation``; a concrete readable learning rate must be > 0.

    The readable learning rates and the rule are those of ``gradlab.optim._learning_rate``: a
    :class:`~gradlab.optim.WithLearningRate` (``gradlab.optim.with_learning_rate``, gradlab's own
    optimizers) and ``optax.inject_hyperparams`` states; a scheduled one must be >= 0 at step 0.
    Traced ones are checked inside the loop (a flagged run). A Python float closed over by
    ``optax.sgd(lr)`` is invisible once the transformation is built.
    """
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(
            "optimizer must be an optax.GradientTransformation (init, update); got "
            f"{type(optimizer).__name__}"
        )
    for lr in learning_rates(optimizer, optimizer.init(params0)):
        if not v.is_concrete(lr.value):
            continue
        a = np.asarray(lr.value)
        if a.dtype.kind not in "fiu":
            continue
        if lr.scheduled and not np.all(a >= 0):
            raise ValueError(
                f"the optimizer's scheduled {lr.name} must be >= 0 (gradient descent); got "
                f"{a.tolist()} at step 0"
            )
        if not lr.scheduled and not np.all(a > 0):
            raise ValueError(
                f"the optimizer's {lr.name} must be > 0 (gradient descent); got {a.tolist()}"
            )


def check_batching(batch_size: Any, sampling: Any, key: Any, n: int | None) -> int | None:
    v.check_choice("sampling", sampling, SAMPLING)
    if batch_size is None:
        return None
    batch_size = v.static_int("batch_size", batch_size, low=1)
    if n is None:
        raise ValueError("batch_size needs data to sample from; got data=()")
    if batch_size > n:
        raise ValueError(
            f"batch_size must be <= n, the number of rows of data ({n}); got {batch_size} (the "
            "batches are drawn without replacement)"
        )
    if key is None:
        raise ValueError(
            "key is required when batch_size is set (mini-batches are sampled from it); pass "
            "key=jax.random.key(seed)"
        )
    if not hasattr(key, "shape"):
        raise TypeError(f"key must be a jax.random key array; got {type(key).__name__}")
    return batch_size


def check_early_stop(early_stop: Any) -> None:
    if early_stop is None:
        return
    if not isinstance(early_stop, EarlyStop):
        raise TypeError(
            f"early_stop must be an EarlyStop(tol, patience) or None; got {early_stop!r}"
        )
    v.static_int("early_stop.patience", early_stop.patience, low=1)
    v.check_nonnegative("early_stop.tol", early_stop.tol)


def check_bound(divergence_bound: Any) -> None:
    if divergence_bound is None:
        return
    v.check_positive("divergence_bound", divergence_bound)


def check_precision(precision: Any) -> str:
    v.check_choice("precision", precision, PRECISIONS)
    return precision


def check_metrics(metrics: Any) -> tuple[tuple[str, Callable], ...]:
    if metrics is None:
        return ()
    if not isinstance(metrics, dict):
        raise TypeError(f"metrics must be a dict name -> fn(params); got {type(metrics).__name__}")
    for name, fn in metrics.items():
        if name in ("loss", "grad_norm"):
            raise ValueError(f"metrics name {name!r} is taken by the history fit always records")
        if not callable(fn):
            raise TypeError(f"metrics[{name!r}] must be callable as fn(params); got {fn!r}")
    return tuple(metrics.items())


def _shapes(tree: Any):
    return jax.tree.map(lambda x: tuple(np.shape(x)), tree)
