"""Checks at scale (``gradlab.check._scale``): hand against autodiff element by element in both
modes, differences only where they decide, random directions as referee, group testing."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradlab
from gradlab.check import _localize, _scale
from gradlab.check._verdict import Finding

N = 1 << 20  # ~1e6 elements: cheap losses, so the real size is tested


def smooth_loss(p):
    return sum(jnp.sum(jnp.log1p(w**2)) for w in jax.tree.leaves(p))


def smooth_grad(p):
    return jax.tree.map(lambda w: 2 * w / (1 + w**2), p)


def _params(leaves: int, n: int = N, seed: int = 0):
    rng = np.random.default_rng(seed)
    return {f"w{j:04d}": jnp.asarray(rng.normal(size=n // leaves)) for j in range(leaves)}


def _failing(report):
    return [v for v in report.verdicts if v.failing]


def test_fast_mode_names_one_element_wrong_by_1e_7_among_a_million():
    p = _params(1)
    bad = 654321

    def grad_bug(p):
        return {"w0000": smooth_grad(p)["w0000"].at[bad].multiply(1 + 1e-7)}

    assert gradlab.check_grad(smooth_loss, smooth_grad, p, mode="fast").ok
    report = gradlab.check_grad(smooth_loss, grad_bug, p, mode="fast")
    assert not report.ok
    (leaf,) = report.leaves
    assert leaf.n_fail == 1 and leaf.worst[0].index == (bad,)
    v = _failing(report)[0]
    assert v.count == 1 and v.example.index == (bad,) and v.path == "['w0000']"


def test_one_leaf_of_thirty_wrong_is_named_in_both_modes():
    p = _params(30, 6_000)  # (1000 leaves: benchmarks/bench_check_scale.py; compiles are slow)

    def grad_bug(p):
        g = smooth_grad(p)
        return {**g, "w0017": g["w0017"] * 1.001}

    for mode in ("fast", "full"):
        assert gradlab.check_grad(smooth_loss, smooth_grad, p, mode=mode).ok
        report = gradlab.check_grad(smooth_loss, grad_bug, p, mode=mode)
        assert not report.ok
        bad = [leaf for leaf in report.leaves if not leaf.ok]
        assert [leaf.path for leaf in bad] == ["['w0017']"] and bad[0].n_fail == 200
        assert _failing(report)[0].kind is Finding.HAND_BUG  # the refereed ones; the rest counted


def test_full_mode_differences_only_the_sample_and_directions():
    p = _params(4, 40_000)
    report = gradlab.check_grad(smooth_loss, smooth_grad, p, fd_elements=10)
    assert report.ok and report.fd_agree[1] == 10 + 4  # sample + directions
    assert "finite differences at" in report.leaves[0].checked
    small = {"w": jnp.linspace(-2.0, 2.0, 50)}
    assert gradlab.check_grad(smooth_loss, smooth_grad, small, fd_elements="all").fd_agree[1] == 50
    bug = lambda p: {"w": smooth_grad(p)["w"].at[7].add(0.5)}  # noqa: E731
    report = gradlab.check_grad(smooth_loss, bug, small, fd_elements=3)  # scaled at any size
    assert [v.kind for v in _failing(report)] == [Finding.HAND_BUG]
    assert _failing(report)[0].example.index == (7,)


def _wrong_rule(bad_mask):
    """``sum(sin w)`` whose custom JVP (and the hand copied from it) doubles the bad entries."""

    @jax.custom_jvp
    def f(w):
        return jnp.sum(jnp.sin(w))

    @f.defjvp
    def f_jvp(primals, tangents):
        (w,), (t,) = primals, tangents
        return f(w), jnp.sum(jnp.where(bad_mask, 2.0, 1.0) * jnp.cos(w) * t)

    return f, lambda w: jnp.where(bad_mask, 2.0, 1.0) * jnp.cos(w)


@pytest.fixture
def located(monkeypatch):
    found = []
    real = _localize.localize

    def spy(*args, **kwargs):
        found.append(real(*args, **kwargs))
        return found[-1]

    monkeypatch.setattr(_scale._localize, "localize", spy)
    return found


def test_a_wrong_custom_rule_shared_by_hand_is_located_by_group_testing(located):
    w = jnp.asarray(np.random.default_rng(2).normal(size=N))
    bad = 777_777
    f, hand = _wrong_rule(jnp.zeros(N, bool).at[bad].set(True))
    report = gradlab.check_grad(f, hand, w, mode="fast")
    assert not report.ok
    (v,) = _failing(report)
    assert v.kind is Finding.AUTODIFF_SUSPECT and v.count == 1 and v.example.index == (bad,)
    assert located[0].elements == (bad,)
    assert located[0].evaluations <= 4 * math.log2(N)


def test_one_percent_wrong_is_reported_as_many_elements_quickly(located):
    w = jnp.asarray(np.random.default_rng(3).normal(size=N))
    f, hand = _wrong_rule(jnp.asarray(np.random.default_rng(4).random(N) < 0.01))
    report = gradlab.check_grad(f, hand, w, mode="fast")
    assert not report.ok and Finding.AUTODIFF_SUSPECT in report.kinds()
    assert located[0].many and located[0].evaluations <= 64


def test_localize_counts_evaluations_on_a_known_answer():
    calls = []

    def test(sets):
        calls.append(len(sets))
        return np.array([any(lo <= b < hi for b in (5, 900_001)) for lo, hi in sets])

    found = _localize.localize(test, 10**6)
    assert found.elements == (5, 900_001) and not found.many
    assert found.evaluations == sum(calls) <= 2 * 2 * math.ceil(math.log2(10**6))


def test_bad_fd_elements_is_refused():
    p = {"w": jnp.ones(3)}
    for bad in ("some", -1, 1.5, True):
        with pytest.raises(ValueError, match="fd_elements must be"):
            gradlab.check_grad(smooth_loss, smooth_grad, p, fd_elements=bad)
