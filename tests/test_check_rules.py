"""Custom rules: found at any depth, removed, recorded at their operands, audited in a model that
uses four of them (exactly the planted one is named), and a primal autodiff cannot differentiate
is checked against a reference or reported unchecked, never passed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import custom_rules as cr
from gradlab import audit_rules, check_rules
from gradlab.check import Finding, _rules


@jax.custom_jvp
def softplus(x):
    return jnp.logaddexp(x, 0.0)


@softplus.defjvp
def softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return softplus(x), 2.0 * jax.nn.sigmoid(x) * t  # wrong by a factor 2


@jax.custom_vjp
def outer(x):
    return softplus(x) * 3.0  # a rule inside another rule's primal


outer.defvjp(lambda x: (outer(x), x), lambda x, g: (3.0 * jax.nn.sigmoid(x) * g,))


def deep(x):
    y = jax.jit(outer)(x)
    y, _ = jax.lax.scan(lambda c, _: (softplus(c) * 0.5, None), y, None, length=2)
    y = jax.checkpoint(lambda y: jax.lax.cond(y.sum() > 1.5, softplus, jnp.sin, y))(y)
    return jax.lax.while_loop(lambda c: c[0] < 2, lambda c: (c[0] + 1, softplus(c[1])), (0, y))[1]


def test_find_rules_at_every_depth_with_name_source_and_place():
    _, sites = _rules.find_rules(deep, jnp.ones(3))
    found = [(s.name, s.kind.value, s.where) for s in sites]
    assert found == [
        ("outer", "custom_vjp", ("jit",)),
        ("softplus", "custom_jvp", ("jit", "custom_vjp:outer")),
        ("softplus", "custom_jvp", ("scan",)),
        ("softplus", "custom_jvp", ("remat2", "cond")),
        ("softplus", "custom_jvp", ("while",)),
    ]
    assert sites[1].rule == "softplus_jvp"
    assert sites[1].source.startswith("tests/test_check_rules.py:")


def test_strip_differentiates_the_primal_at_every_depth():
    x = jnp.linspace(-1.0, 1.0, 3)
    plain = lambda x: jax.nn.softplus(x)  # noqa: E731
    reference = jax.grad(lambda x: jnp.sum(plain(x)))(x)
    assert not np.allclose(jax.grad(lambda x: jnp.sum(softplus(x)))(x), reference)
    np.testing.assert_allclose(
        jax.grad(lambda x: jnp.sum(_rules.strip(softplus)(x)))(x), reference, rtol=1e-14
    )
    # the stripped deep function equals the same function written without any rule
    plain_outer = lambda x: plain(x) * 3.0  # noqa: E731

    def plain_deep(x):
        y, _ = jax.lax.scan(lambda c, _: (plain(c) * 0.5, None), plain_outer(x), None, length=2)
        y = plain(y)  # the cond takes the softplus branch at these arguments
        return plain(plain(y))

    g = jax.jacfwd(_rules.strip(deep))(x)  # forward mode: reverse cannot cross the while_loop
    np.testing.assert_allclose(g, jax.jacfwd(plain_deep)(x), rtol=1e-12)


def test_record_operands_first_iteration_and_branch_not_taken():
    x = jnp.asarray([0.5, -1.0, 2.0])
    closed, sites = _rules.find_rules(deep, x)
    ops = _rules.record_operands(closed, [x])
    np.testing.assert_allclose(ops[id(sites[0].eqn)][0], x)  # outer gets x itself
    np.testing.assert_allclose(ops[id(sites[2].eqn)][0], 3.0 * jax.nn.softplus(x))
    assert len(ops) == len(sites)  # every branch is taken here ...
    closed, sites = _rules.find_rules(deep, -10.0 * jnp.ones(3))
    ops = _rules.record_operands(closed, [-10.0 * jnp.ones(3)])
    assert id(sites[3].eqn) not in ops  # ... but not the cond's softplus when y.sum() <= 1.5


def test_audit_names_the_wrong_rule_inside_a_deep_function():
    report = audit_rules(deep, jnp.asarray([0.5, -1.0, 2.0]), mode="fast")
    assert not report.ok
    assert set(report.failing) == {"softplus"}
    by_place = {(c.name, c.where): c.ok for c in report.rules}
    assert by_place[("outer", ("jit",))] is True
    # reverse mode cannot cross the while_loop: the whole-function check says so, and runs not
    assert report.whole is None and "while_loop" in report.whole_skipped


@pytest.fixture(scope="module")
def model_args():
    params, x, labels = cr.init(jax.random.key(0), 8, 4)
    return params, x, labels


def test_audit_model_with_four_correct_rules_passes(model_args):
    params, x, labels = model_args
    report = audit_rules(lambda p: cr.model(p, x, labels), params)
    assert report.ok, report
    assert sorted(c.name for c in report.rules) == sorted(cr.RULES)
    assert report.whole is not None and report.whole.ok
    assert report.to_dict()["rules"][0]["kind"] == "ok"


@pytest.mark.parametrize(
    "planted", [("logsumexp", "flash_attention"), ("layer_norm", "fixed_point")]
)
def test_audit_model_names_exactly_the_planted_rules(model_args, planted):
    params, x, labels = model_args
    report = audit_rules(lambda p: cr.model(p, x, labels, planted), params, whole=False)
    assert not report.ok
    assert sorted(report.failing) == sorted(planted)
    for c in report.rules:
        if not c.ok:
            assert c.kind is Finding.HAND_BUG
            assert c.source.startswith("experiments/custom_rules.py:")
            loc = c.report.locations[0]
            assert loc.rule == c.label and loc.output.startswith("out")
    assert "FAIL" in str(report) and "experiments/custom_rules.py" in str(report)


def test_fixed_point_wrong_transpose_names_w_and_x():
    rng = np.random.default_rng(3)
    W = jnp.asarray(0.3 * rng.normal(size=(3, 3)))
    x = jnp.asarray(rng.normal(size=(2, 3)))
    assert check_rules(cr.make_fixed_point(False), W, x, argnums=(0, 1), mode="full").ok
    report = check_rules(cr.make_fixed_point(True), W, x, argnums=(0, 1), mode="full")
    assert {loc.input for loc in report.locations} == {"W", "x"}
    assert all(loc.kind is Finding.HAND_BUG for loc in report.locations)


# ---- a primal autodiff cannot differentiate --------------------------------------------------


def _host_tanh(x):
    return jax.pure_callback(
        lambda v: np.tanh(v), jax.ShapeDtypeStruct(x.shape, x.dtype), x, vmap_method="sequential"
    )


def _make_callback_rule(scale: float):
    @jax.custom_jvp
    def host_tanh(x):
        return _host_tanh(x)

    @host_tanh.defjvp
    def host_tanh_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        y = host_tanh(x)
        return y, scale * (1.0 - y**2) * t

    return host_tanh


def test_callback_primal_is_unchecked_without_reference_never_passed():
    rule = _make_callback_rule(1.0)
    report = audit_rules(lambda x: jnp.sum(rule(x) ** 2), jnp.linspace(-1.0, 1.0, 4))
    assert not report.ok
    (check,) = report.rules
    assert check.kind is Finding.UNCHECKED_RULE and "differentiate its primal" in check.reason
    assert report.whole is None
    assert any(v.kind is Finding.UNCHECKED_RULE for v in report.verdicts)


def test_callback_primal_is_checked_against_a_reference():
    x = jnp.linspace(-1.0, 1.0, 4)
    refs = {"host_tanh": lambda x: jnp.tanh(x)}
    good = audit_rules(lambda x: jnp.sum(_make_callback_rule(1.0)(x) ** 2), x, references=refs)
    assert good.ok, good
    bad = audit_rules(lambda x: jnp.sum(_make_callback_rule(1.5)(x) ** 2), x, references=refs)
    assert bad.failing == ("host_tanh",) and bad.rules[0].kind is Finding.HAND_BUG


def test_references_must_map_names_to_functions():
    with pytest.raises(TypeError, match="references must map rule names"):
        audit_rules(jnp.sin, jnp.ones(2), references={"sin": 1.0})
