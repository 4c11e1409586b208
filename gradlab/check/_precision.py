"""One precision, every leaf in full: witnesses and one ``FD`` -> nearby gradients and refined
differences where needed -> a ``Judgement`` per precision -> that precision's ``GradReport``."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from gradlab.check import _compare, _differences, _findings, _kinks, _witnesses
from gradlab.check._judge import Judgement, Tolerance, judge
from gradlab.check._problem import Problem, ReportLeaf
from gradlab.check._report import GradReport, Kink, LeafReport, NonFinite
from gradlab.check._settings import Settings
from gradlab.check._verdict import Finding, Verdict
from gradlab.check._witnesses import Witnesses

# ---- full mode ---------------------------------------------------------------------------------


def judge_all(
    problems: list[Problem], wits: list[Witnesses], tols: list[Tolerance], fd, s: Settings, where
):
    """Judge every precision against one ``fd``: sample nearby gradients at the suspects and
    refine the differences where the referee is undecided (both computed once, for all)."""
    wide = problems[-1]

    def judge_each(fd, near):
        return [judge(w.hand, w.autodiff, fd, near, t) for w, t in zip(wits, tols, strict=True)]

    judged = judge_each(fd, _kinks.Nearby.empty(fd.r.size))
    suspects = np.zeros(fd.r.size, bool)
    for j in judged:
        suspects |= (~j.ok | j.kink) & where
    near = _kinks.Nearby.empty(fd.r.size)
    if suspects.any():
        near = _kinks.nearby(
            wide.loss, wide.args, wide.argnums, fd.h, suspects, s.seed, s.fd_budget
        )
        judged = judge_each(fd, near)
    undecided = np.zeros(fd.r.size, bool)
    for j in judged:
        undecided |= j.masks.inconclusive & where
    if undecided.any():
        fd = _differences.refine(fd, wide.loss, wide.args, wide.argnums, undecided, s.fd_budget)
        judged = judge_each(fd, near)
    return judged


class Checked(NamedTuple):
    """One precision's report with the judgement and witnesses behind it (for blame)."""

    report: GradReport
    judgement: Judgement | None
    witnesses: Witnesses


def run_full(problems: list[Problem], s: Settings) -> list[Checked]:
    """Every precision in full; ``problems[-1]`` is the float64 one (it carries the ``FD``)."""
    wide = problems[-1]
    w_wide, fd = _witnesses.gather_with_fd(wide, s.fd_budget)
    wits = [_witnesses.gather(p) for p in problems[:-1]] + [w_wide]
    tols = [
        tolerance_for(p, s, i == 0, w.hand, w.autodiff)
        for i, (p, w) in enumerate(zip(problems, wits, strict=True))
    ]
    judged = judge_all(problems, wits, tols, fd, s, np.ones(fd.r.size, bool))
    return [
        Checked(precision_report(p, w, j, t, s, "full"), j, w)
        for p, w, j, t in zip(problems, wits, judged, tols, strict=True)
    ]


def tolerance_for(problem: Problem, s: Settings, is_user: bool, *vectors) -> Tolerance:
    """``rtol`` as given for the user's dtype, ``2^12 eps`` for the float64 copy."""
    rtol = s.rtol if (is_user and s.rtol is not None) else _compare.default_rtol(problem.dtype)
    eps = _differences.eps_of(problem.dtype)
    return Tolerance(rtol, s.atol, _compare.finite_max(*vectors), eps)


# ---- one precision's report ---------------------------------------------------------------------


@dataclasses.dataclass
class Parts:
    """What one precision's report is assembled from (filled leaf by leaf)."""

    leaves: list[LeafReport] = dataclasses.field(default_factory=list)
    kinks: list[Kink] = dataclasses.field(default_factory=list)
    nonfinite: list[NonFinite] = dataclasses.field(default_factory=list)
    verdicts: list[Verdict] = dataclasses.field(default_factory=list)
    agree: int = 0
    n_fd: int = 0

    def add_leaf(self, leaf: ReportLeaf, j: Judgement, n_worst: int) -> None:
        """One leaf judged in full (``j`` is its slice)."""
        self.leaves.append(_findings.leaf_report(leaf, j, n_worst))
        self.kinks += _findings.kinks(leaf, j)
        self.nonfinite += _findings.nonfinite(leaf, j)
        self.verdicts += _findings.verdicts(leaf, j)
        self.agree += int(j.fd_agree.sum())
        self.n_fd += leaf.size


def call_verdicts(problem: Problem, w: Witnesses, tol: Tolerance) -> list[Verdict]:
    """Verdicts about the call itself: a non-finite loss, the hand's value, the hand's dtype."""
    out = []
    if not np.isfinite(w.value):
        out.append(Verdict(Finding.LOSS_NONFINITE, detail=repr(w.value)))
    if w.hand_value is not None:
        diff = abs(w.hand_value - w.value)
        if not diff <= tol.rtol * max(abs(w.value), np.finfo(np.float64).tiny):
            out.append(
                Verdict(
                    Finding.VALUE_MISMATCH,
                    detail=f"hand value {w.hand_value!r}, loss(*args) {w.value!r}, "
                    f"difference {diff:.3g} (rtol {tol.rtol:.2g})",
                )
            )
    wider = sorted({str(d) for d in w.hand_dtypes if d.itemsize > problem.dtype.itemsize})
    if wider and problem.dtype.kind == "f":
        out.append(
            Verdict(
                Finding.HAND_DTYPE,
                detail=f"grad(*args) returns {', '.join(wider)} for {problem.dtype} parameters: "
                f"an update with it promotes the parameters to {wider[-1]}",
            )
        )
    return out


def precision_report(
    problem: Problem, w: Witnesses, j: Judgement, tol: Tolerance, s: Settings, mode: str
) -> GradReport:
    """The report of one precision from its judgement (every leaf judged in full)."""
    parts = Parts()
    for leaf in problem.leaves:
        parts.add_leaf(leaf, j.slice(leaf.span), s.n_worst)
    return finish(problem, w, tol, s, mode, parts)


def finish(
    problem: Problem, w: Witnesses, tol: Tolerance, s: Settings, mode: str, parts: Parts
) -> GradReport:
    """Assemble a :class:`GradReport`: the call's verdicts, then the leaves'; the ``OK``
    verdict first when everything passed."""
    verdicts = call_verdicts(problem, w, tol) + parts.verdicts
    nonfinite = list(parts.nonfinite)
    if not np.isfinite(w.value):
        nonfinite.insert(0, NonFinite("loss", "", (), float(w.value)))
    ok = all(r.ok for r in parts.leaves) and not any(v.failing for v in verdicts)
    if ok:
        how = "every element" if mode == "full" else f"{s.directions} random directions per leaf"
        detail = (
            f"in {len(problem.leaves)} leaf/leaves checked ({how}): hand equals autodiff"
            + (", or lies in the subdifferential at kinks" if parts.kinks else "")
            + (" (remarks below)" if verdicts else "")
        )
        ok_verdict = Verdict(Finding.OK, count=problem.size, total=problem.size, detail=detail)
        verdicts = [ok_verdict, *verdicts]
    label = "full" if mode == "full" else f"fast ({s.directions} directions per leaf)"
    return GradReport(
        ok=bool(ok),
        mode=label,
        dtype=str(problem.dtype),
        rtol=tol.rtol,
        atol=tol.atol,
        hand_witness=w.call.how,
        leaves=tuple(parts.leaves),
        kinks=tuple(parts.kinks),
        nonfinite=tuple(nonfinite),
        verdicts=tuple(verdicts),
        fd_agree=(parts.agree, parts.n_fd),
    )
