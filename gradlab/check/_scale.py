r"""Checks at scale: hand against autodiff element by element on device, finite differences only
where they decide something, random directions as the referee, group testing to localize.

Both modes (above ``SCALE_THRESHOLD`` elements, or with ``fd_elements`` given):

1. One program computes the loss, ``jax.grad`` and the hand gradient and judges every element
   (``_compare`` eq. (1)) where the parameters live (a sharded leaf stays sharded); only per-leaf
   counts, maxima and the ``TOP_M`` worst elements come back to the host, never N values.
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

from gradlab.check import _differences, _directions, _judge, _kinks, _localize, _tree
from gradlab.check._judge import MASK_FINDINGS
from gradlab.check._precision import Checked, call_verdicts, finish, tolerance_for
from gradlab.check._problem import Problem
from gradlab.check._report import Element, LeafReport, NonFinite
from gradlab.check._settings import Settings
from gradlab.check._verdict import Example, Finding, Verdict
from gradlab.check._witnesses import HandCall, Witnesses

SCALE_THRESHOLD = 4096
TOP_M = 16
FD_FAIL_CAP = 256
DEFAULT_FD_SAMPLE = 32


class LeafStats(NamedTuple):
    """Per leaf, from the device: failures, largest errors, non-finite counts, worst elements."""

    n_fail: np.ndarray
    max_abs: np.ndarray
    max_rel: np.ndarray
    nonfinite_hand: np.ndarray
    nonfinite_auto: np.ndarray
    top: np.ndarray  # raveled index within the leaf
    top_ratio: np.ndarray


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
def _stats_program(loss, hand_fn, argnums, value_and_grad: bool, rtol, atol, tops: tuple):
    def run(args):
        value, ad = jax.value_and_grad(loss, argnums)(*args)
        raw = hand_fn(*args)
        hand_value, hand = raw if value_and_grad else (value, raw)
        hs, as_ = jax.tree.leaves(hand), jax.tree.leaves(ad)

        def fmax(x):
            return jnp.max(jnp.where(jnp.isfinite(x), jnp.abs(x), 0.0), initial=0.0)

        pairs = list(zip(hs, as_, strict=True))
        scale = jnp.max(jnp.stack([jnp.maximum(fmax(h), fmax(a)) for h, a in pairs]))
        stats = []
        for (h, a), m in zip(pairs, tops, strict=True):
            rho, err = _ratio(h.ravel(), a.ravel(), scale, rtol, atol)
            rel = jnp.where(err == 0, 0.0, err / jnp.maximum(jnp.abs(a.ravel()), scale))
            top_ratio, top = jax.lax.top_k(rho, m)
            nf_h, nf_a = jnp.sum(~jnp.isfinite(h)), jnp.sum(~jnp.isfinite(a))
            big_err, big_rel = jnp.max(err, initial=0.0), jnp.max(rel, initial=0.0)
            stats.append((jnp.sum(rho > 1), big_err, big_rel, nf_h, nf_a, top, top_ratio))
        x = jax.tree.leaves(_tree.get_params(args, argnums))
        return value, hand_value, scale, fmax(jnp.stack([fmax(xi) for xi in x])), stats, hs, as_

    return jax.jit(run)


@jax.jit
def _gather(trees, offsets, idx):
    """Values of each tree (a list of leaves) at raveled indices ``idx``: ``(len(trees), E)``."""
    out = []
    for leaves in trees:
        acc = jnp.zeros(idx.shape, jnp.float64)
        for leaf, off in zip(leaves, offsets, strict=True):
            local = idx - off
            inside = (local >= 0) & (local < leaf.size)
            got = leaf.ravel()[jnp.clip(local, 0, max(leaf.size - 1, 0))].astype(jnp.float64)
            acc = jnp.where(inside, got, acc)
        out.append(acc)
    return jnp.stack(out)


class _Device(NamedTuple):
    """One precision on device: its value(s), scale, per-leaf stats and gradient leaves."""

    value: float
    hand_value: float | None
    scale: float
    max_x: float
    leaves: LeafStats
    hand: list
    auto: list
    params: list
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
    tops = tuple(min(TOP_M, leaf.size) for leaf in problem.tree_leaves)
    run = _stats_program(
        problem.loss, problem.hand, problem.argnums, problem.value_and_grad, rtol, s.atol, tops
    )
    value, hand_value, scale, max_x, stats, hs, as_ = run(problem.args)
    host = [tuple(np.asarray(v) for v in leaf) for leaf in stats]
    leaves = LeafStats(*(list(col) for col in zip(*host, strict=True)))
    hv = float(hand_value) if problem.value_and_grad else None
    params = jax.tree.leaves(problem.params)
    return _Device(float(value), hv, float(scale), float(max_x), leaves, hs, as_, params, dtypes)


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
        self.run = _directions.program(
            wide.loss, wide.argnums, tuple(int(o) for o in offs[:-1]), batch
        )
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
        x = np.asarray(
            _gather([self.dev.params], jnp.asarray(self.offsets[:-1]), jnp.asarray(idx))
        )[0]
        h = _differences.steps(x, np.float64)
        z = np.zeros(idx.size)
        along = self.tests(z, idx, idx + 1, z + 1, h)
        return _differences.FD(along.values, along.h, self.dev.value, self.eps, along.r, along.err,
                               np.zeros(idx.size, bool))  # fmt: skip


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
    """Raveled indices refereed elementwise: the worst disagreeing ones (capped), the seeded
    sample of agreeing ones (full mode), the located ones."""
    offs = _offsets(problem)
    fail_idx, fail_rho = [], []
    for dev in devs:
        for j, (top, ratio) in enumerate(zip(dev.leaves.top, dev.leaves.top_ratio, strict=True)):
            bad = ratio > 1
            fail_idx.append(top[bad] + offs[j])
            fail_rho.append(ratio[bad])
    fail_idx, fail_rho = np.concatenate(fail_idx), np.concatenate(fail_rho)
    order = np.argsort(-fail_rho, kind="stable")
    chosen = list(dict.fromkeys(fail_idx[order].tolist()))[:FD_FAIL_CAP]
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
                f"disagreeing elements ({TOP_M} per leaf) only",
            )
        )
    return out


def _verdict(kind, leaf, local, j, mask, detail: str = "") -> Verdict:
    i = int(np.flatnonzero(mask)[0])
    ex = Example(_tree.index_of(int(local[i]), leaf.shape), float(j.hand[i]), float(j.autodiff[i]),
                 float(j.fd[i]))  # fmt: skip
    rel = float(np.nanmax(np.where(mask, j.rel_err, np.nan)))
    return Verdict(kind, leaf.path, int(mask.sum()), leaf.size, rel, ex, detail)


def _leaf_report(leaf, pos, dev: _Device, sub, j, n_fail, checked, n_worst) -> LeafReport:
    st = dev.leaves
    fd_at = dict(zip(sub.tolist(), j.fd.tolist(), strict=True))
    worst = []
    hv = np.asarray(_gather([[dev.hand[pos]], [dev.auto[pos]]], jnp.zeros(1, jnp.int64),
                            jnp.asarray(st.top[pos][:n_worst])))  # fmt: skip
    for t, (h, a) in zip(st.top[pos][:n_worst].tolist(), hv.T, strict=True):
        err = abs(h - a) if np.isfinite(h - a) else np.inf
        rel = err / max(abs(a), dev.scale) if err else 0.0
        ok = not (err > 0 and (st.top_ratio[pos][len(worst)] > 1))
        fd = fd_at.get(t + leaf.span.start)
        worst.append(Element(_tree.index_of(t, leaf.shape), float(h), float(a), fd, err, rel, ok))
    return LeafReport(
        leaf.path, leaf.shape, n_fail == 0, float(st.max_abs[pos]), float(st.max_rel[pos]),
        tuple(worst), n_fail, checked,
    )  # fmt: skip


def _precision_report(problem, dev: _Device, s, is_user, sub, fd, located, agree_dir):
    tol = tolerance_for(problem, s, is_user)._replace(scale=dev.scale)
    hv = np.asarray(_gather([dev.hand, dev.auto], jnp.asarray(_offsets(problem)[:-1]),
                            jnp.asarray(sub)))  # fmt: skip
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
        leaves.append(_leaf_report(leaf, pos, dev, sub[inside], lj or _empty_j(j), n_fail,
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
    verdicts = call_verdicts(problem, w, tol) + verdicts
    agree = int(j.fd_agree.sum()) + agree_dir
    mode = "full" if s.mode == "full" else "fast"
    report = finish(problem, w, tol, s, mode, leaves, [], nonfinite, verdicts, agree, sub.size + k)
    return Checked(report, None, w)


def _equal(hv, tol) -> np.ndarray:
    from gradlab.check import _compare

    return _compare.judge(hv[0], hv[1], tol.scale, tol.rtol, tol.atol)[2]


def _empty_j(j):
    return j.slice(np.zeros(j.ok.size, bool))


def run_scaled(problems: list[Problem], s: Settings) -> list[Checked]:
    """Every precision judged on device; one set of differences on the float64 problem."""
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
