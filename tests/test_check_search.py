"""``gradlab.search_grad``: planted branch bugs that one random point misses are found and shrunk;
kinks are named, not failed; every registered derivation passes 10,000 inputs; bad input is
refused with an error naming the argument."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradlab
from gradlab.check import _shrink
from gradlab.check._lanes import Outcome
from gradlab.derivations import REGISTRY, entropy, l1, logistic_mixture

# ---- planted bugs --------------------------------------------------------------------------


def huber(w, X, y, delta):
    r = X @ w - y
    a = jnp.abs(r)
    return jnp.sum(jnp.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta)))


def huber_grad_outer_bug(w, X, y, delta):
    r = X @ w - y
    return jnp.where(jnp.abs(r) <= delta, r, delta * r) @ X  # should be delta * sign(r)


def huber_grad(w, X, y, delta):
    r = X @ w - y
    return jnp.where(jnp.abs(r) <= delta, r, delta * jnp.sign(r)) @ X


def _huber_args():
    X = 0.1 * jax.random.normal(jax.random.key(1), (6, 3))
    return 0.1 * jnp.ones(3), X, 0.1 * jnp.ones(6), jnp.asarray(1.0)


def test_huber_outer_branch_bug_is_missed_at_one_point_found_and_shrunk():
    args = _huber_args()
    assert gradlab.check_grad(huber, huber_grad_outer_bug, *args).ok  # every |r| < delta
    rep = gradlab.search_grad(huber, huber_grad_outer_bug, args=args, n=2000)
    assert not rep.ok and rep.worst.outcome is Outcome.HAND_BUG
    w, X, y, delta = rep.shrunk.args
    r = X @ w - y
    assert np.any(np.abs(r) > delta)  # the shrunk input is past the threshold
    nnz, digits, _ = _shrink.complexity(rep.shrunk.args)
    assert nnz <= 3 and digits <= 3, rep.shrunk  # e.g. X[5,1] = 1, y[5] = 2, delta = 1
    assert rep.report is not None and not rep.report.ok
    assert rep.shrunk.outcome is Outcome.HAND_BUG and "FAIL" in str(rep)
    assert gradlab.search_grad(huber, huber_grad, args=args, n=500).ok


def lse(x):
    return jax.nn.logsumexp(x)


def lse_grad_unshifted(x):
    e = jnp.exp(x)  # no max shift: inf past ~88.7 in float32
    return e / jnp.sum(e)


def test_logsumexp_without_max_shift_overflows_in_float32_found_and_shrunk():
    x = jax.random.normal(jax.random.key(2), (5,), jnp.float32)
    assert gradlab.check_grad(lse, lse_grad_unshifted, x).ok
    rep = gradlab.search_grad(lse, lse_grad_unshifted, args=(x,), n=4000, key=3)
    assert not rep.ok and rep.worst.outcome is Outcome.HAND_NONFINITE
    (small,) = rep.shrunk.args
    assert small.dtype == np.float32
    assert np.count_nonzero(small) == 1 and 88 < np.max(small) <= 100, small  # e.g. [0, 90, 0...]
    assert _shrink.digits(np.max(small)) <= 2


def _mixture_edge_grad_last_bin_bug(params, x, d):
    """The edge model's gradient with the last bin's edge test off by one (``x == d``)."""
    mu, s = params["mu"], params["s"]
    terms = logistic_mixture.mixture_terms(mu, s, jnp.log(params["pi"]), x, d + 1, edge=True)
    log_p, ell, _, g_mu, g_s = terms
    g_pi = -jnp.mean(jnp.exp(ell - log_p[:, None]), axis=0)
    return {"mu": g_mu / s, "s": g_s / s, "pi": g_pi}


def _mixture_sampler(key):
    params, _, d = logistic_mixture.make_args(key, (6, 3, 40), jnp.float64)
    x = jax.random.randint(jax.random.fold_in(key, 1), (6,), 0, 40, jnp.int32)  # no forced edges
    return params, x, d


def test_mixture_last_bin_bug_found_and_shrunk_to_an_input_with_the_last_bin():
    loss = logistic_mixture.logistic_mixture_edge_nll
    args = _mixture_sampler(jax.random.key(0))
    assert not np.any(np.asarray(args[1]) == 39)
    assert gradlab.check_grad(loss, _mixture_edge_grad_last_bin_bug, *args).ok
    rep = gradlab.search_grad(loss, _mixture_edge_grad_last_bin_bug, _mixture_sampler, n=2000)
    assert not rep.ok and rep.worst.outcome is Outcome.HAND_BUG
    _, x, d = rep.shrunk.args
    assert np.any(x == d - 1) and np.count_nonzero(x) <= np.count_nonzero(rep.worst.args[1])


def _entropy_grad_clipped(params):
    return {"theta": -(1 + jnp.log(jnp.maximum(params["theta"], 1e-6)))}  # wrong below 1e-6


def test_entropy_gradient_wrong_only_near_zero_found():
    args = ({"theta": jax.nn.softmax(jax.random.normal(jax.random.key(4), (4,)))},)
    assert gradlab.check_grad(entropy.entropy, _entropy_grad_clipped, *args).ok
    rep = gradlab.search_grad(entropy.entropy, _entropy_grad_clipped, args=args, n=2000)
    assert not rep.ok and rep.worst.outcome is Outcome.HAND_BUG
    theta = rep.shrunk.args[0]["theta"]
    assert np.min(theta[theta > 0]) < 1e-6 and np.all(theta >= 0)
    assert rep.report is not None and not rep.report.ok


def test_a_kink_is_named_not_failed():
    def sampler(key):
        (p, lam) = l1.make_args(key, (6,), jnp.float64)
        zero = jax.random.bernoulli(jax.random.fold_in(key, 7), 0.5, (6,))
        return {"w": jnp.where(zero, 0.0, p["w"])}, lam

    def grad_left_slope(p, lam):  # -lam at 0: jax.grad says otherwise, both in [-lam, lam]
        return {"w": lam * jnp.where(p["w"] > 0, 1.0, -1.0)}

    rep = gradlab.search_grad(l1.l1, grad_left_slope, sampler, n=500)
    assert rep.ok, rep
    assert dict(rep.counts).get(Outcome.KINK, 0) > 0 and rep.disagree > 0


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registered_derivation_passes_a_search_of_10000_inputs(name):
    d = REGISTRY[name]
    rep = gradlab.search_grad(
        d.loss,
        d.grad,
        lambda key: d.make_args(key, d.shapes[0], jnp.float64),
        n=10_000,
        argnums=d.argnums,
    )
    assert rep.ok, rep
    assert rep.n == 10_000 and rep.out_of_domain < 10_000


# ---- bad input ------------------------------------------------------------------------------


def test_bad_input_is_refused_naming_the_argument():
    args = _huber_args()
    search = lambda **kw: gradlab.search_grad(huber, huber_grad, **kw)  # noqa: E731
    with pytest.raises(ValueError, match="n must be an int >= 1; got 0"):
        search(args=args, n=0)
    with pytest.raises(ValueError, match="n must be an int"):
        search(args=args, n=10.5)
    with pytest.raises(ValueError, match="n must be an int"):
        search(args=args, n=True)
    with pytest.raises(ValueError, match="memory_budget=64 bytes is too small for one lane"):
        search(args=args, n=10, memory_budget=64)
    with pytest.raises(ValueError, match="neither"):
        search(n=10)
    with pytest.raises(TypeError, match="sampler must be callable"):
        search(sampler=3, n=10)
    with pytest.raises(ValueError, match="structure"):
        search(sampler=lambda k: args[:3], args=args, n=10)
    with pytest.raises(ValueError, match=r"args\[1\] with shape \(6, 3\) and dtype float32"):
        search(sampler=lambda k: (args[0], args[1].astype(jnp.float32), *args[2:]), args=args)
    with pytest.raises(TypeError, match="must return the tuple"):
        search(sampler=lambda k: args[0], n=10)
    with pytest.raises(ValueError, match="grad must be traceable"):
        gradlab.search_grad(huber, lambda *a: np.asarray(a[0]), args=args, n=10)


def test_cli_check_search_reports_beside_the_table(tmp_path, capsys):
    from gradlab.cli import main

    out = tmp_path / "out.json"
    assert main(["check", "mse_mean", "--no-hessian", "--search", "300", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "search: hand vs autodiff over 300 sampled inputs" in text and "ok: 300 inputs" in text
    import json

    assert json.loads(out.read_text())["mse_mean@search"]["ok"] is True
