"""Argument checks shared by the optimizers: hyperparameters, masks, leaf names.

Value checks run on concrete values only (a Python float, a numpy or a concrete jax array), so
they fire when an optimizer is built eagerly and are skipped for tracers (an optimizer built
inside ``jit``/``vmap`` or by ``optax.inject_hyperparams`` under ``jit``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import jax
import numpy as np
from jax.typing import ArrayLike

from gradlab import _validate as v

PyTree = Any
Mask = PyTree | Callable[[PyTree], PyTree] | None


def check_hyperparam(
    name: str, value: Any, *, positive: bool, allow_schedule: bool = False
) -> None:
    """A scalar hyperparameter: ``> 0`` (``positive``) or ``>= 0``; a schedule when allowed."""
    if callable(value):
        if allow_schedule:
            return
        raise TypeError(f"{name} must be a scalar (float or 0-d array); got a callable {value!r}")
    if isinstance(value, bool) or not isinstance(
        value, (int, float, np.ndarray, np.generic, jax.Array)
    ):
        raise TypeError(
            f"{name} must be a real scalar (float or 0-d array); got {type(value).__name__}"
        )
    scalar = cast(ArrayLike, value)  # narrowed by the isinstance above
    v.check_shape(name, scalar, ())
    if positive:
        v.check_positive(name, scalar)
    else:
        v.check_nonnegative(name, scalar)


def resolve_mask(mask: Mask, params: PyTree) -> list[bool]:
    """The mask as one Python bool per leaf of ``params`` (all True for ``None``).

    ``mask`` is a pytree of bools with exactly the structure of ``params``, or a callable
    ``params -> such a pytree`` (optax's convention). The mask is static: its leaves must be
    Python or numpy bools, never traced arrays.
    """
    if mask is None:
        return [True] * len(jax.tree.leaves(params))
    tree = mask(params) if callable(mask) else mask
    want = jax.tree.structure(params)
    got = jax.tree.structure(tree)
    if got != want:  # type: ignore[operator]  # jaxlib declares PyTreeDef.__eq__ only
        raise ValueError(
            f"mask has tree structure {got} but params has {want}; pass one bool per leaf of "
            "params, e.g. {'w': True, 'b': False} to leave the bias unpenalized"
        )
    flags = jax.tree.leaves(tree)
    for name, m in zip(v.leaf_names(params, "mask"), flags, strict=True):
        if not isinstance(m, (bool, np.bool_)):
            raise TypeError(
                f"{name} must be a Python bool (the mask is static configuration); "
                f"got {type(m).__name__} {m!r}"
            )
    return [bool(m) for m in flags]
