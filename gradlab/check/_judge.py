r"""The judgement stage: per element, typed masks from the witnesses, the differences and the kinks.

Hand against autodiff is the judge (``_compare`` eq. (1)); at a kink (``_kinks`` eq. (2) or
(3)) the hand value is judged by membership in ``[low, high]`` instead (autodiff's value there
is a convention). The finite differences referee where the judge fails (``_compare`` eq. (3)):
they side with autodiff (a hand bug), with the hand (autodiff is suspect) or with neither
(inconclusive). The masks are disjoint, so the counts of the verdicts add up to ``n_fail``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gradlab.check import _compare, _kinks
from gradlab.check._differences import FD
from gradlab.check._verdict import KINK_FAR_FACTOR, Finding


class Tolerance(NamedTuple):
    """One precision's tolerances: ``rtol``, ``atol`` (None: ``rtol * scale``), the gradient's
    largest magnitude ``scale`` and the epsilon of the dtype checked."""

    rtol: float
    atol: float | None
    scale: float
    eps: float

    def slack(self, autodiff: np.ndarray) -> np.ndarray:
        """The allowed ``|hand - autodiff|`` per element, ``_compare`` eq. (1)."""
        a_tol = self.rtol * self.scale if self.atol is None else self.atol
        return np.maximum(a_tol, self.rtol * np.abs(autodiff))


class Masks(NamedTuple):
    """Disjoint failure masks, then the remarks (which never fail a check)."""

    nonfinite_hand: np.ndarray
    hand_bug: np.ndarray
    autodiff_disagrees: np.ndarray
    inconclusive: np.ndarray
    hand_bug_at_kink: np.ndarray
    kink_outside: np.ndarray
    nonfinite_autodiff: np.ndarray
    kink_convention: np.ndarray
    fd_noise: np.ndarray


MASK_FINDINGS = {
    "nonfinite_hand": Finding.NONFINITE_HAND,
    "hand_bug": Finding.HAND_BUG,
    "autodiff_disagrees": Finding.AUTODIFF_DISAGREES,
    "inconclusive": Finding.INCONCLUSIVE,
    "hand_bug_at_kink": Finding.HAND_BUG_AT_KINK,
    "kink_outside": Finding.KINK_OUTSIDE,
    "nonfinite_autodiff": Finding.NONFINITE_AUTODIFF,
    "kink_convention": Finding.KINK_CONVENTION,
    "fd_noise": Finding.FD_NOISE,
}


class Judgement(NamedTuple):
    """Everything judged, per raveled element (slice it with :meth:`slice`)."""

    hand: np.ndarray
    autodiff: np.ndarray
    fd: np.ndarray
    abs_err: np.ndarray
    rel_err: np.ndarray
    ok: np.ndarray
    kink: np.ndarray
    left: np.ndarray
    right: np.ndarray
    low: np.ndarray
    high: np.ndarray
    kink_tol: np.ndarray
    fd_agree: np.ndarray
    masks: Masks

    def slice(self, span: slice) -> Judgement:
        fields = {f: getattr(self, f)[span] for f in self._fields[:-1]}
        return self._replace(**fields, masks=Masks(*(m[span] for m in self.masks)))


def _bounds(slopes: _kinks.Slopes, near: _kinks.Nearby) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore"):
        stack = np.stack([slopes.left, slopes.right, near.low, near.high])
        finite = np.isfinite(stack)
        low = np.where(finite, stack, np.inf).min(axis=0)
        high = np.where(finite, stack, -np.inf).max(axis=0)
    return low, high


def judge(
    hand: np.ndarray, autodiff: np.ndarray, fd: FD, near: _kinks.Nearby, tol: Tolerance
) -> Judgement:
    """The masks of one precision over the raveled parameters."""
    h, a = hand, autodiff
    abs_err, rel_err, equal = _compare.judge(h, a, tol.scale, tol.rtol, tol.atol)
    slack = tol.slack(a)
    slopes = _kinks.slopes(fd)
    kink = slopes.kink | _kinks.clarke_kink(near, slack)
    low, high = _bounds(slopes, near)
    with np.errstate(invalid="ignore"):
        ktol = 4.0 * np.nan_to_num(slopes.err) + slack + np.nan_to_num(near.extrapolation)
        inside = (h >= low - ktol) & (h <= high + ktol) & np.isfinite(h)
        miss = np.maximum(np.maximum(low - h, h - high), 0.0)
        far = ~(miss <= KINK_FAR_FACTOR * np.maximum(high - low, ktol))
    ok = np.where(kink, inside, equal)
    fd_eps = max(fd.eps, tol.eps)  # the values judged carry the checked dtype's rounding
    fd_auto = _compare.referee(fd.r, fd.err, a, tol.scale, fd_eps)
    fd_hand = _compare.referee(fd.r, fd.err, h, tol.scale, fd_eps)
    masks = _masks(h, a, ok, equal, kink, far, (fd_auto, fd_hand, np.isfinite(fd.r)))
    conv_ok = kink & ok  # passing kinks are listed under kinks, not as errors
    abs_err = np.where(conv_ok, 0.0, abs_err)
    rel_err = np.where(conv_ok, 0.0, rel_err)
    return Judgement(
        h, a, fd.r, abs_err, rel_err, ok, kink, slopes.left, slopes.right, low, high, ktol,
        fd_auto, masks,
    )  # fmt: skip


def _masks(h, a, ok, equal, kink, far, referee) -> Masks:
    """``referee``: does FD agree with autodiff, with the hand, is it finite (per element)."""
    fd_auto, fd_hand, fd_finite = referee
    fail = ~ok
    nf_hand = fail & ~np.isfinite(h)
    nf_auto = fail & np.isfinite(h) & ~np.isfinite(a)
    rest = fail & ~nf_hand & ~nf_auto
    smooth = ~kink
    hand_bug = rest & smooth & fd_auto & ~fd_hand
    autodiff_bug = rest & smooth & fd_hand & ~fd_auto
    return Masks(
        nonfinite_hand=nf_hand,
        hand_bug=hand_bug,
        autodiff_disagrees=autodiff_bug,
        inconclusive=rest & smooth & ~hand_bug & ~autodiff_bug,
        hand_bug_at_kink=rest & kink & far,
        kink_outside=rest & kink & ~far,
        nonfinite_autodiff=nf_auto,
        kink_convention=ok & kink & ~equal,
        fd_noise=ok & smooth & fd_finite & ~fd_auto & ~fd_hand,
    )


def judge_smooth(
    hand: np.ndarray, autodiff: np.ndarray, r: np.ndarray, err: np.ndarray, fd_eps: float,
    tol: Tolerance,
) -> Judgement:  # fmt: skip
    """The masks without kinks (a Hessian block: the referee is given as ``(r, err)``)."""
    h, a = hand, autodiff
    abs_err, rel_err, ok = _compare.judge(h, a, tol.scale, tol.rtol, tol.atol)
    fd_auto = _compare.referee(r, err, a, tol.scale, fd_eps)
    fd_hand = _compare.referee(r, err, h, tol.scale, fd_eps)
    no = np.zeros(h.shape, bool)
    nan = np.full(h.shape, np.nan)
    masks = _masks(h, a, ok, ok, no, no, (fd_auto, fd_hand, np.isfinite(r)))
    return Judgement(h, a, r, abs_err, rel_err, ok, no, nan, nan, nan, nan, nan, fd_auto, masks)
