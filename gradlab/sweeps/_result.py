"""``SweepResult``: one row per configuration, the stacked outputs, exports.

Rows are read from ``train``'s stacked outputs through one declared protocol,
:class:`gradlab.train.FitLike` (from the trainer's types, not the trainer):

* an output that is ``FitLike`` (``history``, ``diverged`` and ``steps_taken``: a ``gradlab.fit``
  result, or the Gram path's ``QuadraticFit``) gives each row the *last* history entry of every
  metric (``loss``, ``grad_norm``, user metrics), ``diverged``, ``steps_taken``, ``stopped_early``
  when present, ``invalid`` and ``invalid_reason`` (the failed check's message, ``""`` when
  valid; see ``FitResult.reasons``) when it records them, and its own ``precision`` when it
  records one. An invalid row, like a diverged one, is never the best (:meth:`SweepResult.best`)
  and is not aggregated (:meth:`SweepResult.summary`);
* any other pytree gives each row its scalar leaves, named by their path (``{"loss": ..,
  "w": ..}`` gives columns ``loss``; ``w`` of shape ``(d,)`` stays in ``outputs``); ``diverged``
  is a boolean scalar leaf named ``diverged`` if there is one, else "some floating scalar leaf is
  not finite".
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from gradlab.sweeps import _analysis
from gradlab.sweeps._grid import Grid
from gradlab.train._types import FitLike


def _path_name(path) -> str:
    parts = []
    for p in path:
        for attr in ("key", "name", "idx"):
            if hasattr(p, attr):
                parts.append(str(getattr(p, attr)))
                break
        else:
            parts.append(str(p))
    return ".".join(parts) or "output"


def scalar_columns(outputs: Any, n: int) -> dict[str, np.ndarray]:
    """Leaves of shape ``(n,)`` (one scalar per configuration), named by their pytree path."""
    cols = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(outputs)[0]:
        a = np.asarray(leaf)
        if a.shape == (n,):
            cols[_path_name(path)] = a
    return cols


def invalid_columns(outputs: Any, n: int) -> dict[str, np.ndarray]:
    """``invalid`` (bool) and ``invalid_reason`` (text, ``""`` when valid) of a fit-like output
    that records them (``FitResult.invalid``, ``.invalid_reason`` indexing ``.checks``), else
    nothing. The text is ``checks[invalid_reason]`` as in ``FitResult.reasons``."""
    invalid = getattr(outputs, "invalid", None)
    if invalid is None:
        return {}
    invalid = np.asarray(invalid).astype(bool).reshape(n)
    code = getattr(outputs, "invalid_reason", None)
    code = np.full(n, -1) if code is None else np.asarray(code).reshape(n)
    messages = np.asarray(["", *getattr(outputs, "checks", ())], dtype=str)
    known = invalid & (code >= 0) & (code < messages.shape[0] - 1)
    text = np.where(known, messages[np.where(known, code + 1, 0)], "")
    text = np.where(invalid & ~known, "invalid (no message recorded)", text)
    return {"invalid": invalid, "invalid_reason": text.astype(str)}


def columns_from_outputs(outputs: Any, n: int, precision: str) -> dict[str, np.ndarray]:
    """The table's non-hyperparameter columns (see the module docstring)."""
    if isinstance(outputs, FitLike):
        cols = {k: np.asarray(h)[:, -1] for k, h in outputs.history.items()}
        cols["diverged"] = np.asarray(outputs.diverged).astype(bool)
        cols["steps_taken"] = np.asarray(outputs.steps_taken)
        if hasattr(outputs, "stopped_early"):
            cols["stopped_early"] = np.asarray(outputs.stopped_early).astype(bool)
        cols.update(invalid_columns(outputs, n))
        prec = getattr(outputs, "precision", precision)
        cols["precision"] = np.full(n, prec if isinstance(prec, str) else precision)
        return cols
    cols = scalar_columns(outputs, n)
    div = cols.get("diverged")
    if div is None or div.dtype != np.bool_:
        floats = [a for a in cols.values() if a.dtype.kind in "fc"]
        div = np.zeros(n, bool)
        for a in floats:
            div |= ~np.isfinite(a)
        cols["diverged"] = div
    cols["precision"] = np.full(n, precision)
    return cols


def _py(x):
    """A JSON/CSV-friendly Python scalar (NaN and inf become None in JSON)."""
    if isinstance(x, np.generic):
        x = x.item()
    return x


def _csv_cell(x):
    x = _py(x)
    return repr(x) if isinstance(x, float) else x


@dataclass
class SweepResult:
    """The outcome of :func:`gradlab.sweep`: a table (one row per configuration) and the stacked
    outputs of ``train``.

    Attributes:
      grid: the stacked :class:`Grid` (``grid.values[name]`` has shape ``(size,)``).
      outputs: ``train``'s outputs stacked over configurations (NumPy leaves, leading axis
        ``size``), e.g. a ``FitResult`` whose fields all gained that axis.
      columns: the non-hyperparameter columns, name -> ``(size,)`` array: final metrics,
        ``diverged``, ``steps_taken`` (fit results), ``precision``.
      precision: the matmul precision the sweep ran under.
      lane_block: configurations vectorized together; a lane is bitwise reproducible by any
        sweep with the same ``lane_block`` (and by ``jax.jit(train)`` when it is 1).
      devices: how many devices the sweep ran on.
    """

    grid: Grid
    outputs: Any
    columns: dict[str, np.ndarray]
    precision: str
    lane_block: int
    devices: int = 1
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.grid.size

    def __repr__(self) -> str:
        ndiv = int(np.sum(self.columns["diverged"]))
        ninv = f", {int(np.sum(self.invalid))} invalid" if "invalid" in self.columns else ""
        return (
            f"SweepResult({len(self)} configurations over {list(self.grid.names)}, "
            f"{ndiv} diverged{ninv}, columns {self.column_names}, precision={self.precision!r})"
        )

    @property
    def column_names(self) -> list[str]:
        return ["index", *self.grid.names, *self.columns]

    @property
    def hparams(self) -> dict[str, np.ndarray]:
        return dict(self.grid.values)

    @property
    def diverged(self) -> np.ndarray:
        return self.columns["diverged"]

    @property
    def invalid(self) -> np.ndarray:
        """Rows whose run failed a value check (``FitResult.invalid``); all False when ``train``
        records no checks."""
        return self.columns.get("invalid", np.zeros(len(self), bool))

    @property
    def params(self) -> Any:
        """Stacked final parameters (``outputs.params`` for a fit result, else ``outputs``)."""
        return self.outputs.params if hasattr(self.outputs, "params") else self.outputs

    @property
    def history(self) -> dict[str, np.ndarray]:
        """Stacked strided histories, name -> ``(size, T)`` (empty if ``train`` records none)."""
        h = getattr(self.outputs, "history", None)
        if h is None and isinstance(self.outputs, Mapping):
            h = self.outputs.get("history")
        return dict(h) if isinstance(h, Mapping) else {}

    @property
    def history_steps(self) -> np.ndarray | None:
        """The step of each history entry (``(T,)``), when ``train`` records it."""
        s = getattr(self.outputs, "history_steps", None)
        return None if s is None else np.asarray(s)[0]

    def table(self) -> dict[str, np.ndarray]:
        """Column name -> ``(size,)`` array, in :attr:`column_names` order."""
        return {"index": np.arange(len(self)), **self.grid.values, **self.columns}

    def row(self, i: int) -> dict[str, Any]:
        i = int(i)
        if not 0 <= i < len(self):
            raise IndexError(f"row index must be in [0, {len(self)}); got {i}")
        return {k: _py(v[i]) for k, v in self.table().items()}

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [self.row(i) for i in range(len(self))]

    def best(
        self,
        metric: str = "loss",
        mode: str = "min",
        *,
        over: str | Sequence[str] | None = None,
        agg: str = "mean",
    ) -> dict[str, Any]:
        """The best configuration by ``metric``, aggregated over seeds when the grid has them.

        Without aggregation: the row with the smallest (``mode="min"``) or largest (``"max"``)
        finite ``metric`` among rows that neither diverged nor are ``invalid``; ties go to the
        lowest index. With ``over``: rows that agree on every other grid name form a group,
        ranked by the ``agg`` (``"mean"``, ``"median"``, ``"min"``, ``"max"``) of ``metric`` over
        the group; a group in which any run diverged or is invalid is never the best (see
        :meth:`summary`).

        Args:
          metric: a numeric column (``loss``, ``grad_norm``, a user metric).
          mode: ``"min"`` or ``"max"``.
          over: grid names to aggregate over. Default: ``"seed"`` when the grid has an axis of
            that name (the luckiest seed is not the best setting), else none; ``()`` for none.
          agg: the statistic that ranks groups.

        Returns:
          A row ``{name: value}``. Aggregated: the group's hyperparameters, each ``over`` name
          with the list of its values in the group, ``metric`` (the ``agg`` value), ``count``,
          ``diverged`` and ``{metric}_mean``, ``_std``, ``_median``, ``_min``, ``_max``.

        Examples:
          >>> import jax, gradlab
          >>> def train(hp, key):  # noisy: the seed shifts the loss
          ...     return {"loss": (hp["lr"] - 0.3) ** 2 + 0.1 * jax.random.normal(key, ())}
          >>> res = gradlab.sweep(train, {"lr": [0.1, 0.3], "seed": range(8)}, progress=False)
          >>> best = res.best("loss")          # mean over the 8 seeds of each lr
          >>> round(best["lr"], 6), best["count"], best["seed"]
          (0.3, 8, [0, 1, 2, 3, 4, 5, 6, 7])
        """
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max'; got {mode!r}")
        if metric not in self.columns or metric in ("diverged", "precision"):
            numeric = [k for k, a in self.columns.items() if a.dtype.kind in "iuf" and k != "index"]
            raise ValueError(f"metric must be one of the numeric columns {numeric}; got {metric!r}")
        over_names = self._over(over)
        if over_names:
            by = tuple(k for k in self.grid.names if k not in over_names)
            table = self.summary(by=by, metrics=[metric])
            i = _analysis.best_group(table, metric, agg, mode)
            row = {k: _py(v[i]) for k, v in table.items()}
            group, _ = _analysis.group_index(self.grid.values, by, len(self))
            for k in over_names:
                row[k] = [_py(v) for v in self.grid.values[k][group == i]]
            return {**row, metric: row[f"{metric}_{agg}"]}
        vals = self.columns[metric].astype(float)
        ok = ~self.columns["diverged"] & ~self.invalid & np.isfinite(vals)
        if not ok.any():
            raise ValueError(
                f"no row has a finite {metric!r} without diverging or being invalid "
                f"({len(self)} rows, {int(self.columns['diverged'].sum())} diverged, "
                f"{int(self.invalid.sum())} invalid)"
            )
        masked = np.where(ok, vals if mode == "min" else -vals, np.inf)
        return self.row(int(np.argmin(masked)))

    def _over(self, over) -> tuple[str, ...]:
        if over is None:
            return ("seed",) if "seed" in self.grid.names else ()
        return _analysis.resolve_names(self.grid.names, over, "over")

    def summary(
        self,
        by: str | Sequence[str] | None = None,
        *,
        over: str | Sequence[str] | None = None,
        metrics: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Statistics of each metric over groups of rows: mean, std, count (eq. (1) of
        ``gradlab.sweeps._analysis``).

        Args:
          by: the grid names that define a group. Default: every name not in ``over``.
          over: the names aggregated over when ``by`` is not given (default ``"seed"`` if the
            grid has it, as in :meth:`best`).
          metrics: columns to aggregate (default: every integer or float column).

        Returns:
          Column name -> array, one entry per group in grid order: the ``by`` names, ``count``
          (runs aggregated: neither diverged nor invalid), ``diverged`` (runs that diverged),
          ``invalid`` (runs that failed a value check, when ``train`` records them) and
          ``{m}_mean``, ``{m}_std`` (sample, NaN for one run), ``{m}_median``, ``{m}_min``,
          ``{m}_max`` per metric. ``pandas.DataFrame(res.summary())`` makes it a DataFrame.
        """
        if by is None:
            over_names = self._over(over)
            by = tuple(k for k in self.grid.names if k not in over_names)
        by = _analysis.resolve_names(self.grid.names, by, "by")
        numeric = _analysis.numeric_metrics(self.columns)
        metrics = numeric if metrics is None else list(metrics)
        bad = [m for m in metrics if m not in numeric]
        if bad:
            raise ValueError(f"metrics must be numeric columns {numeric}; got {bad}")
        return _analysis.summarize(self.grid.values, self.columns, by, metrics)

    def to_grid(self) -> _analysis.GridArrays:
        """The table as labelled arrays, one axis per grid name (product grids).

        xarray's layout without needing xarray: ``GridArrays(dims, coords, data)`` where
        ``data[column]`` has shape ``tuple(len(coords[d]) for d in dims)`` and ``coords[d]`` are
        the sorted values of grid name ``d``. With xarray installed,
        ``xarray.Dataset({k: (g.dims, v) for k, v in g.data.items()}, coords=g.coords)``.

        Raises:
          ValueError: when the rows are not every combination exactly once (a zipped grid, or a
            product with repeated values).
        """
        return _analysis.grid_arrays(self.grid.values, tuple(self.grid.names), self.columns)

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the table as CSV (floats in ``repr`` form: they read back exactly)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = self.table()
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(list(table))
            for i in range(len(self)):
                w.writerow([_csv_cell(a[i]) for a in table.values()])
        return path

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The table as JSON ``{"meta": .., "columns": [..], "rows": [[..], ..]}``; non-finite
        floats are written as ``null`` (standard JSON has no NaN). Written to ``path`` if given."""

        def cell(x):
            x = _py(x)
            return None if isinstance(x, float) and not math.isfinite(x) else x

        table = self.table()
        doc = {
            "meta": {
                "size": len(self),
                "names": list(self.grid.names),
                "combine": self.grid.combine,
                "precision": self.precision,
                "lane_block": self.lane_block,
                "devices": self.devices,
                **self.meta,
            },
            "columns": list(table),
            "rows": [[cell(a[i]) for a in table.values()] for i in range(len(self))],
        }
        text = json.dumps(doc, allow_nan=False)
        if path is not None:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return text

    def to_pandas(self):
        """The table as a ``pandas.DataFrame`` (pandas is optional)."""
        try:
            import pandas as pd
        except ModuleNotFoundError:
            raise ImportError(
                "SweepResult.to_pandas needs pandas, which is not installed "
                "(pip install 'gradlab[pandas]'); "
                "to_csv, to_json and table() work without it"
            ) from None
        return pd.DataFrame(self.table())
