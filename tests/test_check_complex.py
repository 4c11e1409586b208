"""Complex inputs and outputs in JAX's convention: holomorphic and non-holomorphic functions, and
a hand derivative that is the conjugate of the right one named as such."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradlab import check_jvp, check_vjp
from gradlab.check import Finding


@pytest.fixture(scope="module")
def z():
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.normal(size=4) + 1j * rng.normal(size=4))


def test_jax_convention_gradient_of_real_loss_is_twice_d_dz(z):
    # (2) of gradlab.check._complex: jax.grad(|z|^2) = 2 conj(z) = 2 dL/dz
    np.testing.assert_allclose(jax.grad(lambda z: jnp.sum(jnp.abs(z) ** 2))(z), 2 * jnp.conj(z))


def test_real_loss_of_complex_input(z):
    f = lambda z: jnp.sum(jnp.abs(z) ** 2)  # noqa: E731  (non-holomorphic)
    right = lambda z, ct: ct.astype(z.dtype) * 2.0 * jnp.conj(z)  # noqa: E731
    assert check_vjp(f, right, z, mode="full").ok
    # 2 dL/dz*, PyTorch's convention
    torch_style = lambda z, ct: ct.astype(z.dtype) * 2.0 * z  # noqa: E731
    report = check_vjp(f, torch_style, z, mode="full")
    assert not report.ok
    assert [loc.kind for loc in report.locations] == [Finding.CONJUGATE]
    assert "conjugate" in str(report)


def test_holomorphic_vjp_and_its_conjugate(z):
    c = jnp.asarray(0.3 - 0.7j)
    f = lambda z: c * z**3  # noqa: E731
    right = lambda z, ct: ct * 3 * c * z**2  # noqa: E731  (JAX: no conjugate in a VJP)
    for mode in ("fast", "full"):
        assert check_vjp(f, right, z, mode=mode).ok
    conj = lambda z, ct: ct * jnp.conj(3 * c * z**2)  # noqa: E731
    report = check_vjp(f, conj, z, mode="full")
    assert not report.ok and {loc.kind for loc in report.locations} == {Finding.CONJUGATE}


def test_non_holomorphic_output_and_a_plain_bug(z):
    w = jnp.asarray(np.linspace(0.5, 1.5, 4), z.dtype)  # real values, complex dtype
    f = lambda z: jnp.conj(z) * w + (jnp.real(z) ** 2).astype(z.dtype)  # noqa: E731

    def vjp(z, ct):  # d/dt Re<ct, f'(t)>: conj(z) -> conj(ct), Re(z)^2 -> 2 Re(z) Re(ct)
        return jnp.conj(ct) * w + (2 * jnp.real(z) * jnp.real(ct)).astype(z.dtype)

    assert check_vjp(f, vjp, z, mode="full").ok
    bad = lambda z, ct: vjp(z, ct) + (1e-6 * jnp.real(ct)).astype(z.dtype)  # noqa: E731
    report = check_vjp(f, bad, z, mode="full")
    assert {loc.kind for loc in report.locations} == {Finding.HAND_BUG}
    assert {(loc.output, loc.input) for loc in report.locations} == {("out.real", "z.real")}


def test_complex_jvp_and_float32_copy(z):
    f = lambda z: jnp.exp(1j * z) * z  # noqa: E731

    def jvp(primals, tangents):
        (z,), (t,) = primals, tangents
        return f(z), (1j * jnp.exp(1j * z) * z + jnp.exp(1j * z)) * t

    assert check_jvp(f, jvp, z, mode="full").ok
    report = check_jvp(f, jvp, z.astype(jnp.complex64))
    assert report.ok and report.dtype == "float32" and report.float64_copy.ok
