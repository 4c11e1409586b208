"""What the checker found: a report with ``.ok``, a readable table and a JSON-safe dict."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from gradlab.check._blame import Blame


def _num(x) -> float | str | None:
    """A JSON-safe number: non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"``."""
    if x is None:
        return None
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _fmt(x) -> str:
    if x is None:
        return "-"
    x = float(x)
    if x == 0:
        return "0"
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}"


def _idx(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]" if index else "[]"


@dataclasses.dataclass(frozen=True)
class Element:
    """One element's three witnesses and its error (``rel_err`` is ``_compare`` eq. (2))."""

    index: tuple[int, ...]
    hand: float
    autodiff: float
    fd: float | None
    abs_err: float
    rel_err: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": list(self.index),
            "hand": _num(self.hand),
            "autodiff": _num(self.autodiff),
            "fd": _num(self.fd),
            "abs_err": _num(self.abs_err),
            "rel_err": _num(self.rel_err),
        }


@dataclasses.dataclass(frozen=True)
class LeafReport:
    """One parameter leaf: pass/fail, its largest errors and its worst elements."""

    path: str
    shape: tuple[int, ...]
    ok: bool
    max_abs_err: float
    max_rel_err: float
    worst: tuple[Element, ...]
    n_fail: int = 0
    checked: str = "every element"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "shape": list(self.shape),
            "ok": bool(self.ok),
            "max_abs_err": _num(self.max_abs_err),
            "max_rel_err": _num(self.max_rel_err),
            "worst": [e.to_dict() for e in self.worst],
        }


@dataclasses.dataclass(frozen=True)
class Kink:
    """An element at a non-differentiable point: one-sided derivatives and each witness there."""

    path: str
    index: tuple[int, ...]
    left: float
    right: float
    hand: float
    autodiff: float
    fd: float | None
    hand_in_subdifferential: bool
    conventions: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "index": list(self.index),
            "left": _num(self.left),
            "right": _num(self.right),
            "hand": _num(self.hand),
            "autodiff": _num(self.autodiff),
            "hand_in_subdifferential": bool(self.hand_in_subdifferential),
        }


@dataclasses.dataclass(frozen=True)
class NonFinite:
    """A NaN or infinity in one witness (``"loss"``, ``"hand"``, ``"autodiff"``, ``"fd"``)."""

    witness: str
    path: str
    index: tuple[int, ...]
    value: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "witness": self.witness,
            "path": self.path,
            "index": list(self.index),
            "value": _num(self.value),
        }


@dataclasses.dataclass(frozen=True)
class DtypeVerdict:
    """The verdict of one precision: the user's dtype, or the float64 copy."""

    label: str
    ok: bool
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "ok": bool(self.ok), "verdict": self.verdict}


@dataclasses.dataclass(frozen=True)
class GradReport:
    """The checker's findings.

    ``ok`` is True when every leaf (every term, every precision checked) passes. ``str(report)``
    is a table; ``to_dict()`` is JSON-safe (non-finite numbers become strings) with the keys
    ``ok``, ``leaves``, ``kinks``, ``nonfinite``, ``blame``, plus ``verdicts``, ``dtypes``,
    ``mode``, ``dtype``, ``rtol``, ``atol``, ``hand_witness``, ``terms`` and ``float64_copy``.
    """

    ok: bool
    mode: str
    dtype: str
    rtol: float
    atol: float | None
    hand_witness: str
    leaves: tuple[LeafReport, ...]
    kinks: tuple[Kink, ...] = ()
    nonfinite: tuple[NonFinite, ...] = ()
    blame: tuple[Blame, ...] = ()
    verdicts: tuple[str, ...] = ()
    dtypes: tuple[DtypeVerdict, ...] = ()
    terms: dict[str, GradReport] = dataclasses.field(default_factory=dict)
    float64_copy: GradReport | None = None
    title: str = "check_grad"
    fd_agree: tuple[int, int] = (0, 0)

    def __bool__(self) -> bool:
        return bool(self.ok)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": bool(self.ok),
            "mode": self.mode,
            "dtype": self.dtype,
            "rtol": _num(self.rtol),
            "atol": _num(self.atol),
            "hand_witness": self.hand_witness,
            "leaves": [leaf.to_dict() for leaf in self.leaves],
            "kinks": [k.to_dict() for k in self.kinks],
            "nonfinite": [n.to_dict() for n in self.nonfinite],
            "blame": [
                {"term": b.term, "coef": _num(b.coef), "explained": _num(b.explained)}
                for b in self.blame
            ],
            "verdicts": list(self.verdicts),
            "dtypes": [d.to_dict() for d in self.dtypes],
            "terms": {name: r.to_dict() for name, r in self.terms.items()},
            "float64_copy": None if self.float64_copy is None else self.float64_copy.to_dict(),
            "fd_agree": list(self.fd_agree),
        }

    def __str__(self) -> str:
        return "\n".join(self._lines())

    def _lines(self, indent: str = "") -> list[str]:
        head = (
            f"{indent}gradlab {self.title}: {'ok' if self.ok else 'MISMATCH'}  "
            f"(mode {self.mode}, {self.dtype}, rtol {_fmt(self.rtol)}"
            f"{'' if self.atol is None else ', atol ' + _fmt(self.atol)}; "
            f"hand {'Hessian' if self.title == 'check_hessian' else 'gradient'} "
            f"{self.hand_witness})"
        )
        lines = [head]
        rows = [
            ("leaf", "shape", "ok", "max abs err", "max rel err", "index", "hand", "autodiff", "fd")
        ]
        for leaf in self.leaves:
            first = leaf.worst[0] if leaf.worst else None
            show = [first] + (list(leaf.worst[1:3]) if not leaf.ok else [])
            for j, e in enumerate(show):
                rows.append(
                    (
                        leaf.path if j == 0 else "",
                        str(leaf.shape) if j == 0 else "",
                        ("ok" if leaf.ok else f"FAIL {leaf.n_fail}") if j == 0 else "",
                        _fmt(leaf.max_abs_err) if j == 0 else "",
                        _fmt(leaf.max_rel_err) if j == 0 else "",
                        _idx(e.index) if e else leaf.checked,
                        _fmt(e.hand) if e else "",
                        _fmt(e.autodiff) if e else "",
                        _fmt(e.fd) if e else "",
                    )
                )
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        for r in rows:
            lines.append(
                indent
                + "  "
                + "  ".join(s.ljust(w) for s, w in zip(r, widths, strict=True)).rstrip()
            )
        if self.kinks:
            lines.append(f"{indent}kinks (hand must lie in [min(left, right), max(left, right)]):")
            for k in self.kinks[:10]:
                conv = "; ".join(f"{w}: {c}" for w, c in k.conventions)
                lines.append(
                    f"{indent}  {k.path}{_idx(k.index)}  left {_fmt(k.left)}  right "
                    f"{_fmt(k.right)}  hand {_fmt(k.hand)} "
                    f"({'inside' if k.hand_in_subdifferential else 'OUTSIDE'})  "
                    f"autodiff {_fmt(k.autodiff)}  [{conv}]"
                )
            if len(self.kinks) > 10:
                lines.append(f"{indent}  ... {len(self.kinks) - 10} more")
        if self.nonfinite:
            lines.append(f"{indent}non-finite values:")
            for n in self.nonfinite[:10]:
                lines.append(f"{indent}  {n.witness:<8} {n.path}{_idx(n.index)} = {n.value}")
            if len(self.nonfinite) > 10:
                lines.append(f"{indent}  ... {len(self.nonfinite) - 10} more")
        if self.blame:
            lines.append(f"{indent}blame (residual hand - autodiff fitted on the term gradients):")
            for b in self.blame:
                lines.append(
                    f"{indent}  {b.term:<12} coef {_fmt(b.coef):>10}  explained {b.explained:7.1%}"
                )
        for v in self.verdicts:
            lines.append(f"{indent}- {v}")
        for d in self.dtypes:
            lines.append(f"{indent}* {d.label}: {d.verdict}")
        for name, r in self.terms.items():
            lines.append(f"{indent}term {name!r}:")
            lines.extend(r._lines(indent + "    "))
        if self.float64_copy is not None and not self.float64_copy.ok:
            lines.append(f"{indent}float64 copy:")
            lines.extend(self.float64_copy._lines(indent + "    "))
        return lines
