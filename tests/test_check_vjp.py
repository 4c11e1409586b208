"""check_vjp: hand VJPs (layer norm, blocked attention) against autodiff of the function with its
custom rules removed, refereed by finite differences; float32 beside float64; bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import custom_rules as cr
from gradlab import check_vjp
from gradlab.check import Finding


def _kinds(report):
    return {v.kind for v in report.verdicts}


def _vjp_of(fn):
    """``vjp(*args, ct)`` through ``fn``'s own custom_vjp rule, for every argument."""

    def vjp(*args):
        *primals, ct = args
        return jax.vjp(fn, *primals)[1](ct)

    return vjp


@pytest.fixture(scope="module")
def ln_args():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(3, 4)))
    return x, jnp.asarray(1 + 0.1 * rng.normal(size=4)), jnp.asarray(0.1 * rng.normal(size=4))


@pytest.fixture(scope="module")
def qkv():
    rng = np.random.default_rng(1)
    return tuple(jnp.asarray(rng.normal(size=s)) for s in ((8, 4), (8, 4), (8, 2)))


def test_layer_norm_backward_passes_fast_and_full(ln_args):
    ln = cr.make_layer_norm(False)
    for mode in ("fast", "full"):
        report = check_vjp(ln, _vjp_of(ln), *ln_args, argnums=(0, 1, 2), mode=mode)
        assert report.ok, report
        assert report.verdicts[0].kind is Finding.OK
    assert report.to_dict()["kind"] == "vjp"


def test_layer_norm_transposed_factor_named_by_output_input_and_element(ln_args):
    ln = cr.make_layer_norm(True)
    report = check_vjp(ln, _vjp_of(ln), *ln_args, argnums=(0, 1, 2), mode="fast")
    assert not report.ok
    assert Finding.HAND_BUG in _kinds(report)
    # only dx is wrong: the factor sits in the x-gradient, gamma and beta are right
    assert {loc.input for loc in report.locations} == {"x"}
    loc = report.locations[0]
    assert loc.output == "out" and len(loc.output_index) == 2 and len(loc.input_index) == 2
    assert loc.fd == pytest.approx(loc.autodiff, rel=1e-6, abs=1e-9)
    assert "d out[" in str(report)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_missing_scale_in_ds_names_q_and_k_not_v(qkv, causal):
    fa = cr.make_flash_attention(causal, 4, True)
    report = check_vjp(
        fa,
        _vjp_of(fa),
        *qkv,
        argnums=(0, 1, 2),
        mode="full",
        reference=lambda q, k, v: cr.attention(q, k, v, causal),
    )
    assert not report.ok
    named = {(loc.kind, loc.input) for loc in report.locations}
    assert named == {(Finding.HAND_BUG, "q"), (Finding.HAND_BUG, "k")}
    for loc in report.locations:  # the hand value is off by the missing factor 1/sqrt(d) = 1/2
        assert loc.hand == pytest.approx(2 * loc.autodiff, rel=1e-9)


def test_attention_float32_passes_beside_float64(qkv):
    fa = cr.make_flash_attention(True, 4, False)
    q, k, v = (x.astype(jnp.float32) for x in qkv)
    report = check_vjp(
        fa,
        _vjp_of(fa),
        q,
        k,
        v,
        argnums=(0, 1, 2),
        mode="full",
        reference=lambda q, k, v: cr.attention(q, k, v, True),
    )
    assert report.ok, report
    assert report.dtype == "float32" and report.float64_copy is not None
    assert report.float64_copy.ok and report.float64_copy.dtype == "float64"


def _round_mantissa(x, bits: int):
    """Round float32 ``x`` to ``bits`` mantissa bits (TF32 keeps 10, bfloat16 7)."""
    m, e = jnp.frexp(x)
    scale = 2.0 ** (bits + 1)
    return jnp.ldexp(jnp.round(m * scale) / scale, e)


def test_reduced_precision_noise_reads_as_precision_not_a_wrong_rule():
    w = jnp.asarray(np.random.default_rng(2).normal(size=(6, 6)), jnp.float32)
    x = jnp.linspace(-1.0, 1.0, 6, dtype=jnp.float32)

    def f(x, w):
        return jnp.tanh(w @ x)

    def vjp(x, w, ct):
        g = (ct * (1 - jnp.tanh(w @ x) ** 2)) @ w
        return _round_mantissa(g, 7) if g.dtype == jnp.float32 else g

    report = check_vjp(f, vjp, x, w, mode="full")
    assert not report.ok
    assert report.verdicts[0].kind is Finding.PRECISION_ONLY
    assert report.float64_copy.ok


def test_pytree_output_and_seed():
    def f(x):
        return {"s": jnp.sum(jnp.sin(x)), "v": x * x[::-1]}

    def vjp(x, ct):
        return ct["s"] * jnp.cos(x) + ct["v"] * x[::-1] + (ct["v"] * x)[::-1]

    x = jnp.linspace(0.1, 1.0, 5)
    assert check_vjp(f, vjp, x, key=3).ok
    bad = lambda x, ct: vjp(x, ct).at[2].add(1e-7 * ct["s"])  # noqa: E731
    report = check_vjp(f, bad, x, mode="full")
    (loc,) = report.locations
    assert (loc.output, loc.output_index, loc.input, loc.input_index) == ("out['s']", (), "x", (2,))


# ---- bad input: clear errors before anything compiles -------------------------------------------


def test_non_array_output_is_named():
    with pytest.raises(TypeError, match=r"pytree of arrays; got str at out\[1\]"):
        check_vjp(lambda x: (x, "label"), lambda x, ct: ct[0], jnp.ones(3))


def test_integer_output_is_named():
    with pytest.raises(TypeError, match=r"out\['n'\] with dtype int"):
        check_vjp(lambda x: {"y": x, "n": jnp.argmax(x)}, lambda x, ct: ct["y"], jnp.ones(3))


def test_vjp_tree_mismatch_names_both_trees():
    f = lambda x, y: x * y  # noqa: E731
    with pytest.raises(ValueError, match=r"vjp\(\*args, cotangent\) returned a pytree"):
        check_vjp(f, lambda x, y, ct: (ct * y, ct * x), jnp.ones(3), jnp.ones(3), argnums=0)
    with pytest.raises(ValueError, match=r"returned shape \(3, 1\) for args\[0\]"):
        check_vjp(f, lambda x, y, ct: (ct * y)[:, None], jnp.ones(3), jnp.ones(3))


def test_untraceable_vjp_says_so():
    def numpy_vjp(x, ct):
        return np.asarray(ct) * 2.0

    with pytest.raises(TypeError, match="must be traceable by JAX"):
        check_vjp(lambda x: 2.0 * x, numpy_vjp, jnp.ones(3))


def test_bad_mode_and_integer_input():
    with pytest.raises(ValueError, match="mode must be one of"):
        check_vjp(jnp.sin, lambda x, ct: ct, jnp.ones(2), mode="slow")
    with pytest.raises(TypeError, match="floating or complex array"):
        check_vjp(lambda n: n * 1.0, lambda n, ct: ct, jnp.arange(3))


# ---- the command line ------------------------------------------------------------------------


def test_cli_check_kind_vjp_and_audit(tmp_path, capsys):
    from gradlab.cli import main

    mod = tmp_path / "rules_cli.py"
    mod.write_text(
        "import jax, jax.numpy as jnp\n"
        "def f(x):\n    return {'a': jnp.sin(x), 'b': jnp.sum(x ** 2)}\n"
        "def bad_vjp(x, ct):\n    return jnp.cos(x) * ct['a'] + x * ct['b']\n"
        "def make_args():\n    return (jnp.linspace(0.0, 1.0, 3),)\n"
        "@jax.custom_jvp\ndef g(x):\n    return jnp.tanh(x)\n"
        "g.defjvp(lambda p, t: (g(p[0]), (1 - g(p[0])) * t[0]))\n"
        "def loss(x):\n    return jnp.sum(g(x) ** 2)\n"
    )
    out_json = tmp_path / "vjp.json"
    argv = ["check", f"{mod}:f", f"{mod}:bad_vjp", "--kind", "vjp", "--args", f"{mod}:make_args"]
    assert main([*argv, "--json", str(out_json)]) == 1
    assert "hand bug" in capsys.readouterr().out
    import json

    loc = json.loads(out_json.read_text())["locations"][0]
    assert (loc["output"], loc["input"], loc["kind"]) == ("out['b']", "x", "hand bug")
    audit = ["check", f"{mod}:loss", "--kind", "rules", "--args", f"{mod}:make_args"]
    assert main([*audit, "--mode", "fast"]) == 1
    assert "FAIL g (custom_jvp at" in capsys.readouterr().out


def test_given_cotangents_probe_and_localize():
    def f(x):
        return {"s": jnp.sum(jnp.sin(x)), "v": x * x[::-1]}

    def vjp(x, ct):
        return ct["s"] * jnp.cos(x) + ct["v"] * x[::-1] + (ct["v"] * x)[::-1]

    x = jnp.linspace(0.1, 1.0, 5)
    ct = {"s": jnp.asarray(1.0), "v": jnp.linspace(-1.0, 1.0, 5)}
    report = check_vjp(f, vjp, x, cotangents=[ct, jax.tree.map(jnp.ones_like, ct)])
    assert report.ok and "2 given cotangents" in str(report)
    bad = lambda x, ct: vjp(x, ct).at[2].add(1e-7 * ct["s"])  # noqa: E731
    report = check_vjp(f, bad, x, cotangents=ct)
    (loc,) = report.locations
    assert (loc.output, loc.input, loc.input_index) == ("out['s']", "x", (2,))


def test_cotangent_tree_mismatch_is_named():
    f = lambda x: {"s": jnp.sum(x), "v": x}  # noqa: E731
    vjp = lambda x, ct: ct["s"] + ct["v"]  # noqa: E731
    with pytest.raises(ValueError, match=r"cotangents returned a pytree with structure"):
        check_vjp(f, vjp, jnp.ones(3), cotangents={"s": 1.0})
    with pytest.raises(ValueError, match=r"cotangents\[1\] returned shape \(2,\) for out \(f's"):
        check_vjp(
            f,
            vjp,
            jnp.ones(3),
            cotangents=[{"s": 1.0, "v": jnp.ones(3)}, {"s": 1.0, "v": jnp.ones(2)}],
        )
