"""Rendering: a report as the text table users read. Data lives in ``_report``; nothing here
computes a judgement, and nothing reads this text back."""

from __future__ import annotations

import math

from gradlab.check._report import GradReport, HessianReport, LeafReport
from gradlab.check._table import format_table
from gradlab.check._verdict import Finding, digits_to_show

MAX_LISTED = 10


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    x = float(x)
    if x == 0:
        return "0"
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}"


def _idx(index: tuple[int, ...], axes: tuple[str, ...]) -> str:
    if axes == ("direction", "element"):
        return f"v{index[0]} [" + ", ".join(str(i) for i in index[1:]) + "]"
    return "[" + ", ".join(str(i) for i in index) + "]"


def _leaf_rows(leaf: LeafReport) -> list[tuple[str, ...]]:
    first = leaf.worst[0] if leaf.worst else None
    show = [first] + (list(leaf.worst[1:3]) if not leaf.ok else [])
    rows: list[tuple[str, ...]] = []
    for j, e in enumerate(show):
        head = (
            (leaf.path, str(leaf.shape), "ok" if leaf.ok else f"FAIL {leaf.n_fail}")
            if j == 0
            else ("", "", "")
        )
        errs = (_fmt(leaf.max_abs_err), _fmt(leaf.max_rel_err)) if j == 0 else ("", "")
        if e is None:
            rows.append((*head, *errs, leaf.checked, "", "", "", ""))
            continue
        d = digits_to_show(e.hand, e.autodiff)
        diff = e.hand - e.autodiff
        rows.append(
            (
                *head,
                *errs,
                _idx(e.index, leaf.axes),
                f"{e.hand:.{d}g}",
                f"{e.autodiff:.{d}g}",
                "0" if diff == 0 else (f"{diff:.2e}" if math.isfinite(diff) else str(diff)),
                "-" if e.fd is None else f"{e.fd:.{d}g}",
            )
        )
    return rows


def _table(report: GradReport, indent: str) -> list[str]:
    index_head = "index"
    axes = {leaf.axes for leaf in report.leaves}
    if len(axes) == 1 and (a := next(iter(axes))) != ("element",):
        index_head = "index (" + ", ".join(a) + ")"
    rows: list[tuple[str, ...]] = [
        (
            "leaf",
            "shape",
            "ok",
            "max abs err",
            "max rel err",
            index_head,
            "hand",
            "autodiff",
            "hand-autodiff",
            "fd",
        )
    ]
    for leaf in report.leaves:
        rows.extend(_leaf_rows(leaf))
    return format_table(rows, indent=indent + "  ")


def _kinks(report: GradReport, indent: str) -> list[str]:
    lines = [f"{indent}kinks (hand must lie in the subdifferential [low, high]):"]
    for k in report.kinks[:MAX_LISTED]:
        conv = "; ".join(f"{c.witness}: {c.label}" for c in k.conventions)
        lines.append(
            f"{indent}  {k.path}{_idx(k.index, ('element',))}  left {_fmt(k.left)}  right "
            f"{_fmt(k.right)}  [low, high] [{_fmt(k.low)}, {_fmt(k.high)}]  hand {_fmt(k.hand)} "
            f"({'inside' if k.hand_in_subdifferential else 'OUTSIDE'})  autodiff "
            f"{_fmt(k.autodiff)}  fd {_fmt(k.fd)}  [{conv}]"
        )
    if len(report.kinks) > MAX_LISTED:
        lines.append(f"{indent}  ... {len(report.kinks) - MAX_LISTED} more")
    return lines


def _nonfinite(report: GradReport, indent: str) -> list[str]:
    lines = [f"{indent}non-finite values:"]
    for n in report.nonfinite[:MAX_LISTED]:
        lines.append(f"{indent}  {n.witness:<8} {n.path}{_idx(n.index, ('element',))} = {n.value}")
    if len(report.nonfinite) > MAX_LISTED:
        lines.append(f"{indent}  ... {len(report.nonfinite) - MAX_LISTED} more")
    return lines


def _head(report: GradReport, indent: str) -> str:
    what = "Hessian" if isinstance(report, HessianReport) else "gradient"
    return (
        f"{indent}gradlab {report.title}: {'ok' if report.ok else 'MISMATCH'}  "
        f"(mode {report.mode}, {report.dtype}, rtol {_fmt(report.rtol)}"
        f"{'' if report.atol is None else ', atol ' + _fmt(report.atol)}; "
        f"hand {what} {report.hand_witness})"
    )


def _same_findings(a: GradReport, b: GradReport) -> bool:
    strip = lambda r: [(v.kind, v.path, v.count) for v in r.verdicts if v.kind.failing]  # noqa: E731
    return strip(a) == strip(b)


def lines(report: GradReport, indent: str = "") -> list[str]:
    """The report's text, line by line (``indent`` for nested reports)."""
    out = [_head(report, indent), *_table(report, indent)]
    if report.kinks:
        out += _kinks(report, indent)
    if report.nonfinite:
        out += _nonfinite(report, indent)
    if report.blame:
        out.append(f"{indent}blame (residual hand - autodiff fitted on the term gradients):")
        for b in report.blame:
            out.append(
                f"{indent}  {b.term:<12} coef {_fmt(b.coef):>10}  explained {b.explained:7.1%}"
            )
    out += [f"{indent}- {v}" for v in report.verdicts]
    for d in report.dtypes:
        out.append(f"{indent}* {d.label}: " + ("ok" if d.ok else f"FAIL ({d.verdict.kind.value})"))
    for name, r in report.terms.items():
        out.append(f"{indent}term {name!r}:")
        out += lines(r, indent + "    ")
    copy = report.float64_copy
    if copy is not None and not copy.ok:
        if _same_findings(copy, _own(report)):
            out.append(f"{indent}float64 copy: the same findings as above")
        else:
            out.append(f"{indent}float64 copy:")
            out += lines(copy, indent + "    ")
    return out


def _own(report: GradReport) -> GradReport:
    """The user-dtype part of a report (its verdicts without the precision summary)."""
    import dataclasses

    own = tuple(v for v in report.verdicts if v.kind not in _SUMMARY)
    return dataclasses.replace(report, verdicts=own, float64_copy=None)


_SUMMARY = {Finding.PRECISION_ONLY, Finding.DERIVATION_ERROR, Finding.OK}


def render(report: GradReport) -> str:
    return "\n".join(lines(report))
