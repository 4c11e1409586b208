"""SweepResult for analysts: aggregate over seeds (best, summary), labelled grid arrays, pandas."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradlab.sweeps import sweep

LRS = [0.1, 0.2, 0.3]


def noisy(hp, key):
    """Mean loss (lr - 0.2)^2 + l2; the seed adds noise, lr=0.3's seed 0 is very lucky."""
    noise = 0.001 * jax.random.normal(key, ())
    lucky = jnp.where((hp["lr"] == 0.3) & (hp["seed"] == 0), -0.02, 0.0)
    loss = (hp["lr"] - 0.2) ** 2 + hp["l2"] + noise + lucky
    return {"loss": loss, "diverged": hp["lr"] * hp["l2"] > 0.25}


@pytest.fixture(scope="module")
def res():
    grid = {"lr": jnp.asarray(LRS), "l2": jnp.asarray([0.0, 1.0]), "seed": range(4)}
    return sweep(noisy, grid, progress=False)


def test_best_aggregates_over_seeds_by_default(res):
    single = res.best("loss", over=())
    assert single["lr"] == pytest.approx(0.3) and single["seed"] == 0  # the luckiest seed
    best = res.best("loss")
    assert best["lr"] == pytest.approx(0.2) and best["l2"] == 0.0
    assert best["seed"] == [0, 1, 2, 3] and best["count"] == 4 and best["diverged"] == 0
    losses = res.columns["loss"][(np.isclose(res.hparams["lr"], 0.2)) & (res.hparams["l2"] == 0)]
    assert best["loss"] == best["loss_mean"] == pytest.approx(losses.mean(), rel=1e-12)
    assert best["loss_std"] == pytest.approx(losses.std(ddof=1), rel=1e-12)
    assert res.best("loss", over="seed", agg="min")["lr"] == pytest.approx(0.3)
    assert res.best("loss", mode="max", over=["seed", "l2"])["lr"] == pytest.approx(0.1)


def test_summary_mean_std_count_and_divergences(res):
    table = res.summary()
    assert list(table)[:4] == ["lr", "l2", "count", "diverged"]
    assert len(table["lr"]) == 6 and table["count"].tolist() == [4, 4, 4, 4, 4, 0]
    assert table["diverged"].tolist() == [0, 0, 0, 0, 0, 4]  # lr 0.3 x l2 1.0 diverges
    assert np.isnan(table["loss_mean"][5])  # nothing left to average
    by_lr = res.summary(by="lr", metrics=["loss"])
    assert set(by_lr) == {"lr", "count", "diverged"} | {
        f"loss_{s}" for s in ("mean", "std", "median", "min", "max")
    }
    assert by_lr["count"].tolist() == [8, 8, 4] and by_lr["diverged"].tolist() == [0, 0, 4]
    with pytest.raises(ValueError, match=r"by must name grid axes \['lr', 'l2', 'seed'\]"):
        res.summary(by=["momentum"])
    with pytest.raises(ValueError, match="metrics must be numeric columns"):
        res.summary(metrics=["precision"])
    with pytest.raises(ValueError, match="agg must be one of"):
        res.best("loss", agg="mode")
    with pytest.raises(ValueError, match="no group has a finite 'loss' mean"):
        sweep(noisy, {"lr": [0.3], "l2": [1.0], "seed": [0, 1]}, progress=False).best("loss")


def test_to_grid_labels_every_axis(res):
    g = res.to_grid()
    assert g.dims == ("lr", "l2", "seed") and g.data["loss"].shape == (3, 2, 4)
    np.testing.assert_allclose(g.coords["lr"], LRS)
    for i in range(len(res)):
        row = res.row(i)
        cell = (LRS.index(round(row["lr"], 6)), int(row["l2"]), row["seed"])
        assert g.data["loss"][cell] == row["loss"] and g.data["diverged"][cell] == row["diverged"]
    grid = {"lr": [0.1, 0.2], "l2": [0.0, 1.0], "seed": [0, 0]}
    zipped = sweep(noisy, grid, combine="zip", progress=False)
    with pytest.raises(ValueError, match="2 rows for 4 cells"):
        zipped.to_grid()


def test_to_pandas_and_summary_as_a_dataframe(res):
    pd = pytest.importorskip("pandas")  # the [pandas] extra; installed by make (constraints)
    df = res.to_pandas()
    assert list(df.columns) == res.column_names and len(df) == 24
    mine = pd.DataFrame(res.summary(by=["lr", "l2"], metrics=["loss"]))
    ok = df[~df["diverged"]]
    theirs = ok.groupby(["lr", "l2"], sort=False)["loss"].agg(["mean", "std", "count"])
    theirs = theirs.reset_index()
    np.testing.assert_allclose(mine["loss_mean"][:5], theirs["mean"], rtol=1e-12)
    np.testing.assert_allclose(mine["loss_std"][:5], theirs["std"], rtol=1e-12)
    assert mine["count"][:5].tolist() == theirs["count"].tolist()
