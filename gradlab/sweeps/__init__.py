"""Hyperparameter sweeps: ``train`` over a grid as one compiled, sharded, resumable computation.

``sweep(train, grid)`` runs ``jit(vmap(train))`` over every configuration of ``grid`` (a product
of named values, or a zip), sharded over every device (``shard_map`` on a 1-D mesh), in chunks
sized from a memory budget, with a progress bar and an atomic checkpoint after every chunk, and
returns a :class:`SweepResult` table. ``hypergrad_sweep`` sweeps ``gradlab.hypergrad``'s
hypergradients the same way (this layer uses hypergrad, never the reverse). ``sweep_quadratic``
is the fast path for MSE / ridge objectives: gradient descent on the Gram matrix, ``d x d`` work
per step instead of ``n x d``.

Bitwise reproducibility, precision and multi-host use (GPU clusters, TPU pods) are described in
``gradlab.sweeps._run``; the Gram path's scope in ``gradlab.sweeps._gram``; what a checkpoint
checks before it resumes in ``gradlab.sweeps._checkpoint``.

Names. ``gradlab.sweep`` is the *function* (``gradlab.sweep(train, grid)``); this subpackage is
``gradlab.sweeps``, so no module is shadowed by a function of its name: ``import gradlab.sweeps as
s`` gives the package (``s.make_grid``, ``s.sweep``), and ``import gradlab.sweep`` is a clear
``ModuleNotFoundError`` rather than the function in disguise. (Before, the package was
``gradlab.sweep`` and the top-level re-export of the function hid it: ``import gradlab.sweep as
m`` gave the function and ``m.make_grid`` raised ``AttributeError``.) The alternatives weighed:
a callable module keeps one name but is invisible to type checkers and ``inspect``; renaming
the function would break every user's ``gradlab.sweep(...)``.
"""

from gradlab.sweeps._checkpoint import CheckpointError
from gradlab.sweeps._gram import QuadraticFit, quadratic_train, sweep_quadratic
from gradlab.sweeps._grid import Grid, make_grid
from gradlab.sweeps._hypergrad import hypergrad_sweep
from gradlab.sweeps._progress import ProgressInfo
from gradlab.sweeps._result import SweepResult
from gradlab.sweeps._run import SweepInterrupted, config_key, sweep

__all__ = [
    "CheckpointError",
    "Grid",
    "ProgressInfo",
    "QuadraticFit",
    "SweepInterrupted",
    "SweepResult",
    "config_key",
    "hypergrad_sweep",
    "make_grid",
    "quadratic_train",
    "sweep",
    "sweep_quadratic",
]
