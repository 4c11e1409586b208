"""Every docstring example in ``gradlab/`` runs (as ``pytest --doctest-modules gradlab`` would),
one test per docstring, under the suite's settings (x64 on, rank promotion raises, strict dtype
promotion)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def module_names() -> list[str]:
    names = []
    for path in sorted((ROOT / "gradlab").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def docstring_examples() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for name in module_names():
        module = importlib.import_module(name)
        tests.extend(t for t in finder.find(module, name) if t.examples)
    return sorted(tests, key=lambda t: t.name)


EXAMPLES = docstring_examples()


def test_the_package_has_its_examples():
    assert len(EXAMPLES) >= 26  # 26 before this file ran them; more may come, none may vanish
    assert len({t.name for t in EXAMPLES}) == len(EXAMPLES)


# Examples that run optax code strict dtype promotion (conftest.py) refuses, with the reason.
STANDARD_DTYPES = {
    "gradlab.optim.projection.projected": "optax.projections.projection_simplex: "
    "float64 with int64 inside optax",
}


def _param(example: doctest.DocTest):
    reason = STANDARD_DTYPES.get(example.name)
    marks = [pytest.mark.standard_dtypes(reason)] if reason else []
    return pytest.param(example, marks=marks, id=example.name)


@pytest.mark.parametrize("example", [_param(t) for t in EXAMPLES])
def test_docstring_example(example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    example.globs = dict(example.globs)
    result = runner.run(example, out=report.append, clear_globs=True)
    assert result.failed == 0, "".join(report)
