"""Parameters laid out with a ``NamedSharding`` over 8 CPU devices are checked sharded: the
gradients stay sharded on device and only per-leaf statistics come back (a subprocess, since
the device count is fixed when jax starts)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import gradlab
    from gradlab.check import _problem, _scale, _settings
    from gradlab.check._verdict import Finding

    assert len(jax.devices()) == 8, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("x",))
    shard = NamedSharding(mesh, P("x"))
    n = 8 * 4096
    w = jax.device_put(jnp.asarray(np.random.default_rng(0).normal(size=n)), shard)
    loss = lambda w: jnp.sum(jnp.log1p(w**2))
    grad = lambda w: 2 * w / (1 + w**2)
    bug = lambda w: grad(w).at[12345].multiply(1 + 1e-6)

    for mode in ("fast", "full"):
        assert gradlab.check_grad(loss, grad, w, mode=mode).ok
        report = gradlab.check_grad(loss, bug, w, mode=mode)
        assert not report.ok and report.leaves[0].worst[0].index == (12345,)
        assert report.verdicts[0].kind is Finding.HAND_BUG, report

    problem = _problem.build(loss, grad, (w,))
    s = _settings.Settings("fast", None, None, 0, 4, 5, 2**28)
    dev = _scale._device(problem, s, True)
    for name in ("hand", "auto", "params"):
        arr = getattr(dev, name)
        assert len(arr.sharding.device_set) == 8, (name, arr.sharding)
        assert not arr.sharding.is_fully_replicated, (name, arr.sharding)
    two = Mesh(np.array(jax.devices()[:2]), ("y",))
    other = jax.device_put(jnp.ones(8), NamedSharding(two, P("y")))
    try:
        gradlab.check_grad(lambda p: loss(p["a"]) + loss(p["b"]),
                           lambda p: {"a": grad(p["a"]), "b": grad(p["b"])},
                           {"a": w, "b": other}, fd_elements=4)
    except ValueError as err:
        assert "devices" in str(err) and "['b']" in str(err), err
    else:
        raise AssertionError("parameters on two meshes were accepted")
    print("SHARDED-OK")
    """
)


def test_sharded_parameters_are_checked_sharded():
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    env["JAX_ENABLE_X64"] = "1"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0 and "SHARDED-OK" in out.stdout, out.stdout + out.stderr
