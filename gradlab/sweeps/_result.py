"""``SweepResult``: one row per configuration, the stacked outputs, exports.

Rows are read from ``train``'s stacked outputs by duck typing, never by importing the trainer:

* an output with ``history``, ``diverged`` and ``steps_taken`` (a ``gradlab.fit`` result, or any
  object shaped like one) gives each row the *last* history entry of every metric (``loss``,
  ``grad_norm``, user metrics), ``diverged``, ``steps_taken``, ``stopped_early`` when present, and
  the output's own ``precision`` when it records one;
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

from gradlab.sweeps._grid import Grid


def is_fit_like(out: Any) -> bool:
    """Duck typing for a ``gradlab.fit`` result: ``history``, ``diverged``, ``steps_taken``."""
    return all(hasattr(out, a) for a in ("history", "diverged", "steps_taken"))


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


def columns_from_outputs(outputs: Any, n: int, precision: str) -> dict[str, np.ndarray]:
    """The table's non-hyperparameter columns (see the module docstring)."""
    if is_fit_like(outputs):
        cols = {k: np.asarray(h)[:, -1] for k, h in outputs.history.items()}
        cols["diverged"] = np.asarray(outputs.diverged).astype(bool)
        cols["steps_taken"] = np.asarray(outputs.steps_taken)
        if hasattr(outputs, "stopped_early"):
            cols["stopped_early"] = np.asarray(outputs.stopped_early).astype(bool)
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
        return (
            f"SweepResult({len(self)} configurations over {list(self.grid.names)}, "
            f"{ndiv} diverged, columns {self.column_names}, precision={self.precision!r})"
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

    def best(self, metric: str = "loss", mode: str = "min") -> dict[str, Any]:
        """The row with the smallest (``mode="min"``) or largest (``"max"``) finite ``metric``
        among rows that did not diverge; ties go to the lowest index."""
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max'; got {mode!r}")
        if metric not in self.columns or metric in ("diverged", "precision"):
            numeric = [k for k, a in self.columns.items() if a.dtype.kind in "iuf" and k != "index"]
            raise ValueError(f"metric must be one of the numeric columns {numeric}; got {metric!r}")
        vals = self.columns[metric].astype(float)
        ok = ~self.columns["diverged"] & np.isfinite(vals)
        if not ok.any():
            raise ValueError(
                f"no row has a finite {metric!r} without diverging ({len(self)} rows, "
                f"{int(self.columns['diverged'].sum())} diverged)"
            )
        masked = np.where(ok, vals if mode == "min" else -vals, np.inf)
        return self.row(int(np.argmin(masked)))

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
                "SweepResult.to_pandas needs pandas, which is not installed (pip install pandas); "
                "to_csv, to_json and table() work without it"
            ) from None
        return pd.DataFrame(self.table())
