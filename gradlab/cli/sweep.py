"""gradlab sweep FILE.py[:NAME] [--set NAME=VALUES ...] [--out DIR]: run a sweep from a file.

The sweep file convention. FILE.py is a Python file (imported by path) exposing either

  SWEEP = dict(train=..., grid=..., **options), or
  make_sweep() -> dict with the same keys (build data lazily, e.g. only when run),

and FILE.py:NAME picks another such dict or function. Keys: train (a pure train(hparams, key),
usually a gradlab.fit call) and grid (name -> values) are required; combine, lane_block,
chunk_size, precision, memory_budget go to gradlab.sweep; plots (optional) is a dict with bound
(the stability bound drawn on the frontier), color (the curves' colour name, default "lr") and
heatmap (a pair of grid names). experiments/sweeps/linreg_lr.py is an example.

--set NAME=VALUES replaces one grid entry (repeatable), in a small syntax read without eval: a
number (0.1), a comma list (0.001,0.01,0.05), logspace(a,b,n) (10^a ... 10^b, n values),
linspace(a,b,n), range(n), range(a,b), range(a,b,s).

The results folder (--out, default results/sweeps/<file>[-<NAME>]) receives table.csv,
table.json and the figures (curves.png, frontier.png, heatmap.png, when they apply); it is
checked for writing before the sweep starts. --checkpoint keeps a checkpoint in
<out>/checkpoint: rerunning the same command after an interruption (Ctrl-C, a kill, a crash)
resumes it. A rerun after train, its data, the grid or the precision changed is refused with
what changed; --fresh discards the checkpoint and starts over.

--set values are stored in the table exactly as typed (0.1 is the float64 0.1) and given to
train in the dtype jax computes in; a value that dtype cannot hold (1e39 or 1e-50 in float32, a
seed 2**32 in int32) is refused. Exit statuses: 0 done, 2 a usage error (one line), 3 an
internal error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gradlab.cli import UsageError, check_writable

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_CALL = re.compile(r"^\s*(logspace|linspace|range)\s*\((.*)\)\s*$")
SWEEP_KEYS = ("combine", "lane_block", "chunk_size", "precision", "memory_budget")
KNOWN_KEYS = ("train", "grid", "plots", *SWEEP_KEYS)


def _number(tok: str, what: str) -> int | float:
    tok = tok.strip()
    if not re.fullmatch(_NUMBER, tok):
        raise ValueError(f"{what}: {tok!r} is not a number")
    return int(tok) if re.fullmatch(r"[-+]?\d+", tok) else float(tok)


def parse_values(text: str) -> np.ndarray:
    """Values of ``--set NAME=VALUES`` (see the module docstring); no ``eval``.

    Examples:
      >>> parse_values("logspace(-2,0,3)").tolist()
      [0.01, 0.1, 1.0]
      >>> parse_values("range(3)").tolist(), parse_values("0.1,0.2").tolist()
      ([0, 1, 2], [0.1, 0.2])
    """
    m = _CALL.match(text)
    if m:
        fn, inner = m.group(1), m.group(2)
        args = [_number(a, f"{fn}() argument") for a in inner.split(",")] if inner.strip() else []
        if fn in ("logspace", "linspace"):
            if len(args) != 3 or not isinstance(args[2], int) or args[2] < 1:
                raise ValueError(f"{fn}(a,b,n) takes two numbers and a count n >= 1; got {text!r}")
            f = np.logspace if fn == "logspace" else np.linspace
            return f(float(args[0]), float(args[1]), args[2])
        if not 1 <= len(args) <= 3 or not all(isinstance(a, int) for a in args):
            raise ValueError(f"range() takes 1 to 3 integers; got {text!r}")
        if len(args) == 3 and args[2] == 0:
            raise ValueError(f"range() step must not be zero; got {text!r}")
        out = np.arange(*args)
        if out.size == 0:
            raise ValueError(f"{text!r} is empty")
        return out
    if not text.strip():
        raise ValueError("empty value list")
    vals = [_number(t, "value list") for t in text.split(",")]
    return np.asarray(vals)


def parse_set(item: str) -> tuple[str, np.ndarray]:
    """``"lr=logspace(-4,0,64)"`` -> ``("lr", array)``."""
    name, eq, values = item.partition("=")
    name = name.strip()
    if not eq or not name.isidentifier():
        raise ValueError(f"--set takes NAME=VALUES, e.g. lr=logspace(-4,0,64); got {item!r}")
    return name, parse_values(values)


def _user_code(path: Path, call):
    """``call()``, turning an exception raised in the user's file into a one-line
    :class:`UsageError` that names the file, the line and the error."""
    try:
        return call()
    except Exception as err:  # noqa: BLE001 - any error in the user's code is theirs to fix
        frames = [f for f in traceback.extract_tb(err.__traceback__) if Path(f.filename) == path]
        where = f"{path}:{frames[-1].lineno}" if frames else str(path)
        raise UsageError(f"{where}: {type(err).__name__}: {err}") from err


def load_spec(target: str) -> tuple[dict, str]:
    """Import ``FILE.py[:NAME]`` and return ``(spec dict, label)``."""
    path_s, _, name = target.partition(":")
    path = Path(path_s)
    if path.suffix != ".py" or not path.is_file():
        raise FileNotFoundError(f"sweep file must be an existing .py file; got {path_s!r}")
    mod_name = f"_gradlab_sweep_{path.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:  # a .py file always has a loader; a guard for types
        raise ImportError(f"cannot load {path_s!r} as a Python module")
    loader = spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    _user_code(path, lambda: loader.exec_module(module))
    if name:
        if not hasattr(module, name):
            raise AttributeError(f"{path_s} has no {name!r}")
        obj = getattr(module, name)
    elif hasattr(module, "SWEEP"):
        obj = module.SWEEP
    elif hasattr(module, "make_sweep"):
        obj = module.make_sweep
    else:
        raise AttributeError(f"{path_s} exposes neither SWEEP (a dict) nor make_sweep() (see -h)")
    sweep_spec = _user_code(path, obj) if callable(obj) else obj
    if not isinstance(sweep_spec, Mapping) or "train" not in sweep_spec or "grid" not in sweep_spec:
        raise TypeError(
            f"{target} must give a dict with 'train' and 'grid' (and optional {SWEEP_KEYS}, "
            f"'plots'); got {type(sweep_spec).__name__}"
        )
    unknown = set(sweep_spec) - set(KNOWN_KEYS)
    if unknown:
        raise ValueError(f"{target}: unknown keys {sorted(unknown)}; known: {list(KNOWN_KEYS)}")
    label = path.stem + (f"-{name}" if name else "")
    return dict(sweep_spec), label


def apply_overrides(grid: Mapping, sets: list[str]) -> dict:
    """The grid with each ``--set`` applied: names must exist; values are kept as typed
    (float64 or int64, see the module docstring); an integer entry takes only integers, and a
    floating entry keeps its kind (``--set lr=0,2`` gives the float64 ``0.0, 2.0``)."""
    grid = dict(grid)
    for item in sets:
        name, values = parse_set(item)
        if name not in grid:
            raise ValueError(f"--set {name}=...: {name!r} is not in the sweep's grid {list(grid)}")
        old = np.asarray(grid[name])
        if old.dtype.kind in "iu" and values.dtype.kind not in "iu":
            raise ValueError(f"--set {name}=...: {name!r} takes integers; got {values}")
        if old.dtype.kind in "fc" and values.dtype.kind in "iu":
            values = values.astype(np.float64)
        grid[name] = values
    return grid


def write_outputs(result, out: Path, plots: Mapping[str, Any] | None) -> list[Path]:
    """``table.csv``, ``table.json`` and the figures that apply; returns the paths written."""
    written = [result.to_csv(out / "table.csv")]
    (out / "table.json").parent.mkdir(parents=True, exist_ok=True)
    result.to_json(out / "table.json")
    written.append(out / "table.json")
    plots = dict(plots or {})
    try:
        from gradlab.plot import sweep as psweep

        color = plots.get("color", "lr")
        names = result.grid.names
        if "loss" in result.history and color in names:
            psweep.plot_sweep_curves(result, hparam=color, path=out / "curves.png")
            written.append(out / "curves.png")
        if color in names and "loss" in result.columns:
            psweep.plot_divergence_frontier(
                result, plots.get("bound"), hparam=color, path=out / "frontier.png"
            )
            written.append(out / "frontier.png")
        pair = plots.get("heatmap")
        if pair is None:
            varying = [k for k in names if len(np.unique(result.grid.values[k])) > 1]
            pair = tuple(varying) if len(varying) == 2 else None
        if pair is not None and "loss" in result.columns:
            psweep.plot_sweep_heatmap(result, pair[0], pair[1], path=out / "heatmap.png")
            written.append(out / "heatmap.png")
    except ModuleNotFoundError as err:
        print(f"gradlab sweep: no figures ({err})", file=sys.stderr)
    return written


def _run(args: argparse.Namespace) -> int:
    from gradlab.sweeps import sweep

    if args.fresh and not args.checkpoint:
        raise UsageError("--fresh discards a checkpoint: use it with --checkpoint")
    try:
        spec, label = load_spec(args.file)
    except AttributeError as err:
        raise UsageError(str(err)) from None
    grid = apply_overrides(spec["grid"], args.set or [])
    out = Path(args.out) if args.out else Path("results") / "sweeps" / label
    kwargs = {k: spec[k] for k in SWEEP_KEYS if k in spec}
    if args.precision is not None:
        kwargs["precision"] = args.precision
    if args.chunk_size is not None:
        kwargs["chunk_size"] = args.chunk_size
    check_writable(out, ("table.csv", "table.json"), "the sweep would be lost at the end")
    t0 = time.perf_counter()
    result = sweep(
        spec["train"],
        grid,
        checkpoint=out / "checkpoint" if args.checkpoint else None,
        resume=not args.fresh,
        progress=not args.no_progress,
        **kwargs,
    )
    wall = time.perf_counter() - t0
    written = write_outputs(result, out, spec.get("plots"))
    n_div = int(result.diverged.sum())
    n_inv = f", {int(result.invalid.sum())} invalid" if "invalid" in result.columns else ""
    print(f"{label}: {len(result)} configurations in {wall:.2f} s, {n_div} diverged{n_inv}")
    if "loss" in result.columns:
        print(f"best: {_best_text(result)}")
    for p in written:
        print(f"wrote {p}")
    return 0


def _best_text(result) -> str:
    """The best row by loss (grid names and loss), or why there is none: every row (or, over
    seeds, every group) diverged or failed a value check."""
    try:
        best = result.best("loss")
    except ValueError as err:
        return f"none ({err})"
    return str({k: best[k] for k in (*result.grid.names, "loss")})


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="run a hyperparameter sweep defined in a Python file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="FILE.py or FILE.py:NAME (a SWEEP dict or make_sweep function)")
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUES",
        help="replace a grid entry: 0.1,0.2 | logspace(a,b,n) | linspace(a,b,n) | range(n)",
    )
    p.add_argument("--out", help="results folder (default results/sweeps/<file>[-<NAME>])")
    p.add_argument("--precision", help="matmul precision (default: the file's, else 'highest')")
    p.add_argument("--chunk-size", type=int, help="configurations per compiled call")
    p.add_argument("--checkpoint", action="store_true", help="checkpoint to <out>/checkpoint")
    p.add_argument(
        "--fresh", action="store_true", help="with --checkpoint: discard it and start over"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
