"""Faults in training reach the user (issue 12, items 7-9 and 11; issue 15, eager cache).

Each case here returned a plausible, wrong result before: a rising run reported as stopped early,
a negative learning rate that climbed quietly, pi off the simplex or data outside the support
that trained to a finite loss under jit, an integer hand gradient that trained with a zero step,
``mse_mean`` on no rows dividing by zero, ``lstsq`` of float16 data raising
``NotImplementedError``. Now each is an error (concrete input) or a flagged run with its reason
(traced input, one lane of a vmapped batch).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _seed002 import seed002_data
from jax.experimental import checkify

import gradlab
from gradlab import _validate as v
from gradlab.derivations import REGISTRY
from gradlab.derivations import logistic_mixture as lm
from gradlab.derivations.mse import mse_mean, mse_mean_grad
from gradlab.derivations.softmax_nll import softmax_nll

X, Y = seed002_data()
P0 = {"w": jnp.zeros(1), "b": jnp.zeros(())}
MIX_P0, MIX_X, MIX_D = lm.SEED.example(jax.random.key(0))


def mixture_loss(p, x):
    return lm.SEED.loss(p, x, MIX_D)


def with_lr(factory, lr, **kw):
    return gradlab.optim.with_learning_rate(factory, lr, **kw)


# ---- item 7: a rising run is diverged, never merely stopped ---------------------------------


def test_early_stop_on_a_rising_loss_is_divergence():
    # lr 0.03 is above seed 002's stability bound 0.0292: the loss climbs slowly, every step
    # "improves" by less than tol, and the early-stopping rule fires at loss ~446 (start 164).
    res = gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.03), 1000, early_stop=gradlab.EarlyStop())
    assert float(res.loss) > float(res.history["loss"][0])
    assert bool(res.diverged) and not bool(res.stopped_early)


def test_a_run_ending_above_its_start_is_diverged_without_early_stopping():
    res = gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.03), 60)
    assert float(res.loss) < 1e6 * float(mse_mean(P0, X, Y))  # under the divergence bound
    assert bool(res.diverged) and int(res.steps_taken) == 60


def test_a_converging_run_and_a_run_started_at_the_optimum_are_not_diverged():
    opt, stop = optax.sgd(0.02), gradlab.EarlyStop()  # one compiled loop serves both calls
    ok = gradlab.fit(mse_mean, P0, (X, Y), opt, 200, early_stop=stop)
    assert not bool(ok.diverged)
    best = gradlab.optim.lstsq(X, Y)
    at_opt = gradlab.fit(mse_mean, best, (X, Y), opt, 200, early_stop=stop)
    assert not bool(at_opt.diverged) and not bool(at_opt.invalid)
    assert bool(at_opt.stopped_early)  # no improvement left: stopped, not diverged


@pytest.mark.parametrize("lr", [-0.01, 0.0])
def test_a_readable_non_positive_learning_rate_is_an_error(lr):
    for opt in (
        with_lr(optax.sgd, lr),
        with_lr(optax.adam, lr),
        gradlab.optim.projected(with_lr(optax.sgd, lr), lambda p: p),
    ):
        with pytest.raises(ValueError, match="learning_rate must be > 0"):
            gradlab.fit(mse_mean, P0, (X, Y), opt, 10)


# optax.inject_hyperparams(optax.sgd) with a linear_schedule multiplies float64 updates by a
# float32 step size inside optax (transform.scale), which strict dtype promotion refuses.
@pytest.mark.standard_dtypes(
    "optax.inject_hyperparams + linear_schedule: float32 step inside optax"
)
def test_a_schedule_may_start_at_zero_but_not_below():
    warm = optax.linear_schedule(0.0, 0.02, 20)
    res = gradlab.fit(mse_mean, P0, (X, Y), optax.inject_hyperparams(optax.sgd)(warm), 50)
    assert not bool(res.diverged) and not bool(res.invalid)
    below = optax.linear_schedule(-0.01, 0.02, 20)
    with pytest.raises(ValueError, match="scheduled learning_rate must be >= 0"):
        gradlab.fit(mse_mean, P0, (X, Y), optax.inject_hyperparams(optax.sgd)(below), 50)


@pytest.mark.parametrize(
    "build",
    [
        lambda lr: with_lr(optax.sgd, lr),
        lambda lr: optax.inject_hyperparams(optax.sgd)(learning_rate=lr),
        lambda lr: gradlab.optim.ista(lr, jnp.asarray(0.1)),
    ],
    ids=["with_learning_rate", "inject_hyperparams", "ista"],
)
def test_a_traced_non_positive_learning_rate_flags_its_lane(build):
    train = jax.jit(jax.vmap(lambda lr: gradlab.fit(mse_mean, P0, (X, Y), build(lr), 40)))
    res = train(jnp.array([0.01, -0.01, 0.0]))
    assert res.invalid.tolist() == [False, True, True]
    assert res.steps_taken.tolist() == [40, 0, 0]  # a flagged lane never moves
    reasons = res.reasons()
    assert reasons[0] == "" and all("learning_rate must be > 0" in r for r in reasons[1:])
    jax.tree.map(
        np.testing.assert_array_equal,
        res.params,
        jax.tree.map(lambda a, p0: a.at[1:].set(p0), res.params, P0),
    )


def test_an_unreadable_negative_learning_rate_still_shows_as_diverged():
    # a closure's lr cannot be read; climbing ~7x in 30 steps stays far under the bound
    res = gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(-0.001), 30)
    assert float(res.loss) < 1e6 * float(mse_mean(P0, X, Y))
    assert bool(res.diverged)


# ---- item 8: value checks under jit ---------------------------------------------------------


# optax.adam's bias correction computes ``float ** int32`` inside optax, which strict dtype
# promotion (conftest.py) refuses: not gradlab's code.
@pytest.mark.standard_dtypes("optax.adam: float ** int32 inside optax")
def test_pi_off_the_simplex_is_a_named_error_from_an_eager_fit():
    p = {**MIX_P0, "pi": MIX_P0["pi"] * 1.5}
    with pytest.raises(v.InvalidValueError, match=r'params\["pi"\] must sum to 1.*params0'):
        gradlab.fit(mixture_loss, p, (MIX_X,), optax.adam(0.01), 5)


def test_data_outside_the_support_is_a_named_error():
    with pytest.raises(v.InvalidValueError, match=r"x must lie in the support \[0, 2\].*got 5"):
        gradlab.fit(
            softmax_nll, {"theta": jnp.zeros(3)}, (jnp.array([0, 1, 5]),), optax.sgd(0.1), 5
        )


def test_a_vmapped_fit_flags_the_lane_with_the_invalid_input_and_its_reason():
    scales = jnp.array([1.0, 1.5, 1.0])
    s_scale = jnp.array([1.0, 1.0, -1.0])

    def one(a, b):
        p = {**MIX_P0, "pi": MIX_P0["pi"] * a, "s": MIX_P0["s"] * b}
        # a null step keeps the valid lane valid (gradient steps on pi leave the simplex, the
        # case of the test after next)
        return gradlab.fit(mixture_loss, p, (MIX_X,), optax.set_to_zero(), 10)

    res = jax.jit(jax.vmap(one))(scales, s_scale)
    assert res.invalid.tolist() == [False, True, True]
    assert res.steps_taken.tolist()[1:] == [0, 0]
    reasons = res.reasons()
    assert 'params["pi"] must sum to 1' in reasons[1] and "params0" in reasons[1]
    assert 'params["s"] must be > 0' in reasons[2]
    assert not res.diverged.any()  # invalid is its own outcome, not a divergence


def test_nan_in_data_under_jit_is_flagged_not_trained_on():
    Xn = X.at[3, 0].set(jnp.nan)
    res = jax.jit(lambda X: gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.01), 10))(Xn)
    assert bool(res.invalid) and res.reasons().item().startswith("X must be finite")
    with pytest.raises(v.InvalidValueError, match=r"X must be finite.*index \(3, 0\)"):
        gradlab.fit(mse_mean, P0, (Xn, Y), optax.sgd(0.01), 10)


def test_training_that_leaves_the_domain_is_flagged_at_the_end():
    # plain gradient descent on pi does not stay on the simplex
    with pytest.raises(v.InvalidValueError, match="training left the loss's domain"):
        gradlab.fit(mixture_loss, MIX_P0, (MIX_X,), optax.sgd(0.5), 30)


# optax.adam's bias correction computes ``float ** int32`` inside optax, which strict dtype
# promotion (conftest.py) refuses: not gradlab's code.
@pytest.mark.standard_dtypes("optax.adam: float ** int32 inside optax")
def test_a_valid_run_passes_the_checks_it_made():
    stable = REGISTRY["logistic_mixture_stable"]
    p0, x, d = stable.example(jax.random.key(0))
    res = gradlab.fit(lambda p, x: stable.loss(p, x, d), p0, (x,), optax.adam(0.01), 20)
    assert not bool(res.invalid) and int(res.invalid_reason) == -1 and res.reasons().item() == ""
    assert any("support" in m for m in res.checks)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_derivation_validates_its_example_under_jit(name):
    d = REGISTRY[name]
    args = d.example(jax.random.key(1))
    verdict = jax.jit(d.validate)(*args)
    assert not bool(verdict.bad), verdict.message()


def test_validate_catches_bad_values_under_jit_and_vmap_and_feeds_checkify():
    d = REGISTRY["logistic_mixture"]
    p, x, dd = d.example(jax.random.key(2))
    bad_x = x.at[0].set(dd + 3)
    verdict = jax.jit(d.validate)(p, bad_x, dd)
    assert verdict.message() == "x must lie in the support [0, d-1]"
    lanes = jax.vmap(lambda s: d.validate({**p, "s": p["s"] * s}, x, dd))(jnp.array([1.0, -1.0]))
    assert lanes.bad.tolist() == [False, True]
    with pytest.raises(v.InvalidValueError, match=r"1 lane\(s\)"):
        lanes.raise_if_bad()
    err, _ = checkify.checkify(jax.jit(lambda *a: d.validate(*a).checkify()))(p, bad_x, dd)
    assert "x must lie in the support" in err.get()


def test_checks_inside_the_users_own_jit_are_skipped_not_leaked():
    inner = jax.jit(mse_mean)  # its checks live in an inner trace
    res = gradlab.fit(inner, P0, (X, Y), optax.sgd(0.01), 5)
    assert not bool(res.invalid) and res.checks == ()


# ---- item 9: a hand gradient of the wrong dtype ---------------------------------------------


def test_an_integer_hand_gradient_is_an_error():
    def int_grad(p, X, y):
        g = mse_mean_grad(p, X, y)
        return jax.tree.map(lambda a: a.astype(jnp.int32), g)

    with pytest.raises(TypeError, match=r"leaf \['b'\] has dtype int32 but params0\['b'\]"):
        gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.01), 5, grad=int_grad)


def test_a_float32_hand_gradient_for_float64_params_is_an_error_a_python_float_is_not():
    def f32_grad(p, X, y):
        return jax.tree.map(lambda a: a.astype(jnp.float32), mse_mean_grad(p, X, y))

    with pytest.raises(TypeError, match="has dtype float32 but"):
        gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.01), 5, grad=f32_grad)

    def weak_b(p, X, y):
        return {"w": mse_mean_grad(p, X, y)["w"], "b": 0.0}

    gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.01), 5, grad=weak_b)


# ---- item 11: edge cases of the derivations and the closed forms ----------------------------


@pytest.mark.parametrize(
    "args,match",
    [
        ((P0, X[:0], Y[:0]), "at least one row"),
        (({"w": jnp.zeros(1)}, X, Y), r"params must have keys \['b', 'w'\]"),
    ],
)
@pytest.mark.parametrize("fn", [mse_mean, mse_mean_grad])
def test_mse_on_no_rows_or_without_b_is_a_value_error(fn, args, match):
    with pytest.raises(ValueError, match=match):
        fn(*args)


@pytest.mark.parametrize(
    "solve",
    [
        gradlab.optim.lstsq,
        gradlab.optim.normal_equation,
        functools.partial(gradlab.optim.ridge, lam=0.0),
    ],
    ids=["lstsq", "normal_equation", "ridge"],
)
def test_closed_forms_refuse_no_rows_and_solve_half_precision_in_float32(solve):
    with pytest.raises(ValueError, match="at least one row"):
        solve(X[:0], Y[:0])
    Xs = (X - 5.0) / 3.0  # well conditioned, so float16 rounding is the only error
    for dtype in (jnp.float16, jnp.bfloat16):
        got = solve(Xs.astype(dtype), Y.astype(dtype))
        want = solve(Xs.astype(jnp.float32), Y.astype(dtype).astype(jnp.float32))
        for k in ("w", "b"):
            assert got[k].dtype == dtype
            np.testing.assert_allclose(
                np.asarray(got[k], np.float32), np.asarray(want[k]), rtol=4 * jnp.finfo(dtype).eps
            )


def test_mixed_dtypes_are_named():
    with pytest.raises(TypeError, match="X has dtype float16 but y has dtype float32"):
        v.check_same_dtype("X", X.astype(jnp.float16), "y", Y.astype(jnp.float32))


# ---- issue 15: repeated eager calls reuse the compiled loop ---------------------------------


def test_repeated_eager_fits_with_the_same_objects_compile_once():
    from gradlab.train import _fit

    opt = optax.sgd(0.02)
    gradlab.fit(mse_mean, P0, (X, Y), opt, 17)
    size = _fit._run._cache_size()
    a = gradlab.fit(mse_mean, P0, (X, Y), opt, 17)
    b = gradlab.fit(mse_mean, {"w": jnp.ones(1), "b": jnp.ones(())}, (X, 2 * Y), opt, 17)
    assert _fit._run._cache_size() == size  # new values, same shapes: no new program
    assert not np.array_equal(a.params["w"], b.params["w"])
    # under the caller's own jit the caller caches; the shared cache keeps none of its closures
    jax.jit(lambda lr: gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(lr), 17))(0.01)
    assert _fit._run._cache_size() == size


def test_a_fit_result_is_fit_like():
    res = gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.01), 4)
    assert isinstance(res, gradlab.train.FitLike)
