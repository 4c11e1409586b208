"""check_grad under JAX's default (x64 off): float32 inputs still get their float64 copy.

The suite runs with x64 on (conftest), so this runs in a fresh interpreter.
"""

import json
import subprocess
import sys

SCRIPT = r"""
import json, jax, jax.numpy as jnp, gradlab
from gradlab.derivations import mse
assert not jax.config.jax_enable_x64
args = mse.make_args(jax.random.key(0), (32, 4), jnp.float32)

def off_by_1e5(p, X, y):  # relative error 1e-5: below float32's tolerance, far above float64's
    g = mse.mse_mean_grad(p, X, y)
    return {"w": g["w"] * (1 + 1e-5), "b": g["b"]}

good = gradlab.check_grad(mse.mse_mean, mse.mse_mean_grad, *args)
# jnp.array(0.5) is weakly typed: it must still be checked as float32, not as float64
weak = {"w": jnp.ones(4), "b": jnp.array(0.5)}
weak_report = gradlab.check_grad(mse.mse_mean, mse.mse_mean_grad, weak, args[1], args[2])
bad = gradlab.check_grad(mse.mse_mean, off_by_1e5, *args)
print(json.dumps({
    "good_ok": good.ok, "bad_ok": bad.ok,
    "weak_ok": weak_report.ok, "weak_labels": [d.label for d in weak_report.dtypes],
    "bad_dtypes": [[d.label, d.ok] for d in bad.dtypes],
    "x64_after": bool(jax.config.jax_enable_x64),
    "arg_dtype_after": str(args[1].dtype),
}))
"""


def test_float32_without_x64_gets_a_float64_copy():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, check=True
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["good_ok"] is True
    assert res["weak_ok"] is True
    assert "float32" in res["weak_labels"][0]
    assert res["bad_ok"] is False  # caught by the float64 copy
    (label32, ok32), (label64, ok64) = res["bad_dtypes"]
    assert "float32" in label32 and ok32 is True  # float32 alone would have passed it
    assert "float64 copy" in label64 and ok64 is False
    assert res["x64_after"] is False  # the user's setting is restored
    assert res["arg_dtype_after"] == "float32"
