r"""``check_grad`` and ``assert_grad``: hand gradient against ``jax.grad``, refereed by finite
differences, with kinks, non-finite values, per-term checks and blame.

The judge is hand against autodiff at machine-precision tolerances (``_compare`` eq. (1)); finite
differences (``_witnesses`` eq. (2)) say which side a disagreement is on, or that the differences
themselves are noise; at a kink (``_kinks`` eq. (2)) the hand value is judged by membership in the
subdifferential instead of by equality with autodiff, whose value there is a convention.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradlab.check import _blame, _compare, _kinks, _tree, _witnesses
from gradlab.check._legacy_report import (
    DtypeVerdict,
    Element,
    GradReport,
    Kink,
    LeafReport,
    NonFinite,
)

Modes = ("full", "fast")
DEFAULT_BUDGET = 256 * 2**20
MAX_NONFINITE = 50


class GradientMismatch(AssertionError):
    """Raised by :func:`assert_grad`; ``.report`` is the report, the message its table."""

    def __init__(self, report: GradReport):
        super().__init__("\n" + str(report))
        self.report = report


# ---- one leaf, every element ------------------------------------------------------------------


def _nonfinite(witness: str, path: str, shape, values: np.ndarray) -> list[NonFinite]:
    bad = np.flatnonzero(~np.isfinite(values))[:MAX_NONFINITE]
    return [NonFinite(witness, path, _tree.index_of(i, shape), float(values[i])) for i in bad]


def _full_leaf(leaf, h, a, fd, scale, rtol, atol, n_worst, eps):
    """Judge one leaf element by element: (LeafReport, kinks, nonfinite, verdict parts)."""
    h, a = h.ravel().astype(np.float64), a.ravel().astype(np.float64)
    abs_err, rel_err, ok = _compare.judge(h, a, scale, rtol, atol)
    r, r_err = fd.richardson()
    sl = _kinks.slopes(fd)
    slack = rtol * (np.abs(a) + scale) if atol is None else atol + rtol * np.abs(a)
    inside = _kinks.in_subdifferential(h, sl.left, sl.right, sl.err, slack)
    ok = np.where(sl.kink, inside, ok)  # at a kink: membership, not equality (_kinks)
    fd_eps = max(fd.eps, eps)  # the values judged carry the checked dtype's rounding
    fd_auto = _compare.referee(r, r_err, a, scale, fd_eps)
    fd_hand = _compare.referee(r, r_err, h, scale, fd_eps)

    kinks = []
    for i in np.flatnonzero(sl.kink):
        tol = float(4 * sl.err[i] + slack[i])
        conv = tuple(
            (w, _kinks.convention(float(x), float(sl.left[i]), float(sl.right[i]), tol))
            for w, x in (("hand", h[i]), ("autodiff", a[i]), ("fd", r[i]))
        )
        kinks.append(
            Kink(
                leaf.path,
                _tree.index_of(i, leaf.shape),
                float(sl.left[i]),
                float(sl.right[i]),
                float(h[i]),
                float(a[i]),
                float(r[i]),
                bool(inside[i]),
                conv,
            )
        )

    # kinks that pass are listed under kinks, not as errors: their autodiff value is a convention
    conv_ok = sl.kink & ok
    abs_err = np.where(conv_ok, 0.0, abs_err)
    rel_err = np.where(conv_ok, 0.0, rel_err)
    key = np.where(ok, rel_err, np.inf)
    order = np.lexsort((-np.nan_to_num(rel_err, nan=np.inf), -key))
    worst = tuple(
        Element(
            _tree.index_of(i, leaf.shape),
            float(h[i]),
            float(a[i]),
            float(r[i]),
            float(abs_err[i]),
            float(rel_err[i]),
        )
        for i in order[:n_worst]
    )
    fail = ~ok
    report = LeafReport(
        leaf.path,
        leaf.shape,
        bool(ok.all()),
        _max(abs_err),
        _max(rel_err),
        worst,
        int(fail.sum()),
    )
    nonfinite = (
        _nonfinite("hand", leaf.path, leaf.shape, h)
        + _nonfinite("autodiff", leaf.path, leaf.shape, a)
        + _nonfinite("fd", leaf.path, leaf.shape, r)
    )
    smooth = ~sl.kink
    parts = {
        "n": h.size,
        "fail": fail,
        "hand_bug": fail & smooth & fd_auto & ~fd_hand,
        "autodiff_bug": fail & smooth & fd_hand & ~fd_auto,
        "kink_outside": fail & sl.kink,
        "kink_convention": conv_ok & (h != a),
        "fd_noise": ok & smooth & ~fd_auto & ~fd_hand,
        "fd_agree": fd_auto,
        "nonfinite_hand": ~np.isfinite(h),
        "h": h,
        "a": a,
        "r": r,
        "rel": rel_err,
        "kinks": kinks,
    }
    return report, kinks, nonfinite, parts


def _max(x: np.ndarray) -> float:
    if x.size == 0:
        return 0.0
    if np.isnan(x).any():
        return float("nan")
    return float(np.max(x))


# ---- verdicts ---------------------------------------------------------------------------------


def _ex(leaf, parts, mask) -> str:
    i = int(np.flatnonzero(mask)[0])
    f = lambda x: f"{x:.6g}"  # noqa: E731
    return (
        f"e.g. {leaf.path}{list(_tree.index_of(i, leaf.shape))}: hand {f(parts['h'][i])}, "
        f"autodiff {f(parts['a'][i])}, fd {f(parts['r'][i])}"
    )


def _leaf_verdicts(leaf, rep: LeafReport, parts) -> list[str]:
    out = []
    n = parts["n"]
    if parts["nonfinite_hand"].any():
        out.append(
            f"non-finite hand gradient: {leaf.path} has {int(parts['nonfinite_hand'].sum())} "
            f"NaN/inf element(s) ({_ex(leaf, parts, parts['nonfinite_hand'])})"
        )
    for key, label, why in (
        ("hand_bug", "hand bug", "finite differences side with autodiff"),
        (
            "autodiff_bug",
            "autodiff disagrees",
            "finite differences side with the hand gradient: the loss's autodiff is suspect "
            "(custom_jvp, stop_gradient, a where-trap)",
        ),
    ):
        m = parts[key]
        if m.any():
            out.append(
                f"{label}: {leaf.path}: {int(m.sum())} of {n} element(s) differ "
                f"(max rel err {rep.max_rel_err:.2e}); {why}; {_ex(leaf, parts, m)}"
            )
    other = parts["fail"] & ~parts["hand_bug"] & ~parts["autodiff_bug"] & ~parts["kink_outside"]
    other &= ~parts["nonfinite_hand"]
    if other.any():
        out.append(
            f"hand and autodiff disagree: {leaf.path}: {int(other.sum())} of {n} element(s) "
            f"(max rel err {rep.max_rel_err:.2e}); finite differences inconclusive there; "
            f"{_ex(leaf, parts, other)}"
        )
    for k in parts["kinks"]:
        conv = ", ".join(f"{w} {c}" for w, c in k.conventions)
        if not k.hand_in_subdifferential:
            out.append(
                f"hand bug at kink: {k.path}{list(k.index)}: hand {k.hand:.6g} is outside the "
                f"subdifferential [{min(k.left, k.right):.6g}, {max(k.left, k.right):.6g}] "
                f"({conv})"
            )
    m = parts["kink_convention"]
    if m.any():
        k = next(k for k in parts["kinks"] if k.hand != k.autodiff and k.hand_in_subdifferential)
        conv = ", ".join(f"{w} {c}" for w, c in k.conventions)
        out.append(
            f"autodiff convention at kink: {leaf.path}: {int(m.sum())} element(s) where hand and "
            f"autodiff differ but both lie in the subdifferential, e.g. {k.path}{list(k.index)} "
            f"in [{min(k.left, k.right):.6g}, {max(k.left, k.right):.6g}]: {conv}"
        )
    m = parts["fd_noise"]
    if m.any():
        out.append(
            f"FD noise: {leaf.path}: finite differences disagree with hand and autodiff (which "
            f"agree) at {int(m.sum())} element(s); not a failure; {_ex(leaf, parts, m)}"
        )
    return out


# ---- one precision ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _term_vg(term: Callable, argnums) -> Callable:
    return jax.jit(jax.value_and_grad(term, argnums))


def _check_terms(loss_value, terms, args, argnums, leaves, dtype):
    """Term values must sum to the loss; returns each term's autodiff gradient leaves."""
    grads, total, mags = {}, 0.0, abs(float(loss_value))
    for name, term in terms.items():
        try:
            val, g = _term_vg(term, argnums)(*args)
        except TypeError:
            _witnesses.check_scalar_loss(term, args, f"terms[{name!r}]")
            raise
        if np.shape(val) != ():
            _witnesses.check_scalar_loss(term, args, f"terms[{name!r}]")
        total += float(val)
        mags += abs(float(val))
        params = _tree.get_params(args, argnums)
        grads[name] = _tree.check_grad_tree(
            f"jax.grad(terms[{name!r}])", g, params, argnums, leaves
        )
    tol = _compare.default_rtol(dtype) * max(mags, np.finfo(dtype).tiny)
    if np.isfinite(loss_value) and not abs(total - float(loss_value)) <= tol:
        raise ValueError(
            f"terms must sum to the loss: sum of terms({', '.join(terms)}) = {total!r} but "
            f"loss(*args) = {float(loss_value)!r} (difference {abs(total - float(loss_value)):.3g},"
            f" tolerance {tol:.3g})"
        )
    return grads


def _directions(leaves, seed, k, dtype) -> np.ndarray:
    """``k`` seeded Gaussian directions per leaf, each zero outside its leaf: rows ``(L k, N)``.

    Drawn on host (a jax PRNG program would compile once per shape).
    """
    n = sum(leaf.size for leaf in leaves)
    V = np.zeros((k * len(leaves), n), dtype)
    start = 0
    for pos, leaf in enumerate(leaves):
        rng = np.random.default_rng([*seed, pos])
        V[pos * k : (pos + 1) * k, start : start + leaf.size] = rng.standard_normal((k, leaf.size))
        start += leaf.size
    return V


def _check_one(
    loss,
    grad,
    args,
    argnums,
    leaves,
    *,
    mode,
    rtol,
    atol,
    key,
    k,
    terms,
    fd_args,
    fd_cache,
    n_worst,
    budget,
    dtype,
) -> GradReport:
    params = _tree.get_params(args, argnums)
    ad_cache: dict[str, Any] = {}
    pre = None
    if mode == "full" and fd_args is args and not fd_cache:
        pre = _witnesses.fused(loss, grad, args, argnums, budget)
    if pre is not None:
        hand, value0, g0, fd0 = pre
        if np.shape(value0) != ():
            _witnesses.check_scalar_loss(loss, args)
        ad = _tree.check_grad_tree("jax.grad(loss)", g0, params, argnums, leaves)
        ad_cache["value"] = float(value0)
        ad_cache["leaves"] = [np.asarray(x, np.float64) for x in ad]
        offs = np.cumsum([0] + [leaf.size for leaf in leaves])
        for j in range(len(leaves)):
            fd_cache[j] = fd0.slice(offs[j], offs[j + 1])
    elif mode == "fast":
        V = _directions(leaves, key, k, dtype)
        hand, jvp_all, fd_dir = _witnesses.directional(loss, grad, args, argnums, V)
        if hand is None:
            hand = _witnesses.hand(grad, args)
    else:
        hand = _witnesses.hand(grad, args)
    h_leaves = _tree.check_grad_tree("grad(*args)", hand.value, params, argnums, leaves)
    h_leaves = [np.asarray(x, np.float64) for x in h_leaves]

    def autodiff():
        if "value" not in ad_cache:
            value, g = _witnesses.autodiff(loss, args, argnums)
            ad_cache["value"] = float(value)
            ad = _tree.check_grad_tree("jax.grad(loss)", g, params, argnums, leaves)
            ad_cache["leaves"] = [np.asarray(x, np.float64) for x in ad]
        return ad_cache["value"], ad_cache["leaves"]

    offsets = np.cumsum([0] + [leaf.size for leaf in leaves])

    def fd_of(pos, f0):
        """The FD witness of leaf ``pos``: all leaves at once in full mode, one leaf in fast."""
        if pos not in fd_cache:
            if mode == "full":
                fd = _witnesses.fd_all(loss, fd_args, argnums, f0, budget)
                for j in range(len(leaves)):
                    fd_cache[j] = fd.slice(offsets[j], offsets[j + 1])
            else:
                idx = np.arange(offsets[pos], offsets[pos + 1])
                fd_cache[pos] = _witnesses.fd_all(loss, fd_args, argnums, f0, budget, idx)
        return fd_cache[pos]

    nonfinite: list[NonFinite] = []
    kinks: list[Kink] = []
    verdicts: list[str] = []
    reports: list[LeafReport] = []

    if mode == "full":
        value, a_leaves = autodiff()
        scale = _compare.finite_max(*h_leaves, *a_leaves)
    else:
        value = None
        scale = _compare.finite_max(*h_leaves)

    fd_f0 = None
    if mode == "full":
        fd_f0 = value if fd_args is args else float(_witnesses.autodiff(loss, fd_args, argnums)[0])
    if mode == "full" and not np.isfinite(value):
        nonfinite.append(NonFinite("loss", "", (), value))
        verdicts.append(f"the loss itself is {value} at these arguments: nothing can be checked")

    eps = float(np.finfo(dtype).eps)
    n_total = 0
    fd_agree = [0, 0]
    for pos, leaf in enumerate(leaves):
        n_total += leaf.size
        if mode == "fast":
            rows = slice(pos * k, (pos + 1) * k)
            cols = slice(offsets[pos], offsets[pos + 1])
            rep = _fast_leaf(
                leaf,
                h_leaves[pos],
                V[rows, cols],
                jvp_all[rows],
                fd_dir.slice(pos * k, (pos + 1) * k),
                k,
                scale,
                rtol,
                atol,
            )
            if rep is not None:
                reports.append(rep[0])
                fd_agree[0] += rep[1]
                fd_agree[1] += k
                continue
            value, a_leaves = autodiff()
            scale = _compare.finite_max(*h_leaves, *a_leaves)
            verdicts.append(
                f"fast mode: a random direction disagrees on {leaf.path}; rerun in full there"
            )
            if fd_f0 is None:
                fd_f0 = (
                    value
                    if fd_args is args
                    else float(_witnesses.autodiff(loss, fd_args, argnums)[0])
                )
        fd = fd_of(pos, fd_f0)
        rep, kk, nf, parts = _full_leaf(
            leaf, h_leaves[pos], a_leaves[pos], fd, scale, rtol, atol, n_worst, eps
        )
        reports.append(rep)
        fd_agree[0] += int(parts["fd_agree"].sum())
        fd_agree[1] += int(parts["n"])
        kinks += kk
        nonfinite += nf
        verdicts += _leaf_verdicts(leaf, rep, parts)

    ok = all(r.ok for r in reports) and not any(n.witness == "loss" for n in nonfinite)
    blame = []
    if terms:
        value, a_leaves = autodiff()
        tgrads = _check_terms(value, terms, args, argnums, leaves, dtype)
        if not ok:
            residual = np.concatenate(
                [(h - a).ravel() for h, a in zip(h_leaves, a_leaves, strict=True)]
            )
            cols = {t: np.concatenate([g.ravel() for g in gs]) for t, gs in tgrads.items()}
            blame = _blame.blame(residual, cols)
            named = _blame.significant(blame)
            if named:
                verdicts.append(
                    "blame: the residual hand - autodiff is "
                    + ", ".join(
                        f"term {b.term!r} x {b.coef:.6g} ({b.explained:.1%})" for b in named
                    )
                    + " (a term whose hand gradient is off by a factor a has coef a - 1)"
                )
    if ok:
        how = "every element" if mode == "full" else f"{k} random directions per leaf"
        verdicts.insert(
            0,
            f"ok: {n_total} element(s) in {len(leaves)} leaf/leaves checked ({how}): hand equals "
            f"autodiff{', or lies in the subdifferential at kinks' if kinks else ''}"
            f"{' (remarks below)' if verdicts else ''}",
        )
    return GradReport(
        ok=bool(ok),
        mode="full" if mode == "full" else f"fast ({k} directions per leaf)",
        dtype=str(np.dtype(dtype)),
        rtol=rtol,
        atol=atol,
        hand_witness=hand.how,
        leaves=tuple(reports),
        kinks=tuple(kinks),
        nonfinite=tuple(nonfinite),
        blame=tuple(blame),
        verdicts=tuple(verdicts),
        fd_agree=(fd_agree[0], fd_agree[1]),
    )


def _fast_leaf(leaf, h, v, jvp, fd, k, scale, rtol, atol):
    """Directional check of one leaf; a LeafReport when it passes, None when it must go full.

    ``<hand, v>`` against the JVP with ``_compare`` eq. (1) summed along ``v``:
    ``|<hand - autodiff, v>| <= sum_i |v_i| (atol + rtol |hand_i|)``.
    """
    v = np.asarray(v, np.float64)
    hv = v @ h.ravel()
    a_tol = rtol * scale if atol is None else atol
    absv = np.abs(v)
    with np.errstate(all="ignore"):
        err = np.abs(hv - jvp)
        tol = absv @ (a_tol + rtol * np.abs(h.ravel()))
        rel = err / (absv @ (np.abs(h.ravel()) + scale))
        rel = np.where(err == 0, 0.0, rel)
    if np.all(err <= tol) and np.all(np.isfinite(hv)) and np.all(np.isfinite(jvp)):
        r, r_err = fd.richardson()
        agree = int(_compare.referee(r, r_err, jvp, 0.0, fd.eps).sum())
        rep = LeafReport(
            leaf.path, leaf.shape, True, _max(err), _max(rel), (), 0, f"{k} random directions"
        )
        return rep, agree
    return None


# ---- public -------------------------------------------------------------------------------------


def check_grad(
    loss: Callable[..., jax.Array],
    grad: Callable[..., Any],
    *args: Any,
    argnums: int | tuple[int, ...] = 0,
    terms: Mapping[str, Callable[..., jax.Array]] | None = None,
    term_grads: Mapping[str, Callable[..., Any]] | None = None,
    mode: str = "full",
    rtol: float | None = None,
    atol: float | None = None,
    key: jax.Array | int | None = None,
    directions: int = 4,
    n_worst: int = 5,
    memory_budget: int = DEFAULT_BUDGET,
) -> GradReport:
    r"""Check a hand gradient against ``jax.grad``, refereed by finite differences.

    Three witnesses per element: the hand gradient ``grad(*args)``, ``jax.grad(loss, argnums)``
    and central finite differences with Richardson extrapolation (``_witnesses`` eq. (2)). Hand
    and autodiff must agree to ``rtol`` (default :math:`2^{12}\varepsilon`, ``_compare`` eq. (1));
    finite differences say which one is wrong when they do not. At a kink (``_kinks`` eq. (2)) the
    hand value must lie in the subdifferential :math:`[\min(l, r), \max(l, r)]` instead.

    A float32 (or lower) input is checked twice: in its own dtype with ``rtol`` scaled to its
    epsilon, and as a float64 copy at the float64 tolerance; ``report.dtypes`` labels each
    verdict and ``report.float64_copy`` holds the second report. When ``jax_enable_x64`` is off
    (JAX's default), the check runs inside ``jax.enable_x64(True)`` to make that copy: inputs
    keep their dtype, but arrays the loss itself creates without a dtype become float64.

    Args:
      loss: ``loss(*args)`` returns a real scalar; traced by jax.
      grad: ``grad(*args)`` returns the gradient with respect to ``args[argnums]``, a pytree
        with the same structure and leaf shapes (never reshaped or broadcast). It may be numpy
        code jax cannot trace: it is then called eagerly on numpy copies, and the report says so.
      *args: the arguments of ``loss`` and ``grad`` (arrays and pytrees of arrays).
      argnums: which argument(s) to differentiate, as in ``jax.grad``.
      terms: ``{name: term(*args)}`` whose sum is ``loss`` (verified). When the check fails, the
        residual ``hand - autodiff`` is fitted on the term gradients (``report.blame``).
      term_grads: ``{name: hand gradient of terms[name]}``: each is checked on its own
        (``report.terms[name]``).
      mode: ``"full"`` checks every element; ``"fast"`` checks ``directions`` seeded random
        directions per leaf through JVPs and reruns a failing leaf in full to localize (kinks
        are only probed on the leaves rerun; a direction crossing a kink is judged by its JVP).
      rtol: relative tolerance (default :math:`2^{12}\varepsilon` of the dtype checked).
      atol: absolute tolerance (default ``rtol`` times the gradient's largest magnitude).
      key: PRNG key (or int seed) of the fast-mode directions; default 0.
      directions: directions per leaf in fast mode.
      n_worst: elements listed per leaf in ``report.leaves[i].worst``.
      memory_budget: bytes the finite differences may hold at once (sets the chunk size).

    Returns:
      A :class:`GradReport`: ``.ok``, ``str()`` a table, ``.to_dict()`` JSON-safe.

    Examples:
      >>> import jax.numpy as jnp, gradlab
      >>> loss = lambda w: jnp.sum(w ** 3)
      >>> gradlab.check_grad(loss, lambda w: 3 * w ** 2, jnp.arange(3.0)).ok
      True
    """
    if not jax.config.jax_enable_x64:
        # The float64 copy (and the float64 finite differences) need x64: turn it on for the
        # check only. Inputs keep their dtype; constants the loss creates become float64.
        with jax.enable_x64(True):
            return check_grad(
                loss,
                grad,
                *args,
                argnums=argnums,
                terms=terms,
                term_grads=term_grads,
                mode=mode,
                rtol=rtol,
                atol=atol,
                key=key,
                directions=directions,
                n_worst=n_worst,
                memory_budget=memory_budget,
            )
    if not callable(loss):
        raise TypeError(f"loss must be callable; got {type(loss).__name__}")
    if not callable(grad):
        raise TypeError(f"grad must be callable; got {type(grad).__name__}")
    if mode not in Modes:
        raise ValueError(f"mode must be one of {Modes}; got {mode!r}")
    if not isinstance(directions, int) or directions < 1:
        raise ValueError(f"directions must be a positive int; got {directions!r}")
    if not args:
        raise ValueError("check_grad needs the loss's arguments after loss and grad; got none")
    argnums = _tree.normalize_argnums(argnums, len(args))
    terms = _check_mapping("terms", terms)
    term_grads = _check_mapping("term_grads", term_grads)
    if term_grads and (not terms or set(term_grads) - set(terms)):
        raise ValueError(
            f"term_grads names {sorted(term_grads)} but terms names "
            f"{sorted(terms or {})}; every term gradient needs its term"
        )
    params = _tree.get_params(args, argnums)
    leaves = _tree.check_params(params, argnums)
    dtype = np.dtype(jnp.result_type(*[leaf.dtype for leaf in leaves]))
    key = _seed_of(key)

    wide = _witnesses.fd_dtype(dtype)
    fd_args = args if dtype == wide else _tree.cast_floating(args, wide)
    fd_cache: dict[int, Any] = {}
    common = dict(
        mode=mode,
        atol=atol,
        key=key,
        k=directions,
        terms=terms,
        fd_args=fd_args,
        fd_cache=fd_cache,
        n_worst=n_worst,
        budget=memory_budget,
    )
    user_rtol = _compare.default_rtol(dtype) if rtol is None else float(rtol)
    report = _check_one(loss, grad, args, argnums, leaves, rtol=user_rtol, dtype=dtype, **common)
    sub = {}
    for name, tg in (term_grads or {}).items():
        sub[name] = check_grad(
            terms[name],
            tg,
            *args,
            argnums=argnums,
            mode=mode,
            rtol=rtol,
            atol=atol,
            key=key,
            directions=directions,
            n_worst=n_worst,
            memory_budget=memory_budget,
        )
    ok = report.ok and all(r.ok for r in sub.values())
    if dtype == wide:
        return _replace(report, ok=ok, terms=sub)

    wide_leaves = _tree.describe(_tree.get_params(fd_args, argnums), argnums)
    copy = _check_one(
        loss,
        grad,
        fd_args,
        argnums,
        wide_leaves,
        rtol=_compare.default_rtol(wide),
        dtype=wide,
        **common,
    )
    dtypes = (
        DtypeVerdict(f"{dtype} (your dtype, rtol {user_rtol:.2g})", report.ok, report.verdicts[0]),
        DtypeVerdict(f"float64 copy (rtol {copy.rtol:.2g})", copy.ok, copy.verdicts[0]),
    )
    if copy.ok and not report.ok:
        summary = (
            f"precision, not derivation: the float64 copy passes but {dtype} does not "
            f"at rtol {user_rtol:.2g}; the formula loses accuracy in {dtype}"
        )
    elif not copy.ok:
        summary = "derivation error: the float64 copy fails too, so it is not a precision issue"
    else:
        summary = f"ok in {dtype} and in the float64 copy"
    return _replace(
        report,
        ok=ok and copy.ok,
        terms=sub,
        dtypes=dtypes,
        float64_copy=copy,
        verdicts=(summary, *report.verdicts),
    )


def _replace(report: GradReport, **kw) -> GradReport:
    import dataclasses

    return dataclasses.replace(report, **kw)


def _seed_of(key) -> tuple[int, ...]:
    """Seed words for numpy's generator from ``None`` (0), an int or a jax PRNG key."""
    if key is None:
        return (0,)
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return (int(key),)
    if isinstance(key, tuple) and all(isinstance(w, int) for w in key):
        return key
    if isinstance(key, jax.Array):
        data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
        return tuple(int(w) for w in np.asarray(data, np.uint64).ravel())
    raise TypeError(f"key must be None, an int or a jax PRNG key; got {type(key).__name__}")


def _check_mapping(name, m):
    if m is None:
        return None
    if not isinstance(m, Mapping):
        raise TypeError(f"{name} must be a mapping {{name: callable}}; got {type(m).__name__}")
    for k, f in m.items():
        if not isinstance(k, str) or not callable(f):
            raise TypeError(f"{name} must map names (str) to callables; got {k!r}: {f!r}")
    return dict(m)


def assert_grad(loss, grad, *args, **kwargs) -> GradReport:
    """:func:`check_grad`, raising :class:`GradientMismatch` (message: the report) unless ok.

    Returns:
      The report, when it is ok.
    """
    report = check_grad(loss, grad, *args, **kwargs)
    if not report.ok:
        raise GradientMismatch(report)
    return report
