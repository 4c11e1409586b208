"""What the checker found, as data: frozen dataclasses whose ``to_dict()`` is derived from their
fields (so the JSON carries everything the table shows); rendering lives in ``_render``."""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

import numpy as np

from gradlab.check._blame import Blame
from gradlab.check._verdict import Finding, Verdict


def _num(x: float) -> float | str:
    """A JSON-safe number: non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"``."""
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def to_json(obj: Any) -> Any:
    """A JSON-safe copy of a report value: dataclasses become dicts of their fields (plus
    ``text`` for a :class:`Verdict`), enums their value, tuples lists, floats :func:`_num`."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        if isinstance(obj, Verdict):
            out["text"] = str(obj)
            out["failing"] = obj.failing
        return out
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return _num(obj)
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return [to_json(v) for v in obj]
    raise TypeError(f"to_json: cannot serialize {type(obj).__name__}")


class Record:
    """Mixin: ``to_dict()`` derived from the dataclass fields."""

    def to_dict(self) -> dict[str, Any]:
        return to_json(self)


@dataclasses.dataclass(frozen=True)
class Element(Record):
    """One element's three witnesses, its error (``_compare`` eq. (2)) and whether it passed."""

    index: tuple[int, ...]
    hand: float
    autodiff: float
    fd: float | None
    abs_err: float
    rel_err: float
    ok: bool = True


@dataclasses.dataclass(frozen=True)
class LeafReport(Record):
    """One parameter leaf (or Hessian block): pass/fail, its largest errors, its worst elements.

    ``axes`` names the index positions of ``worst[i].index`` (``("element",)`` for a gradient;
    ``("row", "column")`` for a Hessian block; ``("direction", "element")`` for HVP rows).
    """

    path: str
    shape: tuple[int, ...]
    ok: bool
    max_abs_err: float
    max_rel_err: float
    worst: tuple[Element, ...]
    n_fail: int = 0
    checked: str = "every element"
    axes: tuple[str, ...] = ("element",)


@dataclasses.dataclass(frozen=True)
class Convention(Record):
    """Which point of the subdifferential one witness returned at a kink."""

    witness: str
    label: str


@dataclasses.dataclass(frozen=True)
class Kink(Record):
    """An element at a non-differentiable point.

    ``left``/``right`` are the one-sided derivatives along the element; ``low``/``high`` bound
    the subdifferential the hand value is judged against (the range of gradients at seeded
    nearby points, ``_kinks`` eq. (3), which contains ``[min(left, right), max(left, right)]``).
    """

    path: str
    index: tuple[int, ...]
    left: float
    right: float
    hand: float
    autodiff: float
    fd: float | None
    hand_in_subdifferential: bool
    conventions: tuple[Convention, ...] = ()
    low: float = math.nan
    high: float = math.nan


@dataclasses.dataclass(frozen=True)
class NonFinite(Record):
    """A NaN or infinity in one witness (``"loss"``, ``"hand"``, ``"autodiff"``, ``"fd"``)."""

    witness: str
    path: str
    index: tuple[int, ...]
    value: float


@dataclasses.dataclass(frozen=True)
class DtypeVerdict(Record):
    """The outcome in one precision: the user's dtype, or the float64 copy."""

    label: str
    ok: bool
    verdict: Verdict


@dataclasses.dataclass(frozen=True)
class GradReport(Record):
    """The findings of :func:`~gradlab.check.check_grad`.

    ``ok`` is True when every leaf (every term, every precision checked) passes. ``verdicts``
    are :class:`~gradlab.check.Verdict` records (``str()`` of each is its sentence; compare
    ``verdict.kind`` in code). ``str(report)`` is a table; ``to_dict()`` is every field,
    JSON-safe (non-finite numbers become strings).
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
    verdicts: tuple[Verdict, ...] = ()
    dtypes: tuple[DtypeVerdict, ...] = ()
    terms: dict[str, GradReport] = dataclasses.field(default_factory=dict)
    float64_copy: GradReport | None = None
    fd_agree: tuple[int, int] = (0, 0)
    title: str = "check_grad"

    def __bool__(self) -> bool:
        return bool(self.ok)

    @property
    def n_fail(self) -> int:
        """Elements that fail, over every leaf."""
        return sum(leaf.n_fail for leaf in self.leaves)

    def kinds(self) -> tuple[Finding, ...]:
        """The kinds of every verdict, in order."""
        return tuple(v.kind for v in self.verdicts)

    def __str__(self) -> str:
        from gradlab.check._render import render

        return render(self)


@dataclasses.dataclass(frozen=True)
class HessianReport(GradReport):
    """The findings of :func:`~gradlab.check.check_hessian`: one "leaf" per Hessian block
    ``H[row leaf, column leaf]`` or per HVP output leaf ``Hv[leaf]`` (rows are directions)."""

    kind: str = "hessian"
    title: str = "check_hessian"
