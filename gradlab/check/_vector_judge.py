r"""Judging a Jacobian block: typed masks from the hand rule, autodiff and finite differences.

Hand against autodiff is the judge (``_compare`` eq. (1)), entry by entry, with the scale
:math:`\lVert J_{O,I}\rVert_\infty` of the block (one output span :math:`O` against one input span
:math:`I`): the rounding of a Jacobian entry is proportional to the entries it is summed with,
which live in the same block. Finite differences (the Richardson column, ``_vector`` eq. (1))
say which side a disagreement is on (``_compare`` eq. (3)). A complex block that fails as given
and passes once conjugated is reported as a conjugate (``_complex`` eq. (2)).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gradlab.check import _compare
from gradlab.check._complex import Span


class BlockMasks(NamedTuple):
    """Elementwise outcomes over one ``(output span, input span)`` block, shape ``(|O|, |I|)``."""

    ok: np.ndarray
    hand_bug: np.ndarray  # fails; finite differences side with autodiff
    autodiff_bug: np.ndarray  # fails; finite differences side with the hand rule
    inconclusive: np.ndarray  # fails; finite differences side with neither
    fd_noise: np.ndarray  # passes; finite differences agree with neither
    fd_agree: np.ndarray  # finite differences agree with autodiff
    nonfinite_hand: np.ndarray
    nonfinite_auto: np.ndarray
    abs_err: np.ndarray
    rel_err: np.ndarray


class BlockJudgement(NamedTuple):
    """One block: where it is, the three witnesses there and the masks."""

    out_span: Span
    in_span: Span
    hand: np.ndarray
    auto: np.ndarray
    fd: np.ndarray | None
    masks: BlockMasks
    scale: float
    conjugate: bool  # fails as given, passes with the complex parts conjugated


def masks(
    hand: np.ndarray,
    auto: np.ndarray,
    fd: np.ndarray | None,
    fd_err: np.ndarray | None,
    scale: float,
    rtol: float,
    atol: float | None,
    eps: float,
) -> BlockMasks:
    """The masks of one block (``fd`` None: no referee, every failure is inconclusive)."""
    abs_err, rel_err, ok = _compare.judge(hand, auto, scale, rtol, atol)
    fail = ~ok
    if fd is None or fd_err is None:
        none = np.zeros_like(ok)
        fd_auto = fd_hand = none
    else:
        fd_auto = _compare.referee(fd, fd_err, auto, scale, eps)
        fd_hand = _compare.referee(fd, fd_err, hand, scale, eps)
    finite_h, finite_a = np.isfinite(hand), np.isfinite(auto)
    hand_bug = fail & fd_auto & ~fd_hand
    auto_bug = fail & fd_hand & ~fd_auto
    return BlockMasks(
        ok=ok,
        hand_bug=hand_bug & finite_h,
        autodiff_bug=auto_bug & finite_a,
        inconclusive=fail & ~hand_bug & ~auto_bug & finite_h & finite_a,
        fd_noise=ok & ~fd_auto & ~fd_hand if fd is not None else np.zeros_like(ok),
        fd_agree=fd_auto,
        nonfinite_hand=~finite_h,
        nonfinite_auto=~finite_a & finite_h,
        abs_err=abs_err,
        rel_err=rel_err,
    )


def judge_block(
    out_span: Span,
    in_span: Span,
    hand: np.ndarray,
    auto: np.ndarray,
    fd: tuple[np.ndarray, np.ndarray] | None,
    rtol: float,
    atol: float | None,
    eps: float,
) -> BlockJudgement:
    """Judge ``hand`` against ``auto`` on one block, refereed by ``fd = (R, delta)``."""
    hand = np.asarray(hand, np.float64)
    auto = np.asarray(auto, np.float64)
    scale = _compare.finite_max(hand, auto)
    r, err = fd if fd is not None else (None, None)
    m = masks(hand, auto, r, err, scale, rtol, atol, eps)
    return BlockJudgement(out_span, in_span, hand, auto, r, m, scale, False)


def conjugate_pairs(
    judgements: list[BlockJudgement],
    rtol: float,
    atol: float | None,
    in_imag: dict[str, bool],
    out_imag: dict[str, bool],
) -> set[int]:
    """Positions of failing blocks that a conjugated hand rule would pass (``_complex`` (2)).

    Conjugating the hand values flips the sign of the blocks whose input span is an imaginary
    part (the gradient's conjugate) or, for a complex output, whose output span is one (both:
    PyTorch's VJP convention); the real-real and imag-imag blocks stay. The answer is yes when
    some flip makes every complex block pass.
    """
    complex_blocks = [
        j
        for j, b in enumerate(judgements)
        if in_imag.get(b.in_span.path) is not None or out_imag.get(b.out_span.path) is not None
    ]
    if not complex_blocks or all(judgements[j].masks.ok.all() for j in complex_blocks):
        return set()
    for flip_in, flip_out in ((True, False), (True, True), (False, True)):
        good = True
        for j in complex_blocks:
            b = judgements[j]
            sign = 1.0
            if flip_in and in_imag.get(b.in_span.path):
                sign = -sign
            if flip_out and out_imag.get(b.out_span.path):
                sign = -sign
            _, _, ok = _compare.judge(sign * b.hand, b.auto, b.scale, rtol, atol)
            good &= bool(ok.all())
        if good:
            return {j for j in complex_blocks if not judgements[j].masks.ok.all()}
    return set()
