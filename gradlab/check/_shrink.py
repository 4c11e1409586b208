r"""Shrinking a failing input toward a minimal one, in the spirit of hypothesis.

An input is a tuple of argument pytrees; its *shrinkable* entries are every element of a floating
leaf and every element of an integer array (data such as bin indices; integer scalars such as a
number of bins are kept: they are sizes, not values). Inputs are ordered by

.. math::  c(x) = \Big(\#\{i: x_i \ne 0\},\ \sum_i \mathrm{digits}(x_i),\
           \sum_{x_i \ne 0} \max(\lvert x_i\rvert, \lvert x_i\rvert^{-1})\Big)            \tag{1}

compared lexicographically: fewest non-zero entries first, then the fewest significant decimal
digits (round numbers: ``90`` has one, ``88.72`` four), then magnitudes closest to 1 (small, but
``1e-12`` is no simpler than ``1e12``). Each round proposes simpler neighbours (a leaf or half a
leaf set to zero; one entry set to 0, to :math:`\pm 1`, rounded to an integer or to 1-3
significant digits, moved down one step of its leading digit, ``90 -> 80``, ``100 -> 90``, or
halved to one digit), keeps those that still fail *with the same outcome* (judged by the caller,
every candidate of a round in one batched call), and moves to the simplest.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import numpy as np

Judge = Callable[[list[tuple]], list[bool]]
MAX_DOMAIN_TRIES = 8  # eager loss calls per round (the domain check of a failing candidate)


def digits(v) -> int:
    """Significant decimal digits of the shortest repr of ``v`` in its own dtype (0 for 0):
    ``float32(0.1)`` has one."""
    if v == 0:
        return 0
    if not np.isfinite(v):
        return 17
    if np.asarray(v).dtype.kind != "f":
        return len(str(abs(int(v))).rstrip("0")) or 1
    mantissa = np.format_float_scientific(v, unique=True).split("e")[0]
    return len(mantissa.replace("-", "").replace(".", "").rstrip("0")) or 1


def _shrinkable(x) -> bool:
    x = np.asarray(x)
    return x.dtype.kind == "f" or (x.dtype.kind in "iu" and x.ndim > 0)


def complexity(args: tuple) -> tuple[int, int, float]:
    """Eq. (1) over the shrinkable entries of ``args``."""
    nnz, dig, mag = 0, 0, 0.0
    for x in jax.tree.leaves(args):
        if not _shrinkable(x):
            continue
        own = np.asarray(x).ravel()
        nnz += int(np.count_nonzero(own))
        dig += sum(digits(v) for v in own)
        a = np.abs(own[np.isfinite(own) & (own != 0)].astype(np.float64))
        mag += float(np.sum(np.maximum(a, 1.0 / a)))
    return nnz, dig, mag


def _simpler_values(v: float, integer: bool) -> list[float]:
    if v == 0:
        return []
    if integer:
        return [0.0]
    out = [0.0, math.copysign(1.0, v), float(round(v))]
    out += [float(f"{v:.{d - 1}e}") for d in (1, 2, 3)]
    if math.isfinite(v):
        lead = float(f"{v:.0e}")
        e = 10.0 ** math.floor(math.log10(abs(lead)))
        step = e / 10 if abs(lead) == e else e  # 100 -> 90, 300 -> 200
        out.append(lead - math.copysign(step, v))  # one step of the leading digit down
        out.append(float(f"{v / 2:.0e}"))
    return [c for c in dict.fromkeys(out) if c != v and math.isfinite(c)]


Change = tuple[int, np.ndarray, np.ndarray]  # (leaf position, flat indices, new values)


def neighbours(args: tuple, rng: np.random.Generator, limit: int) -> list[Change]:
    """Changes to simpler inputs next to ``args``: whole/half leaves zeroed, one entry changed."""
    blocks, singles = [], []
    for pos, x in enumerate(jax.tree.leaves(args)):
        if not _shrinkable(x):
            continue
        flat = np.asarray(x).ravel()
        integer = flat.dtype.kind in "iu"
        half = flat.size // 2
        for idx in (np.arange(flat.size), np.arange(half), np.arange(half, flat.size)):
            if flat.size > 1 and idx.size and np.any(flat[idx] != 0):
                blocks.append((pos, idx, np.zeros(idx.size, flat.dtype)))
        for i, v in enumerate(flat.tolist()):
            for c in _simpler_values(float(v), integer):
                singles.append((pos, np.array([i]), np.array([c], flat.dtype)))
    if len(blocks) + len(singles) > limit:
        keep = rng.choice(len(singles), max(0, limit - len(blocks)), replace=False)
        singles = [singles[i] for i in sorted(keep)]
    return blocks + singles


def apply(args: tuple, changes: list[Change]) -> tuple:
    """``args`` with the changes applied (later changes to the same entry win)."""
    leaves, treedef = jax.tree.flatten(args)
    out = [np.array(x, copy=True) for x in leaves]
    for pos, idx, values in changes:
        flat = out[pos].reshape(-1)
        flat[idx] = values
        out[pos] = flat.reshape(np.shape(leaves[pos]))
    return jax.tree.unflatten(treedef, out)


def _merged(args: tuple, changes: list[Change]) -> tuple:
    """Every single-entry change that failed on its own, at once (the simplest per entry)."""
    chosen: dict[tuple[int, int], Change] = {}
    for ch in changes:
        if ch[1].size == 1:
            chosen.setdefault((ch[0], int(ch[1][0])), ch)
    return apply(args, list(chosen.values()))


def shrink(
    args: tuple,
    still_fails: Judge,
    in_domain: Callable[[tuple], bool],
    *,
    max_rounds: int = 100,
    limit: int = 256,
    seed=0,
):
    """Greedy descent of eq. (1) from a failing ``args``.

    Each round judges every neighbour in one batch; it first tries all the single-entry moves
    that still fail at once (most rounds then move many entries), else the simplest failing
    neighbour.

    Args:
      args: a failing input (host arrays).
      still_fails: judges a list of candidate inputs in one batch; True where a candidate fails
        with the same outcome as ``args``.
      in_domain: True when the loss, evaluated eagerly (its value checks run), accepts an input.
      max_rounds: most rounds.
      limit: most neighbours judged per round (a seeded sample of single-entry changes when
        there are more).
      seed: seeds that sample.

    Returns:
      ``(minimal args, rounds taken)``.
    """
    rng = np.random.default_rng(seed)
    best, best_c = args, complexity(args)
    for rounds in range(max_rounds):
        moves = [
            (complexity(c), c, ch)
            for ch in neighbours(best, rng, limit)
            for c in [apply(best, [ch])]
        ]
        moves = sorted((m for m in moves if m[0] < best_c), key=lambda m: m[0])
        if not moves:
            return best, rounds
        fails = still_fails([c for _, c, _ in moves])
        passing = [c for (_, c, _), f in zip(moves, fails, strict=True) if f]
        merged = _merged(best, [ch for (_, _, ch), f in zip(moves, fails, strict=True) if f])
        winner = None
        if len(passing) > 1 and complexity(merged) < best_c and still_fails([merged])[0]:
            winner = merged if in_domain(merged) else None
        if winner is None:
            winner = next((c for c in passing[:MAX_DOMAIN_TRIES] if in_domain(c)), None)
        if winner is None:
            return best, rounds
        best, best_c = winner, complexity(winner)
    return best, max_rounds
