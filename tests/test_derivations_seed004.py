"""Seed 004 beyond the generic harness: the seed's own numbers and formulas, extreme parameters,
edge bins, the two parametrizations, and bad input.

The generic ``tests/test_derivations.py`` checks every registered entry (hand vs ``jax.grad``
under ``jit(vmap)``, float32, Hessian/HVP). Here: what only seed 004 has. The literal seed
formulas are coded in numpy (``_seed_*``) to show where they agree and where they break.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradlab.derivations import logistic_mixture as lm
from gradlab.derivations import logistic_mixture_stable as ls
from gradlab.derivations import softmax_nll as sn

RTOL = 1e-12


def _close(hand, auto, rtol=RTOL, atol=0.0):
    """Leafwise ``|hand - auto| <= rtol (|auto| + max|auto|) + atol`` (the harness's tolerance;
    ``atol`` only where a whole leaf is ~0, e.g. ``pi - mean(r)`` at a one-hot ``pi``)."""
    for k in auto:
        h, a = np.asarray(hand[k]), np.asarray(auto[k])
        assert h.shape == a.shape and h.dtype == a.dtype, k
        assert np.all(np.isfinite(h)), f"{k}: hand gradient not finite: {h}"
        np.testing.assert_array_less(
            np.abs(h - a), rtol * (np.abs(a) + np.max(np.abs(a))) + atol + 1e-300
        )


@functools.cache
def jit(f):
    """One compiled copy per function, shared by the tests (value checks run only eagerly)."""
    return jax.jit(f)


@functools.cache
def jgrad(f):
    return jax.jit(jax.grad(f))


def _finite(tree) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(leaf)))) for leaf in jax.tree.leaves(tree))


# ---- literal seed 004 in numpy ------------------------------------------------------------------


def _sig(z):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def _seed_softmax(theta):
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp(theta) / np.sum(np.exp(theta))  # the seed's probs


def _seed_mixture(params, x):
    """Seed eqs. (2)-(4) coded as written: loss and the three 'Dérivées partielles'."""
    mu, s, pi = (np.asarray(params[k])[None, :] for k in ("mu", "s", "pi"))
    x = np.asarray(x, np.float64)[:, None]
    a, b = (x + 0.5 - mu) / s, (x - 0.5 - mu) / s  # alpha, beta
    dsig = lambda z: _sig(z) * (1 - _sig(z))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.sum(pi * (_sig(a) - _sig(b)), axis=1, keepdims=True)  # (2)
        loss = -np.mean(np.log(p))  # (3)
        n = x.shape[0]
        g_mu = -np.sum(pi / p * (dsig(a) * (-1 / s) - dsig(b) * (-1 / s)), axis=0) / n
        g_s = -np.sum(pi / p * (dsig(a) * (-a / s) - dsig(b) * (-b / s)), axis=0) / n
        g_pi = -np.sum((_sig(a) - _sig(b)) / p, axis=0) / n
        # the seed's "forme générale" with d alpha / d pi = d beta / d pi = 1:
        g_pi_general = -np.sum(pi / p * (dsig(a) - dsig(b)), axis=0) / n
    return loss, {"mu": g_mu, "s": g_s, "pi": g_pi}, g_pi_general


SEED_PARAMS = {  # the seed's initialisation: mu in [0, d-1], s = exp(U(0,1)), pi = 1/K
    "mu": jnp.array([7.61667106, 1.50266247, 12.50647138, 13.26991431]),
    "s": jnp.exp(jnp.array([0.3, 0.9, 0.1, 0.6])),
    "pi": jnp.full((4,), 0.25),
}
SEED_X = jnp.array([0, 3, 7, 7, 8, 12, 13, 19, 1, 14], dtype=jnp.int32)
SEED_D = jnp.array(20, jnp.int32)

# ---- part (a): softmax NLL ----------------------------------------------------------------------


def test_softmax_seed_numbers():
    params, x = {"theta": jnp.array([0.5, 1.0, -0.5])}, jnp.array([0, 2, 1, 1])
    assert float(sn.softmax_nll(params, x)) == pytest.approx(1.1041306053367284, rel=1e-15)
    np.testing.assert_allclose(
        jnp.exp(sn.log_probs(params["theta"])), [0.33149896, 0.54654939, 0.12195165], atol=5e-9
    )
    p = _seed_softmax(np.array([0.5, 1.0, -0.5]))
    seed_grad = -np.mean(np.eye(3)[np.asarray(x)] - p, axis=0)  # -(1/N) sum (e_x - p), eq. (3)
    np.testing.assert_allclose(sn.softmax_nll_grad(params, x)["theta"], seed_grad, rtol=1e-14)
    _close(jit(sn.softmax_nll_grad)(params, x), jgrad(sn.softmax_nll)(params, x))


def test_softmax_gradient_vanishes_at_the_histogram():
    x = jnp.array([0, 1, 1, 2, 2, 2, 3, 3, 3, 3])
    theta = jnp.log(jnp.array([1.0, 2.0, 3.0, 4.0]) / 10.0) + 7.0  # any shift: eq. (3) is 0
    g = jit(sn.softmax_nll_grad)({"theta": theta}, x)["theta"]
    np.testing.assert_allclose(g, 0.0, atol=1e-15)
    assert float(jnp.sum(sn.softmax_nll_grad({"theta": theta * 0.5}, x)["theta"])) == (
        pytest.approx(0.0, abs=1e-15)
    )


def test_softmax_hessian_is_psd_with_constant_null_direction():
    params, x = sn.make_args(jax.random.key(3), (30, 6), jnp.float64)
    h = jit(sn.softmax_nll_hessian)(params, x)["theta"]["theta"]
    assert float(jnp.min(jnp.linalg.eigvalsh(h))) > -1e-15
    np.testing.assert_allclose(h @ jnp.ones(6), 0.0, atol=1e-15)
    np.testing.assert_allclose(
        jit(sn.softmax_nll_hvp)(params, x, {"theta": jnp.arange(6.0)})["theta"], h @ jnp.arange(6.0)
    )


def test_softmax_unobserved_class_is_fine():
    """The seed's ``assert len(np.unique(data)) == len(probs)`` rejects this legitimate data."""
    params, x = {"theta": jnp.array([0.2, -0.1, 0.4])}, jnp.array([0, 0, 2])
    assert len(np.unique(np.asarray(x))) != 3
    g = jit(sn.softmax_nll_grad)(params, x)["theta"]
    assert float(g[1]) == pytest.approx(float(jnp.exp(sn.log_probs(params["theta"]))[1]))
    _close(jit(sn.softmax_nll_grad)(params, x), jgrad(sn.softmax_nll)(params, x))


@pytest.mark.parametrize(
    "theta, x, value",
    [
        ([1000.0, 0.0, -1000.0], [0, 1, 2], 1000.0),  # seed: exp overflows, inf/inf = nan
        ([0.0, -800.0], [1, 0], 400.0),  # seed: p = 0 underflows, log 0 = -inf
    ],
)
def test_softmax_seed_formula_overflows_where_log_space_does_not(theta, x, value):
    seed_p = _seed_softmax(np.array(theta))
    with np.errstate(divide="ignore"):
        seed_loss = -np.mean(np.log(seed_p[np.array(x)]))
    assert not np.isfinite(seed_loss)
    params, x = {"theta": jnp.array(theta)}, jnp.array(x)
    assert float(sn.softmax_nll(params, x)) == pytest.approx(value, rel=1e-15)
    assert _finite(sn.softmax_nll_grad(params, x))
    _close(jit(sn.softmax_nll_grad)(params, x), jgrad(sn.softmax_nll)(params, x))
    # float32 overflows the seed's exp already at 89
    p32 = {"theta": jnp.array([100.0, 0.0], jnp.float32)}
    assert np.isnan(_seed_softmax(np.array([100.0, 0.0], np.float32))[0])
    assert float(sn.softmax_nll(p32, jnp.array([1]))) == pytest.approx(100.0, rel=1e-7)


def test_seed_exact_float_asserts_are_fragile():
    """``np.sum(probs) == 1.0`` fails for ordinary logits; the sum is 1 to within an ulp."""
    total = np.sum(_seed_softmax(np.array([0.1, 0.2, 0.3])))
    assert total != 1.0 and abs(total - 1.0) <= 2 * np.finfo(np.float64).eps


@pytest.mark.parametrize(
    "theta, x, error, match",
    [
        ([0.1, 0.2, 0.3], [0, 3], ValueError, r"x must lie in the support \[0, 2\]; got 3"),
        ([0.1, 0.2, 0.3], [-1, 0], ValueError, r"x must lie in the support \[0, 2\]; got -1"),
        ([0.1, 0.2, 0.3], [0.0, 1.0], TypeError, r"x must be an integer array; got dtype float"),
        ([0.1, 0.2, 0.3], [0.0, np.nan], ValueError, r"x must be finite.*nan at index \(1,\)"),
        ([0.1, 0.2, 0.3], [[0, 1]], ValueError, r"x must have 1 dimension"),
        ([0.1, 0.2, 0.3], np.zeros(0, int), ValueError, r"x must hold at least one observation"),
        ([[0.1, 0.2]], [0], ValueError, r'params\["theta"\] must have 1 dimension'),
        ([0.1, np.inf, 0.3], [0], ValueError, r'params\["theta"\] must be finite'),
        ([1, 2, 3], [0], TypeError, r'params\["theta"\] must be a floating-point array'),
    ],
)
def test_softmax_bad_input(theta, x, error, match):
    params, x = {"theta": jnp.asarray(theta)}, jnp.asarray(x)
    for fn in (sn.softmax_nll, sn.softmax_nll_grad, sn.softmax_nll_hessian):
        with pytest.raises(error, match=match):
            fn(params, x)


def test_softmax_params_must_be_named():
    with pytest.raises(ValueError, match=r'single key "theta"; got \[\'logits\'\]'):
        jit(sn.softmax_nll)({"logits": jnp.zeros(3)}, jnp.array([0]))


def test_planted_softmax_sign_error_is_caught():
    """A flipped sign (``c/N - p``) fails the comparison the tests use."""
    params, x = sn.make_args(jax.random.key(0), (16, 3), jnp.float64)
    wrong = {"theta": -jit(sn.softmax_nll_grad)(params, x)["theta"]}
    with pytest.raises(AssertionError):
        _close(wrong, jgrad(sn.softmax_nll)(params, x))


# ---- part (b): discretized logistic mixture -----------------------------------------------------


def test_seed_formulas_literally_match_hand_and_autodiff():
    """The seed's eqs. (2)-(4), coded as written, agree with the log-space (6)-(9)."""
    loss, grads, _ = _seed_mixture(SEED_PARAMS, SEED_X)
    args = (SEED_PARAMS, SEED_X, SEED_D)
    assert float(lm.logistic_mixture_nll(*args)) == pytest.approx(loss, rel=1e-14)
    hand, auto = jit(lm.logistic_mixture_nll_grad)(*args), jgrad(lm.logistic_mixture_nll)(*args)
    _close(hand, auto)
    _close({k: jnp.asarray(v) for k, v in grads.items()}, auto, rtol=1e-11)


def test_seed_general_form_is_wrong_for_pi():
    """The seed's 'forme générale' with d(alpha)/d(pi) = 1 gives pi [s'(a) - s'(b)]: wrong."""
    _, grads, g_pi_general = _seed_mixture(SEED_PARAMS, SEED_X)
    auto = jgrad(lm.logistic_mixture_nll)(SEED_PARAMS, SEED_X, SEED_D)["pi"]
    np.testing.assert_allclose(grads["pi"], auto, rtol=1e-12)
    assert np.max(np.abs(g_pi_general - auto)) > 0.1 * np.max(np.abs(auto))


EXTREME = {  # stable parameters {mu, log_s, logit_pi} on d = 10 bins
    "component_far_away": ([2.0, 1e4, -1e4], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
    "tiny_scales": ([2.3, 5.0, 7.7], [-6.9, -30.0, -6.9], [0.0, 0.0, 0.0]),
    "huge_scales": ([2.3, 5.0, 7.7], [0.0, 30.0, 50.0], [0.0, 0.0, 0.0]),
    "extreme_logits": ([2.3, 5.0, 7.7], [0.0, 0.0, 0.0], [-800.0, 800.0, 0.0]),
    "all_far_from_the_data": ([-100.0, 200.0, 3e3], [0.0, -3.0, 1.0], [0.0, 1.0, 0.0]),
}
X_EXT = jnp.array([0, 3, 4, 9, 5], jnp.int32)
D_EXT = jnp.array(10, jnp.int32)
STABLE_VARIANTS = {
    False: (ls.logistic_mixture_stable_nll, ls.logistic_mixture_stable_nll_grad),
    True: (ls.logistic_mixture_stable_edge_nll, ls.logistic_mixture_stable_edge_nll_grad),
}
SEED_VARIANTS = {
    False: (lm.logistic_mixture_nll, lm.logistic_mixture_nll_grad),
    True: (lm.logistic_mixture_edge_nll, lm.logistic_mixture_edge_nll_grad),
}
STABLE_LOG_PROB = {
    edge: functools.partial(ls.logistic_mixture_stable_log_prob, edge=edge)
    for edge in (False, True)
}
SEED_LOG_PROB_EDGE = functools.partial(lm.logistic_mixture_log_prob, edge=True)


@pytest.mark.parametrize("edge", [False, True], ids=["bins", "edge_bins"])
@pytest.mark.parametrize("case", list(EXTREME))
def test_extreme_parameters_give_finite_loss_and_gradient(case, edge):
    mu, log_s, logit_pi = (jnp.array(a) for a in EXTREME[case])
    params = {"mu": mu, "log_s": log_s, "logit_pi": logit_pi}
    loss, grad = STABLE_VARIANTS[edge]
    assert np.isfinite(float(jit(loss)(params, X_EXT, D_EXT)))
    auto = jgrad(loss)(params, X_EXT, D_EXT)
    _close(jit(grad)(params, X_EXT, D_EXT), auto, rtol=1e-11, atol=1e-15)
    # seed parametrization: softmax([-800, 800, 0]) has exact zeros, where jax.grad of log(pi)
    # is 0 * inf = NaN; the loss is linear in pi, so compare with autodiff at pi_i = 1e-200.
    loss, grad = SEED_VARIANTS[edge]
    seed = ls.to_seed(params)
    assert np.isfinite(float(jit(loss)(seed, X_EXT, D_EXT)))
    positive = dict(seed, pi=jnp.maximum(seed["pi"], 1e-200))
    _close(
        jit(grad)(seed, X_EXT, D_EXT), jgrad(loss)(positive, X_EXT, D_EXT), rtol=1e-11, atol=1e-15
    )


@pytest.mark.parametrize("case", ["tiny_scales", "all_far_from_the_data"])
def test_extreme_parameters_break_the_literal_seed_formulas(case):
    mu, log_s, logit_pi = (jnp.array(a) for a in EXTREME[case])
    params = ls.to_seed({"mu": mu, "log_s": log_s, "logit_pi": logit_pi})
    loss, grads, _ = _seed_mixture(params, X_EXT)
    naive_ok = np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads.values())
    assert not naive_ok, f"{case}: the seed's formulas were expected to give inf/NaN"
    assert np.isfinite(float(jit(lm.logistic_mixture_nll)(params, X_EXT, D_EXT)))
    assert _finite(jit(lm.logistic_mixture_nll_grad)(params, X_EXT, D_EXT))


def test_far_component_does_not_change_the_loss():
    """A component 1e4 bins away has responsibility 0: the loss is that of the others."""
    base = {"mu": jnp.array([2.0, 6.0]), "log_s": jnp.array([0.0, 0.3]), "logit_pi": jnp.zeros(2)}
    far = jax.tree.map(lambda a, e: jnp.concatenate([a, jnp.array([e])]), base,
                       {"mu": 1e4, "log_s": -5.0, "logit_pi": 0.0})  # fmt: skip
    shift = jnp.log(2.0 / 3.0)  # the far component takes 1/3 of the weight
    a = jit(ls.logistic_mixture_stable_nll)(base, X_EXT, D_EXT)
    b = jit(ls.logistic_mixture_stable_nll)(far, X_EXT, D_EXT)
    assert float(b) == pytest.approx(float(a - shift), rel=1e-14)
    g = jit(ls.logistic_mixture_stable_nll_grad)(far, X_EXT, D_EXT)
    assert float(g["mu"][2]) == 0.0 and float(g["log_s"][2]) == 0.0


@pytest.mark.parametrize("seed", range(3))
def test_edge_bins_sum_to_one(seed):
    params, _, d = ls.make_args(jax.random.key(seed), (8, 4, 12), jnp.float64)
    bins = jnp.arange(12, dtype=jnp.int32)
    total_edge = jnp.sum(jnp.exp(jit(STABLE_LOG_PROB[True])(params, bins, d)))
    total = jnp.sum(jnp.exp(jit(STABLE_LOG_PROB[False])(params, bins, d)))
    assert float(total_edge) == pytest.approx(1.0, abs=1e-14)
    # without edges the sum telescopes to sum_i pi_i [sigma(alpha_i(d-1)) - sigma(beta_i(0))] < 1
    sp = ls.to_seed(params)
    tele = jnp.sum(sp["pi"] * (jax.nn.sigmoid((11.5 - sp["mu"]) / sp["s"])
                               - jax.nn.sigmoid((-0.5 - sp["mu"]) / sp["s"])))  # fmt: skip
    assert float(total) < 1.0 - 1e-6
    assert float(total) == pytest.approx(float(tele), rel=1e-13)
    seed_edge = jit(SEED_LOG_PROB_EDGE)(sp, bins, d)
    assert float(jnp.sum(jnp.exp(seed_edge))) == pytest.approx(1.0, abs=1e-14)


@pytest.mark.parametrize("edge", [False, True], ids=["bins", "edge_bins"])
def test_stable_and_seed_parametrizations_agree(edge):
    """Same value; gradients related by the chain rule of eq. (11): s * dL/ds and J^T dL/dpi."""
    seed, x, d = SEED_PARAMS, SEED_X, SEED_D
    stable = ls.to_stable(seed)
    (loss_st, grad_st), (loss_sd, grad_sd) = (
        tuple(jit(f) for f in v) for v in (STABLE_VARIANTS[edge], SEED_VARIANTS[edge])
    )
    assert float(loss_st(stable, x, d)) == pytest.approx(float(loss_sd(seed, x, d)), rel=1e-14)
    g_st, g_sd = grad_st(stable, x, d), grad_sd(seed, x, d)
    pi = seed["pi"]
    chained = {
        "mu": g_sd["mu"],
        "log_s": seed["s"] * g_sd["s"],
        "logit_pi": pi * g_sd["pi"] - pi * jnp.dot(pi, g_sd["pi"]),  # (diag pi - pi pi^T) g
    }
    _close(g_st, chained)
    _close(g_st, jgrad(STABLE_VARIANTS[edge][0])(stable, x, d))
    shifted = dict(stable, logit_pi=stable["logit_pi"] + 3.0)  # logits: up to a constant
    assert float(loss_st(shifted, x, d)) == pytest.approx(float(loss_st(stable, x, d)), rel=1e-14)


def test_traced_number_of_bins_under_jit_and_vmap():
    """``d`` is an array: one compilation serves several bin counts; edge masks follow it."""
    params, x = ls.to_stable(SEED_PARAMS), SEED_X
    ds = jnp.array([20, 21, 22], jnp.int32)
    one = [float(jit(ls.logistic_mixture_stable_edge_nll)(params, x, d)) for d in ds]
    # x holds 19: the last (edge) bin when d = 20, an interior bin when d = 21 or 22
    assert one[0] != one[1] and one[1] == one[2]
    g = jax.jit(jax.vmap(ls.logistic_mixture_stable_edge_nll_grad, in_axes=(None, None, 0)))
    a = jax.jit(jax.vmap(jax.grad(ls.logistic_mixture_stable_edge_nll), in_axes=(None, None, 0)))
    _close(jax.tree.map(lambda t: t.ravel(), g(params, x, ds)),
           jax.tree.map(lambda t: t.ravel(), a(params, x, ds)))  # fmt: skip


def test_strict_dtypes_and_mixed_integer_widths():
    """float32 parameters, uint8 data, an int32 ``d``: no promotion error under strict dtypes."""
    params = jax.tree.map(lambda a: a.astype(jnp.float32), ls.to_stable(SEED_PARAMS))
    with jax.numpy_dtype_promotion("strict"):
        g = jit(ls.logistic_mixture_stable_edge_nll_grad)(params, SEED_X.astype(jnp.uint8), SEED_D)
    assert all(leaf.dtype == jnp.float32 for leaf in g.values()) and _finite(g)
    # d = 256 does not fit uint8: the last bin must not wrap around to 255
    x8, x64 = jnp.array([0, 255, 3], jnp.uint8), jnp.array([0, 255, 3], jnp.int64)
    d = jnp.array(256, jnp.int32)
    stable = ls.to_stable(SEED_PARAMS)
    assert float(ls.logistic_mixture_stable_edge_nll(stable, x8, d)) == pytest.approx(
        float(ls.logistic_mixture_stable_edge_nll(stable, x64, d)), rel=1e-15
    )


def test_planted_missing_one_over_s_is_caught():
    """Dropping the 1/s of eq. (9) in dL/dmu fails the comparison."""
    params, x, d = SEED_PARAMS, SEED_X, SEED_D
    hand = jit(lm.logistic_mixture_nll_grad)(params, x, d)
    wrong = dict(hand, mu=hand["mu"] * params["s"])
    auto = jgrad(lm.logistic_mixture_nll)(params, x, d)
    _close(hand, auto)
    with pytest.raises(AssertionError):
        _close(wrong, auto)


def _seed_bad(**changes):
    params = dict(SEED_PARAMS)
    params.update({k: jnp.asarray(v) for k, v in changes.items() if k in ("mu", "s", "pi")})
    return params, jnp.asarray(changes.get("x", SEED_X)), changes.get("d", SEED_D)


@pytest.mark.parametrize(
    "changes, error, match",
    [
        ({"pi": [0.5, 0.5, 0.5, 0.5]}, ValueError, r'params\["pi"\] must sum to 1.*sum\(s\) \[2'),
        ({"pi": [1.5, -0.5, 0.0, 0.0]}, ValueError, r'params\["pi"\] must be >= 0.*-0.5'),
        ({"s": [1.0, 0.0, 1.0, 1.0]}, ValueError, r'params\["s"\] must be > 0.*0.0 at index \(1'),
        ({"s": [1.0, 1.0, -2.0, 1.0]}, ValueError, r'params\["s"\] must be > 0.*got -2.0'),
        ({"mu": [0.0, np.nan, 1.0, 2.0]}, ValueError, r'params\["mu"\] must be finite'),
        ({"mu": [0.0, 1.0, 2.0]}, ValueError, r'params\["s"\] has shape \(4,\) but expected \(3\)'),
        ({"x": [0, 20, 3]}, ValueError, r"x must lie in the support \[0, 19\]; got 20 at"),
        ({"x": [0, -2]}, ValueError, r"x must lie in the support \[0, 19\]; got -2"),
        ({"x": [0.0, 2.0]}, TypeError, r"x must be an integer array; got dtype float"),
        ({"x": [0.0, np.nan]}, ValueError, r"x must be finite"),
        ({"d": 20.0}, TypeError, r"d \(the number of bins\) must be an integer"),
        ({"d": np.array([20])}, ValueError, r"d \(the number of bins\) must be a scalar"),
        ({"d": 0}, ValueError, r"d \(the number of bins\) must be >= 1; got 0"),
    ],
)  # fmt: skip
def test_mixture_bad_input(changes, error, match):
    args = _seed_bad(**changes)
    for fn in (lm.logistic_mixture_nll, lm.logistic_mixture_nll_grad):
        with pytest.raises(error, match=match):
            fn(*args)


def test_mixture_bad_params_structure_and_edge_bins_need_two():
    x, d = SEED_X, SEED_D
    with pytest.raises(ValueError, match=r"keys \['mu', 'pi', 's'\]; got \['mu', 's'\]"):
        lm.logistic_mixture_nll({"mu": SEED_PARAMS["mu"], "s": SEED_PARAMS["s"]}, x, d)
    with pytest.raises(ValueError, match=r"keys \['log_s', 'logit_pi', 'mu'\]; got \['mu', 'pi'"):
        ls.logistic_mixture_stable_nll(SEED_PARAMS, x, d)
    mixed = dict(SEED_PARAMS, s=SEED_PARAMS["s"].astype(jnp.float32))
    with pytest.raises(TypeError, match=r'params\["s"\] has dtype float32 but params\["mu"\]'):
        lm.logistic_mixture_nll(mixed, x, d)
    one_bin = (SEED_PARAMS, jnp.array([0, 0]), jnp.array(1))
    assert np.isfinite(float(lm.logistic_mixture_nll(*one_bin)))
    with pytest.raises(ValueError, match=r"d \(the number of bins\) must be >= 2; got 1"):
        lm.logistic_mixture_edge_nll(*one_bin)
    stable = ls.to_stable(SEED_PARAMS)
    with pytest.raises(ValueError, match=r'params\["log_s"\] must be finite'):
        ls.logistic_mixture_stable_nll_grad(
            dict(stable, log_s=stable["log_s"].at[0].set(np.inf)), x, d
        )


def test_float32_extreme_parameters_stay_finite():
    """A component 1e4 bins away with s = 4.5e-5 and weight ~1 - 2e-22: finite in float32 too."""
    p = {"mu": jnp.array([2.0, 1e4], jnp.float32), "log_s": jnp.array([0.0, -10.0], jnp.float32),
         "logit_pi": jnp.array([0.0, 50.0], jnp.float32)}  # fmt: skip
    loss, grad = STABLE_VARIANTS[True]
    assert np.isfinite(float(jit(loss)(p, X_EXT, D_EXT)))
    g = jit(grad)(p, X_EXT, D_EXT)
    assert all(leaf.dtype == jnp.float32 for leaf in g.values())
    _close(g, jgrad(loss)(p, X_EXT, D_EXT), rtol=2.0**8 * float(np.finfo(np.float32).eps))
