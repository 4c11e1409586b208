"""gradlab's pytest integration: the plugin loads itself through its ``pytest11`` entry point in a
fresh project, failures read like pytest's own, one test per derivation with readable ids, and
the helpers work with x64 off and without pytest imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import jax.numpy as jnp
import pytest

import gradlab
from gradlab.derivations import REGISTRY
from gradlab.derivations.mse import mse_mean, mse_mean_grad
from gradlab.testing import GradCase, assert_grad_close, grad_cases, parametrize_grads

ROOT = Path(__file__).resolve().parents[1]

USER_TESTS = """
import jax.numpy as jnp
from gradlab.derivations import REGISTRY
from gradlab.testing import assert_grad_close, parametrize_grads

def loss(w):
    return jnp.sum(jnp.sin(w) * w)

def grad_ok(w):
    return jnp.cos(w) * w + jnp.sin(w)

def grad_bad(w):                     # forgot the product rule's second term
    return jnp.cos(w) * w

W = (jnp.asarray([0.5, -1.5, 2.0]),)

def test_fixture_from_the_entry_point(strict_dtypes, grad_checker):
    grad_checker(loss, grad_ok, *W)

def test_readable_failure():
    assert_grad_close(loss, grad_bad, *W)

@parametrize_grads([(loss, grad_ok, W), (loss, grad_bad, W)])
def test_each(case):
    case.check()

@parametrize_grads({k: REGISTRY[k] for k in ("mse_mean", "l1")})
def test_registry(case):
    case.check()
"""


def _fake_install(site: Path) -> None:
    """A dist-info declaring pyproject's ``pytest11`` entry points: how pip installs them."""
    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    dist = site / "gradlab_entry_points-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gradlab-entry-points\n")
    lines = [f"{k} = {v}" for k, v in eps["pytest11"].items()]
    (dist / "entry_points.txt").write_text("[pytest11]\n" + "\n".join(lines) + "\n")


def test_a_fresh_project_gets_the_fixtures_and_readable_failures(tmp_path):
    project, site = tmp_path / "project", tmp_path / "site"
    project.mkdir()
    _fake_install(site)
    (project / "test_user.py").write_text(USER_TESTS)
    env = {
        "PYTHONPATH": f"{site}:{ROOT}",
        "PATH": "/usr/bin:/bin",
        "JAX_PLATFORMS": "cpu",
        "COLUMNS": "200",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", "test_user.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout
    assert "fixture 'strict_dtypes' not found" not in out, out
    assert "2 failed, 4 passed" in out, out[-4000:]
    # the short summary line: exception where users import it, then one line naming the leaf
    head = "gradlab.GradientMismatch: args[0]: 3 of 3 elements differ, worst args[0]["
    assert f"FAILED test_user.py::test_readable_failure - {head}" in out, out[-4000:]
    assert "FAILED test_user.py::test_each[loss-grad_bad] - gradlab.GradientMismatch" in out
    assert "test_each[loss-grad_ok]" not in out.split("short test summary")[-1]
    # the table follows the first line
    assert "gradlab check_grad: MISMATCH" in out and "autodiff" in out


def test_gradlab_and_its_testing_helpers_import_without_pytest():
    code = (
        "import sys, gradlab, gradlab.testing; "
        "print(sorted({'pytest', '_pytest'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_check_registry_with_x64_off_checks_float64_without_warnings():
    code = textwrap.dedent(
        """
        import jax, warnings
        warnings.simplefilter("error")
        from gradlab.testing import check_registry
        out = check_registry(names=["mse_mean", "l1"], hessian=False)
        rows = [(k, r["grad"].ok, r["grad"].dtype) for k, r in out.items()]
        print(rows, jax.config.jax_enable_x64)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == ("[('mse_mean', True, 'float64'), ('l1', True, 'float64')] False")


def test_grad_cases_ids_are_readable_and_unique():
    assert [c.id for c in grad_cases(REGISTRY)] == list(REGISTRY)
    ids = [c.id for c in grad_cases({"mse_mean": REGISTRY["mse_mean"]}, all_shapes=True)]
    assert ids == [f"mse_mean@{'x'.join(map(str, s))}" for s in REGISTRY["mse_mean"].shapes]
    args = (jnp.ones(3),)
    cases = grad_cases(
        [(mse_mean, mse_mean_grad, args), (mse_mean, mse_mean_grad, args), ("mine", len, len, ())]
    )
    assert [c.id for c in cases] == ["mse_mean-mse_mean_grad", "mse_mean-mse_mean_grad-2", "mine"]
    assert [c.id for c in grad_cases([(lambda w: w, lambda w: w, args)])] == ["lambda-lambda"]
    with pytest.raises(TypeError, match=r"\(loss, grad, args\).*got list"):
        grad_cases([[mse_mean, mse_mean_grad]])
    mark = parametrize_grads(REGISTRY, argname="d")
    assert mark.args[0] == "d" and mark.kwargs["ids"] == list(REGISTRY)


def test_a_case_checks_hessians_and_raises_with_a_headline():
    (case,) = grad_cases({"mse_mean": REGISTRY["mse_mean"]})
    assert set(case.check()) == {"grad", "hessian", "hvp"}
    w = jnp.asarray([0.5, -1.5, 2.0])
    bad = GradCase("bad", lambda w: jnp.sum(w**3), lambda w: 3 * w**2 * (w > 0), (w,))
    with pytest.raises(gradlab.GradientMismatch) as info:
        bad.check()
    first = str(info.value).splitlines()[0]
    assert first.startswith(
        "args[0]: 1 of 3 elements differs, worst args[0][1] rel err 5.62e-01 "
        "(hand 0, autodiff 6.75, fd 6.75)"
    )
    assert "gradlab check_grad: MISMATCH" in str(info.value).splitlines()[1]
    assert info.type.__module__ == "gradlab"


def test_headline_names_the_float64_copy_when_only_it_fails():
    import jax

    from gradlab.derivations import mse

    args = mse.make_args(jax.random.key(0), (32, 4), jnp.float32)

    def off_by_1e5(p, X, y):  # below float32's tolerance, far above float64's
        g = mse.mse_mean_grad(p, X, y)
        return {"w": g["w"] * (1 + 1e-5), "b": g["b"]}

    with pytest.raises(gradlab.GradientMismatch) as info:
        assert_grad_close(mse.mse_mean, off_by_1e5, *args)
    first = str(info.value).splitlines()[0]
    assert first.startswith("['w']: 4 of 4 elements differ in the float64 copy, worst ['w'][")


def test_loading_the_plugin_leaves_jax_uninitialized():
    """A user's conftest can still set the CPU device count after pytest loaded gradlab."""
    code = (
        "import chex, gradlab.pytest_plugin, jax; chex.set_n_cpu_devices(3); "
        "print(jax.device_count())"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "3"
