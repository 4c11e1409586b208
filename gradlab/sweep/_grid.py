r"""A sweep's grid: named hyperparameter values, combined as a product (default) or zipped.

For names :math:`k_1, \dots, k_m` with value lists :math:`V_1, \dots, V_m`, the product grid is

.. math::  G = V_1 \times \dots \times V_m, \qquad |G| = \textstyle\prod_j |V_j|          \tag{1}

enumerated in C order (the last name varies fastest, as ``itertools.product``), and the zipped
grid pairs the i-th values, :math:`G = \{(V_1[i], \dots, V_m[i])\}_i` with all
:math:`|V_j|` equal. Either way the grid is stored *stacked*: one array of shape ``(|G|,)`` per
name, the leading axis being the configuration axis that ``sweep`` vmaps over.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

COMBINE = ("product", "zip")


@dataclass(frozen=True)
class Grid:
    """A stacked grid: ``values[name]`` is a NumPy array of shape ``(size,)`` per name.

    Attributes:
      names: the hyperparameter names, in the order given.
      values: name -> ``(size,)`` array (bool, integer or floating).
      combine: ``"product"`` or ``"zip"``, how the value lists were combined, eq. (1).
    """

    names: tuple[str, ...]
    values: dict[str, np.ndarray]
    combine: str

    @property
    def size(self) -> int:
        return int(next(iter(self.values.values())).shape[0])

    def row(self, i: int) -> dict[str, np.generic]:
        """Configuration ``i`` as ``{name: scalar}`` (NumPy scalars of the stacked dtypes)."""
        return {k: self.values[k][i] for k in self.names}

    def fingerprint(self) -> str:
        """SHA-256 of names, dtypes, values and combine mode: equal iff the grids are equal."""
        h = hashlib.sha256()
        h.update(json.dumps([self.combine, list(self.names)]).encode())
        for k in self.names:
            a = np.ascontiguousarray(self.values[k])
            h.update(a.dtype.str.encode())
            h.update(a.tobytes())
        return h.hexdigest()


def _as_values(name: str, values) -> np.ndarray:
    if isinstance(values, str | bytes) or values is None:
        raise TypeError(
            f"grid[{name!r}] must be a sequence or 1-D array of numbers; got {values!r}"
        )
    if isinstance(values, range):
        values = list(values)
    elif np.ndim(values) == 0 and not isinstance(values, list | tuple):
        raise TypeError(
            f"grid[{name!r}] must be a sequence or 1-D array of numbers (wrap a single value in "
            f"a list: [{values!r}]); got a scalar {values!r}"
        )
    try:
        a = np.asarray(values)
    except (ValueError, TypeError) as err:
        raise TypeError(
            f"grid[{name!r}] must be a 1-D sequence of numbers; got {values!r} ({err})"
        ) from None
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"grid[{name!r}] must hold numbers (bool, int or float), since it becomes an array "
            f"that train receives inside jit; got dtype {a.dtype} from {values!r}"
        )
    if a.ndim != 1:
        raise ValueError(f"grid[{name!r}] must be 1-D (one value per entry); got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"grid[{name!r}] is empty: a sweep needs at least one value per name")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        bad = int(np.argwhere(~np.isfinite(a))[0, 0])
        raise ValueError(f"grid[{name!r}] must be finite; got {a[bad]} at index {bad}")
    # The dtype train sees: jax's default for the kind (float32 unless x64 is on), so a lane and
    # a lone run given the same Python number get the same bits. Arrays keep their own dtype
    # when jax has it (float64 becomes float32 without x64, as jnp.asarray would make it).
    if not hasattr(values, "dtype"):
        return np.asarray(jnp.asarray(a))
    return a.astype(jax.dtypes.canonicalize_dtype(a.dtype), copy=False)


def make_grid(grid: Mapping | Grid, combine: str = "product") -> Grid:
    """Stack ``grid`` (name -> values) as a product or zip, eq. (1), validating it first.

    Args:
      grid: a mapping from hyperparameter names (str) to 1-D sequences of numbers (lists,
        tuples, ``range``, NumPy or jax arrays), or an existing :class:`Grid` (returned as is).
      combine: ``"product"`` (every combination, the last name varying fastest) or ``"zip"``
        (the i-th values together; all lengths must match).

    Returns:
      A :class:`Grid`.

    Raises:
      ValueError: an empty grid or value list, mixed lengths under ``"zip"``, non-finite floats.
      TypeError: a non-mapping grid, non-string names, non-numeric values.

    Examples:
      >>> g = make_grid({"lr": [0.1, 0.01], "seed": range(3)})
      >>> g.size, g.values["seed"].tolist()
      (6, [0, 1, 2, 0, 1, 2])
    """
    if isinstance(grid, Grid):
        return grid
    if combine not in COMBINE:
        raise ValueError(f"combine must be one of {COMBINE}; got {combine!r}")
    if not isinstance(grid, Mapping):
        raise TypeError(
            f"grid must be a mapping name -> values, e.g. {{'lr': [0.1, 0.01]}}; "
            f"got {type(grid).__name__}"
        )
    if len(grid) == 0:
        raise ValueError("grid is empty: give at least one hyperparameter, e.g. {'lr': [0.1]}")
    names = tuple(grid)
    for k in names:
        if not isinstance(k, str) or not k.isidentifier():
            raise TypeError(f"grid names must be identifiers (str); got {k!r}")
    cols = {k: _as_values(k, grid[k]) for k in names}
    if combine == "zip":
        lengths = {k: a.shape[0] for k, a in cols.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(
                f"grid values must all have the same length when zipped; got lengths {lengths}"
            )
        return Grid(names, cols, combine)
    mesh = np.meshgrid(*[cols[k] for k in names], indexing="ij")  # (1), C order
    values = {
        k: m.reshape(-1).astype(cols[k].dtype, copy=False) for k, m in zip(names, mesh, strict=True)
    }
    return Grid(names, values, combine)
