"""What the checker concluded: a :class:`Finding` (an enum) per verdict, with its numbers.

A :class:`Verdict` is data: its kind, the leaf path, how many elements, of how many, the largest
relative error and one example element. ``str(verdict)`` is the sentence a reader sees; code and
tests compare ``verdict.kind``, never the sentence.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable


class Finding(enum.Enum):
    """The kinds of verdict. ``failing`` ones make a report not ok; the others are remarks."""

    OK = "ok"
    HAND_BUG = "hand bug"
    HAND_BUG_AT_KINK = "hand bug at a kink"
    KINK_OUTSIDE = "kink handling"
    AUTODIFF_DISAGREES = "autodiff disagrees"
    AUTODIFF_SUSPECT = "autodiff suspect"
    INCONCLUSIVE = "hand and autodiff disagree"
    NONFINITE_HAND = "non-finite hand gradient"
    NONFINITE_AUTODIFF = "non-finite autodiff"
    LOSS_NONFINITE = "non-finite loss"
    VALUE_MISMATCH = "value mismatch"
    KINK_CONVENTION = "autodiff convention at kink"
    FD_NOISE = "FD noise"
    HAND_DTYPE = "hand dtype"
    FAST_RERUN = "fast mode rerun"
    BLAME = "blame"
    BLAME_UNEXPLAINED = "no single term explains"
    PRECISION_ONLY = "precision, not derivation"
    DERIVATION_ERROR = "derivation error"
    # vector functions and custom rules (check_vjp / check_jvp / audit_rules, issue 13)
    CONJUGATE = "conjugate of the right derivative"
    RULE_NOT_DIFFERENTIABLE = "not differentiable"
    UNCHECKED_RULE = "unchecked rule"

    @property
    def failing(self) -> bool:
        """Whether a verdict of this kind fails the check."""
        return self in _FAILING


_FAILING = frozenset(
    {
        Finding.HAND_BUG,
        Finding.HAND_BUG_AT_KINK,
        Finding.KINK_OUTSIDE,
        Finding.AUTODIFF_DISAGREES,
        Finding.AUTODIFF_SUSPECT,
        Finding.INCONCLUSIVE,
        Finding.NONFINITE_HAND,
        Finding.NONFINITE_AUTODIFF,
        Finding.LOSS_NONFINITE,
        Finding.VALUE_MISMATCH,
        Finding.DERIVATION_ERROR,
        Finding.PRECISION_ONLY,
        Finding.CONJUGATE,
        Finding.RULE_NOT_DIFFERENTIABLE,
        Finding.UNCHECKED_RULE,
    }
)


@dataclasses.dataclass(frozen=True)
class Example:
    """One element behind a verdict: its index and the witnesses there.

    ``low``/``high`` bound the subdifferential at a kink (``None`` elsewhere).
    """

    index: tuple[int, ...]
    hand: float
    autodiff: float
    fd: float | None
    low: float | None = None
    high: float | None = None
    axes: tuple[str, ...] = ("element",)

    def where(self, path: str) -> str:
        """``path[i, j]``; an HVP row as ``path v3 [i]`` (direction 3, element i)."""
        if self.axes == ("direction", "element"):
            return f"{path} v{self.index[0]} {list(self.index[1:])}"
        return f"{path}{list(self.index)}"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One finding: ``kind``, where (``path``), how many elements (``count`` of ``total``).

    ``max_rel_err`` is the largest relative error among them (``_compare`` eq. (2)); ``detail``
    carries the few extra words some kinds need (the blamed terms, the dtypes compared).
    """

    kind: Finding
    path: str = ""
    count: int = 0
    total: int = 0
    max_rel_err: float | None = None
    example: Example | None = None
    detail: str = ""

    @property
    def failing(self) -> bool:
        return self.kind.failing

    def __str__(self) -> str:
        return _PROSE.get(self.kind, _generic)(self)


# ---- prose, made only here, only from the fields --------------------------------------------


def digits_to_show(a: float, b: float) -> int:
    """Significant digits that show where ``a`` and ``b`` differ (4 to 17)."""
    if not (math.isfinite(a) and math.isfinite(b)) or a == b:
        return 6
    big = max(abs(a), abs(b))
    return int(min(17, max(4, 2 + math.ceil(-math.log10(abs(a - b) / big)))))


def fmt_pair(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` printed with the digits that tell them apart."""
    d = digits_to_show(a, b)
    return f"{a:.{d}g}", f"{b:.{d}g}"


def _example(v: Verdict) -> str:
    e = v.example
    if e is None:
        return ""
    h, a = fmt_pair(e.hand, e.autodiff)
    fd = "-" if e.fd is None else f"{e.fd:.{digits_to_show(e.hand, e.autodiff)}g}"
    diff = e.hand - e.autodiff if math.isfinite(e.hand - e.autodiff) else float("nan")
    text = f"e.g. {e.where(v.path)}: hand {h}, autodiff {a} (hand - autodiff {diff:.3g}), fd {fd}"
    if e.low is not None and e.high is not None:
        text += f"; subdifferential [{e.low:.6g}, {e.high:.6g}]"
    return text


def _counted(v: Verdict, what: str) -> str:
    rel = "" if v.max_rel_err is None else f" (max rel err {v.max_rel_err:.2e})"
    return f"{v.path}: {v.count} of {v.total} element(s) {what}{rel}"


def _generic(v: Verdict) -> str:
    parts = [v.kind.value + ":", _counted(v, "")]
    if v.detail:
        parts.append(v.detail)
    return " ".join(parts)


def _ok(v: Verdict) -> str:
    return f"ok: {v.count} element(s) {v.detail}"


def _with_example(kind_text: str, why: str) -> Callable[[Verdict], str]:
    def make(v: Verdict) -> str:
        extra = f" ({v.detail})" if v.detail else ""
        return f"{kind_text}: {_counted(v, 'differ')}; {why}{extra}; {_example(v)}"

    return make


def _kink_outside(v: Verdict) -> str:
    return (
        f"hand outside the subdifferential at a kink: {v.path}: {v.count} element(s), each "
        f"missing it by less than {KINK_FAR_FACTOR:g}x its width (a kink-handling error); "
        f"{_example(v)}"
    )


def _hand_bug_at_kink(v: Verdict) -> str:
    return (
        f"hand bug: {v.path}: {v.count} of {v.total} element(s) sit at a kink but miss its "
        f"subdifferential by more than {KINK_FAR_FACTOR:g}x its width: a wrong formula, not a "
        f"kink convention; {_example(v)}"
    )


def _remark(text: str) -> Callable[[Verdict], str]:
    def make(v: Verdict) -> str:
        return f"{text.format(v=v)}; {_example(v)}" if v.example else text.format(v=v)

    return make


KINK_FAR_FACTOR = 4.0  # a miss larger than this many widths of the subdifferential is a hand bug

_PROSE: dict[Finding, Callable[[Verdict], str]] = {
    Finding.OK: _ok,
    Finding.HAND_BUG: _with_example("hand bug", "finite differences side with autodiff"),
    Finding.HAND_BUG_AT_KINK: _hand_bug_at_kink,
    Finding.KINK_OUTSIDE: _kink_outside,
    Finding.AUTODIFF_DISAGREES: _with_example(
        "autodiff disagrees",
        "finite differences side with the hand gradient: the loss's autodiff is suspect "
        "(custom_jvp, stop_gradient, a where-trap)",
    ),
    Finding.AUTODIFF_SUSPECT: lambda v: (
        "autodiff suspect: finite differences along random directions disagree with hand and "
        "autodiff together (a wrong custom rule, a stop_gradient, a where-trap); "
        + (_remark("{v.path}: {v.count} element(s) ({v.detail})")(v) if v.count else v.detail)
    ),
    Finding.INCONCLUSIVE: _with_example(
        "hand and autodiff disagree", "finite differences inconclusive there"
    ),
    Finding.NONFINITE_HAND: _remark(
        "non-finite hand gradient: {v.path} has {v.count} NaN/inf element(s)"
    ),
    Finding.NONFINITE_AUTODIFF: _remark(
        "non-finite autodiff: {v.path} has {v.count} NaN/inf element(s) where the hand "
        "gradient is finite (a where-trap or an undefined derivative)"
    ),
    Finding.LOSS_NONFINITE: _remark(
        "the loss itself is {v.detail} at these arguments: nothing can be checked"
    ),
    Finding.VALUE_MISMATCH: _remark(
        "value mismatch: the value returned with the hand gradient differs from loss(*args): "
        "{v.detail} (a wrong parameter order or a different loss shows here first)"
    ),
    Finding.KINK_CONVENTION: _remark(
        "autodiff convention at kink: {v.path}: {v.count} element(s) where hand and autodiff "
        "differ but both lie in the subdifferential"
    ),
    Finding.FD_NOISE: _remark(
        "FD noise: {v.path}: finite differences disagree with hand and autodiff (which agree) "
        "at {v.count} element(s); not a failure"
    ),
    Finding.HAND_DTYPE: _remark("hand dtype: {v.detail}"),
    Finding.FAST_RERUN: _remark(
        "fast mode: a random direction disagrees on {v.path}; rerun in full there"
    ),
    Finding.BLAME: _remark("blame: the residual hand - autodiff is {v.detail}"),
    Finding.BLAME_UNEXPLAINED: _remark(
        "blame: no single term explains the residual hand - autodiff ({v.detail})"
    ),
    Finding.PRECISION_ONLY: _remark("precision, not derivation: {v.detail}"),
    Finding.DERIVATION_ERROR: _remark("derivation error: {v.detail}"),
    Finding.CONJUGATE: _with_example(
        "conjugate",
        "the hand values are the complex conjugate of the right ones (JAX's gradient of a real "
        "loss is 2 dL/dz = conj(2 dL/dz*), not PyTorch's 2 dL/dz*; conjugate the hand result)",
    ),
    Finding.RULE_NOT_DIFFERENTIABLE: _remark("not differentiable: {v.path}: {v.detail}"),
    Finding.UNCHECKED_RULE: _remark(
        "unchecked rule: {v.path}: {v.detail} -- pass references={{name: reference_fn}}"
    ),
}
