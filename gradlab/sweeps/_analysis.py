r"""A sweep table for analysis: aggregate over an axis (seeds), pick the best group, grid arrays.

Rows whose hyperparameters agree on every name in ``by`` form a group. For a metric :math:`m`
over a group's :math:`k` rows that did not diverge and have a finite value,

.. math::  \bar m = \frac1k \sum_i m_i, \qquad
           s_m = \Big(\frac1{k-1} \sum_i (m_i - \bar m)^2\Big)^{1/2}                  \tag{1}

(the sample standard deviation, as pandas' ``std``; NaN when :math:`k < 2`). A group with a
diverged or invalid row (a run that failed a value check) can still be summarized (its
``diverged`` and ``invalid`` counts say so), but it is never the best: a configuration that
diverges or is invalid for some seed is not one to pick.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

AGGREGATES = ("mean", "median", "min", "max")


class GridArrays(NamedTuple):
    """A product sweep as labelled arrays (xarray's ``Dataset`` layout, without xarray).

    Attributes:
      dims: the grid names, one array axis each, in the grid's order.
      coords: name -> its sorted distinct values (the axis labels).
      data: column -> array of shape ``tuple(len(coords[d]) for d in dims)``.
    """

    dims: tuple[str, ...]
    coords: dict[str, np.ndarray]
    data: dict[str, np.ndarray]


def resolve_names(grid_names: Sequence[str], names, what: str) -> tuple[str, ...]:
    """``names`` (a name or a sequence) checked against the grid's names."""
    names = (names,) if isinstance(names, str) else tuple(names)
    unknown = [n for n in names if n not in grid_names]
    if unknown:
        raise ValueError(f"{what} must name grid axes {list(grid_names)}; got unknown {unknown}")
    return names


def group_index(hparams: Mapping[str, np.ndarray], by: tuple[str, ...], n: int):
    """Group id of every row (groups in order of first appearance) and each group's first row."""
    if not by:
        return np.zeros(n, np.int64), np.zeros(1, np.int64)
    keys = list(zip(*(hparams[k].tolist() for k in by), strict=True))
    ids: dict[tuple, int] = {}
    group = np.array([ids.setdefault(key, len(ids)) for key in keys], np.int64)
    first = np.array([keys.index(key) for key in ids], np.int64)
    return group, first


def numeric_metrics(columns: Mapping[str, np.ndarray]) -> list[str]:
    """Columns that can be averaged: integer or floating, not booleans."""
    return [k for k, a in columns.items() if a.dtype.kind in "iuf"]


def summarize(
    hparams: Mapping[str, np.ndarray],
    columns: Mapping[str, np.ndarray],
    by: tuple[str, ...],
    metrics: Sequence[str],
) -> dict[str, np.ndarray]:
    """One row per group: ``by`` values, ``count``, ``diverged`` and each metric's statistics.

    ``count`` is the number of rows aggregated (neither diverged nor invalid), ``diverged`` the
    number that diverged, ``invalid`` (when ``columns`` has it) the number that failed a value
    check; per metric ``{m}_mean``, ``{m}_std`` (eq. (1)), ``{m}_median``, ``{m}_min``,
    ``{m}_max`` over the group's aggregated rows with a finite value (NaN if none).
    """
    diverged = np.asarray(columns["diverged"], bool)
    group, first = group_index(hparams, by, diverged.shape[0])
    n_groups = first.shape[0]
    invalid = np.asarray(columns.get("invalid", np.zeros_like(diverged)), bool)
    failed = diverged | invalid
    out = {k: hparams[k][first] for k in by}
    out["count"] = np.bincount(group, ~failed, n_groups).astype(np.int64)
    out["diverged"] = np.bincount(group, diverged, n_groups).astype(np.int64)
    if "invalid" in columns:
        out["invalid"] = np.bincount(group, invalid, n_groups).astype(np.int64)
    for m in metrics:
        vals = np.asarray(columns[m], np.float64)
        stats = {s: np.full(n_groups, np.nan) for s in ("mean", "std", "median", "min", "max")}
        for g in range(n_groups):
            v = vals[(group == g) & ~failed]
            v = v[np.isfinite(v)]
            if v.size:
                stats["mean"][g], stats["median"][g] = v.mean(), np.median(v)
                stats["min"][g], stats["max"][g] = v.min(), v.max()
                stats["std"][g] = v.std(ddof=1) if v.size > 1 else np.nan
        out.update({f"{m}_{s}": a for s, a in stats.items()})
    return out


def best_group(summary: Mapping[str, np.ndarray], metric: str, agg: str, mode: str) -> int:
    """Index of the group with the best ``{metric}_{agg}`` among groups without a divergence."""
    if agg not in AGGREGATES:
        raise ValueError(f"agg must be one of {AGGREGATES}; got {agg!r}")
    vals = summary[f"{metric}_{agg}"]
    invalid = summary.get("invalid", np.zeros_like(summary["diverged"]))
    ok = (summary["diverged"] == 0) & (invalid == 0) & (summary["count"] > 0) & np.isfinite(vals)
    if not ok.any():
        raise ValueError(
            f"no group has a finite {metric!r} {agg} without a diverged or invalid run "
            f"({vals.shape[0]} groups, {int(np.sum(summary['diverged'] > 0))} with divergences, "
            f"{int(np.sum(invalid > 0))} with invalid runs)"
        )
    return int(np.argmin(np.where(ok, vals if mode == "min" else -vals, np.inf)))


def grid_arrays(
    hparams: Mapping[str, np.ndarray], names: tuple[str, ...], columns: Mapping[str, np.ndarray]
) -> GridArrays:
    """Reshape a product grid's columns to one axis per name (see :class:`GridArrays`)."""
    coords, index = {}, []
    for k in names:
        coords[k], inverse = np.unique(hparams[k], return_inverse=True)
        index.append(inverse.reshape(-1))
    shape = tuple(coords[k].shape[0] for k in names)
    cells = np.ravel_multi_index(tuple(index), shape)
    filled = np.bincount(cells, minlength=int(np.prod(shape)))
    if filled.shape[0] != len(cells) or np.any(filled != 1):
        raise ValueError(
            f"to_grid needs every combination of {list(names)} exactly once (a product grid "
            f"without repeated values): {len(cells)} rows for {int(np.prod(shape))} cells "
            f"{shape}; {int(np.sum(filled == 0))} cells empty, {int(np.sum(filled > 1))} repeated"
        )
    data = {}
    for k, a in columns.items():
        out = np.empty(shape, a.dtype)
        out.reshape(-1)[cells] = a
        data[k] = out
    return GridArrays(names, coords, data)
