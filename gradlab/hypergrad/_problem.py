r"""The bilevel problem a hypergradient differentiates, and its argument checks.

.. math::  \lambda^\star = \arg\min_\lambda\; V(\theta^\star(\lambda)), \qquad
           \theta^\star(\lambda) = \arg\min_\theta\; L(\theta, \lambda; D)
           + \textstyle\sum_j \rho_j(\lambda)\,|\theta_j|                              \tag{1}

:math:`L` is the smooth training objective (``InnerProblem.loss``), :math:`\rho(\lambda) \ge 0`
an optional L1 strength per parameter element (``InnerProblem.l1``; the lasso and the elastic
net), :math:`V` the validation loss. The hypergradient is
:math:`\nabla_\lambda V(\theta^\star(\lambda))`.

Every check here runs eagerly on shapes and jaxprs before anything is compiled, and names the
argument, what was expected and what came.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradlab._validate import leaf_names, path_name
from gradlab.hypergrad._deps import dependent_leaves

PyTree = Any


@dataclasses.dataclass(frozen=True)
class InnerProblem:
    r"""The inner (training) problem of eq. (1).

    Attributes:
      loss: ``loss(params, hyperparams, *data) -> scalar``, the smooth part :math:`L`.
        Hyperparameters must be read from ``hyperparams`` (array leaves), never closed over.
      params0: initial parameters (the starting point of every inner solve and unroll).
      data: the training data, a tuple of arrays sharing their leading axis (as ``gradlab.fit``).
      l1: optional ``l1(hyperparams) -> pytree`` shaped like ``params`` (each leaf a scalar or
        the leaf's shape): the L1 strengths :math:`\rho(\lambda) \ge 0`; ``0`` leaves are
        unpenalized (a bias). ``None``: a smooth problem.
    """

    loss: Callable[..., jax.Array]
    params0: PyTree
    data: tuple = ()
    l1: Callable[[PyTree], PyTree] | None = None


def check_hyperparams(hyperparams: PyTree) -> None:
    """Every leaf a floating jax or numpy array (a Python float is a trace constant)."""
    leaves = jax.tree_util.tree_leaves_with_path(hyperparams)
    if not leaves:
        raise ValueError("hyperparams must hold at least one array leaf; got an empty pytree")
    for path, x in leaves:
        name = path_name("hyperparams", path)
        if not isinstance(x, jax.Array | np.ndarray):
            raise TypeError(
                f"{name} must be a floating array leaf, e.g. jnp.asarray({x!r}); got "
                f"{type(x).__name__} {x!r}. A Python number is baked into the trace as a "
                "constant, and its hypergradient would silently be zero"
            )
        if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
            raise TypeError(f"{name} must have a floating dtype; got {jnp.result_type(x)}")


def check_problem(problem: InnerProblem, hyperparams: PyTree, *, require_used: bool = True) -> None:
    """``problem.loss`` traces to a real scalar, and (``require_used``) every hyperparameter
    reaches its gradient or ``l1`` (the unrolled witness also lets it reach the optimizer)."""
    if not isinstance(problem, InnerProblem):
        raise TypeError(f"problem must be a gradlab.hypergrad.InnerProblem; got {problem!r}")
    check_hyperparams(hyperparams)
    if not isinstance(problem.data, tuple):
        raise TypeError(f"problem.data must be a tuple of arrays; got {type(problem.data)}")
    try:
        out = jax.eval_shape(problem.loss, problem.params0, hyperparams, *problem.data)
    except Exception as e:
        raise ValueError(
            f"problem.loss(params0, hyperparams, *data) failed: {type(e).__name__}: {e}"
        ) from e
    if getattr(out, "shape", None) != ():
        raise ValueError(f"problem.loss must return a scalar; got {out}")
    if problem.l1 is not None:
        rho = jax.eval_shape(problem.l1, hyperparams)
        if jax.tree.structure(rho) != jax.tree.structure(problem.params0):  # type: ignore[operator]  # jaxlib declares PyTreeDef.__eq__ only
            raise ValueError(
                "problem.l1(hyperparams) must return a pytree shaped like params0 "
                f"({jax.tree.structure(problem.params0)}); got {jax.tree.structure(rho)}"
            )

    if not require_used:
        return

    def stationarity(params, hp):
        g = jax.grad(problem.loss)(params, hp, *problem.data)
        return g, (None if problem.l1 is None else problem.l1(hp))

    used = dependent_leaves(stationarity, (problem.params0, hyperparams), 1)
    check_used(used, hyperparams, "problem.loss (its gradient) or problem.l1")


def check_used(used: list[bool], hyperparams: PyTree, where: str) -> None:
    """Raise naming every hyperparameter leaf that ``where`` provably ignores."""
    unused = [n for n, u in zip(leaf_names(hyperparams, "hyperparams"), used, strict=True) if not u]
    if unused:
        raise ValueError(
            f"{where} does not depend on {', '.join(unused)}: its hypergradient would be "
            "exactly zero. Read the hyperparameter from the hyperparams argument instead of "
            "closing over a Python number (which jax bakes into the trace as a constant)"
        )


def check_validation(val: Callable, params0: PyTree) -> None:
    """``val(params) -> scalar`` must read the parameters."""
    if not callable(val):
        raise TypeError(f"val must be callable as val(params) -> scalar; got {val!r}")
    try:
        out = jax.eval_shape(val, params0)
    except Exception as e:
        raise ValueError(f"val(params0) failed: {type(e).__name__}: {e}") from e
    if getattr(out, "shape", None) != () or not jnp.issubdtype(out.dtype, jnp.floating):
        raise ValueError(f"val(params) must return a float scalar; got {out}")
    used = dependent_leaves(val, (params0,), 0)
    if not any(used):
        raise ValueError(
            "val (the validation loss) does not depend on params: every hypergradient through "
            "the inner problem would be zero. val must be val(params) -> scalar, computed from "
            "the params it is given (not from a closed-over fit)"
        )
