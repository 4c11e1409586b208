"""From a :class:`~gradlab.check._judge.Judgement` to report data: leaf reports, kinks,
non-finite values and one :class:`Verdict` per non-empty mask."""

from __future__ import annotations

import numpy as np

from gradlab.check import _kinks, _tree
from gradlab.check._judge import MASK_FINDINGS, Judgement
from gradlab.check._problem import ReportLeaf
from gradlab.check._report import Convention, Element, Kink, LeafReport, NonFinite
from gradlab.check._verdict import Example, Finding, Verdict

MAX_NONFINITE = 50


def largest(x: np.ndarray) -> float:
    """The largest element of ``x``: 0 when empty, NaN when any element is NaN."""
    if x.size == 0:
        return 0.0
    if np.isnan(x).any():
        return float("nan")
    return float(np.max(x))


def worst_order(rel_err: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Failing elements first, then by relative error, largest first (NaN counts as largest)."""
    key = np.where(ok, rel_err, np.inf)
    return np.lexsort((-np.nan_to_num(rel_err, nan=np.inf), -key))


def leaf_report(leaf: ReportLeaf, j: Judgement, n_worst: int) -> LeafReport:
    """The leaf's row: pass/fail, largest errors, its ``n_worst`` worst elements."""
    worst = tuple(
        Element(
            _tree.index_of(i, leaf.shape),
            float(j.hand[i]),
            float(j.autodiff[i]),
            float(j.fd[i]),
            float(j.abs_err[i]),
            float(j.rel_err[i]),
            bool(j.ok[i]),
        )
        for i in worst_order(j.rel_err, j.ok)[:n_worst]
    )
    return LeafReport(
        leaf.path,
        leaf.shape,
        bool(j.ok.all()),
        largest(j.abs_err),
        largest(j.rel_err),
        worst,
        int((~j.ok).sum()),
    )


def kinks(leaf: ReportLeaf, j: Judgement) -> list[Kink]:
    """Every kink element of the leaf, with each witness's convention there."""
    out = []
    for i in np.flatnonzero(j.kink):
        lo, hi, tol = float(j.low[i]), float(j.high[i]), float(j.kink_tol[i])
        left, right = float(j.left[i]), float(j.right[i])
        conv = tuple(
            Convention(w, _kinks.convention(float(x), left, right, tol, lo, hi))
            for w, x in (("hand", j.hand[i]), ("autodiff", j.autodiff[i]), ("fd", j.fd[i]))
        )
        inside = bool(j.ok[i])
        out.append(
            Kink(
                leaf.path,
                _tree.index_of(i, leaf.shape),
                left,
                right,
                float(j.hand[i]),
                float(j.autodiff[i]),
                float(j.fd[i]),
                inside,
                conv,
                lo,
                hi,
            )  # fmt: skip
        )
    return out


def nonfinite(leaf: ReportLeaf, j: Judgement) -> list[NonFinite]:
    """NaN/inf per witness (hand, autodiff, fd), at most ``MAX_NONFINITE`` each."""
    out = []
    for witness, values in (("hand", j.hand), ("autodiff", j.autodiff), ("fd", j.fd)):
        for i in np.flatnonzero(~np.isfinite(values))[:MAX_NONFINITE]:
            out.append(
                NonFinite(witness, leaf.path, _tree.index_of(i, leaf.shape), float(values[i]))
            )
    return out


def _example(leaf: ReportLeaf, j: Judgement, mask: np.ndarray) -> Example:
    rel = np.where(mask, np.nan_to_num(j.rel_err, nan=np.inf), -1.0)
    i = int(np.argmax(rel))
    at_kink = bool(j.kink[i])
    return Example(
        _tree.index_of(i, leaf.shape),
        float(j.hand[i]),
        float(j.autodiff[i]),
        float(j.fd[i]),
        float(j.low[i]) if at_kink else None,
        float(j.high[i]) if at_kink else None,
    )


def verdicts(leaf: ReportLeaf, j: Judgement) -> list[Verdict]:
    """One verdict per non-empty mask of the leaf, failures first."""
    out = []
    for name, kind in MASK_FINDINGS.items():
        mask = getattr(j.masks, name)
        if not mask.any():
            continue
        rel = None if kind in _NO_REL else largest(j.rel_err[mask])
        out.append(
            Verdict(kind, leaf.path, int(mask.sum()), leaf.size, rel, _example(leaf, j, mask))
        )
    return out


_NO_REL = {Finding.NONFINITE_HAND, Finding.NONFINITE_AUTODIFF, Finding.FD_NOISE}
