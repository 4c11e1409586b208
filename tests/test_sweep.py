"""gradlab.sweeps on one device: grid, lanes == lone runs (bitwise), keys, best, exports, input."""

from __future__ import annotations

import csv
import io
import json
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _sweep_cases import LRS, gd_train, linreg_data, reference_sweep_grid

from gradlab.sweeps import SweepResult, config_key, make_grid, sweep

X32, Y32 = linreg_data(dtype=jnp.float32)
TRAIN = gd_train(X32, Y32)
TRAIN60 = gd_train(X32, Y32, steps=60)  # long enough for large lrs to overflow
ALONE = jax.jit(TRAIN)  # shared: one compilation per precision for the whole module


def _assert_tree_equal(a, b):
    chex.assert_trees_all_equal(a, b, strict=True)  # structure, shapes, dtypes and values


def _lane(res: SweepResult, i: int):
    return jax.tree.map(lambda a: a[i], res.outputs)


# ---- grid -------------------------------------------------------------------------------


class TestGrid:
    def test_product_order_is_c_order(self):
        g = make_grid({"lr": [0.1, 0.2], "seed": range(3)})
        assert g.size == 6
        assert g.values["lr"].tolist() == [0.1, 0.1, 0.1, 0.2, 0.2, 0.2]
        assert g.values["seed"].tolist() == [0, 1, 2, 0, 1, 2]
        assert g.row(4) == {"lr": 0.2, "seed": 1}

    def test_zip_pairs_values(self):
        g = make_grid({"lr": [0.1, 0.2, 0.3], "l2": [0.0, 1.0, 2.0]}, "zip")
        assert g.size == 3 and g.values["l2"].tolist() == [0.0, 1.0, 2.0]

    def test_array_dtypes_kept_and_python_values_get_jax_default(self):
        g = make_grid({"a": np.array([1.0], np.float32), "b": [1.0], "c": [1, 2], "d": [True]})
        assert g.values["a"].dtype == np.float32
        assert g.values["b"].dtype == jnp.asarray(1.0).dtype  # float64 under the test config
        assert g.values["c"].dtype.kind == "i" and g.values["d"].dtype == np.bool_

    def test_fingerprint_tells_grids_apart(self):
        a = make_grid({"lr": [0.1, 0.2]})
        assert a.fingerprint() == make_grid({"lr": [0.1, 0.2]}).fingerprint()
        assert a.fingerprint() != make_grid({"lr": [0.1, 0.3]}).fingerprint()
        assert a.fingerprint() != make_grid({"lr": [0.1, 0.2]}, "zip").fingerprint()

    @pytest.mark.parametrize(
        "grid, combine, err, match",
        [
            ({}, "product", ValueError, "grid is empty"),
            ({"lr": []}, "product", ValueError, r"grid\['lr'\] is empty"),
            ({"lr": [0.1, 0.2], "l2": [0.0]}, "zip", ValueError, "same length when zipped"),
            ({"lr": ["a", "b"]}, "product", TypeError, "must hold numbers"),
            ({"lr": "0.1"}, "product", TypeError, "sequence or 1-D array"),
            ({"lr": 0.1}, "product", TypeError, "wrap a single value"),
            ({"lr": [[0.1], [0.2]]}, "product", ValueError, "must be 1-D"),
            ({"lr": [0.1, float("nan")]}, "product", ValueError, "must be finite"),
            ({1: [0.1]}, "product", TypeError, "identifiers"),
            ({"lr": [0.1]}, "outer", ValueError, "combine must be one of"),
            ([("lr", [0.1])], "product", TypeError, "mapping"),
        ],
    )
    def test_bad_grids(self, grid, combine, err, match):
        with pytest.raises(err, match=match):
            make_grid(grid, combine)


# ---- lanes are bitwise equal to lone runs ----------------------------------------------------


@pytest.fixture(scope="module")
def ref_sweep():
    return sweep(TRAIN, reference_sweep_grid(), lane_block=8, progress=False)


class TestLaneEquality:
    @pytest.mark.parametrize("precision", ["highest", "tensorfloat32"])
    def test_lane_block_1_equals_jit_train_bitwise(self, precision):
        res = sweep(
            TRAIN, reference_sweep_grid(), lane_block=1, progress=False, precision=precision
        )
        alone = ALONE
        with jax.default_matmul_precision(precision):
            for i in range(len(res)):
                hp = {k: jnp.asarray(v) for k, v in res.grid.row(i).items()}
                _assert_tree_equal(_lane(res, i), alone(hp, config_key(hp, i)))
        assert set(res.columns["precision"]) == {precision}

    @pytest.mark.parametrize("precision", ["highest", "tensorfloat32"])
    def test_lane_equals_config_run_alone_whatever_chunking(self, ref_sweep, precision):
        res = ref_sweep
        if precision != "highest":
            res = sweep(
                TRAIN, reference_sweep_grid(), lane_block=8, progress=False, precision=precision
            )
        chunked = sweep(
            TRAIN,
            reference_sweep_grid(),
            lane_block=8,
            chunk_size=8,
            progress=False,
            precision=precision,
        )
        _assert_tree_equal(res.outputs, chunked.outputs)
        assert chunked.meta["chunk_size"] == 8 and res.meta["chunk_size"] == 24
        for i in (0, 13, 23):  # first, middle of a block, last
            row = res.grid.row(i)
            alone = sweep(
                TRAIN,
                {k: [v] for k, v in row.items()},
                lane_block=8,
                progress=False,
                precision=precision,
            )
            _assert_tree_equal(_lane(res, i), _lane(alone, 0))

    def test_vectorized_lanes_agree_with_jit_train_to_rounding(self, ref_sweep):
        # Bitwise is only promised at equal lane_block (see _run): a GEMM and a GEMV sum in
        # different orders. They still agree to float32 rounding over 25 steps.
        alone = ALONE
        for i in range(0, len(ref_sweep), 5):
            hp = {k: jnp.asarray(v) for k, v in ref_sweep.grid.row(i).items()}
            if ref_sweep.diverged[i]:
                continue
            got = _lane(ref_sweep, i)
            want = alone(hp, config_key(hp, i))
            np.testing.assert_allclose(got["loss"], want["loss"], rtol=2e-5)

    def test_keys_from_seed_or_index(self):
        def train(hp, key):
            return {"u": jax.random.uniform(key, ())}

        with_seed = sweep(train, {"seed": [5, 5, 7]}, combine="zip", progress=False)
        u = with_seed.columns["u"]
        assert u[0] == u[1] != u[2]
        assert u[0] == jax.random.uniform(jax.random.key(5), ())
        by_index = sweep(train, {"lr": [0.1, 0.1, 0.1]}, combine="zip", progress=False)
        u = by_index.columns["u"]
        assert len(set(u.tolist())) == 3
        assert u[2] == jax.random.uniform(jax.random.fold_in(jax.random.key(0), 2), ())


# ---- table --------------------------------------------------------------------------------


class TestTable:
    def test_rows_hparams_and_columns(self, ref_sweep):
        assert len(ref_sweep) == 24 and len(ref_sweep.rows) == 24
        row = ref_sweep.row(4)
        assert row["index"] == 4 and row["lr"] == float(LRS[1]) and row["seed"] == 1
        assert row["loss"] == float(ref_sweep.outputs["loss"][4])
        assert ref_sweep.history["loss"].shape == (24, 25)
        assert ref_sweep.params["w"].shape == (24, 5)

    def test_best_ignores_diverged_rows(self):
        lrs = np.array([1e-3, 1e-2, 0.1, 50.0, 1e4], np.float32)
        res = sweep(TRAIN60, {"lr": lrs}, progress=False)
        assert res.diverged.tolist() == [False, False, False, True, True]
        best = res.best("loss")
        finite = res.columns["loss"][~res.diverged]
        assert best["loss"] == finite.min() and best["lr"] == pytest.approx(0.1)
        assert res.best("loss", mode="max")["lr"] == pytest.approx(1e-3)

    def test_best_errors(self, ref_sweep):
        with pytest.raises(ValueError, match="numeric columns"):
            ref_sweep.best("accuracy")
        with pytest.raises(ValueError, match="mode must be"):
            ref_sweep.best("loss", mode="lowest")
        res = sweep(TRAIN60, {"lr": [1e4, 1e5]}, progress=False)
        with pytest.raises(ValueError, match="no row has a finite"):
            res.best("loss")

    def test_csv_and_json_round_trip(self, ref_sweep, tmp_path):
        ref_sweep.to_csv(tmp_path / "t.csv")
        with open(tmp_path / "t.csv") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 24 and list(rows[0]) == ref_sweep.column_names
        for r, want in zip(rows, ref_sweep.rows, strict=True):
            assert float(r["loss"]) == want["loss"]  # repr floats read back exactly
            assert int(r["seed"]) == want["seed"]
            assert r["diverged"] == str(want["diverged"])
        doc = json.loads(ref_sweep.to_json(tmp_path / "t.json"))
        assert doc["meta"]["size"] == 24 and doc["meta"]["precision"] == "highest"
        assert doc["columns"] == ref_sweep.column_names
        assert doc["rows"][7][doc["columns"].index("loss")] == ref_sweep.row(7)["loss"]
        assert json.loads((tmp_path / "t.json").read_text()) == doc

    def test_json_writes_null_for_non_finite(self):
        res = sweep(TRAIN60, {"lr": [1e-3, 1e5]}, progress=False)
        doc = json.loads(res.to_json())
        cols = doc["columns"]
        assert doc["rows"][1][cols.index("loss")] is None
        assert doc["rows"][1][cols.index("diverged")] is True
        assert doc["rows"][0][cols.index("loss")] == res.row(0)["loss"]

    def test_to_pandas(self, ref_sweep):
        try:
            import pandas  # noqa: F401
        except ModuleNotFoundError:
            with pytest.raises(ImportError, match="needs pandas"):
                ref_sweep.to_pandas()
        else:
            df = ref_sweep.to_pandas()
            assert list(df.columns) == ref_sweep.column_names and len(df) == 24


# ---- bad train, caught before any configuration runs ------------------------------------------


def _never_called(info):
    raise AssertionError("a chunk ran before the error")


class TestBadTrain:
    def _expect(self, train, err, match, tmp_path):
        with pytest.raises(err, match=match):
            sweep(train, {"lr": [0.1, 0.2]}, checkpoint=tmp_path / "ck", progress=_never_called)
        assert not (tmp_path / "ck").exists()

    def test_python_scalar(self, tmp_path):
        self._expect(lambda hp, key: {"loss": 1.0}, TypeError, "returned a float", tmp_path)

    def test_numpy_array(self, tmp_path):
        self._expect(lambda hp, key: np.zeros(3), TypeError, "returned a ndarray", tmp_path)

    def test_closes_over_a_leaked_tracer(self, tmp_path):
        leaked = []

        @jax.jit
        def f(x):
            leaked.append(x)
            return x

        f(1.0)
        self._expect(lambda hp, key: hp["lr"] * leaked[0], ValueError, "leaked", tmp_path)

    def test_output_shape_depends_on_a_value(self, tmp_path):
        def train(hp, key):
            return jnp.zeros(int(hp["lr"] * 10))

        self._expect(train, ValueError, "output shapes", tmp_path)

    def test_python_control_flow_on_a_value(self, tmp_path):
        def train(hp, key):
            return hp["lr"] if hp["lr"] > 0.15 else -hp["lr"]

        self._expect(train, ValueError, "concrete value", tmp_path)

    def test_nothing_returned(self, tmp_path):
        self._expect(lambda hp, key: {}, TypeError, "no arrays", tmp_path)

    def test_bad_arguments(self):
        with pytest.raises(TypeError, match="callable"):
            sweep("train", {"lr": [0.1]})
        with pytest.raises(ValueError, match="precision"):
            sweep(TRAIN, {"lr": [0.1]}, precision="tf32")
        with pytest.raises(TypeError, match="seed"):
            sweep(TRAIN, {"lr": [0.1], "seed": [0.5]})
        with pytest.raises(ValueError, match="lane_block"):
            sweep(TRAIN, {"lr": [0.1]}, lane_block=0)
        with pytest.raises(ValueError, match="chunk_size"):
            sweep(TRAIN, {"lr": [0.1]}, chunk_size=-1)
        with pytest.raises(TypeError, match="progress"):
            sweep(TRAIN, {"lr": [0.1]}, progress="yes")
        with pytest.raises(ValueError, match="clash"):
            sweep(lambda hp, key: {"lr": hp["lr"]}, {"lr": [0.1]}, progress=False)


def test_progress_bar_is_throttled_and_on_stderr(capsys):
    sweep(TRAIN, {"lr": LRS}, lane_block=2, chunk_size=2, progress=True)
    err = capsys.readouterr().err
    assert "8/8 configs, chunk 4/4" in err and err.endswith("\n")
    assert err.count("sweep [") < 4  # 4 chunks in well under 0.5 s each: throttled


def test_memory_budget_sets_chunks():
    # one config's outputs: w (5) + loss (1) + history (25) float32 = 124 bytes; eq. (2)
    res = sweep(TRAIN, {"lr": LRS}, lane_block=2, memory_budget=2 * 2 * 124, progress=False)
    assert res.meta["chunk_size"] == 2
    whole = sweep(TRAIN, {"lr": LRS}, lane_block=2, progress=False)
    assert whole.meta["chunk_size"] == 8
    _assert_tree_equal(res.outputs, whole.outputs)


class TestFitRows:
    """A ``gradlab.fit`` train function: rows read the FitResult by duck typing."""

    def test_rows_from_fit_results(self):
        from gradlab import fit

        x = np.linspace(0, 10, 80)
        X = np.c_[np.ones_like(x), x]
        y = 2.5 + 1.7 * x + np.random.default_rng(42).normal(0, 1.0, 80)

        def loss(w, X, y):
            r = X @ w - y
            return r @ r / X.shape[0]

        def train(hp, key):
            return fit(loss, jnp.zeros(2), (X, y), optax.sgd(hp["lr"]), 200, record_every=10)

        res = sweep(train, {"lr": [0.001, 0.01, 0.05, 0.2]}, progress=False)  # seed 002's lrs
        assert res.diverged.tolist() == [False, False, True, True]  # bound 2/68.5 = 0.029
        assert res.columns["steps_taken"][:2].tolist() == [200, 200]
        assert np.all(res.columns["steps_taken"][2:] < 200)
        np.testing.assert_array_equal(res.columns["loss"], res.history["loss"][:, -1])
        assert set(res.columns) >= {"loss", "grad_norm", "stopped_early", "precision"}
        assert res.history_steps.tolist() == list(range(10, 201, 10))
        assert res.best("loss")["lr"] == 0.01
        assert res.params.shape == (4, 2)


# ---- hyperparameters exactly as given, chunk sizes as asked ------------------------------------


def _seen(hp, key):
    """The hyperparameters as train receives them (dtype and value)."""
    return {f"seen_{k}": v + jnp.zeros((), v.dtype) for k, v in hp.items()}


class TestExactHyperparameters:
    def test_table_holds_the_values_given(self):
        res = sweep(_seen, {"l2": [0.1, 0.3]}, progress=False)
        assert res.row(0)["l2"] == 0.1 and res.grid.values["l2"].dtype == np.float64
        with jax.enable_x64(False):
            res = sweep(_seen, {"l2": [0.1], "seed": [2**31 - 1]}, progress=False)
        assert res.row(0)["l2"] == 0.1  # stored as given ...
        assert res.columns["seen_l2"].dtype == np.float32  # ... and traced in float32
        assert res.columns["seen_l2"][0] == np.float32(0.1)
        assert res.row(0)["seed"] == 2**31 - 1
        # with x64 the values no 32-bit type holds run as given
        res = sweep(_seen, {"seed": [2**32], "lr": [1e-50, 1e39]}, progress=False)
        assert res.columns["seen_lr"].tolist() == [1e-50, 1e39]
        assert res.columns["seen_seed"].tolist() == [2**32, 2**32]

    @pytest.mark.parametrize(
        "grid, match",
        [
            ({"seed": [2**32]}, r"value 4294967296 \(index 0\) does not fit int32.*wrap to 0"),
            ({"seed": [0, -(2**31) - 1]}, r"index 1\) does not fit int32"),
            ({"lr": [0.1, 1e39]}, r"1e\+39 \(index 1\) overflows float32"),
            ({"lr": [1e-50]}, r"1e-50 \(index 0\) underflows float32"),
            ({"lr": np.array([1e-40])}, "underflows float32"),
        ],
    )
    def test_values_the_compute_dtype_cannot_hold_are_refused(self, grid, match):
        with jax.enable_x64(False), pytest.raises(ValueError, match=match + ".*x64"):
            sweep(_seen, grid, progress=_never_called)

    def test_a_bfloat16_grid_is_accepted(self):
        lrs = jnp.asarray([0.5, 0.25], jnp.bfloat16)
        res = sweep(_seen, {"lr": lrs}, progress=False)
        assert res.columns["seen_lr"].tolist() == [0.5, 0.25]


class TestChunkSize:
    def test_chunk_size_is_honoured_exactly(self):
        res = sweep(TRAIN, {"lr": np.linspace(1e-3, 1e-2, 200)}, chunk_size=16, progress=False)
        assert res.meta["chunk_size"] == 16 and res.lane_block == 16
        res = sweep(TRAIN, {"lr": LRS}, chunk_size=6, progress=False)
        assert res.meta["chunk_size"] == 6 and res.lane_block == 2

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            (dict(chunk_size=True), "chunk_size must be a positive integer"),
            (dict(chunk_size=6, lane_block=4), r"multiple of devices x lane_block = 1 x 4.*4 or 8"),
        ],
    )
    def test_bad_chunking_is_an_error(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            sweep(TRAIN, {"lr": LRS}, progress=_never_called, **kwargs)


class TestOutputTypes:
    def test_complex_column_is_refused_before_running(self, tmp_path):
        def train(hp, key):
            return {"loss": jax.lax.complex(hp["lr"], hp["lr"])}  # lr (1 + 1j)

        with pytest.raises(TypeError, match="'loss' is complex.*real numbers"):
            sweep(train, {"lr": [0.1]}, checkpoint=tmp_path / "ck", progress=_never_called)

    def test_key_output_is_refused(self):
        with pytest.raises(TypeError, match="PRNG key at .*'k'.*key_data"):
            sweep(lambda hp, key: {"k": key, "x": hp["lr"]}, {"lr": [0.1]}, progress=False)


# ---- progress within a chunk -------------------------------------------------------------------


class TestProgressWithinChunk:
    def test_blocks_report_before_the_chunk_ends_and_lanes_keep_their_bits(self, monkeypatch):
        from gradlab.sweeps import _progress

        events = []
        real_block, real_update = _progress.Progress.block_done, _progress.Progress.update
        monkeypatch.setattr(
            _progress.Progress,
            "block_done",
            lambda s, n: (events.append(f"b{n}"), real_block(s, n)),
        )
        monkeypatch.setattr(
            _progress.Progress, "update", lambda s, r: (events.append(f"c{r}"), real_update(s, r))
        )
        shown = sweep(TRAIN, {"lr": LRS}, lane_block=2, progress=True)  # one chunk of 4 blocks
        assert events == ["b1", "b1", "b1", "b1", "c8"]  # 4 blocks, at most MAX_REPORTS calls
        events.clear()
        sweep(TRAIN, {"lr": np.tile(LRS, 4)}, lane_block=2, progress=True)  # 16 blocks
        assert events == ["b4", "b4", "b4", "b4", "c32"]
        quiet = sweep(TRAIN, {"lr": LRS}, lane_block=2, progress=False)
        _assert_tree_equal(shown.outputs, quiet.outputs)

    def test_terminal_redraws_and_logs_get_lines(self, monkeypatch):
        from gradlab.sweeps import _progress
        from gradlab.sweeps._progress import Progress

        monkeypatch.setattr(_progress, "_tqdm_class", lambda: None)  # the built-in bar
        for stream, tty in ((io.StringIO(), False), (_Tty(), True)):
            bar = Progress(True, total=8, start=0, n_chunks=1, lane_block=2, stream=stream,
                           min_interval=0.0, log_interval=0.0)  # fmt: skip
            with bar:
                bar.begin_chunk(8)
                for _ in range(4):
                    bar.block_done()
                bar.update(8)
            text = stream.getvalue()
            assert "2/8 configs, chunk 1/1" in text and "8/8 configs" in text
            assert ("\r" in text) == tty and text.endswith("\n")
            assert text.count("\n") == (1 if tty else 5)


class _Tty(io.StringIO):
    def isatty(self):
        return True


class TestTqdm:
    """With tqdm installed (the ``progress`` extra): tqdm on a terminal, the built-in lines in
    logs; the resume line on its own line; no bar left open."""

    def test_tqdm_draws_the_terminal_bar_and_logs_keep_lines(self):
        tqdm = pytest.importorskip("tqdm").tqdm
        from gradlab.sweeps._progress import Progress

        for stream, tty in ((io.StringIO(), False), (_Tty(), True)):
            bar = Progress(True, total=8, start=2, n_chunks=1, lane_block=2, stream=stream,
                           min_interval=0.0, log_interval=0.0)  # fmt: skip
            bar.resuming(1, 2, 2, "ck")
            with bar:
                bar.begin_chunk(6)
                for _ in range(3):
                    bar.block_done()
                bar.update(6)
            text = stream.getvalue()
            assert text.startswith("sweep: resuming: 1 of 2 chunks done (2 of 8 rows, from ck)\n")
            assert ("100%" in text and "8/8 [" in text) == tty  # tqdm's own format
            assert ("8/8 configs, chunk 1/1" in text) == (not tty)
            assert text.endswith("\n") and len(tqdm._instances) == 0

    def test_a_sweep_on_a_terminal_resumed_or_not(self, tmp_path, monkeypatch):
        tqdm = pytest.importorskip("tqdm").tqdm
        kw = dict(lane_block=2, chunk_size=4, checkpoint=tmp_path / "ck", progress=True)
        for expect in ("8/8 [", "resuming: 2 of 2 chunks done"):
            monkeypatch.setattr(sys, "stderr", _Tty())
            sweep(TRAIN, {"lr": LRS}, **kw)
            text = sys.stderr.getvalue()
            assert expect in text and text.endswith("\n"), text
            assert len(tqdm._instances) == 0
        assert "%|" not in text  # resumed in full: no chunk ran, no bar drawn


def test_no_module_is_shadowed_by_the_sweep_function():
    import importlib
    import inspect

    import gradlab
    import gradlab.sweeps as package

    assert inspect.isfunction(gradlab.sweep) and inspect.ismodule(package)
    assert package.sweep is gradlab.sweep and package.make_grid is make_grid
    with pytest.raises(ModuleNotFoundError, match="gradlab.sweep"):
        importlib.import_module("gradlab.sweep")
