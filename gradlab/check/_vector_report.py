"""The report of a vector check: Jacobian blocks as report leaves, verdicts, and where each
failure is (rule, output leaf and index, input leaf and index) as typed :class:`Location` rows."""

from __future__ import annotations

import dataclasses

import numpy as np

from gradlab.check import _render
from gradlab.check._findings import largest
from gradlab.check._report import Element, GradReport, LeafReport, Record
from gradlab.check._vector_judge import BlockJudgement
from gradlab.check._verdict import Example, Finding, Verdict


@dataclasses.dataclass(frozen=True)
class Location(Record):
    """One failing block, named by rule, output leaf and index, input leaf and index.

    ``hand``/``autodiff``/``fd`` are the Jacobian entry ``d output[output_index] /
    d input[input_index]`` from each witness at the worst element of the block; ``count`` of
    ``total`` entries of the block fail with this ``kind``.
    """

    kind: Finding
    rule: str
    output: str
    output_index: tuple[int, ...]
    input: str
    input_index: tuple[int, ...]
    hand: float
    autodiff: float
    fd: float | None
    count: int
    total: int

    def __str__(self) -> str:
        fd = "-" if self.fd is None else f"{self.fd:.6g}"
        return (
            f"{self.kind.value}: {self.rule + ': ' if self.rule else ''}"
            f"d {self.output}{list(self.output_index)} / d {self.input}{list(self.input_index)}"
            f": hand {self.hand:.6g}, autodiff {self.autodiff:.6g}, fd {fd} "
            f"({self.count} of {self.total} entries of this block)"
        )


@dataclasses.dataclass(frozen=True)
class VectorReport(GradReport):
    """The findings of ``check_vjp`` / ``check_jvp`` / ``check_jacobian`` / an audited rule.

    One report leaf per Jacobian block ``d output-leaf / d input-leaf`` (complex leaves split into
    ``.real`` and ``.imag`` parts); ``locations`` names each failure by rule, output leaf and
    index, input leaf and index.
    """

    kind: str = "vjp"
    rule: str = ""
    locations: tuple[Location, ...] = ()
    title: str = "check_vjp"

    def __str__(self) -> str:
        out = _render.lines(self)
        out[0] = out[0].replace("hand gradient", f"hand {self.kind}")
        if self.rule:
            out.insert(1, f"  rule: {self.rule}")
        out += [f"- at {loc}" for loc in self.locations]
        return "\n".join(out)


def _index(b: BlockJudgement, flat: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    r, c = np.unravel_index(int(flat), b.hand.shape)
    return b.out_span.index(int(r)), b.in_span.index(int(c))


def block_path(b: BlockJudgement) -> str:
    return f"{b.out_span.path} wrt {b.in_span.path}"


def leaf_report(b: BlockJudgement, n_worst: int, checked: str, probe: bool) -> LeafReport:
    """The block as a report leaf: index = output index + input index (no entries listed for a
    block that passed its fast-mode probes: their values are projections, not entries)."""
    m = b.masks
    if probe:
        n_worst = 0
    key = np.where(m.ok, m.rel_err, np.inf).ravel()
    order = np.lexsort((-np.nan_to_num(m.rel_err.ravel(), nan=np.inf), -key))[:n_worst]
    fd = b.fd.ravel() if b.fd is not None else None
    worst = []
    for i in order:
        o, n = _index(b, i)
        worst.append(
            Element(
                o + n,
                float(b.hand.ravel()[i]),
                float(b.auto.ravel()[i]),
                None if fd is None else float(fd[i]),
                float(m.abs_err.ravel()[i]),
                float(m.rel_err.ravel()[i]),
                bool(m.ok.ravel()[i]),
            )
        )
    shape = tuple(b.out_span.shape) + tuple(b.in_span.shape)
    axes = tuple(f"out{d}" for d in range(len(b.out_span.shape))) + tuple(
        f"in{d}" for d in range(len(b.in_span.shape))
    )
    return LeafReport(
        block_path(b),
        shape,
        bool(m.ok.all()),
        largest(m.abs_err),
        largest(m.rel_err),
        tuple(worst),
        int((~m.ok).sum()),
        checked,
        axes or ("element",),
    )


_ORDER = (
    ("nonfinite_hand", Finding.NONFINITE_HAND),
    ("nonfinite_auto", Finding.NONFINITE_AUTODIFF),
    ("hand_bug", Finding.HAND_BUG),
    ("autodiff_bug", Finding.AUTODIFF_DISAGREES),
    ("inconclusive", Finding.INCONCLUSIVE),
)


def block_verdicts(b: BlockJudgement, rule: str) -> tuple[list[Verdict], list[Location]]:
    """One verdict (and one location) per non-empty mask of a block."""
    verdicts, locations = [], []
    m = b.masks
    total = int(m.ok.size)
    fail = ~m.ok
    chosen = [(name, kind) for name, kind in _ORDER if getattr(m, name).any()]
    if b.conjugate:
        chosen = [("conjugate", Finding.CONJUGATE)]
    for name, kind in chosen:
        mask = fail if name == "conjugate" else getattr(m, name)
        verdicts.append(_verdict(b, kind, mask, total))
        locations.append(_location(b, kind, mask, total, rule))
    if m.fd_noise.any():
        verdicts.append(_verdict(b, Finding.FD_NOISE, m.fd_noise, total))
    return verdicts, locations


def _worst(b: BlockJudgement, mask: np.ndarray) -> int:
    rel = np.where(mask, np.nan_to_num(b.masks.rel_err, nan=np.inf), -1.0)
    return int(np.argmax(rel))


def _verdict(b: BlockJudgement, kind: Finding, mask: np.ndarray, total: int) -> Verdict:
    i = _worst(b, mask)
    o, n = _index(b, i)
    fd = None if b.fd is None else float(b.fd.ravel()[i])
    example = Example(o + n, float(b.hand.ravel()[i]), float(b.auto.ravel()[i]), fd)
    rel = b.masks.rel_err[mask]
    return Verdict(
        kind,
        block_path(b),
        int(mask.sum()),
        total,
        largest(rel) if rel.size else None,
        example,
        f"entry d {b.out_span.path}{list(o)} / d {b.in_span.path}{list(n)}",
    )


def _location(b, kind, mask, total, rule) -> Location:
    i = _worst(b, mask)
    o, n = _index(b, i)
    fd = None if b.fd is None else float(b.fd.ravel()[i])
    return Location(
        kind,
        rule,
        b.out_span.path,
        o,
        b.in_span.path,
        n,
        float(b.hand.ravel()[i]),
        float(b.auto.ravel()[i]),
        fd,
        int(mask.sum()),
        total,
    )
