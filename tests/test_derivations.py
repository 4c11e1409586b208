"""Every registered derivation against jax's autodiff: gradient, Hessian, HVP, terms and kinks.

The harness is generic: it iterates over ``REGISTRY``, so a new derivation is covered by adding
its registry line. For each derivation and each of its ``shapes`` it builds ``N_SEEDS`` random
examples with ``make_args`` (``vmap`` over keys, so hyperparameters such as ``lam`` vary too) and
compiles ONE ``jit(vmap(...))`` function that returns every witness at once: the hand gradient
and ``jax.grad``; the hand Hessian and ``jax.hessian``; the hand HVP and forward-over-reverse
(``jvp`` of ``grad``); the terms, their sum and their hand and autodiff gradients.

Tolerance (:func:`mismatches`): a leaf passes when, element by element,
``|hand - auto| <= rtol * (|auto| + max|auto|)``, the max taken over that leaf of that example.
The ``rtol * max|auto|`` part is an absolute tolerance scaled to the gradient's magnitude: an
entry that cancels to nearly 0 (``sum_i r_i X_ij`` of mixed signs) carries rounding error of the
size of its largest terms, not of itself, so a pure relative test would fail for a right
derivation. ``RTOL64 = 1e-12`` in float64 and ``RTOL32 = 2**8 * eps(float32) ~ 3e-5`` in
float32 (rounding grows with the length of the sums). Observed worst scaled errors over the
registry on 2026-11-23: 3.9e-15 in float64 and 3.4e-6 in float32 (both the stable logistic
mixture), so each bound has a margin of ~10-250x; a wrong factor of ``1 + 1e-9`` still fails in
float64 (``test_planted_*``) and one of ``1.001`` in float32.

Coverage per derivation: the gradient, HVP and terms at every shape in float64; the dense
Hessian (the costliest witness to compile) at the first shape; float32 at the last shape (the
longest sums); the planted copy at the first shape.

Kinks (``kinks=True``): the examples of ``make_args`` hold no kink almost surely (equality is
tested there); at a kink (``kink_args`` puts entries exactly at 0) the hand subgradient must lie in
the module's subdifferential box, and the box itself is checked against one-sided derivatives
(``jax.grad`` at the kink shifted by +-1e-30), which assumes kinks at 0 of separable terms (true of
the L1 penalty and the elastic net). Everything runs under strict dtype promotion.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradlab.derivations import REGISTRY, Derivation, elastic_net, entropy, l1, logistic_regression

N_SEEDS = 5
KEY_IMPL = "unsafe_rbg"  # cheap to compile; the examples need no cryptographic quality
ALL_PARTS = ("grad", "loss", "hessian", "hvp", "terms")
NO_HESSIAN = ("grad", "loss", "hvp", "terms")
PLANT = 1.0 + 1e-9  # the wrong factor planted in a copy of every derivation
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
RTOL64 = 1e-12
RTOL32 = 2.0**8 * float(np.finfo(np.float32).eps)
ROOT = Path(__file__).resolve().parents[1]

# Kinked derivations: (kink_args, subdifferential) -- a kinked entry without one here fails
# test_every_kinked_derivation_has_a_kink_check.
KINKS = {
    "l1": (l1.kink_args, l1.l1_subdifferential),
    "elastic_net": (elastic_net.kink_args, elastic_net.elastic_net_subdifferential),
}

CASES = [
    pytest.param(name, shape, id=f"{name}-{'x'.join(map(str, shape))}")
    for name, d in REGISTRY.items()
    for shape in d.shapes
]
# The dense autodiff Hessian (jacfwd of grad) is the costliest witness to compile: it is
# compared at the first shape; the HVP, which exercises the same Hessian, at every shape.
HESSIAN_CASES = [
    c
    for c in CASES
    if REGISTRY[c.values[0]].hessian is not None and c.values[1] == REGISTRY[c.values[0]].shapes[0]
]
HVP_CASES = [c for c in CASES if REGISTRY[c.values[0]].hvp is not None]
LAST_SHAPE_CASES = [c for c in CASES if c.values[1] == REGISTRY[c.values[0]].shapes[-1]]
TERM_CASES = [c for c in CASES if REGISTRY[c.values[0]].terms is not None]
KINK_CASES = [c for c in CASES if REGISTRY[c.values[0]].kinks]
FIRST_SHAPE = [pytest.param(name, id=name) for name in REGISTRY]


# ---- the comparison function --------------------------------------------------------------------


def mismatches(hand, auto, *, rtol: float, batched: bool = True) -> list[str]:
    """What differs between ``hand`` and ``auto`` (empty when they agree); see the module doc.

    Structure, shapes, dtypes and finiteness must match exactly; values within
    ``rtol * (|auto| + max|auto|)``, the max over each leaf of each example (axis 0 is the batch
    of examples when ``batched``).
    """
    hand_leaves, hand_def = jax.tree.flatten_with_path(hand)
    auto_leaves, auto_def = jax.tree.flatten_with_path(auto)
    if hand_def != auto_def:
        return [f"tree structure: hand {hand_def} vs autodiff {auto_def}"]
    problems = []
    for (path, h), (_, a) in zip(hand_leaves, auto_leaves, strict=True):
        where = jax.tree_util.keystr(path) or "<root>"
        h, a = np.asarray(h), np.asarray(a)
        if h.shape != a.shape or h.dtype != a.dtype:
            problems.append(f"{where}: hand {h.dtype}{h.shape} vs autodiff {a.dtype}{a.shape}")
            continue
        if not np.all(np.isfinite(h)):
            problems.append(f"{where}: hand value has {int((~np.isfinite(h)).sum())} non-finite")
            continue
        axes = tuple(range(1 if batched else 0, a.ndim))
        scale = np.max(np.abs(a), axis=axes, keepdims=True) if axes else np.abs(a)
        err = np.abs(h.astype(np.float64) - a)
        tol = rtol * (np.abs(a) + scale)
        bad = err > tol
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            worst = float(np.max(err / np.where(tol > 0, tol / rtol, 1.0)))
            problems.append(
                f"{where}: {int(bad.sum())} of {bad.size} entries differ, first at {idx}: hand "
                f"{h[idx]!r} vs autodiff {a[idx]!r}; worst scaled error {worst:.3g} > rtol {rtol:g}"
            )
    return problems


def assert_close(hand, auto, *, rtol: float, what: str, batched: bool = True) -> None:
    problems = mismatches(hand, auto, rtol=rtol, batched=batched)
    assert not problems, f"{what}:\n  " + "\n  ".join(problems)


# ---- witnesses: one jit(vmap) per derivation, shape and dtype -----------------------------------


def _replace_params(args, argnums, params):
    return (*args[:argnums], params, *args[argnums + 1 :])


def _keys(seed: int = 0):
    return jax.random.split(jax.random.key(seed, impl=KEY_IMPL), N_SEEDS)


def _stack(trees):
    return jax.tree.map(lambda *a: np.stack([np.asarray(x) for x in a]), *trees)


def _cast(tree, dtype):
    """Floating leaves to ``dtype``; integer leaves (data) unchanged."""
    return jax.tree.map(
        lambda a: a.astype(dtype) if np.issubdtype(a.dtype, np.floating) else a, tree
    )


@functools.cache
def examples(name: str, shape: tuple[int, ...], kink: bool = False):
    """``N_SEEDS`` float64 examples stacked on axis 0, and a tangent for each (the params of the
    next example), as numpy.

    Made eagerly, one key at a time: eager calls share ``jax.random``'s per-shape compilations
    across derivations and seeds, where a ``jit(vmap(make_args))`` per derivation would compile
    the random number generator each time (seconds each). The float32 examples are these, cast.
    """
    d = REGISTRY[name]
    make = KINKS[name][0] if kink else d.make_args
    with jax.numpy_dtype_promotion("strict"):
        args = _stack([make(k, tuple(shape), jnp.float64) for k in _keys()])
    tangent = jax.tree.map(lambda a: np.roll(a, 1, axis=0), args[d.argnums])
    return args, tangent


def _witnesses(d: Derivation, parts: tuple[str, ...]):
    """Every witness in ``parts`` for one example (traced under ``vmap``)."""
    i = d.argnums

    def one(args, tangent):
        auto_grad_fn = jax.grad(d.loss, i)
        out = {}
        if "grad" in parts:
            out["hand_grad"] = d.grad(*args)
            out["auto_grad"] = auto_grad_fn(*args)
        if "loss" in parts:
            out["loss"] = d.loss(*args)
        if "hessian" in parts and d.hessian is not None:
            out["hand_hessian"] = d.hessian(*args)
            out["auto_hessian"] = jax.hessian(d.loss, i)(*args)
        if "hvp" in parts and d.hvp is not None:
            out["hand_hvp"] = d.hvp(*args, tangent)
            g = lambda p: auto_grad_fn(*_replace_params(args, i, p))
            out["auto_hvp"] = jax.jvp(g, (args[i],), (tangent,))[1]  # forward-over-reverse
        if "terms" in parts and d.terms is not None:
            out["terms"] = {k: t(*args) for k, t in d.terms.items()}
            out["hand_term_grads"] = {k: g(*args) for k, g in d.term_grads.items()}
            out["auto_term_grads"] = {k: jax.grad(t, i)(*args) for k, t in d.terms.items()}
        return out

    return one


def _run(fn, *args):
    """``jit(vmap(fn))(*args)`` under strict dtype promotion, compiled with XLA's backend
    optimizations off: the examples are tiny, so compile time is what costs (~1/3 less)."""
    with jax.numpy_dtype_promotion("strict"):
        lowered = jax.jit(jax.vmap(fn)).lower(*args)
        compiled = lowered.compile(compiler_options=FAST_COMPILE)
        return jax.device_get(compiled(*args))


def evaluate(d: Derivation, shape, dtype, parts=ALL_PARTS, name=None):
    """``(args, witnesses)`` for the ``N_SEEDS`` examples of ``name`` (default ``d.name``)."""
    args, tangent = examples(d.name if name is None else name, tuple(shape))
    args, tangent = _cast(args, dtype), _cast(tangent, dtype)
    return args, _run(_witnesses(d, tuple(parts)), args, tangent)


@functools.cache
def _results(name: str, shape: tuple[int, ...]):
    """ONE compilation per derivation and shape: every float64 witness (the dense Hessian at the
    first shape only); at the first shape, the gradient of a copy of the derivation with a
    planted bug (``PLANT``, see ``test_planted_wrong_gradient_is_caught``); at the last shape
    (the longest sums, the most rounding), the float32 gradient and loss of the same examples
    cast to float32 inside the compiled function."""
    d = REGISTRY[name]
    args, tangent = examples(name, shape)
    first, last = shape == tuple(d.shapes[0]), shape == tuple(d.shapes[-1])
    w64 = _witnesses(d, ALL_PARTS if first else NO_HESSIAN)
    w32 = _witnesses(d, ("grad", "loss"))
    planted = _witnesses(dataclasses.replace(d, grad=_plant(d.grad, PLANT)), ("grad",))

    def both(args, tangent):
        low = lambda t: _cast(t, jnp.float32)
        out = {"float64": w64(args, tangent)}
        if first:
            out["planted"] = planted(args, tangent)
        if last:
            out["float32"] = w32(low(args), low(tangent))
        return out

    return args, _run(both, args, tangent)


def results(name: str, shape: tuple[int, ...], dtype_name: str):
    """``(args, witnesses)`` of ``name`` at ``shape`` in ``dtype_name`` (or ``"planted"``)."""
    args, out = _results(name, tuple(shape))
    dtype = jnp.float32 if dtype_name == "float32" else jnp.float64
    return _cast(args, dtype), out[dtype_name]


# ---- the contract -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FIRST_SHAPE)
def test_record_is_complete(name):
    d = REGISTRY[name]
    assert d.name == name
    assert len(d.shapes) >= 2, "tests need at least two shapes"
    assert (d.terms is None) == (d.term_grads is None)
    if d.terms is not None:
        assert set(d.terms) == set(d.term_grads)
    if d.note is not None:
        assert (ROOT / d.note).is_file(), f"{name}: note {d.note} does not exist"
    # make_args honours dtype (traced only: eval_shape compiles nothing); the float32 examples
    # the tests use are the float64 ones cast, see ``examples``.
    for dtype in (jnp.float32, jnp.float64):
        make = lambda k, dt=dtype: d.make_args(k, d.shapes[0], dt)
        out = jax.eval_shape(make, jax.random.key(0))
        floats = {a.dtype for a in jax.tree.leaves(out) if jnp.issubdtype(a.dtype, jnp.floating)}
        assert floats == {jnp.dtype(dtype)}, f"{name}: make_args(..., {dtype}) gave {floats}"


def test_every_kinked_derivation_has_a_kink_check():
    kinked = {name for name, d in REGISTRY.items() if d.kinks}
    assert kinked <= set(KINKS), f"add kink_args/subdifferential to KINKS for {kinked - set(KINKS)}"


# ---- gradient, float64, jit(vmap) over seeds and hyperparameters --------------------------------


@pytest.mark.parametrize("name,shape", CASES)
def test_grad_matches_autodiff_float64(name, shape):
    _, out = results(name, shape, "float64")
    assert_close(out["hand_grad"], out["auto_grad"], rtol=RTOL64, what=f"{name} gradient")


@pytest.mark.parametrize("name,shape", LAST_SHAPE_CASES)
def test_grad_matches_autodiff_float32(name, shape):
    args, out = results(name, shape, "float32")
    assert_close(out["hand_grad"], out["auto_grad"], rtol=RTOL32, what=f"{name} float32 gradient")
    dtypes = {leaf.dtype for leaf in jax.tree.leaves(out["hand_grad"])}
    assert dtypes == {np.dtype(np.float32)}, f"float32 in, {dtypes} out"
    assert np.asarray(out["loss"]).dtype == np.float32


@pytest.mark.parametrize("name", FIRST_SHAPE)
def test_grad_eager_matches_jit(name):
    """The hand gradient outside any transform (concrete values, so the value checks run too)
    equals its jit(vmap) value and autodiff's, seed 0."""
    d = REGISTRY[name]
    args, out = results(name, d.shapes[0], "float64")
    first = lambda tree: jax.tree.map(lambda a: a[0], tree)
    with jax.numpy_dtype_promotion("strict"):
        hand = d.grad(*first(args))
    assert_close(hand, first(out["auto_grad"]), rtol=RTOL64, what=f"{name} eager", batched=False)
    assert_close(
        hand, first(out["hand_grad"]), rtol=RTOL64, what=f"{name} eager vs jit(vmap)", batched=False
    )


# ---- Hessian and HVP ----------------------------------------------------------------------------


@pytest.mark.parametrize("name,shape", HESSIAN_CASES)
def test_hessian_matches_autodiff(name, shape):
    _, out = results(name, shape, "float64")
    assert_close(out["hand_hessian"], out["auto_hessian"], rtol=RTOL64, what=f"{name} Hessian")


@pytest.mark.parametrize("name,shape", HVP_CASES)
def test_hvp_matches_forward_over_reverse(name, shape):
    _, out = results(name, shape, "float64")
    assert_close(out["hand_hvp"], out["auto_hvp"], rtol=RTOL64, what=f"{name} HVP")


# ---- named terms --------------------------------------------------------------------------------


@pytest.mark.parametrize("name,shape", TERM_CASES)
def test_terms_sum_to_loss(name, shape):
    _, out = results(name, shape, "float64")
    terms = out["terms"]
    total = sum(np.asarray(t) for t in terms.values())
    scale = np.abs(out["loss"]) + sum(np.abs(np.asarray(t)) for t in terms.values())
    np.testing.assert_array_less(np.abs(total - out["loss"]), RTOL64 * scale + 1e-300)


@pytest.mark.parametrize("name,shape", TERM_CASES)
def test_term_grads_match_autodiff(name, shape):
    _, out = results(name, shape, "float64")
    for term in out["terms"]:
        assert_close(
            out["hand_term_grads"][term],
            out["auto_term_grads"][term],
            rtol=RTOL64,
            what=f"{name} term {term!r} gradient",
        )
    summed = jax.tree.map(lambda *gs: sum(gs), *out["hand_term_grads"].values())
    assert_close(summed, out["hand_grad"], rtol=RTOL64, what=f"{name} sum of term gradients")


# ---- kinks --------------------------------------------------------------------------------------


def _shift_kinks(params, delta):
    return jax.tree.map(lambda p: jnp.where(p == 0, jnp.asarray(delta, p.dtype), p), params)


def outside_box(g, low, high) -> list[str]:
    """Leaves of ``g`` with an entry outside ``[low, high]`` (slack ``RTOL64`` times the box's
    magnitude); empty when ``g`` is in the subdifferential box."""
    problems = []
    for (path, h), lo, hi in zip(
        jax.tree.leaves_with_path(g), jax.tree.leaves(low), jax.tree.leaves(high), strict=True
    ):
        slack = RTOL64 * np.max(np.abs(np.stack([lo, hi])), axis=0)
        out = (h < lo - slack) | (h > hi + slack)
        if out.any():
            idx = tuple(int(k) for k in np.argwhere(out)[0])
            problems.append(
                f"{jax.tree_util.keystr(path)}: {int(out.sum())} outside, first at {idx}: "
                f"{h[idx]!r} not in [{lo[idx]!r}, {hi[idx]!r}]"
            )
    return problems


@functools.cache
def kink_results(name: str, shape: tuple[int, ...]):
    """At examples on the kink: the params, hand subgradient, the box ``(low, high)`` and
    autodiff's gradients just left and right of the kink (entries at 0 moved to -+1e-30)."""
    d = REGISTRY[name]
    subdifferential = KINKS[name][1]
    i = d.argnums
    args, _ = examples(name, tuple(shape), kink=True)

    def one(args):
        auto = jax.grad(d.loss, i)
        right = auto(*_replace_params(args, i, _shift_kinks(args[i], 1e-30)))
        left = auto(*_replace_params(args, i, _shift_kinks(args[i], -1e-30)))
        return args[i], d.grad(*args), subdifferential(*args), left, right

    return _run(one, args)


@pytest.mark.parametrize("name,shape", KINK_CASES)
def test_subgradient_at_kink_is_in_subdifferential(name, shape):
    params, hand, (low, high), left, right = kink_results(name, tuple(shape))
    n_kinks = sum(int(np.sum(p == 0)) for p in jax.tree.leaves(params))
    assert n_kinks >= N_SEEDS, "kink_args must put entries on the kink"
    # The box is the one the one-sided derivatives span (a wrong box would make membership moot).
    assert_close(low, left, rtol=RTOL64, what=f"{name} subdifferential low end")
    assert_close(high, right, rtol=RTOL64, what=f"{name} subdifferential high end")
    problems = outside_box(hand, low, high)
    assert not problems, f"{name} hand subgradient at the kink:\n  " + "\n  ".join(problems)


# ---- the harness can fail: planted bugs in copies -----------------------------------------------


def _plant(fn, factor):
    """A copy of ``fn`` whose largest output leaf is multiplied by ``factor``."""

    def wrong(*args):
        out = fn(*args)
        leaves, treedef = jax.tree.flatten(out)
        k = max(range(len(leaves)), key=lambda j: leaves[j].size)
        leaves[k] = leaves[k] * factor
        return jax.tree.unflatten(treedef, leaves)

    return wrong


@pytest.mark.parametrize("name", FIRST_SHAPE)
def test_planted_wrong_gradient_is_caught(name):
    """A factor 1 + 1e-9 in a copy (far subtler than the seeds' factor-2 slips) is flagged.

    The copy, ``dataclasses.replace(d, grad=_plant(d.grad, PLANT))``, is evaluated by the same
    pipeline inside the shared compilation of ``_results``."""
    d = REGISTRY[name]
    _, out = results(name, d.shapes[0], "planted")
    assert mismatches(out["hand_grad"], out["auto_grad"], rtol=RTOL64), "planted bug not caught"
    # the unplanted record passes the same comparison (so the catch is the plant's doing)
    _, ok = results(name, d.shapes[0], "float64")
    assert not mismatches(ok["hand_grad"], ok["auto_grad"], rtol=RTOL64)


def test_planted_factor_two_is_caught():
    """Seed 001's slip: the half-mean loss with the mean convention's gradient (2/n, not 1/n)."""
    d = REGISTRY["mse_half_mean"]
    wrong = dataclasses.replace(d, grad=REGISTRY["mse_mean"].grad)
    _, out = evaluate(wrong, d.shapes[0], jnp.float64, parts=("grad",))
    problems = mismatches(out["hand_grad"], out["auto_grad"], rtol=RTOL64)
    assert len(problems) == 2, problems  # both "w" and "b"


def test_planted_wrong_factor_float32_is_caught():
    d = REGISTRY["elastic_net"]
    wrong = dataclasses.replace(d, grad=_plant(d.grad, 1.001))
    _, out = evaluate(wrong, d.shapes[0], jnp.float32, parts=("grad",))
    assert mismatches(out["hand_grad"], out["auto_grad"], rtol=RTOL32)


def test_planted_wrong_hessian_hvp_and_term_are_caught():
    d = REGISTRY["elastic_net"]
    wrong = dataclasses.replace(
        d,
        hessian=_plant(d.hessian, 1 + 1e-9),
        hvp=_plant(d.hvp, 1 + 1e-9),
        term_grads={**d.term_grads, "l2": _plant(d.term_grads["l2"], 2.0)},
    )
    _, out = evaluate(wrong, d.shapes[0], jnp.float64, parts=("hessian", "hvp", "terms"))
    assert mismatches(out["hand_hessian"], out["auto_hessian"], rtol=RTOL64)
    assert mismatches(out["hand_hvp"], out["auto_hvp"], rtol=RTOL64)
    t = out["hand_term_grads"], out["auto_term_grads"]
    assert mismatches(t[0]["l2"], t[1]["l2"], rtol=RTOL64)
    assert not mismatches(t[0]["mse"], t[1]["mse"], rtol=RTOL64)


def test_comparison_flags_structure_shape_dtype_and_nonfinite():
    g = {"w": np.ones((2, 3)), "b": np.ones(2)}
    assert mismatches({"w": g["w"]}, g, rtol=RTOL64)
    assert mismatches({"w": g["w"][:, :2], "b": g["b"]}, g, rtol=RTOL64)
    assert mismatches({"w": g["w"].astype(np.float32), "b": g["b"]}, g, rtol=RTOL64)
    assert mismatches({"w": g["w"], "b": np.array([1.0, np.inf])}, g, rtol=RTOL64)
    assert not mismatches(g, g, rtol=RTOL64)


@pytest.mark.parametrize("name", sorted(KINKS))
def test_wrong_subgradient_at_kink_is_caught(name):
    """A subgradient pushed past the box's high end at the kinks (as ``sign(0) := 2`` would)
    is flagged by the membership check."""
    d = REGISTRY[name]
    params, hand, (low, high), _, _ = kink_results(name, tuple(d.shapes[0]))
    bad = jax.tree.map(lambda h, lo, hi: np.where(lo < hi, hi + (hi - lo) / 2, h), hand, low, high)
    assert outside_box(bad, low, high)
    assert not outside_box(hand, low, high)


# ---- outside oracles ---------------------------------------------------------------------------


def test_elastic_net_is_sklearn_scaling():
    """0 is in the subdifferential (6) at scikit-learn's ElasticNet solution with
    ``lam1 = alpha * l1_ratio``, ``lam2 = alpha * (1 - l1_ratio)``: same objective (1)."""
    sklearn = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 8))
    y = X @ np.r_[2.0, -1.0, np.zeros(6)] + 0.3 + 0.1 * rng.normal(size=60)
    alpha, ratio = 0.2, 0.7
    fit = sklearn.ElasticNet(alpha=alpha, l1_ratio=ratio, tol=1e-14, max_iter=100_000).fit(X, y)
    assert np.sum(fit.coef_ == 0) >= 2, "the oracle should sit on kinks"
    params = {"w": jnp.asarray(fit.coef_), "b": jnp.asarray(fit.intercept_)}
    lam1, lam2 = jnp.asarray(alpha * ratio), jnp.asarray(alpha * (1 - ratio))
    low, high = elastic_net.elastic_net_subdifferential(params, X, y, lam1, lam2)
    assert not outside_box(jax.tree.map(jnp.zeros_like, low), *_widen(low, high, 1e-8))
    # and a wrong scaling (seed 001's code: lam2 ||w||^2, i.e. twice the l2 weight) is not optimal
    low2, high2 = elastic_net.elastic_net_subdifferential(params, X, y, lam1, 2 * lam2)
    assert outside_box(jax.tree.map(jnp.zeros_like, low2), *_widen(low2, high2, 1e-8))


def test_logistic_regression_gradient_vanishes_at_sklearn_optimum():
    sklearn = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4))
    y = (rng.random(200) < 1 / (1 + np.exp(-(X @ np.r_[1.0, -2.0, 0.5, 0.0] + 0.3)))).astype(float)
    fit = sklearn.LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, y)
    params = {"w": jnp.asarray(fit.coef_[0]), "b": jnp.asarray(fit.intercept_[0])}
    g = logistic_regression.logistic_regression_grad(params, X, y)
    assert max(float(jnp.max(jnp.abs(leaf))) for leaf in jax.tree.leaves(g)) < 1e-7


def _widen(low, high, tol):
    return jax.tree.map(lambda a: a - tol, low), jax.tree.map(lambda a: a + tol, high)


def test_seed000_sign_concentrates_and_maxent_spreads():
    """Seed 000's own mirror step on its objective (4) lowers the entropy (its sign rewards
    concentration, against its stated aim); on (7), ``mirage_maxent``, the step raises it."""
    theta = np.array([0.5, 0.3, 0.15, 0.05])
    X, y = np.zeros((3, 4)), np.zeros(3)  # data term 0: only the entropy term moves theta

    def mirror_step(grad_fn):
        g = np.asarray(grad_fn({"theta": jnp.asarray(theta)}, X, y, jnp.asarray(1.0))["theta"])
        new = theta * np.exp(-0.5 * g)  # seed 000, section 4
        return new / new.sum()

    H = lambda t: float(-np.sum(t * np.log(t)))
    assert H(mirror_step(entropy.mirage_grad)) < H(theta) - 1e-3
    assert H(mirror_step(entropy.mirage_maxent_grad)) > H(theta) + 1e-3
