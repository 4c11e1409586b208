"""Flagged runs in sweep tables: ``FitResult.invalid`` and its reason reach every row, export and
checkpoint, and an invalid row is never the best (as a diverged one)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradlab
from gradlab.derivations.mse import mse_mean
from gradlab.sweeps import sweep

_RNG = np.random.default_rng(42)
_X = np.linspace(0, 10, 40)
X = jnp.asarray(_X[:, None])
Y = jnp.asarray(2.5 + 1.7 * _X + _RNG.normal(0, 1.0, size=_X.shape[0]))
P0 = {"w": jnp.zeros(1), "b": jnp.zeros(())}
GRID = {"lr": np.array([0.005, 0.01, -0.01]), "seed": np.arange(3, dtype=np.int32)}
STEPS = 20


def train(hp, key):
    """lr 0.01 with seed 2 gets a NaN in ``X``; a negative ``lr`` is an invalid (traced)
    learning rate."""
    del key
    Xs = jnp.where((hp["seed"] == 2) & (hp["lr"] == 0.01), X.at[3, 0].set(jnp.nan), X)
    opt = gradlab.optim.with_learning_rate(optax.sgd, hp["lr"])
    return gradlab.fit(mse_mean, P0, (Xs, Y), opt, STEPS)


@pytest.fixture(scope="module")
def res():
    return sweep(train, GRID, progress=False)


def test_invalid_rows_are_flagged_with_their_reason(res):
    t = res.table()
    # rows: lr 0.005 x seeds 0-2, lr 0.01 x seeds 0-2 (seed 2: NaN in X), lr -0.01 x seeds 0-2
    assert t["invalid"].tolist() == [False] * 5 + [True] * 4
    reasons = t["invalid_reason"].tolist()
    assert reasons[:5] == [""] * 5
    assert reasons[5].startswith("X must be finite")
    assert all("learning_rate must be > 0" in r for r in reasons[6:])
    assert "invalid" in res.column_names and "invalid_reason" in res.column_names
    assert "0 diverged, 4 invalid" in repr(res)


def test_valid_rows_are_unaffected(res):
    alone = jax.jit(lambda: gradlab.fit(mse_mean, P0, (X, Y), optax.sgd(0.01), STEPS))()
    np.testing.assert_allclose(res.columns["loss"][3:5], float(alone.loss), rtol=1e-12)
    assert res.columns["steps_taken"].tolist() == [STEPS] * 5 + [0] * 4
    assert not res.diverged.any()  # invalid is its own outcome


def test_best_and_summary_never_pick_an_invalid_row(res):
    # the invalid rows never moved: their loss is the start loss, the largest finite one
    assert res.best("loss", "max", over=())["lr"] == 0.005
    best = res.best("loss", "max")  # aggregated over seeds: lr 0.01 has an invalid seed
    assert best["lr"] == 0.005 and best["invalid"] == 0
    assert res.best("loss", "min")["lr"] == 0.005
    s = res.summary()
    assert s["invalid"].tolist() == [0, 1, 3] and s["diverged"].tolist() == [0, 0, 0]
    assert s["count"].tolist() == [3, 2, 0]  # runs aggregated: neither diverged nor invalid
    assert np.isnan(s["loss_mean"][2])


def test_exports_carry_the_flags(res, tmp_path):
    doc = json.loads(res.to_json())
    i, r = doc["columns"].index("invalid"), doc["columns"].index("invalid_reason")
    assert [row[i] for row in doc["rows"]] == res.columns["invalid"].tolist()
    assert [row[r] for row in doc["rows"]] == res.columns["invalid_reason"].tolist()
    text = res.to_csv(tmp_path / "t.csv").read_text().splitlines()
    header = text[0].split(",")
    assert "invalid" in header and "invalid_reason" in header
    assert "X must be finite" in text[6]


def test_a_checkpoint_round_trips_the_flags(res, tmp_path):
    first = sweep(train, GRID, progress=False, checkpoint=tmp_path, chunk_size=4, lane_block=2)
    again = sweep(train, GRID, progress=False, checkpoint=tmp_path, chunk_size=4, lane_block=2)
    assert again.meta["resumed_rows"] == 9
    for name in ("invalid", "invalid_reason"):
        assert again.columns[name].tolist() == first.columns[name].tolist()
        assert again.columns[name].tolist() == res.columns[name].tolist()
