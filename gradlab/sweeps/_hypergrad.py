r"""Hypergradients over a sweep grid in one compiled call.

:func:`hypergrad_sweep` runs ``implicit_core`` (or ``unrolled_core``) of ``gradlab.hypergrad`` as
the ``train`` of :func:`gradlab.sweep`: ``jit(vmap(...))`` over every configuration, one compiled
call per chunk, and the :class:`gradlab.SweepResult` gains one column ``d_<name>`` per
hyperparameter (:math:`\partial V / \partial \lambda_{name}`) beside ``val``,
``inner_residual`` and ``converged`` (a row that the implicit witness would refuse is flagged,
never silently kept). It lives in the sweep layer, which may use hypergrad (never the reverse);
refinement from the best cell is :func:`gradlab.hypergrad.refine`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.hypergrad import _implicit as imp
from gradlab.hypergrad import _problem
from gradlab.hypergrad import _unrolled as unr
from gradlab.sweeps._result import SweepResult
from gradlab.sweeps._run import sweep

PyTree = Any
METHODS = ("implicit", "unrolled")


def _row_train(problem, val, method, solve, cfg, unroll):
    def train(hp, key):
        hp = {k: v for k, v in hp.items() if k != "seed"}
        if method == "implicit":
            res = imp.implicit_core(problem, val, hp, solve(hp), cfg)
            ok = res.converged
        else:
            optimizer, steps, block = unroll
            res = unr.unrolled_core(problem, val, hp, optimizer, steps, block)
            ok = ~res.diverged
        out = {"val": res.value, "inner_residual": res.inner_residual, "converged": ok}
        out |= {f"d_{k}": g for k, g in res.hypergrad.items()}
        out["diverged"] = ~jnp.isfinite(res.value)
        return out

    return train


def hypergrad_sweep(
    problem: _problem.InnerProblem,
    val: Callable[[PyTree], jax.Array],
    grid: Mapping[str, Any],
    *,
    method: str = "implicit",
    solve: Callable[[PyTree], PyTree] | None = None,
    optimizer: Any = None,
    steps: int | None = None,
    block: int | None = None,
    rtol: float = 1e-6,
    **sweep_kwargs,
) -> SweepResult:
    """The hypergradient at every configuration of ``grid``, one compiled ``jit(vmap)`` call.

    Args:
      problem: the :class:`InnerProblem`; its ``loss`` reads ``hyperparams[name]`` for each
        grid name (a dict of scalars).
      val: ``val(params) -> scalar``.
      grid: name -> 1-D values, as :func:`gradlab.sweep` (a ``"seed"`` name is passed on to
        ``sweep`` and not to the problem).
      method: ``"implicit"`` (needs ``solve``) or ``"unrolled"`` (needs ``optimizer``, ``steps``).
      solve, optimizer, steps, block, rtol: as :func:`implicit` / :func:`unrolled`.
      **sweep_kwargs: passed to :func:`gradlab.sweep` (``combine``, ``chunk_size``, ...).

    Returns:
      A ``SweepResult`` with columns ``val``, ``d_<name>`` per hyperparameter,
      ``inner_residual``, ``converged`` and ``diverged``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if not isinstance(grid, Mapping) or not grid:
        raise TypeError(f"grid must be a non-empty mapping name -> values; got {grid!r}")
    probe = {k: jnp.asarray(np.asarray(v)[0], float) for k, v in grid.items() if k != "seed"}
    _problem.check_problem(problem, probe, require_used=method == "implicit")
    _problem.check_validation(val, problem.params0)
    cfg = imp.ImplicitConfig(rtol=rtol)
    unroll = None
    if method == "implicit":
        if not callable(solve):
            raise TypeError(f"method='implicit' needs solve(hyperparams) -> params; got {solve!r}")
    else:
        block = unr.check_unroll_args(steps, block)
        if optimizer is None:
            raise TypeError("method='unrolled' needs optimizer (and steps)")
        unr.check_optimizer_depends(problem, probe, optimizer)
        unroll = (optimizer, steps, block)
    sweep_kwargs.setdefault("progress", False)
    train = _row_train(problem, val, method, solve, cfg, unroll)
    return sweep(train, grid, **sweep_kwargs)
