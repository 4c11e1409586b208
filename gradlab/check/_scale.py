r"""Checks at scale: hand against autodiff element by element on device, finite differences only
where they decide something, random directions as the referee, group testing to localize.

Both modes (above ``SCALE_THRESHOLD`` elements, or with ``fd_elements`` given):

1. One program computes the loss, ``jax.grad`` and the hand gradient and judges every element
   (``_compare`` eq. (1)) where the parameters live (a sharded leaf stays sharded); only per-leaf
   counts, maxima and the ``TOP_K`` worst elements come back to the host, never N values.
2. Finite differences (``_directions``, unit vectors) at the disagreeing elements (the
   ``FD_FAIL_CAP`` worst by ratio; beyond that they are counted, not refereed) and, in full
   mode, at a seeded sample of ``fd_elements`` agreeing ones (default ``DEFAULT_FD_SAMPLE``):
   if a fraction :math:`p` of the elements is wrong in hand and autodiff alike, the sample
   catches one with probability :math:`1 - (1-p)^{m}` (:math:`m = 32`: 99% for
   :math:`p \ge 13.4\%`); sparse shared errors are the directions' job (3.).
   ``fd_elements="all"`` runs the unsampled pipeline of ``_precision`` instead.
3. ``directions`` random directions over all elements (``_directions`` eq. (1)): the Richardson
   value along each must match the projection of autodiff (``_directions.disagrees``). When it
   misses both the autodiff and the hand projections, ``_localize`` bisects the direction's
   support (eq. (1) there) and the located elements get elementwise differences; an element
   where hand and autodiff agree but the differences do not is reported as
   ``Finding.AUTODIFF_SUSPECT`` (a wrong custom rule, a ``stop_gradient``, a where-trap).

Cost: one gradient per precision, :math:`4k` loss evaluations along directions, four per
refereed element (each O(N), the unit vector applied leaf by leaf).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from gradlab.check import _differences, _directions, _judge, _kinks, _localize, _tree
from gradlab.check._judge import MASK_FINDINGS
from gradlab.check._precision import Checked, Parts, finish, tolerance_for
from gradlab.check._problem import Problem
from gradlab.check._report import Element, LeafReport, NonFinite
from gradlab.check._settings import Settings
from gradlab.check._verdict import Example, Finding, Verdict
from gradlab.check._witnesses import HandCall, Witnesses

SCALE_THRESHOLD = 4096
TOP_K = 256  # worst elements (by ratio, over all leaves) that come back from the device
FD_FAIL_CAP = 256
DEFAULT_FD_SAMPLE = 32


class LeafStats(NamedTuple):
    """Per leaf, from the device: failures, largest errors, non-finite counts."""

    n_fail: np.ndarray
    max_abs: np.ndarray
    max_rel: np.ndarray
    nonfinite_hand: np.ndarray
    nonfinite_auto: np.ndarray


def applies(problem: Problem, s: Settings) -> bool:
    """The scaled path: a traced hand, report leaves that are the pytree leaves, and either
    many elements or an explicit ``fd_elements`` sample size."""
    if s.fd_elements == "all" or len(problem.leaves) != len(problem.tree_leaves):
        return False
    if s.fd_elements == "auto" and problem.size <= SCALE_THRESHOLD:
        return False
    try:
        jax.eval_shape(problem.hand, *problem.args)
    except Exception:  # noqa: BLE001 - an eager (numpy) hand takes the unsampled path
        return False
    return True


def _ratio(h, a, scale, rtol, atol):
    """``|h - a| / max(atol, rtol |a|)`` (``_compare`` eq. (1)); inf where non-finite differs."""
    h, a = h.astype(jnp.float64), a.astype(jnp.float64)
    slack = jnp.maximum(rtol * scale if atol is None else atol, rtol * jnp.abs(a))
    err = jnp.abs(h - a)
    rho = jnp.where(err == 0, 0.0, err / jnp.where(slack > 0, slack, jnp.inf))
    rho = jnp.where((err > 0) & (slack == 0), jnp.inf, rho)
    finite = jnp.isfinite(h) & jnp.isfinite(a)
    return jnp.where(finite, rho, jnp.where(h == a, 0.0, jnp.inf)), err


@functools.lru_cache(maxsize=64)
def _stats_program(loss, hand_fn, argnums, value_and_grad: bool, rtol, atol, sizes: tuple):
    n_leaves, k = len(sizes), min(TOP_K, sum(sizes))

    def fmax(x):
        return jnp.max(jnp.where(jnp.isfinite(x), jnp.abs(x), 0.0), initial=0.0)

    def run(args, starts):
        value, ad = jax.value_and_grad(loss, argnums)(*args)
        raw = hand_fn(*args)
        hand_value, hand = raw if value_and_grad else (value, raw)
        h, a = ravel_pytree(hand)[0], ravel_pytree(ad)[0]
        x = ravel_pytree(_tree.get_params(args, argnums))[0]
        scale = jnp.maximum(fmax(h), fmax(a)).astype(jnp.float64)
        rho, err = _ratio(h, a, scale, rtol, atol)
        rel = jnp.where(err == 0, 0.0, err / jnp.maximum(jnp.abs(a), scale))
        # leaf of each element; ``starts`` is an argument, so XLA cannot constant-fold N ints
        seg = jnp.searchsorted(starts, jnp.arange(h.size), side="right") - 1
        per_leaf = LeafStats(
            jax.ops.segment_sum((rho > 1).astype(jnp.int64), seg, n_leaves),
            jax.ops.segment_max(jnp.where(jnp.isnan(err), jnp.inf, err), seg, n_leaves),
            jax.ops.segment_max(jnp.where(jnp.isnan(rel), jnp.inf, rel), seg, n_leaves),
            jax.ops.segment_sum((~jnp.isfinite(h)).astype(jnp.int64), seg, n_leaves),
            jax.ops.segment_sum((~jnp.isfinite(a)).astype(jnp.int64), seg, n_leaves),
        )
        top_ratio, top = jax.lax.top_k(rho, k)
        return value, hand_value, scale, fmax(x), per_leaf, top, top_ratio, h, a, x

    return jax.jit(run)


class _Device(NamedTuple):
    """One precision on device: value(s), scale, per-leaf stats, the ``TOP_K`` worst elements
    (raveled indices and ratios) and the raveled gradients and parameters (left on device)."""

    value: float
    hand_value: float | None
    scale: float
    max_x: float
    leaves: LeafStats
    top: np.ndarray
    top_ratio: np.ndarray
    hand: jax.Array
    auto: jax.Array
    params: jax.Array
    hand_dtypes: tuple


def _hand_dtypes(problem: Problem) -> tuple[np.dtype, ...]:
    """Check the hand's tree and leaf shapes against the parameters (traced, nothing run)."""
    out = jax.eval_shape(problem.hand, *problem.args)
    tree = out[1] if problem.value_and_grad else out
    leaves = list(problem.tree_leaves)
    _tree.check_grad_tree("grad(*args)", tree, problem.params, problem.argnums, leaves)
    return tuple(np.dtype(x.dtype) for x in jax.tree.leaves(tree))


def _device(problem: Problem, s: Settings, is_user: bool) -> _Device:
    dtypes = _hand_dtypes(problem)
    rtol = tolerance_for(problem, s, is_user).rtol
    sizes = tuple(leaf.size for leaf in problem.tree_leaves)
    run = _stats_program(
        problem.loss, problem.hand, problem.argnums, problem.value_and_grad, rtol, s.atol, sizes
    )
    starts = jnp.asarray(_offsets(problem)[:-1])
    value, hand_value, scale, max_x, per_leaf, top, top_ratio, h, a, x = run(problem.args, starts)
    hv = float(hand_value) if problem.value_and_grad else None
    stats = LeafStats(*(np.asarray(v) for v in per_leaf))
    return _Device(
        float(value), hv, float(scale), float(max_x), stats, np.asarray(top),
        np.asarray(top_ratio), h, a, x, dtypes,
    )  # fmt: skip


def _at(flat: jax.Array, idx: np.ndarray) -> np.ndarray:
    """``flat[idx]`` on device; only those values come to the host (float64)."""
    return np.asarray(flat[jnp.asarray(idx, jnp.int64)], np.float64)


def _offsets(problem: Problem) -> np.ndarray:
    return np.cumsum([0] + [leaf.size for leaf in problem.tree_leaves])


def _seed32(s: Settings) -> np.uint32:
    return np.uint32(np.bitwise_xor.reduce(np.asarray(s.seed, np.uint64)) & 0xFFFFFFFF)


class _Referee:
    """Directional and elementwise differences on the float64 problem."""

    def __init__(self, wide: Problem, dev: _Device, s: Settings):
        self.problem, self.dev, self.s = wide, dev, s
        offs = _offsets(wide)
        self.offsets = offs
        batch = _directions.batch_size(wide.params, s.fd_budget)
        self.run = _directions.program(wide.loss, wide.argnums, batch)
        self.eps = _differences.eps_of(wide.dtype)
        self.seed = jnp.asarray(_seed32(s))

    def tests(self, d, lo, hi, unit, h) -> _directions.Along:
        t = _directions.Tests(*(np.asarray(a) for a in (d, lo, hi, unit, h)))
        t = t._replace(d=t.d.astype(np.int64), lo=t.lo.astype(np.int64), hi=t.hi.astype(np.int64))
        return _directions.evaluate(
            self.run, self.problem.args, self.seed, self.dev.hand, self.dev.auto, t,
            self.dev.value, self.eps,
        )  # fmt: skip

    def direction_step(self) -> float:
        return float(_differences.steps(np.asarray([max(1.0, self.dev.max_x)]), np.float64)[0])

    def suspect(self, along: _directions.Along) -> np.ndarray:
        """Differences miss both projections (hand and autodiff together are suspect)."""
        a = _directions.disagrees(along.r, along.err, along.proj_auto, along.magnitude, self.eps)
        h = _directions.disagrees(along.r, along.err, along.proj_hand, along.magnitude, self.eps)
        return a & h

    def elements(self, idx: np.ndarray) -> _differences.FD:
        """Unit-vector differences at ``idx`` (``_differences`` eq. (2)); where they do not
        side with autodiff, or cannot tell hand from autodiff, also at ``h/4`` and combined by
        the second Romberg level (eq. (3) there), as ``_differences.refine`` does."""
        h = _differences.steps(_at(self.dev.params, idx), np.float64)
        z = np.zeros(idx.size)
        coarse = self.tests(z, idx, idx + 1, z + 1, h)
        hand, auto = _at(self.dev.hand, idx), _at(self.dev.auto, idx)
        with np.errstate(all="ignore"):
            agree = np.abs(coarse.r - auto) <= 8 * coarse.err
            split = np.abs(hand - auto) > 16 * coarse.err
        r, err, refined = coarse.r.copy(), coarse.err.copy(), ~(agree & (split | (hand == auto)))
        if refined.any():
            sel = np.flatnonzero(refined)
            fine = self.tests(z[sel], idx[sel], idx[sel] + 1, z[sel] + 1, h[sel] / 4)
            with np.errstate(all="ignore"):
                big = np.maximum(np.abs(fine.values).max(axis=1), abs(self.dev.value))
                r[sel] = fine.r + (fine.r - coarse.r[sel]) / 15.0  # (3)
                err[sel] = np.abs(fine.r - coarse.r[sel]) / 15.0 + 16 * self.eps * big / h[sel]
        return _differences.FD(coarse.values, coarse.h, self.dev.value, self.eps, r, err, refined)


def _directional_referee(ref: _Referee, k: int, n: int):
    """``k`` directions over everything; localize along the first that misses both witnesses."""
    h = ref.direction_step()
    d = np.arange(k)
    along = ref.tests(d, np.zeros(k), np.full(k, n), np.zeros(k), np.full(k, h))
    suspect = ref.suspect(along)
    agree = int(
        (
            ~_directions.disagrees(along.r, along.err, along.proj_auto, along.magnitude, ref.eps)
        ).sum()
    )
    if not suspect.any():
        return None, agree
    d0 = int(np.flatnonzero(suspect)[0])

    def positive(sets):
        lo, hi = np.array([a for a, _ in sets]), np.array([b for _, b in sets])
        z = np.zeros(lo.size)
        return ref.suspect(ref.tests(z + d0, lo, hi, z, np.full(lo.size, h)))

    return _localize.localize(positive, n), agree


def _probe_indices(devs: list[_Device], problem: Problem, s: Settings, located) -> np.ndarray:
    """Raveled indices refereed elementwise: the worst disagreeing ones (``FD_FAIL_CAP``), the
    seeded sample of agreeing ones (full mode), the located ones."""
    fail = [dev.top[dev.top_ratio > 1] for dev in devs]
    chosen = list(dict.fromkeys(np.concatenate(fail).tolist()))[:FD_FAIL_CAP]
    if s.mode == "full":
        m = DEFAULT_FD_SAMPLE if s.fd_elements == "auto" else int(s.fd_elements)
        rng = np.random.default_rng([*s.seed, 0x5CA1E])
        chosen += rng.choice(problem.size, min(m, problem.size), replace=False).tolist()
    if located is not None:
        chosen += list(located.elements)
    return np.asarray(sorted(set(chosen)), np.int64)


def _leaf_verdicts(leaf, sub: np.ndarray, j, n_fail: int, located) -> list[Verdict]:
    """One verdict per non-empty mask among the refereed elements of the leaf, the unrefereed
    disagreeing ones, and the located elements where autodiff itself is suspect."""
    out = []
    local = sub - leaf.span.start
    how = "" if located is None else located.summary()
    for name, kind in MASK_FINDINGS.items():
        mask = getattr(j.masks, name)
        if name == "fd_noise":
            suspect = mask & np.isin(sub, () if located is None else located.elements)
            mask = mask & ~suspect
            if suspect.any():
                out.append(_verdict(Finding.AUTODIFF_SUSPECT, leaf, local, j, suspect, how))
        if mask.any():
            out.append(_verdict(kind, leaf, local, j, mask))
    refereed_fail = int((~j.ok).sum())
    if n_fail > refereed_fail:
        out.append(
            Verdict(
                Finding.INCONCLUSIVE,
                leaf.path,
                n_fail - refereed_fail,
                leaf.size,
                detail=f"not refereed: finite differences run at the {FD_FAIL_CAP} worst "
                "disagreeing elements only",
            )
        )
    return out


def _verdict(kind, leaf, local, j, mask, detail: str = "") -> Verdict:
    i = int(np.flatnonzero(mask)[0])
    ex = Example(_tree.index_of(int(local[i]), leaf.shape), float(j.hand[i]), float(j.autodiff[i]),
                 float(j.fd[i]))  # fmt: skip
    rel = float(np.nanmax(np.where(mask, j.rel_err, np.nan)))
    return Verdict(kind, leaf.path, int(mask.sum()), leaf.size, rel, ex, detail)


def _leaf_report(leaf, pos, dev: _Device, tops, sub, j, n_fail, checked, n_worst) -> LeafReport:
    """The leaf's row; its worst elements are those of the device's ``TOP_K`` in the leaf
    (``tops``: their hand and autodiff values, fetched once for all leaves)."""
    fd_at = dict(zip(sub.tolist(), j.fd.tolist(), strict=True))
    mine = np.flatnonzero((dev.top >= leaf.span.start) & (dev.top < leaf.span.stop))[:n_worst]
    top, ratio, hand, auto = dev.top[mine], dev.top_ratio[mine], tops[0][mine], tops[1][mine]
    worst = []
    for t, r, h, a in zip(top.tolist(), ratio.tolist(), hand, auto, strict=True):
        with np.errstate(all="ignore"):
            err = float(abs(h - a)) if h != a else 0.0
            rel = err / max(abs(a), dev.scale) if err else 0.0
        index = _tree.index_of(t - leaf.span.start, leaf.shape)
        worst.append(Element(index, float(h), float(a), fd_at.get(t), err, rel, r <= 1))
    st = dev.leaves
    return LeafReport(
        leaf.path, leaf.shape, n_fail == 0, float(st.max_abs[pos]), float(st.max_rel[pos]),
        tuple(worst), n_fail, checked,
    )  # fmt: skip


def _precision_report(problem, dev: _Device, s, is_user, sub, fd, located, agree_dir):
    tol = tolerance_for(problem, s, is_user)._replace(scale=dev.scale)
    hv = np.stack([_at(dev.hand, sub), _at(dev.auto, sub)])
    tops = (_at(dev.hand, dev.top), _at(dev.auto, dev.top))
    j = _judge.judge(hv[0], hv[1], fd, _kinks.Nearby.empty(sub.size), tol)
    leaves, verdicts, nonfinite = [], [], []
    k = s.directions
    for pos, leaf in enumerate(problem.leaves):
        inside = (sub >= leaf.span.start) & (sub < leaf.span.stop)
        lj = j.slice(inside) if inside.any() else None
        n_dev = int(dev.leaves.n_fail[pos])
        # kinks where hand lies in the subdifferential pass although hand != autodiff
        n_fail = n_dev - (int((j.ok & ~_equal(hv, tol))[inside].sum()) if lj is not None else 0)
        checked = f"every element (hand vs autodiff); finite differences at {int(inside.sum())}"
        leaves.append(_leaf_report(leaf, pos, dev, tops, sub[inside], lj or _empty_j(j), n_fail,
                                   checked, s.n_worst))  # fmt: skip
        if lj is not None:
            verdicts += _leaf_verdicts(leaf, sub[inside], lj, n_fail, located)
        elif n_fail:
            verdicts += _leaf_verdicts(leaf, sub[:0], _empty_j(j), n_fail, located)
        for witness, count in (("hand", dev.leaves.nonfinite_hand[pos]),
                               ("autodiff", dev.leaves.nonfinite_auto[pos])):  # fmt: skip
            if count:
                nonfinite.append(NonFinite(witness, leaf.path, (), float(count)))
    if located is not None and (located.many or located.unresolved):
        verdicts.append(Verdict(Finding.AUTODIFF_SUSPECT, detail=located.summary()))
    w = Witnesses(
        np.zeros(0), np.zeros(0), dev.value, dev.hand_value, dev.hand_dtypes, HandCall(True)
    )
    agree = int(j.fd_agree.sum()) + agree_dir
    mode = "full" if s.mode == "full" else "fast"
    parts = Parts(leaves, [], nonfinite, verdicts, agree, sub.size + k)
    report = finish(problem, w, tol, s, mode, parts)
    return Checked(report, None, w)


def _equal(hv, tol) -> np.ndarray:
    from gradlab.check import _compare

    return _compare.judge(hv[0], hv[1], tol.scale, tol.rtol, tol.atol)[2]


def _empty_j(j):
    return j.slice(np.zeros(j.ok.size, bool))


def check_placement(problem: Problem) -> None:
    """Every parameter leaf on one set of devices (one mesh); else an error naming the leaf."""
    first = None
    for leaf, x in zip(problem.tree_leaves, jax.tree.leaves(problem.params), strict=True):
        devices = getattr(getattr(x, "sharding", None), "device_set", None)
        if devices is None:
            continue
        if first is None:
            first = (leaf.path, devices)
        elif devices != first[1]:
            raise ValueError(
                f"parameter {leaf.path} lives on devices {sorted(d.id for d in devices)} but "
                f"{first[0]} on {sorted(d.id for d in first[1])}: the sharding does not match "
                "the other parameters; put every parameter on one mesh to check them together"
            )


def run_scaled(problems: list[Problem], s: Settings) -> list[Checked]:
    """Every precision judged on device; one set of differences on the float64 problem."""
    check_placement(problems[0])
    devs = [_device(p, s, i == 0) for i, p in enumerate(problems)]
    wide, dev_wide = problems[-1], devs[-1]
    ref = _Referee(wide, dev_wide, s)
    located, agree_dir = _directional_referee(ref, s.directions, wide.size)
    sub = _probe_indices(devs, wide, s, located)
    fd = ref.elements(sub)
    return [
        _precision_report(p, dev, s, i == 0, sub, fd, located, agree_dir)
        for i, (p, dev) in enumerate(zip(problems, devs, strict=True))
    ]
