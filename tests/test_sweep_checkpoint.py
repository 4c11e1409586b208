"""Checkpoint and resume: a sweep killed mid-run resumes with no lost or repeated rows and the
same table as an uninterrupted run; a different sweep refuses the folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from _sweep_cases import LRS, Stop, gd_train, linreg_data, reference_sweep_grid, stop_after

from gradlab.sweeps import CheckpointError, sweep

WORKER = Path(__file__).with_name("_sweep_worker.py")
ROOT = Path(__file__).resolve().parents[1]
X, Y = linreg_data()
TRAIN = gd_train(X, Y)
KW = dict(lane_block=2, chunk_size=4)  # 24 configurations: 6 chunks


def _run_worker(out: Path, ckpt: Path, kill_after: int | None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("SWEEP_KILL_AFTER", None)
    if kill_after is not None:
        env["SWEEP_KILL_AFTER"] = str(kill_after)
    return subprocess.run(
        [sys.executable, str(WORKER), "checkpoint", str(out), str(ckpt)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_killed_process_resumes_to_the_same_table(tmp_path):
    ckpt = tmp_path / "ckpt"
    killed = _run_worker(tmp_path / "a", ckpt, kill_after=2)
    assert killed.returncode == 17, killed.stderr[-2000:]
    assert not (tmp_path / "a.npz").exists()
    assert json.loads((ckpt / "manifest.json").read_text())["format"] == 2
    assert sorted(p.name for p in ckpt.glob("rows_*.npz")) == [
        "rows_00000000_00000004.npz",
        "rows_00000004_00000008.npz",
    ]

    resumed = _run_worker(tmp_path / "b", ckpt, kill_after=None)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    z = np.load(tmp_path / "b.npz")
    assert z["ran"].tolist() == [12, 16, 20, 24]  # only the 4 missing chunks ran

    whole = sweep(TRAIN, reference_sweep_grid(), progress=False, **KW)
    leaves = jax.tree.leaves(whole.outputs)
    for i, want in enumerate(leaves):
        np.testing.assert_array_equal(z[f"arr_{i}"], want, strict=True)
    whole.to_csv(tmp_path / "whole.csv")
    assert (tmp_path / "b.csv").read_text() == (tmp_path / "whole.csv").read_text()
    assert len(list(ckpt.glob("rows_*.npz"))) == 6


def test_in_process_interrupt_and_finished_checkpoint(tmp_path):
    ckpt = tmp_path / "ck"
    with pytest.raises(Stop):
        sweep(TRAIN, reference_sweep_grid(), checkpoint=ckpt, progress=stop_after(3), **KW)
    seen = []
    res = sweep(TRAIN, reference_sweep_grid(), checkpoint=ckpt, progress=seen.append, **KW)
    assert [i.done for i in seen] == [16, 20, 24] and seen[0].total == 24
    whole = sweep(TRAIN, reference_sweep_grid(), progress=False, **KW)
    assert res.rows == whole.rows
    # a finished checkpoint runs nothing and returns the same table
    again = sweep(TRAIN, reference_sweep_grid(), checkpoint=ckpt, progress=stop_after(1), **KW)
    assert again.rows == whole.rows


def test_resume_cleans_debris_and_names_a_corrupt_chunk(tmp_path):
    ckpt = tmp_path / "ck"
    with pytest.raises(Stop):
        sweep(TRAIN, reference_sweep_grid(), checkpoint=ckpt, progress=stop_after(1), **KW)
    # a crash while writing chunk 2 leaves a temp file: deleted on resume
    tmp = ckpt / ".rows_00000004_00000008.npz.123.tmp"
    tmp.write_bytes(b"half a file")
    # a file at a chunk's name that is not one (atomic writes never leave it): named, not used
    (ckpt / "rows_00000004_00000008.npz").write_bytes(b"not an npz")
    with pytest.raises(CheckpointError, match=r"rows_00000004_00000008\.npz.*corrupt.*delete"):
        sweep(TRAIN, reference_sweep_grid(), checkpoint=ckpt, progress=False, **KW)
    assert not tmp.exists()
    (ckpt / "rows_00000004_00000008.npz").unlink()
    res = sweep(TRAIN, reference_sweep_grid(), checkpoint=ckpt, progress=False, **KW)
    whole = sweep(TRAIN, reference_sweep_grid(), progress=False, **KW)
    assert res.rows == whole.rows and res.meta["resumed_rows"] == 4


def test_a_different_sweep_is_refused(tmp_path):
    ckpt = tmp_path / "ck"
    with pytest.raises(Stop):
        sweep(TRAIN, reference_sweep_grid(), checkpoint=ckpt, progress=stop_after(1), **KW)
    other = {"lr": LRS[::-1], "seed": np.arange(3, dtype=np.int32)}
    with pytest.raises(CheckpointError, match="different sweep.*the grid"):
        sweep(TRAIN, other, checkpoint=ckpt, progress=False, **KW)
    with pytest.raises(CheckpointError, match="precision: highest -> tensorfloat32"):
        sweep(TRAIN, reference_sweep_grid(), checkpoint=ckpt, precision="tensorfloat32", **KW)
    with pytest.raises(CheckpointError, match="lane_block.*2 -> 4"):  # lanes differ in bits
        sweep(TRAIN, reference_sweep_grid(), checkpoint=ckpt, lane_block=4, chunk_size=4)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="must be a folder"):
        sweep(TRAIN, reference_sweep_grid(), checkpoint=tmp_path / "file", **KW)
