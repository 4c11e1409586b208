"""gradlab.check.finite_differences: the public finite-difference witness."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradlab.check import finite_differences
from gradlab.derivations import mse


def test_matches_autodiff_on_every_leaf_to_richardson_accuracy():
    args = mse.make_args(jax.random.key(0), (32, 4), jnp.float64)
    fd = finite_differences(mse.mse_mean, *args)
    g = mse.mse_mean_grad(*args)
    for name in ("w", "b"):
        np.testing.assert_allclose(fd.richardson[name], g[name], rtol=1e-9, atol=1e-10)
        assert np.all(np.abs(fd.richardson[name] - np.asarray(g[name])) <= fd.error[name])
        np.testing.assert_allclose(fd.central[name], g[name], rtol=1e-5)


def test_error_orders_with_a_given_step():
    f = lambda w: jnp.sum(jnp.exp(w))  # f' = f''' = e^w: truncation orders are visible
    w = jnp.zeros(2)
    errs = {}
    for h in (1e-2, 5e-3):
        fd = finite_differences(f, w, step=h)
        errs[h] = [
            abs(float(getattr(fd, k)[0]) - 1.0) for k in ("forward", "central", "richardson")
        ]
    ratio = np.array(errs[1e-2]) / np.array(errs[5e-3])
    np.testing.assert_allclose(ratio[:2], [2.0, 4.0], rtol=0.05)  # O(h), O(h^2)
    assert ratio[2] > 10.0  # O(h^4), until rounding takes over
    assert finite_differences(f, w, step=1e-2).step[0] == 1e-2


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="step must be a finite positive scalar"):
        finite_differences(lambda w: jnp.sum(w), jnp.zeros(2), step=0.0)
    with pytest.raises(ValueError, match="argnums=3 is out of range"):
        finite_differences(lambda w: jnp.sum(w), jnp.zeros(2), argnums=3)
    with pytest.raises(ValueError, match="must return a scalar"):
        finite_differences(lambda w: w, jnp.zeros(2))
