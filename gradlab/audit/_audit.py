"""``audit(path)``: run a notebook or script, find its loss/gradient pairs, check each.

Load (``_document``) -> run every cell (``_run``) -> read the code (``_source``) -> find pairs
(``_discover``) -> build each problem from the notebook's data (``_problem``, ``_args``) ->
judge it (``_judge``) -> one :class:`AuditReport` (table, JSON, exit status).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from gradlab.audit import _discover, _judge, _problem
from gradlab.audit._build import build
from gradlab.audit._document import AuditError, Document, load
from gradlab.audit._fd_only import LABEL as FD_ONLY_LABEL
from gradlab.audit._judge import PairResult, Verdict, Witnesses
from gradlab.audit._numpy import Rebound, numpy_rules
from gradlab.audit._run import OutOfTime, Run, run_cells, time_limit
from gradlab.audit._source import Source


@dataclasses.dataclass(frozen=True)
class AuditReport:
    """Everything the audit of one document found."""

    path: Path
    document: Document
    run: Run
    pairs: tuple[PairResult, ...]
    errors: tuple[str, ...]  # one line each: pairs that could not even be built, markers
    nothing: tuple[str, ...]  # "no gradient to check" explanations

    @property
    def ok(self) -> bool:
        """No pair is wrong (errors and unchecked pairs are listed, but are not wrong)."""
        return not any(p.verdict.wrong for p in self.pairs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "ok": self.ok,
            "cells": [
                {
                    "cell": c.cell.index,
                    "status": c.status.value,
                    "error": c.error,
                    "warnings": list(c.warnings),
                }
                for c in self.run.cells
            ],
            "run_notes": list(self.run.notes),
            "pairs": [p.to_dict() for p in self.pairs],
            "errors": list(self.errors),
            "no_gradient": list(self.nothing),
        }

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def lines(self, verbose: bool = False) -> list[str]:
        """The report as text: cells, the table, each pair's details, what was not checked."""
        failed = self.run.failed()
        unit = (
            "top-level statement(s)"
            if self.run.cells and all(c.cell.statement for c in self.run.cells)
            else "code cell(s)"
        )
        out = [
            f"gradlab audit {self.path}: {len(self.run.cells)} {unit} run, "
            f"{len(failed)} failed; {len(self.pairs)} pair(s) checked"
        ]
        out += [f"  ! {c.line()}" for c in failed]
        for c in self.run.cells:
            if c.warnings:
                more = f" (+{len(c.warnings) - 1} more)" if len(c.warnings) > 1 else ""
                out.append(f"  ~ {c.cell.label}: warning {c.warnings[0]}{more}")
        out += [f"  run: {n}" for n in self.run.notes]
        out += _table(self.pairs)
        for p in self.pairs:
            out += _details(p, verbose)
        out += [f"error: {e}" for e in self.errors]
        out += [f"no gradient to check: {n}" for n in self.nothing]
        return out


COLUMNS = ("gradient", "loss", "where", "witnesses", "max rel err", "verdict", "blame")
SHORT = {Witnesses.THREE: "3", Witnesses.FD_ONLY: "fd only", Witnesses.NONE: "-"}


def _table(pairs) -> list[str]:
    if not pairs:
        return []
    rows = [COLUMNS]
    for p in pairs:
        rel = "-" if p.max_rel_err is None else f"{p.max_rel_err:.1e}"
        blame = ", ".join(f"{b.term} x {b.coef:.4g}" for b in p.blame) or "-"
        rows.append((p.name, p.loss, p.where, SHORT[p.witnesses], rel, p.verdict.value, blame))
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    out = [
        "  " + "  ".join(s.ljust(w) for s, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    out.insert(1, "  " + "  ".join("-" * w for w in widths))
    return out


def _details(p: PairResult, verbose: bool) -> list[str]:
    out = [f"{p.name} <- {p.loss}: {p.verdict.value}"]
    if p.error:
        out.append(f"  error: {p.error}")
    if p.worst:
        out.append(f"  worst: {p.worst}")
    for b in p.blame:
        out.append(
            f"  blame: term {b.term!r} x {b.coef:.6g}: its hand gradient is "
            f"{b.coef + 1:.6g} times the true one ({b.explained:.1%} of the residual)"
        )
    if p.witnesses is Witnesses.FD_ONLY:
        out.append(f"  {FD_ONLY_LABEL}")
    out += [f"  untraceable: {f}" for f in p.findings]
    out += [f"  arg {a}" for a in p.args]
    out += [f"  - {n}" for n in p.notes]
    if verbose and p.report is not None:
        out += ["    " + line for line in str(p.report).splitlines()]
    return out


def audit(
    path: str | Path,
    *,
    only: list[str] | None = None,
    timeout: float | None = 30.0,
    pair_timeout: float | None = 120.0,
    seed: int = 0,
) -> AuditReport:
    """Run the notebook or script at ``path`` and check every loss/gradient pair it defines.

    This runs the document's own code in this process, in a fresh namespace.

    Args:
      path: an ``.ipynb`` notebook or a ``.py`` script.
      only: gradient names to check (``["LinearModel.backward"]``); default every pair found.
      timeout: seconds each cell may run.
      pair_timeout: seconds building and checking one pair may take.
      seed: seeds numpy's global generator before the cells and gradlab's own draws.

    Returns:
      An :class:`AuditReport` (``.ok`` is False when any pair is wrong).

    Raises:
      AuditError: the document cannot be read at all (one line naming the file).
    """
    doc = load(path)
    run = run_cells(doc, timeout, seed)
    src = Source(doc)
    found = _discover.discover(src)
    candidates = list(found.candidates)
    errors = list(found.errors)
    if only:
        known = {c.name for c in candidates}
        for name in only:
            if name not in known:
                listed = ", ".join(sorted(known)) or "none"
                errors.append(f"--only {name}: no such gradient found (found: {listed})")
        candidates = [c for c in candidates if c.name in only]
        errors = [e for e in errors if e.startswith("--only") or any(n in e for n in only)]
    rebound = Rebound(run.namespace, {c.filename for c in doc.cells})
    # float64 witnesses whatever the user's jax config; numpy's broadcasting and promotion rules
    # for the rebound numpy code ((n, 1) + (1,) and int * float are legal numpy, which
    # rank_promotion="raise" and dtype_promotion="strict" refuse)
    with numpy_rules():
        pairs = [_one(c, src, run, rebound, seed, pair_timeout) for c in candidates]
    return AuditReport(Path(path), doc, run, tuple(pairs), tuple(errors), found.nothing)


def audit_target(target: str, **kwargs: Any) -> AuditReport:
    """``audit(path, only=[name])`` from ``"path.ipynb:Name"`` (``nb.ipynb:LinearModel.backward``),
    the form ``gradlab check`` can route to.

    Raises:
      AuditError: ``target`` has no ``:NAME`` part.
    """
    path, sep, name = target.rpartition(":")
    if not sep or not path or not name:
        raise AuditError(f"expected NOTEBOOK.ipynb:GRADIENT (e.g. nb.ipynb:grad); got {target!r}")
    return audit(path, only=[name], **kwargs)


def _one(c, src: Source, run: Run, rebound: Rebound, seed: int, limit) -> PairResult:
    """Build and judge one pair; whatever the user's code does, a result (never a raise)."""

    def error(text: str) -> PairResult:
        return PairResult(
            c.name,
            c.loss.qualname,
            c.grad.where,
            c.grad.cell.index,
            Verdict.ERROR,
            Witnesses.NONE,
            error=text,
            notes=(f"found {c.how}",) + _failed_note(run, c),
        )

    state = np.random.get_state()  # noqa: NPY002 - constructors may draw (np.random.randn)
    np.random.seed(seed)  # noqa: NPY002
    try:
        with time_limit(limit), _quiet():
            problem = build(c, src, run, rebound, seed)
            return _judge.judge(problem, src)
    except _problem.ProblemError as err:
        return error(str(err))
    except OutOfTime:
        return error(f"{c.name}: checking did not finish within {limit:g} s; stopped")
    except Exception as err:  # noqa: BLE001 - the user's objects may fail anywhere
        text = str(err).strip().splitlines()
        return error(f"{c.name}: {type(err).__name__}: {text[0] if text else ''}"[:220])
    finally:
        np.random.set_state(state)  # noqa: NPY002


@contextlib.contextmanager
def _quiet():
    """What the user's functions print or warn while they are checked is not the report's
    (gradlab's own warnings pass through)."""
    ours = str(Path(__file__).resolve().parents[1])
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        yield
    for w in caught:
        if str(Path(w.filename).resolve()).startswith(ours):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _failed_note(run: Run, c) -> tuple[str, ...]:
    out = []
    for cr in run.failed():
        if cr.cell.index in (c.grad.cell.index, c.loss.cell.index):
            out.append(f"its {cr.line()}")
    return tuple(out)
