"""One precision, every leaf in full: witnesses and one ``FD`` -> nearby gradients and refined
differences where needed -> a ``Judgement`` per precision -> that precision's ``GradReport``."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gradlab.check import _compare, _differences, _findings, _kinks, _witnesses
from gradlab.check._judge import Judgement, Tolerance, judge
from gradlab.check._problem import Problem
from gradlab.check._report import GradReport, NonFinite
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
    near = _kinks.Nearby.empty(fd.r.size)
    first = [judge(w.hand, w.autodiff, fd, near, t) for w, t in zip(wits, tols, strict=True)]
    suspects = np.zeros(fd.r.size, bool)
    for j in first:
        suspects |= (~j.ok | j.kink) & where
    if suspects.any():
        near = _kinks.nearby(wide.loss, wide.args, wide.argnums, fd.h, suspects, s.seed)
    judged = [judge(w.hand, w.autodiff, fd, near, t) for w, t in zip(wits, tols, strict=True)]
    undecided = np.zeros(fd.r.size, bool)
    for j in judged:
        undecided |= j.masks.inconclusive & where
    if undecided.any():
        fd = _differences.refine(fd, wide.loss, wide.args, wide.argnums, undecided, s.fd_budget)
        judged = [judge(w.hand, w.autodiff, fd, near, t) for w, t in zip(wits, tols, strict=True)]
    return judged


class Checked(NamedTuple):
    """One precision's report with the judgement and witnesses behind it (for blame)."""

    report: GradReport
    judgement: Judgement | None
    witnesses: Witnesses


def run_full(problems: list[Problem], s: Settings) -> list[Checked]:
    """Every precision in full; ``problems[-1]`` is the float64 one (it carries the ``FD``)."""
    wide = problems[-1]
    w_wide, fd = _witnesses.gather(wide, s.fd_budget)
    wits = [_witnesses.gather(p)[0] for p in problems[:-1]] + [w_wide]
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


def _leaf_parts(problem: Problem, j: Judgement, s: Settings, skip=()):
    leaves, kinks, nonfinite, verdicts = [], [], [], []
    for pos, leaf in enumerate(problem.leaves):
        if pos in skip:
            continue
        lj = j.slice(leaf.span)
        leaves.append((pos, _findings.leaf_report(leaf, lj, s.n_worst)))
        kinks += _findings.kinks(leaf, lj)
        nonfinite += _findings.nonfinite(leaf, lj)
        verdicts += _findings.verdicts(leaf, lj)
    return leaves, kinks, nonfinite, verdicts


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
    parts, kinks, nonfinite, verdicts = _leaf_parts(problem, j, s)
    call = call_verdicts(problem, w, tol)
    if not np.isfinite(w.value):
        nonfinite.insert(0, NonFinite("loss", "", (), float(w.value)))
    return finish(
        problem,
        w,
        tol,
        s,
        mode,
        [r for _, r in parts],
        kinks,
        nonfinite,
        call + verdicts,
        int(j.fd_agree.sum()),
    )


def finish(problem, w, tol, s, mode, leaves, kinks, nonfinite, verdicts, agree, n_fd=None):  # noqa: PLR0913
    """Assemble a :class:`GradReport`; the ``OK`` verdict first when everything passed."""
    ok = all(r.ok for r in leaves) and not any(v.failing for v in verdicts)
    if ok:
        how = "every element" if mode == "full" else f"{s.directions} random directions per leaf"
        detail = (
            f"in {len(problem.leaves)} leaf/leaves checked ({how}): hand equals autodiff"
            + (", or lies in the subdifferential at kinks" if kinks else "")
            + (" (remarks below)" if verdicts else "")
        )
        verdicts = [
            Verdict(Finding.OK, count=problem.size, total=problem.size, detail=detail),
            *verdicts,
        ]
    label = "full" if mode == "full" else f"fast ({s.directions} directions per leaf)"
    return GradReport(
        ok=bool(ok),
        mode=label,
        dtype=str(problem.dtype),
        rtol=tol.rtol,
        atol=tol.atol,
        hand_witness=w.call.how,
        leaves=tuple(leaves),
        kinks=tuple(kinks),
        nonfinite=tuple(nonfinite),
        verdicts=tuple(verdicts),
        fd_agree=(agree, problem.size if n_fd is None else n_fd),
    )
