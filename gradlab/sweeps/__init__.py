"""Hyperparameter sweeps: ``train`` over a grid as one compiled, sharded, resumable computation.

``sweep(train, grid)`` runs ``jit(vmap(train))`` over every configuration of ``grid`` (a product
of named values, or a zip), sharded over every device (``shard_map`` on a 1-D mesh), in chunks
sized from a memory budget, with a progress bar and an atomic checkpoint after every chunk, and
returns a :class:`SweepResult` table. ``sweep_quadratic`` is the fast path for MSE / ridge
objectives: gradient descent on the Gram matrix, ``d x d`` work per step instead of ``n x d``.

Bitwise reproducibility, precision and multi-host use (GPU clusters, TPU pods) are described in
``gradlab.sweep._run``; the Gram path's scope in ``gradlab.sweep._gram``; what a checkpoint
checks before it resumes in ``gradlab.sweep._checkpoint``.

``gradlab.sweep`` (the attribute of the top-level package) is the *function*; import the rest
with ``from gradlab.sweep import make_grid, quadratic_train, ...`` (``import gradlab.sweep as m``
would give the function too).
"""

from gradlab.sweep._checkpoint import CheckpointError
from gradlab.sweep._gram import QuadraticFit, quadratic_train, sweep_quadratic
from gradlab.sweep._grid import Grid, make_grid
from gradlab.sweep._progress import ProgressInfo
from gradlab.sweep._result import SweepResult
from gradlab.sweep._run import SweepInterrupted, config_key, sweep

__all__ = [
    "CheckpointError",
    "Grid",
    "ProgressInfo",
    "QuadraticFit",
    "SweepInterrupted",
    "SweepResult",
    "config_key",
    "make_grid",
    "quadratic_train",
    "sweep",
    "sweep_quadratic",
]
