r"""A sweep's grid: named hyperparameter values, combined as a product (default) or zipped.

For names :math:`k_1, \dots, k_m` with value lists :math:`V_1, \dots, V_m`, the product grid is

.. math::  G = V_1 \times \dots \times V_m, \qquad |G| = \textstyle\prod_j |V_j|          \tag{1}

enumerated in C order (the last name varies fastest, as ``itertools.product``), and the zipped
grid pairs the i-th values, :math:`G = \{(V_1[i], \dots, V_m[i])\}_i` with all
:math:`|V_j|` equal. Either way the grid is stored *stacked*: one array of shape ``(|G|,)`` per
name, the leading axis being the configuration axis that ``sweep`` vmaps over.

Values are stored exactly as given (Python floats as float64, ints as int64, arrays in their own
dtype), so a table's ``row["l2"] == 0.1`` holds. ``train`` receives them in the dtype jax
computes in, :math:`c(v)` (float32 / int32 unless x64 is on), and a value :math:`v` is refused
unless that cast keeps it, up to float rounding:

.. math::  c(v) \text{ finite}, \qquad v \ne 0 \Rightarrow |c(v)| \ge
           \text{smallest normal}, \qquad v \text{ integer} \Rightarrow c(v) = v          \tag{2}

(``1e39`` overflows float32, ``1e-50`` becomes 0, the seed ``2**32`` wraps to 0 in int32.)
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

    def compute_values(self) -> dict[str, np.ndarray]:
        """The values as ``train`` receives them, in jax's dtype (eq. (2)); ``ValueError`` for a
        value that dtype cannot hold."""
        return {k: to_compute_dtype(k, self.values[k]) for k in self.names}

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
        values = np.arange(values.start, values.stop, values.step, dtype=np.int64)
    elif np.ndim(values) == 0 and not isinstance(values, list | tuple):
        raise TypeError(
            f"grid[{name!r}] must be a sequence or 1-D array of numbers (wrap a single value in "
            f"a list: [{values!r}]); got a scalar {values!r}"
        )
    try:
        a = np.asarray(values)
    except (ValueError, TypeError, OverflowError) as err:
        raise TypeError(
            f"grid[{name!r}] must be a 1-D sequence of numbers; got {values!r} ({err})"
        ) from None
    if not _is_number_dtype(a.dtype):
        raise TypeError(
            f"grid[{name!r}] must hold numbers (bool, int or float), since it becomes an array "
            f"that train receives inside jit; got dtype {a.dtype} from {values!r:.80}"
        )
    if a.ndim != 1:
        raise ValueError(f"grid[{name!r}] must be 1-D (one value per entry); got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"grid[{name!r}] is empty: a sweep needs at least one value per name")
    if _is_float(a.dtype) and not np.all(np.isfinite(a.astype(np.float64))):
        bad = int(np.argwhere(~np.isfinite(a.astype(np.float64)))[0, 0])
        raise ValueError(f"grid[{name!r}] must be finite; got {a[bad]} at index {bad}")
    return a  # as given: Python floats float64, ints int64, arrays their own dtype


def _is_float(dtype) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.floating))


def _is_number_dtype(dtype) -> bool:
    return dtype == np.bool_ or bool(jnp.issubdtype(dtype, jnp.integer)) or _is_float(dtype)


def compute_dtype(dtype) -> np.dtype:
    """The dtype jax computes a stored dtype in: itself, or its 32-bit kin with x64 off."""
    return np.dtype(jax.dtypes.canonicalize_dtype(dtype))


def to_compute_dtype(name: str, a: np.ndarray) -> np.ndarray:
    r"""``a`` cast to :func:`compute_dtype`, refusing any value the cast would change beyond
    rounding: an integer that wraps, a float that overflows to inf or falls below the smallest
    normal number (XLA flushes subnormals to zero), eq. (2) of the module docstring."""
    dt = compute_dtype(a.dtype)
    if dt == a.dtype:
        return a
    why = (
        f"jax computes in {dt} here (x64 is off); enable it with "
        "jax.config.update('jax_enable_x64', True), or rescale the hyperparameter"
    )
    if not _is_float(a.dtype):
        cast = a.astype(dt)
        bad = cast.astype(a.dtype) != a
        if bad.any():
            i = int(np.argmax(bad))
            info = np.iinfo(dt)
            raise ValueError(
                f"grid[{name!r}] value {a[i]} (index {i}) does not fit {dt} "
                f"[{info.min}, {info.max}]: it would wrap to {cast[i]}; {why}"
            )
        return cast
    with np.errstate(over="ignore", under="ignore"):
        cast = a.astype(dt)
    tiny = np.finfo(dt).smallest_normal
    over = ~np.isfinite(cast)
    under = (a != 0) & (np.abs(cast) < tiny)
    for bad, what in (
        (over, f"overflows {dt} (max {np.finfo(dt).max:.4g})"),
        (under, f"underflows {dt} (smallest normal {tiny:.4g})"),
    ):
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"grid[{name!r}] value {a[i].item()!r} (index {i}) {what}; {why}")
    return cast


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
