"""``gradlab run NAME [--quick] [--out results]``: run an experiment; ``gradlab run --list``.

An experiment is a module ``<experiments>/<name>.py`` exposing ``run(quick, out_dir) -> dict``;
it writes ``<out>/<name>/metrics.json`` and its PNG plots and returns the metrics, whose scalar
entries are printed as a summary. A metric ``"checks"`` (``{claim: bool}``) holds the claims the
experiment verified; the command exits 1 when one of them failed.

Experiments live beside the package in the source checkout (``experiments/``), not in the
wheel. The folder is, in order: ``--experiments-dir DIR``, the environment variable
``GRADLAB_EXPERIMENTS_DIR``, ``experiments/`` at the root of the checkout holding the imported
``gradlab`` package (an editable install), ``experiments/`` under the current directory.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import sys
import time
import types
from collections.abc import Sequence
from pathlib import Path

from gradlab.cli import UsageError, check_writable

ENV_VAR = "GRADLAB_EXPERIMENTS_DIR"


def find_experiments_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The experiments folder (see the module docstring for the order); ``FileNotFoundError``
    names every place it looked."""
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(Path(explicit))
    elif os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    else:
        candidates.append(Path(__file__).resolve().parents[2] / "experiments")
        candidates.append(Path.cwd() / "experiments")
    for path in candidates:
        if (path / "__init__.py").is_file():
            return path.resolve()
    looked = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"no experiments folder (a package holding __init__.py) found; looked in: {looked}. "
        f"Experiments ship with the source checkout: pass --experiments-dir or set {ENV_VAR}"
    )


def list_experiments(directory: Path) -> dict[str, str]:
    """``{name: first docstring line}`` of each module in ``directory`` defining ``run``.

    Read with ``ast``, without importing (so listing does not start jax).
    """
    found = {}
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        if any(isinstance(node, ast.FunctionDef) and node.name == "run" for node in tree.body):
            doc = ast.get_docstring(tree) or ""
            found[path.stem] = doc.strip().splitlines()[0] if doc.strip() else ""
    return found


def load_experiment(name: str, directory: Path) -> types.ModuleType:
    """Import ``<directory>/<name>.py`` as ``<package>.<name>`` (relative imports work)."""
    known = list_experiments(directory)
    if name not in known:
        raise KeyError(f"no experiment named {name!r} in {directory}; known: {', '.join(known)}")
    parent = str(directory.parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    return importlib.import_module(f"{directory.name}.{name}")


def format_summary(metrics: dict, keys: Sequence[str] | None = None) -> str:
    """``key: value`` lines for the scalar metrics (or ``keys``), then the checks."""
    lines = []
    for key in keys or list(metrics):
        value = metrics.get(key)
        if isinstance(value, bool) or value is None or isinstance(value, str):
            lines.append(f"  {key:<36} {value}")
        elif isinstance(value, int | float):
            lines.append(f"  {key:<36} {value:.6g}")
        elif hasattr(value, "ndim") and getattr(value, "ndim", 1) == 0:
            lines.append(f"  {key:<36} {float(value):.6g}")
    for claim, ok in (metrics.get("checks") or {}).items():
        lines.append(f"  [{'ok' if ok else 'FAILED'}] {claim}")
    return "\n".join(lines)


def run_one(name: str, directory: Path, out: Path, quick: bool) -> tuple[dict, float]:
    """Run experiment ``name`` into ``out/name``; return its metrics and the wall seconds."""
    module = load_experiment(name, directory)
    start = time.perf_counter()
    metrics = module.run(quick=quick, out_dir=out / name)
    return metrics, time.perf_counter() - start


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run an experiment (experiments/, source checkout) and write results/<name>/",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("names", nargs="*", help="experiment names (see --list)")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    p.add_argument("--all", action="store_true", help="run every experiment")
    p.add_argument("--quick", action="store_true", help="the small CI size instead of the full one")
    p.add_argument("--out", type=Path, default=Path("results"), help="results root (results/)")
    p.add_argument(
        "--experiments-dir",
        type=Path,
        default=None,
        help=f"the experiments folder (default: ${ENV_VAR}, else experiments/ of the checkout)",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the named experiments; usage errors raise :class:`~gradlab.cli.UsageError` (exit
    status 2, one line), a failed claim returns 1."""
    directory = find_experiments_dir(args.experiments_dir)
    known = list_experiments(directory)
    if args.list:
        width = max((len(n) for n in known), default=0)
        for name, line in known.items():
            print(f"{name:<{width}}  {line}")
        return 0
    names = list(known) if args.all else list(args.names)
    if not names:
        raise UsageError("name an experiment, or pass --all or --list")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown experiment(s) {', '.join(unknown)}; known: {', '.join(known)}")
    check_writable(args.out, consequence="the experiments' results would be lost")
    status = 0
    for name in names:
        size = "quick" if args.quick else "full"
        print(f"== {name} ({size}) -> {args.out / name}/", flush=True)
        metrics, seconds = run_one(name, directory, args.out, args.quick)
        module = sys.modules[f"{directory.name}.{name}"]
        print(format_summary(metrics, getattr(module, "SUMMARY_KEYS", None)))
        print(f"  wrote {args.out / name / 'metrics.json'} and plots in {seconds:.1f} s")
        if not all((metrics.get("checks") or {}).values()):
            status = 1
    return status
