"""Helpers every experiment shares: the results folder, atomic ``metrics.json``, the summary.

Nothing here is numerical: the numbers come from gradlab; this module only writes and prints them.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def prepare_out(out_dir: str | os.PathLike) -> Path:
    """The experiment's own folder (``results/<name>``), created if missing."""
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def main(name: str, run: Callable[..., dict], doc: str | None) -> None:
    """``python -m experiments.<name> [--quick] [--out results]``: the same as ``gradlab run``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog=f"python -m experiments.{name}", description=(doc or name).splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="the small CI size")
    parser.add_argument("--out", default="results", help="results root (results/)")
    args = parser.parse_args()
    with Timer() as t:
        metrics = run(quick=args.quick, out_dir=Path(args.out) / name)
    print(summarize(metrics))
    for claim, ok in (metrics.get("checks") or {}).items():
        print(f"  [{'ok' if ok else 'FAILED'}] {claim}")
    print(f"  wrote {Path(args.out) / name}/ in {t.seconds:.1f} s")
    if not all((metrics.get("checks") or {}).values()):
        raise SystemExit(1)


def to_jsonable(value: Any) -> Any:
    """Arrays, numpy and jax scalars, tuples and dicts as plain JSON values.

    Non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"`` (strict JSON has no
    literal for them, and a diverged run must still be written).
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, str | bool) or value is None:
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        a = np.asarray(value)
        if a.ndim == 0:
            return to_jsonable(a.item())
        return [to_jsonable(v) for v in a.tolist()]
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return f
    raise TypeError(f"metrics value of type {type(value).__name__} is not JSON-serializable")


def write_metrics(path: str | os.PathLike, metrics: Mapping[str, Any]) -> Path:
    """Write ``metrics`` as indented JSON atomically (a temporary file renamed over ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_jsonable(metrics), indent=2, sort_keys=False, allow_nan=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def summarize(metrics: Mapping[str, Any], keys: list[str] | None = None, width: int = 34) -> str:
    """A short ``key: value`` block of the scalar metrics (or of ``keys``) for the terminal."""
    lines = []
    for key in keys if keys is not None else list(metrics):
        if key not in metrics:
            continue
        value = to_jsonable(metrics[key])
        if isinstance(value, float):
            text = f"{value:.6g}"
        elif isinstance(value, dict | list):
            text = json.dumps(value)
            if len(text) > 80:
                text = text[:77] + "..."
        else:
            text = str(value)
        lines.append(f"  {key:<{width}} {text}")
    return "\n".join(lines)


class Timer:
    """``with Timer() as t: ...; t.seconds``: wall time of a block (perf_counter)."""

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._start


def median_time(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` calls after ``warmup`` calls.

    ``fn`` must block until its result is ready (call ``block_until_ready`` on jax outputs).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def require_sklearn(experiment: str):
    """Import scikit-learn or raise a clear error: it is an oracle in the ``test`` extra."""
    try:
        import sklearn  # noqa: F401
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"experiment {experiment!r} cross-checks against scikit-learn, which is not installed; "
            "install the test extra: pip install -e '.[test]' (or pip install scikit-learn)"
        ) from None
    return sklearn


def style_hand_vs_autodiff(fig) -> None:
    """Dash the autodiff curves and dot the bound in a loss figure whose hand-gradient and
    autodiff runs share a colour, so overlapping trajectories stay readable."""
    ax = fig.axes[0]
    for line in ax.get_lines():
        if "autodiff" in line.get_label():
            line.set_linestyle("--")
        if "bound" in line.get_label():
            line.set_linestyle(":")
            line.set_color("black")
    ax.legend(fontsize=8)
