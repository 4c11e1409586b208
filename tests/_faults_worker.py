"""Subprocess body of tests/test_faults_sweep.py: a checkpointed sweep that can be killed.

    python tests/_faults_worker.py OUT CHECKPOINT_DIR [MODE]

MODE (default ``run``):
  run              run to the end, save OUT.csv and OUT.npz (leaves and the rows this run ran)
  boundary:K       SIGKILL this process right after chunk K was saved (a kill between chunks)
  midwrite:K       SIGKILL it halfway through writing chunk K's file (a kill mid-write)
  hold:K           after chunk K, write OUT.ready and wait for OUT.go (holding the folder's lock)

A refused checkpoint prints the error on stderr and exits 3.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

KW = dict(lane_block=2, chunk_size=4)  # 24 configurations: 6 chunks of 4


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_mid_write(k: int) -> None:
    """Replace the checkpoint's atomic writer: the k-th chunk file is half written, then kill."""
    from gradlab.sweeps import _checkpoint

    real, count = _checkpoint._atomic_write, [0]

    def write(path, fill):
        if path.name.startswith("rows_"):
            count[0] += 1
            if count[0] == k:
                buf = io.BytesIO()
                fill(buf)
                data = buf.getvalue()
                fd = os.open(path.parent / f".{path.name}.999.tmp", os.O_WRONLY | os.O_CREAT)
                os.write(fd, data[: len(data) // 2])
                os.fsync(fd)
                _kill()
        real(path, fill)

    _checkpoint._atomic_write = write


def main(out: str, ckpt: str, mode: str = "run") -> None:
    import numpy as np
    from _sweep_cases import gd_train, linreg_data, reference_sweep_grid

    from gradlab.sweeps import CheckpointError, sweep

    kind, _, k = mode.partition(":")
    k = int(k or 0)
    if kind == "midwrite":
        _kill_mid_write(k)
    ran = []

    def progress(info):
        ran.append(info.done)
        if info.chunk == k and kind == "boundary":
            _kill()
        if info.chunk == k and kind == "hold":
            open(out + ".ready", "w").close()
            while not os.path.exists(out + ".go"):
                time.sleep(0.05)

    X, y = linreg_data()
    try:
        res = sweep(
            gd_train(X, y), reference_sweep_grid(), checkpoint=ckpt, progress=progress, **KW
        )
    except CheckpointError as err:
        print(err, file=sys.stderr)
        sys.exit(3)
    res.to_csv(out + ".csv")
    np.savez(out, *jax.tree.leaves(res.outputs), ran=np.asarray(ran, np.int64))


if __name__ == "__main__":
    main(*sys.argv[1:])
