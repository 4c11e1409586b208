"""Subprocess body of tests/test_sweep_devices.py: run the reference sweep on this process's
devices (8 forced CPU devices, or one of two distributed processes) and save the outputs.

    python tests/_sweep_worker.py devices OUT.npz
    python tests/_sweep_worker.py distributed OUT.npz PROCESS_ID PORT
    python tests/_sweep_worker.py checkpoint OUT.npz CHECKPOINT_DIR   (env SWEEP_KILL_AFTER=k:
        os._exit(17) right after chunk k, as a killed process: no cleanup, no finally)
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chex  # noqa: E402
import jax  # noqa: E402

if os.environ.get("SWEEP_CPU_DEVICES"):  # before any jax operation; chex raises if too late
    chex.set_n_cpu_devices(int(os.environ["SWEEP_CPU_DEVICES"]))
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

# (lane_block, chunk_size, precision): one chunk with padding, several chunks, the TF32 opt-in
CASES = ((8, None, "highest"), (2, 16, "highest"), (8, None, "tensorfloat32"))
DIST_CASES = CASES[1:2]  # several chunks over 2 processes x 2 devices


def checkpointed(out: str, ckpt: str) -> None:
    import numpy as np
    from _sweep_cases import gd_train, linreg_data, reference_sweep_grid

    from gradlab.sweeps import sweep

    kill_after = int(os.environ.get("SWEEP_KILL_AFTER", "0"))
    ran = []

    def progress(info):
        ran.append(info.done)
        if info.chunk == kill_after:
            os._exit(17)

    X, y = linreg_data()
    res = sweep(
        gd_train(X, y),
        reference_sweep_grid(),
        lane_block=2,
        chunk_size=4,
        checkpoint=ckpt,
        progress=progress,
    )
    res.to_csv(out + ".csv")
    np.savez(out, *jax.tree.leaves(res.outputs), ran=np.asarray(ran, np.int64))


def main(argv: list[str]) -> None:
    mode, out = argv[0], argv[1]
    if mode == "checkpoint":
        return checkpointed(out, argv[2])
    if mode == "distributed":
        pid, port = int(argv[2]), argv[3]
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=f"localhost:{port}", num_processes=2, process_id=pid
        )
    import numpy as np
    from _sweep_cases import gd_train, linreg_data, reference_sweep_grid

    from gradlab.sweeps import sweep

    X, y = linreg_data()
    train = gd_train(X, y)
    arrays = {}
    for lane_block, chunk_size, precision in CASES if mode == "devices" else DIST_CASES:
        res = sweep(
            train,
            reference_sweep_grid(),
            lane_block=lane_block,
            chunk_size=chunk_size,
            precision=precision,
            progress=False,
        )
        assert res.devices == jax.device_count(), (res.devices, jax.device_count())
        tag = f"{lane_block}_{chunk_size}_{precision}"
        for i, leaf in enumerate(jax.tree.leaves(res.outputs)):
            arrays[f"{tag}_{i}"] = leaf
        arrays[f"{tag}_chunk"] = np.int64(res.meta["chunk_size"])
    arrays["devices"] = np.int64(jax.device_count())
    arrays["processes"] = np.int64(jax.process_count())
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(sys.argv[1:])
