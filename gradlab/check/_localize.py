r"""Group testing: which elements make finite differences along a direction disagree?

When the Richardson value along a random direction :math:`v` disagrees with
:math:`\langle g^{ad}, v\rangle` (and with the hand's projection: both witnesses are suspect),
the error :math:`\sum_{i \in S} e_i v_i` of a set :math:`S` is non-zero exactly when :math:`S`
holds a wrong element (for continuous random :math:`v_i`, a cancellation has probability 0).
Restricting :math:`v` to the two halves of a positive set and testing both (one batched
program per level) halves the suspects at each level:

.. math::  T(k, N) \le 2k\,\lceil\log_2 N\rceil                                          \tag{1}

directional evaluations for :math:`k` wrong elements among :math:`N` (40 for one among
:math:`10^6`, against the :math:`4\log_2 N = 80` target). When more than ``cap`` disjoint groups
test positive at one level, the error is spread over many elements: the search stops and says
so ("at least G of the groups of about M elements"), instead of bisecting each one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

DEFAULT_CAP = 8

Interval = tuple[int, int]


class Located(NamedTuple):
    """What the search found: single elements, or that too many groups are wrong."""

    elements: tuple[int, ...]  # raveled indices of the located elements
    unresolved: tuple[Interval, ...]  # positive sets whose halves both tested negative
    many: bool  # more than ``cap`` groups were positive at one level
    groups: int  # positive groups at the last level tested
    group_size: int  # their (largest) size
    evaluations: int  # directional evaluations used

    def summary(self) -> str:
        if self.many:
            return (
                f"many elements: at least {self.groups} disjoint groups of up to "
                f"{self.group_size} elements each hold a wrong one (found with "
                f"{self.evaluations} directional evaluations; not bisected one by one)"
            )
        found = f"{len(self.elements)} element(s) located"
        if self.unresolved:
            found += f", {len(self.unresolved)} group(s) not resolved further"
        return f"{found} with {self.evaluations} directional evaluations"


def localize(
    positive: Callable[[list[Interval]], np.ndarray],
    n: int,
    cap: int = DEFAULT_CAP,
    start: tuple[Interval, ...] | None = None,
) -> Located:
    """Bisect the positive sets level by level, eq. (1).

    Args:
      positive: tests a batch of raveled ranges ``[lo, hi)`` (the direction restricted to
        each) and returns True where the range holds a wrong element.
      n: the number of elements.
      cap: most positive groups followed at one level before reporting "many".
      start: the ranges known positive (default: everything, ``[(0, n)]``).

    Returns:
      A :class:`Located`.

    Examples:
      >>> bad = {123456}
      >>> test = lambda sets: np.array([any(lo <= b < hi for b in bad) for lo, hi in sets])
      >>> found = localize(test, 10**6)
      >>> found.elements, found.evaluations <= 2 * 20
      ((123456,), True)
    """
    level = list(start or [(0, n)])
    elements: list[int] = []
    unresolved: list[Interval] = []
    evaluations = 0
    while level:
        if len(level) > cap:
            size = max(hi - lo for lo, hi in level)
            return Located(tuple(elements), tuple(unresolved), True, len(level), size, evaluations)
        halves = [h for lo, hi in level for h in ((lo, (lo + hi) // 2), ((lo + hi) // 2, hi))]
        hits = np.asarray(positive(halves), bool)
        evaluations += len(halves)
        nxt = []
        for j, (lo, hi) in enumerate(level):
            pair = [(halves[2 * j], hits[2 * j]), (halves[2 * j + 1], hits[2 * j + 1])]
            found = [iv for iv, hit in pair if hit]
            if not found:
                unresolved.append((lo, hi))
            for a, b in found:
                (elements.append(a) if b - a == 1 else nxt.append((a, b)))
        level = nxt
    return Located(tuple(sorted(elements)), tuple(unresolved), False, 0, 0, evaluations)
