"""A sweep sharded over 8 CPU devices, and over 2 processes x 2 devices with
``jax.distributed``, equals the one-device sweep bit for bit (subprocesses: the device count is
fixed when jax starts)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from _sweep_cases import gd_train, linreg_data, reference_sweep_grid
from _sweep_worker import CASES, DIST_CASES

from gradlab.sweeps import sweep

WORKER = Path(__file__).with_name("_sweep_worker.py")
ROOT = Path(__file__).resolve().parents[1]


def _env(n_devices: int) -> dict:
    env = dict(os.environ)
    env["SWEEP_CPU_DEVICES"] = str(n_devices)  # _sweep_worker: chex.set_n_cpu_devices
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("JAX_PLATFORMS", None)
    return env


@pytest.fixture(scope="module")
def one_device():
    X, y = linreg_data()
    train = gd_train(X, y)
    out = {}
    for lane_block, chunk_size, precision in CASES:
        res = sweep(
            train,
            reference_sweep_grid(),
            lane_block=lane_block,
            chunk_size=chunk_size,
            precision=precision,
            progress=False,
        )
        assert res.devices == 1
        out[f"{lane_block}_{chunk_size}_{precision}"] = jax.tree.leaves(res.outputs)
    return out


def _compare(z, one_device, cases=CASES):
    for lane_block, chunk_size, precision in cases:
        tag = f"{lane_block}_{chunk_size}_{precision}"
        leaves = one_device[tag]
        for i, want in enumerate(leaves):
            got = z[f"{tag}_{i}"]
            assert got.dtype == want.dtype, tag
            np.testing.assert_array_equal(got, want, err_msg=f"case {tag}, leaf {i}")


def test_eight_devices_equal_one_bitwise(one_device, tmp_path):
    out = tmp_path / "eight.npz"
    proc = subprocess.run(
        [sys.executable, str(WORKER), "devices", str(out)],
        env=_env(8),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    z = np.load(out)
    assert int(z["devices"]) == 8
    assert int(z["2_16_highest_chunk"]) == 16  # 8 devices x 1 block x 2 lanes: 2 chunks
    assert int(z["8_None_highest_chunk"]) == 64  # one chunk, 40 padded lanes dropped
    _compare(z, one_device)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_bitwise(one_device, tmp_path):
    port = _free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                "distributed",
                str(tmp_path / f"p{i}.npz"),
                str(i),
                str(port),
            ],
            env=_env(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    errs = []
    try:
        for p in procs:
            _, err = p.communicate(timeout=240)
            errs.append(err)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, err in zip(procs, errs, strict=True):
        assert p.returncode == 0, err[-3000:]
    for i in range(2):  # every process holds the full table
        z = np.load(tmp_path / f"p{i}.npz")
        assert int(z["processes"]) == 2 and int(z["devices"]) == 4
        assert int(z["2_16_highest_chunk"]) == 16  # 4 devices x 2 blocks x 2 lanes
        _compare(z, one_device, DIST_CASES)
