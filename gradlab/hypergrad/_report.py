"""The three-witness hypergradient report: typed data, rendered at the end.

:class:`WitnessValue` holds what one witness answered (or that it refused, and why);
:class:`Verdict` one finding with the numbers behind it; :class:`HypergradReport` the table.
``to_dict`` is derived from the dataclass fields (enums by value), so JSON never drifts from
the fields; ``__str__`` renders prose from the enums and numbers only.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math

from gradlab.hypergrad._findings import Finding, Witness


def _jsonable(x):
    if isinstance(x, enum.Enum):
        return x.value
    if dataclasses.is_dataclass(x):
        return {f.name: _jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, tuple | list):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


@dataclasses.dataclass(frozen=True)
class WitnessValue:
    """One witness's answer, flat over the hyperparameters' elements.

    Attributes:
      witness: which.
      value: the hypergradient, or ``None`` when the witness refused.
      error: its error bar (finite differences) or estimate (implicit, eq. (2)), or ``None``.
      inner_residual: fixed-point residual of the inner solution it used, or ``None``.
      linear_residual: relative residual of the implicit linear solve, or ``None``.
      refused: the finding that made it refuse, or ``None``.
      kink: per element, finite differences saw a kink (FD only; else empty).
      jump: per element, the one-sided slope jump :math:`J(h')` (FD only; else empty).
      tight: coordinates at a support change (implicit only; else 0).
    """

    witness: Witness
    value: tuple[float, ...] | None
    error: tuple[float, ...] | None = None
    inner_residual: float | None = None
    linear_residual: float | None = None
    refused: Finding | None = None
    kink: tuple[bool, ...] = ()
    jump: tuple[float, ...] = ()
    tight: int = 0


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One finding about one witness (``None``: about the problem), with its numbers.

    Attributes:
      finding: what.
      witness: about which witness.
      max_abs_diff: its largest difference from the referee, or ``None``.
      tolerance: the tolerance that difference was judged at, or ``None``.
      evidence: the number that explains the cause (a residual, a jump), or ``None``.
    """

    finding: Finding
    witness: Witness | None = None
    max_abs_diff: float | None = None
    tolerance: float | None = None
    evidence: float | None = None

    def __str__(self) -> str:
        who = self.witness.value if self.witness else "problem"
        text = {
            Finding.AGREE: "all witnesses agree",
            Finding.IMPLICIT_OFF: "implicit is off although its solves converged: a wrong "
            "formula (a transposed cross term, a wrong sign or factor)",
            Finding.INNER_NOT_CONVERGED: "the inner solve has not converged to the tolerance "
            "the answer needs (residual {e})",
            Finding.LINEAR_SOLVE_NOT_CONVERGED: "the implicit linear solve stopped early "
            "(relative residual {e})",
            Finding.INNER_DIVERGED: "the inner problem diverged",
            Finding.UNROLL_TRUNCATED: "the unroll is truncated: its last iterate is away from "
            "the inner optimum (residual {e}); unroll longer",
            Finding.UNROLLED_OFF: "unrolled is off although its last iterate is at the optimum "
            "(residual {e})",
            Finding.NONSMOOTH: "non-smooth point (a support change; jump {e}): one-sided "
            "hypergradients differ, no witness is wrong",
            Finding.FD_INCONCLUSIVE: "finite differences are too noisy to referee (error bar {e})",
        }[self.finding].format(e=_fmt(self.evidence))
        diff = ""
        if self.max_abs_diff is not None:
            diff = f" [max |diff| {_fmt(self.max_abs_diff)} > tol {_fmt(self.tolerance)}]"
        return f"{self.finding.value} ({who}): {text}{diff}"


@dataclasses.dataclass(frozen=True)
class HypergradReport:
    """Implicit, unrolled and finite differences side by side, and the verdicts.

    Attributes:
      names: the hyperparameters' element names (``hyperparams['lam']``, ``...[2]``).
      witnesses: one :class:`WitnessValue` per witness that ran.
      verdicts: at least one; ``(Verdict(AGREE),)`` when all agree.
      rtol: the relative tolerance the witnesses were compared at.
    """

    names: tuple[str, ...]
    witnesses: tuple[WitnessValue, ...]
    verdicts: tuple[Verdict, ...]
    rtol: float

    @property
    def ok(self) -> bool:
        return all(v.finding is Finding.AGREE for v in self.verdicts)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(v.finding for v in self.verdicts)

    def witness(self, which: Witness) -> WitnessValue | None:
        return next((w for w in self.witnesses if w.witness is which), None)

    def to_dict(self) -> dict:
        return _jsonable(self) | {"ok": self.ok}

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        head = "OK" if self.ok else "MISMATCH"
        lines = [f"gradlab hypergradient check: {head}  (rtol {self.rtol:.3g})"]
        cols = [w.witness.value for w in self.witnesses]
        width = max([len(n) for n in self.names] + [14])
        lines.append("  " + "hyperparameter".ljust(width) + "".join(c.rjust(20) for c in cols))
        for i, name in enumerate(self.names):
            cells = []
            for w in self.witnesses:
                cell = "refused" if w.value is None else f"{w.value[i]:.10g}"
                cells.append(cell.rjust(20))
            lines.append("  " + name.ljust(width) + "".join(cells))
        for w in self.witnesses:
            extra = []
            if w.inner_residual is not None:
                extra.append(f"inner residual {_fmt(w.inner_residual)}")
            if w.linear_residual is not None:
                extra.append(f"linear residual {_fmt(w.linear_residual)}")
            if w.error is not None:
                extra.append(f"error {_fmt(max(w.error, default=0.0))}")
            if extra:
                lines.append(f"  {w.witness.value}: " + ", ".join(extra))
        lines += [f"- {v}" for v in self.verdicts]
        return "\n".join(lines)
